package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/actors/examples/abi"
)

func newTestRuntime(t testing.TB, cfg RuntimeConfig) *Runtime {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir
	}
	rt, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// txState gives an Instance the same rollback-on-error semantics the
// arena gives it: writes land in a copy that is kept only on success.
type txState struct{ cur, work abi.Mem }

func (s *txState) begin()                      { copy(s.work, s.cur) }
func (s *txState) commit()                     { s.cur, s.work = s.work, s.cur }
func (s *txState) Size() int                   { return len(s.work) }
func (s *txState) Read(o int, p []byte) error  { return s.work.Read(o, p) }
func (s *txState) Write(o int, p []byte) error { return s.work.Write(o, p) }

// TestExamplesMatchTwins runs every example in wasm and natively on the
// same random requests and compares outputs and final state.
func TestExamplesMatchTwins(t *testing.T) {
	ctx := context.Background()
	rt := newTestRuntime(t, RuntimeConfig{})
	for _, e := range examples.All() {
		for _, trusted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/trusted=%v", e.Name, trusted), func(t *testing.T) {
				compile := rt.Compile
				if trusted {
					compile = rt.CompileTrusted
				}
				m, err := compile(ctx, testWasm[e.Name])
				if err != nil {
					t.Fatal(err)
				}
				inst, err := m.Instantiate(ctx, e.Name, 70<<10)
				if err != nil {
					t.Fatal(err)
				}
				defer inst.Close(ctx)
				st := &txState{cur: make(abi.Mem, e.StateSize), work: make(abi.Mem, e.StateSize)}
				st.begin()
				if err := inst.Init(ctx, st, e.Arg); err != nil {
					t.Fatal(err)
				}
				st.commit()
				twin, err := abi.NewTwin(e.New(), e.StateSize, e.Arg)
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 2))
				for k := 0; k < 200; k++ {
					in := e.Gen(r, 1+r.IntN(1<<(2+k%15)))
					if len(in) > 64<<10 {
						in = in[:64<<10]
					}
					st.begin()
					got, err := inst.Handle(ctx, st, in)
					want, werr := twin.Handle(in)
					if (err == nil) != (werr == nil) {
						t.Fatalf("request %d: wasm err %v, twin err %v", k, err, werr)
					}
					if err != nil {
						continue
					}
					st.commit()
					if !bytes.Equal(got, want) {
						t.Fatalf("request %d (%d bytes): wasm output %x differs from twin %x", k, len(in), got[:min(len(got), 64)], want[:min(len(want), 64)])
					}
				}
				if !bytes.Equal(st.cur, twin.State) {
					t.Fatalf("final state differs: wasm %x twin %x", st.cur, twin.State)
				}
			})
		}
	}
}

// TestLZ4RoundTrip checks the compressor against its own decompressor in wasm.
func TestLZ4RoundTrip(t *testing.T) {
	ctx := context.Background()
	rt := newTestRuntime(t, RuntimeConfig{})
	m, err := rt.Compile(ctx, testWasm["lz4"])
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.Instantiate(ctx, "lz4", 70<<10)
	if err != nil {
		t.Fatal(err)
	}
	st := &txState{cur: make(abi.Mem, 64), work: make(abi.Mem, 64)}
	r := rand.New(rand.NewPCG(3, 4))
	e, _ := examples.Get("lz4")
	for k := 0; k < 50; k++ {
		in := e.Gen(r, r.IntN(60000))
		st.begin()
		c, err := inst.Handle(ctx, st, in)
		if err != nil {
			t.Fatal(err)
		}
		d, err := inst.Handle(ctx, st, append([]byte{'d'}, c...))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d, in[1:]) {
			t.Fatalf("round trip of %d bytes differs", len(in)-1)
		}
	}
	st.begin()
	if _, err := inst.Handle(ctx, st, []byte("d\xff\xff\x00\x00\x01garbage")); !errors.Is(err, ErrActorFailed) {
		t.Fatalf("corrupt block: got %v, want ErrActorFailed", err)
	}
}
