//go:build wasip1

// Package guest is the wasm side of the wio actor ABI for Go actors: it
// implements abi.State over the "wio" host imports and the bodies of the
// exports each actor's main package declares with //go:wasmexport.
package guest

import (
	"unsafe"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

//go:wasmimport wio state_size
func stateSize() int32

//go:wasmimport wio state_read
func stateRead(off uint32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wio state_write
func stateWrite(off uint32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wio log
func logMsg(ptr unsafe.Pointer, n uint32)

// State is abi.State over the host imports.
type State struct{}

func (State) Size() int { return int(stateSize()) }

func (State) Read(off int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if off < 0 || stateRead(uint32(off), unsafe.Pointer(&p[0]), uint32(len(p))) != 0 {
		return abi.ErrStateRange
	}
	return nil
}

func (State) Write(off int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if off < 0 || stateWrite(uint32(off), unsafe.Pointer(&p[0]), uint32(len(p))) != 0 {
		return abi.ErrStateRange
	}
	return nil
}

// Log writes a line to the host's log.
func Log(s string) {
	if len(s) > 0 {
		b := []byte(s)
		logMsg(unsafe.Pointer(&b[0]), uint32(len(b)))
	}
}

var (
	in  []byte
	out []byte
)

// Input returns the address of an input buffer of at least n bytes; the
// host calls it once per instance and writes every request there.
func Input(n uint32) uint32 {
	if n == 0 {
		n = 1
	}
	if uint32(cap(in)) < n {
		in = make([]byte, n)
	}
	in = in[:cap(in)]
	return uint32(uintptr(unsafe.Pointer(&in[0])))
}

// Init runs a.Init with the n-byte argument the host wrote at Input.
func Init(a abi.Actor, n uint32) int32 {
	if int(n) > len(in) {
		return -1
	}
	if err := a.Init(State{}, in[:n]); err != nil {
		Log("init: " + err.Error())
		return -1
	}
	return 0
}

// Handle runs a.Handle on the n-byte request and packs the result:
// ptr<<32 | len for output, ptr<<32 | 1<<31 | len for an error message.
func Handle(a abi.Actor, n uint32) int64 {
	if int(n) > len(in) {
		return -1
	}
	o, err := a.Handle(State{}, in[:n], out[:0])
	if err != nil {
		o = append(out[:0], err.Error()...)
		if len(o) == 0 {
			return -1
		}
		out = o
		return int64(uintptr(unsafe.Pointer(&o[0])))<<32 | 1<<31 | int64(len(o))
	}
	if cap(o) > cap(out) {
		out = o[:0]
	}
	if len(o) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&o[0])))<<32 | int64(len(o))
}
