package actors

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// TestHostileActors: each hostile module fails with the right error for
// that request or deploy, and a well-behaved actor on the same runtime
// keeps serving before, between and after.
func TestHostileActors(t *testing.T) {
	ctx := context.Background()
	rt := newTestRuntime(t, RuntimeConfig{MemoryLimitPages: 256, CallTimeout: 200 * time.Millisecond})
	good, err := rt.Compile(ctx, testWasm["upper"])
	if err != nil {
		t.Fatal(err)
	}
	gi, err := good.Instantiate(ctx, "upper", 1024)
	if err != nil {
		t.Fatal(err)
	}
	st := abi.Mem(make([]byte, 8))
	serve := func(when string) {
		t.Helper()
		out, err := gi.Handle(ctx, st, []byte("still here"))
		if err != nil || !bytes.Equal(out[8:], []byte("STILL HERE")) {
			t.Fatalf("good actor %s: %q, %v", when, out, err)
		}
	}
	serve("before")
	// A trusted actor has no deadline, but a trap is still only its
	// request's error.
	if m, err := rt.CompileTrusted(ctx, testWasm["hostile/oob"]); err != nil {
		t.Fatal(err)
	} else if inst, err := m.Instantiate(ctx, "oob-trusted", 1024); err != nil {
		t.Fatal(err)
	} else if _, err := inst.Handle(ctx, abi.Mem(make([]byte, 8)), []byte("x")); !errors.Is(err, ErrTrap) {
		t.Fatalf("trusted oob: %v, want ErrTrap", err)
	}
	serve("after trusted oob")
	cases := []struct {
		name     string
		compile  error // expected at Compile
		inst     error // expected at Instantiate
		init     error // expected at Init
		handle   error // expected at Handle
		reusable bool
	}{
		{name: "loop", handle: ErrDeadline},
		{name: "oob", handle: ErrTrap},
		{name: "grow", handle: ErrTrap},
		{name: "bigmem", compile: ErrBadModule, inst: ErrTrap},
		{name: "badimport", compile: ErrBadModule},
		{name: "badsig", compile: ErrBadModule},
		{name: "noexport", compile: ErrBadModule},
		{name: "inittrap", init: ErrTrap},
		{name: "starttrap", inst: ErrTrap},
		{name: "badout", handle: ErrTrap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer serve("after " + c.name)
			m, err := rt.Compile(ctx, testWasm["hostile/"+c.name])
			if c.compile != nil {
				if err == nil {
					// Some limits are only checked at instantiation.
					if c.inst == nil {
						t.Fatalf("compile: no error, want %v", c.compile)
					}
				} else {
					if !errors.Is(err, c.compile) {
						t.Fatalf("compile: %v, want %v", err, c.compile)
					}
					t.Logf("rejected: %v", err)
					return
				}
			} else if err != nil {
				t.Fatalf("compile: %v", err)
			}
			inst, err := m.Instantiate(ctx, c.name, 1024)
			if c.inst != nil {
				if err == nil {
					t.Fatalf("instantiate: no error, want %v", c.inst)
				}
				t.Logf("rejected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("instantiate: %v", err)
			}
			defer inst.Close(ctx)
			if err := inst.Init(ctx, abi.Mem(make([]byte, 8)), nil); !errors.Is(err, c.init) {
				t.Fatalf("init: %v, want %v", err, c.init)
			} else if err != nil {
				t.Logf("rejected: %v", err)
				return
			}
			serve("during " + c.name)
			_, err = inst.Handle(ctx, abi.Mem(make([]byte, 8)), []byte("x"))
			if !errors.Is(err, c.handle) {
				t.Fatalf("handle: %v, want %v", err, c.handle)
			}
			t.Logf("request failed as expected: %v", err)
			if inst.Broken() == nil {
				t.Fatal("instance still usable after a trap")
			}
		})
	}
}
