// Package lz4 is the LZ4 block compressor/decompressor actor.
//
// Request: one op byte, 'c' (compress) or 'd' (decompress), then data.
// Compressed form: u32 LE original length, one kind byte (0 stored, 1 LZ4
// block), then the payload. State: [0,8) requests served, [8,16) bytes in,
// [16,24) bytes out. Outputs do not depend on state.
package lz4

import (
	"encoding/binary"
	"errors"
	"fmt"

	plz4 "github.com/pierrec/lz4/v4"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// StateSize is the arena the actor needs.
const StateSize = 24

// MaxInput is the largest decompressed size accepted.
const MaxInput = 16 << 20

// Actor implements abi.Actor.
type Actor struct {
	c plz4.Compressor
}

func (a *Actor) Init(st abi.State, arg []byte) error {
	if st.Size() < StateSize {
		return fmt.Errorf("lz4: state arena %d bytes, need %d", st.Size(), StateSize)
	}
	return nil
}

func (a *Actor) Handle(st abi.State, in, out []byte) ([]byte, error) {
	if len(in) == 0 {
		return nil, errors.New("lz4: empty request (want op byte 'c' or 'd')")
	}
	op, data := in[0], in[1:]
	switch op {
	case 'c':
		out = Compress(&a.c, data, out)
	case 'd':
		var err error
		if out, err = Decompress(data, out); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("lz4: unknown op %q", op)
	}
	for i, d := range []uint64{1, uint64(len(data)), uint64(len(out))} {
		v, err := abi.ReadU64(st, 8*i)
		if err != nil {
			return nil, err
		}
		if err := abi.WriteU64(st, 8*i, v+d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Compress appends the compressed form of src to dst[:0].
func Compress(c *plz4.Compressor, src, dst []byte) []byte {
	need := 5 + plz4.CompressBlockBound(len(src))
	if cap(dst) < need {
		dst = make([]byte, need)
	}
	dst = dst[:need]
	binary.LittleEndian.PutUint32(dst, uint32(len(src)))
	n, err := c.CompressBlock(src, dst[5:])
	if err != nil || n == 0 || n >= len(src) {
		dst[4] = 0
		return append(dst[:5], src...)
	}
	dst[4] = 1
	return dst[:5+n]
}

// Decompress appends the decompressed form of src to dst[:0].
func Decompress(src, dst []byte) ([]byte, error) {
	if len(src) < 5 {
		return nil, errors.New("lz4: compressed input shorter than its 5-byte header")
	}
	n := binary.LittleEndian.Uint32(src)
	if n > MaxInput {
		return nil, fmt.Errorf("lz4: decompressed size %d over limit %d", n, MaxInput)
	}
	switch src[4] {
	case 0:
		if uint32(len(src)-5) != n {
			return nil, fmt.Errorf("lz4: stored block of %d bytes, header says %d", len(src)-5, n)
		}
		return append(dst[:0], src[5:]...), nil
	case 1:
		if cap(dst) < int(n) {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		got, err := plz4.UncompressBlock(src[5:], dst)
		if err != nil {
			return nil, fmt.Errorf("lz4: corrupt block: %w", err)
		}
		if got != int(n) {
			return nil, fmt.Errorf("lz4: block decoded to %d bytes, header says %d", got, n)
		}
		return dst, nil
	default:
		return nil, fmt.Errorf("lz4: unknown block kind %d", src[4])
	}
}
