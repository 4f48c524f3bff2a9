// Package abi is the Go side of the wio actor ABI shared by example actors
// and their native twins: an actor is written once against State and runs
// either inside a wasm guest (state reached through the wio host imports) or
// natively (state in a byte slice). See docs/ACTORS.md for the wire ABI.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrStateRange is returned when an actor touches state outside its arena.
var ErrStateRange = errors.New("abi: state access out of range")

// State is an actor's durable state arena. Reads and writes are bounds
// checked; a write becomes durable only when the request that made it is
// completed (the runtime publishes state and completion together).
type State interface {
	Size() int
	Read(off int, p []byte) error
	Write(off int, p []byte) error
}

// Actor is the code of one storage actor.
type Actor interface {
	// Init is called once, when the actor is deployed, with the deploy
	// argument; it initialises the state arena (which starts zeroed).
	Init(st State, arg []byte) error
	// Handle serves one request. It may append its output to out[:0] and
	// return it; out's capacity is a hint, not a limit.
	Handle(st State, in, out []byte) ([]byte, error)
}

// Mem is a State backed by a byte slice: the native twin's arena.
type Mem []byte

// Size returns the arena size.
func (m Mem) Size() int { return len(m) }

// Read copies len(p) bytes at off into p.
func (m Mem) Read(off int, p []byte) error {
	if off < 0 || off > len(m) || len(p) > len(m)-off {
		return fmt.Errorf("read [%d,+%d) of %d: %w", off, len(p), len(m), ErrStateRange)
	}
	copy(p, m[off:])
	return nil
}

// Write copies p into the arena at off.
func (m Mem) Write(off int, p []byte) error {
	if off < 0 || off > len(m) || len(p) > len(m)-off {
		return fmt.Errorf("write [%d,+%d) of %d: %w", off, len(p), len(m), ErrStateRange)
	}
	copy(m[off:], p)
	return nil
}

// ReadU64 reads a little-endian uint64 from the state.
func ReadU64(st State, off int) (uint64, error) {
	var b [8]byte
	if err := st.Read(off, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// WriteU64 writes a little-endian uint64 into the state.
func WriteU64(st State, off int, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return st.Write(off, b[:])
}

// Twin runs an Actor natively over its own Mem arena, one request at a
// time, exactly as the runtime runs the wasm build: a request that fails
// leaves the state as it was before the request.
type Twin struct {
	A     Actor
	State Mem
	work  Mem
}

// NewTwin returns a twin with a zeroed arena of size bytes, initialised with arg.
func NewTwin(a Actor, size int, arg []byte) (*Twin, error) {
	t := &Twin{A: a, State: make(Mem, size), work: make(Mem, size)}
	if err := a.Init(t.State, arg); err != nil {
		return nil, err
	}
	return t, nil
}

// Handle serves one request; on error the state is rolled back.
func (t *Twin) Handle(in []byte) ([]byte, error) {
	copy(t.work, t.State)
	out, err := t.A.Handle(t.work, in, nil)
	if err != nil {
		return nil, err
	}
	t.State, t.work = t.work, t.State
	return out, nil
}
