// Package crc32c is the CRC32C (Castagnoli) checksum actor.
//
// Output per request: u32 LE CRC32C of the request, u32 LE running CRC32C
// of every request so far (the stream), u64 LE number of requests so far.
// State: [0,8) running CRC, [8,16) request count. Because the output
// depends on every earlier request, a lost or repeated request changes
// every later output.
package crc32c

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// StateSize is the arena the actor needs.
const StateSize = 16

var table = crc32.MakeTable(crc32.Castagnoli)

// Actor implements abi.Actor.
type Actor struct{}

func (Actor) Init(st abi.State, arg []byte) error {
	if st.Size() < StateSize {
		return fmt.Errorf("crc32c: state arena %d bytes, need %d", st.Size(), StateSize)
	}
	return nil
}

func (Actor) Handle(st abi.State, in, out []byte) ([]byte, error) {
	var s [16]byte
	if err := st.Read(0, s[:]); err != nil {
		return nil, err
	}
	run := crc32.Update(uint32(binary.LittleEndian.Uint64(s[:])), table, in)
	n := binary.LittleEndian.Uint64(s[8:]) + 1
	binary.LittleEndian.PutUint64(s[:], uint64(run))
	binary.LittleEndian.PutUint64(s[8:], n)
	if err := st.Write(0, s[:]); err != nil {
		return nil, err
	}
	out = binary.LittleEndian.AppendUint32(out[:0], crc32.Checksum(in, table))
	out = binary.LittleEndian.AppendUint32(out, run)
	return binary.LittleEndian.AppendUint64(out, n), nil
}
