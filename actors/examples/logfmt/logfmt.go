// Package logfmt is the log-record formatter actor: it turns each request
// payload into the bytes to append to a LevelDB/RocksDB-style write-ahead
// log made of 32 KiB blocks. A record is a 7-byte header (masked CRC32C of
// type and data, u16 LE length, type FULL/FIRST/MIDDLE/LAST) and data;
// records are fragmented at block boundaries and a block tail shorter than
// a header is zero-filled. The logged data is the u64 LE log sequence
// number followed by the payload.
//
// State: [0,8) next sequence number, [8,16) offset within the current
// block. The output depends on both, so it is a stateful actor.
package logfmt

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// StateSize is the arena the actor needs.
const StateSize = 16

// BlockSize and HeaderSize follow LevelDB's log format.
const (
	BlockSize  = 32 << 10
	HeaderSize = 7
)

// Record types.
const (
	Full   = 1
	First  = 2
	Middle = 3
	Last   = 4
)

var table = crc32.MakeTable(crc32.Castagnoli)

// Mask is LevelDB's CRC mask.
func Mask(c uint32) uint32 { return ((c >> 15) | (c << 17)) + 0xa282ead8 }

// Actor implements abi.Actor.
type Actor struct{ data []byte }

func (a *Actor) Init(st abi.State, arg []byte) error {
	if st.Size() < StateSize {
		return fmt.Errorf("logfmt: state arena %d bytes, need %d", st.Size(), StateSize)
	}
	return abi.WriteU64(st, 0, 1)
}

func (a *Actor) Handle(st abi.State, in, out []byte) ([]byte, error) {
	var s [16]byte
	if err := st.Read(0, s[:]); err != nil {
		return nil, err
	}
	seq := binary.LittleEndian.Uint64(s[:])
	off := int(binary.LittleEndian.Uint64(s[8:]))
	if off < 0 || off >= BlockSize {
		return nil, fmt.Errorf("logfmt: corrupt block offset %d in state", off)
	}
	a.data = binary.LittleEndian.AppendUint64(a.data[:0], seq)
	a.data = append(a.data, in...)
	data := a.data
	out = out[:0]
	first := true
	for {
		left := BlockSize - off
		if left < HeaderSize {
			out = append(out, make([]byte, left)...)
			off = 0
			left = BlockSize
		}
		n := min(len(data), left-HeaderSize)
		last := n == len(data)
		t := byte(Middle)
		switch {
		case first && last:
			t = Full
		case first:
			t = First
		case last:
			t = Last
		}
		c := crc32.Update(crc32.Checksum([]byte{t}, table), table, data[:n])
		out = binary.LittleEndian.AppendUint32(out, Mask(c))
		out = binary.LittleEndian.AppendUint16(out, uint16(n))
		out = append(out, t)
		out = append(out, data[:n]...)
		off += HeaderSize + n
		data = data[n:]
		first = false
		if last {
			break
		}
	}
	binary.LittleEndian.PutUint64(s[:], seq+1)
	binary.LittleEndian.PutUint64(s[8:], uint64(off%BlockSize))
	return out, st.Write(0, s[:])
}
