// Package upper is the native twin of upper.wat, the example actor written
// in WAT: output = u64 LE count of requests so far (state [0,8)), then the
// request with ASCII a-z turned to A-Z.
package upper

import (
	"encoding/binary"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// StateSize is the arena the actor needs.
const StateSize = 8

// Actor implements abi.Actor.
type Actor struct{}

func (Actor) Init(st abi.State, arg []byte) error { return nil }

func (Actor) Handle(st abi.State, in, out []byte) ([]byte, error) {
	n, err := abi.ReadU64(st, 0)
	if err != nil {
		return nil, err
	}
	if err := abi.WriteU64(st, 0, n+1); err != nil {
		return nil, err
	}
	out = binary.LittleEndian.AppendUint64(out[:0], n+1)
	for _, c := range in {
		if c >= 'a' && c <= 'z' {
			c -= 32
		}
		out = append(out, c)
	}
	return out, nil
}
