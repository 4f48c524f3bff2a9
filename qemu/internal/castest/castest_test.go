package castest

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mem is an in-process Words over a byte slice, standing in for the pool.
type mem struct{ b []uint64 }

func newMem(img []byte) *mem {
	m := &mem{b: make([]uint64, len(img)/8)}
	for i := range m.b {
		m.b[i] = binary.LittleEndian.Uint64(img[8*i:])
	}
	return m
}
func (m *mem) p(off uint64) *uint64          { return &m.b[off/8] }
func (m *mem) Load(off uint64) uint64        { return atomic.LoadUint64(m.p(off)) }
func (m *mem) Store(off, v uint64)           { atomic.StoreUint64(m.p(off), v) }
func (m *mem) CAS(off, old, new uint64) bool { return atomic.CompareAndSwapUint64(m.p(off), old, new) }
func (m *mem) Add(off, d uint64) uint64      { return atomic.AddUint64(m.p(off), d) }

func TestRunAndVerify(t *testing.T) {
	const vms = 3
	img, err := Prepare(Params{VMs: vms, Ops: 20000, AloneOps: 5000})
	if err != nil {
		t.Fatal(err)
	}
	m := newMem(img)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	res := make([]Result, vms)
	errs := make([]error, vms)
	for i := 0; i < vms; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i], errs[i] = Run(ctx, m, i, nil, func(string) {})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("VM %d: %v", i, err)
		}
		if res[i].Ops != 20000 || res[i].AloneOps != 5000 || res[i].SharedSeen != 3*20000 {
			t.Errorf("VM %d result %+v", i, res[i])
		}
		if res[i].CASCalls != 2*20000+res[i].Retries {
			t.Errorf("VM %d: %d CAS calls, %d retries", i, res[i].CASCalls, res[i].Retries)
		}
	}
	out := make([]byte, 8*len(m.b))
	for i, w := range m.b {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	v, err := Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	if v.Lost != 0 || v.Shared != 60000 || v.TotalCASOps != 60000*2+15000 {
		t.Errorf("verdict %+v", v)
	}

	// A lost update is caught.
	binary.LittleEndian.PutUint64(out[offShared:], 59999)
	binary.LittleEndian.PutUint64(out[offPerVM+128:], 19999)
	v, err = Verify(out)
	if !errors.Is(err, ErrLost) || v.Lost != 1 {
		t.Errorf("lost update: verdict %+v err %v", v, err)
	}
}

func TestWrongPool(t *testing.T) {
	m := &mem{b: make([]uint64, Size/8)}
	if _, err := Run(context.Background(), m, 0, nil, func(string) {}); err == nil {
		t.Fatal("Run on an unprepared pool succeeded")
	}
	if _, err := Verify(make([]byte, Size)); err == nil {
		t.Fatal("Verify of an unprepared pool succeeded")
	}
	if _, err := Prepare(Params{VMs: 0}); err == nil {
		t.Fatal("Prepare with 0 VMs succeeded")
	}
}

func TestBarrierTimeout(t *testing.T) {
	img, _ := Prepare(Params{VMs: 2, Ops: 1, AloneOps: 1})
	m := newMem(img)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, m, 0, nil, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lonely VM: err = %v, want a deadline error", err)
	}
}

func TestSelfPrepared(t *testing.T) {
	m := &mem{b: make([]uint64, Size/8)}
	p := &Params{VMs: 2, Ops: 1000, AloneOps: 10}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = Run(context.Background(), m, i, p, func(string) {})
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8*len(m.b))
	for i, w := range m.b {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	if v, err := Verify(out); err != nil || v.Shared != 2000 {
		t.Fatalf("verdict %+v, %v", v, err)
	}
}
