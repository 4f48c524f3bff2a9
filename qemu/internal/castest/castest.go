// Package castest is the cross-VM exact compare-and-swap check.
//
// Every VM maps the same pool. The host writes a header (magic, number of
// VMs, operation counts) and zeroes the rest; then each VM
//
//  1. announces itself and waits until all VMs have arrived (barrier 0);
//  2. in turn, alone, CAS-increments its own "alone" counter AloneOps times,
//     which measures uncontended CAS/s inside one VM;
//  3. waits for everyone (barrier 1), then CAS-increments the one shared
//     counter Ops times, each time followed by a CAS-increment of its own
//     per-VM counter, counting failed CAS attempts (retries);
//  4. waits for everyone (barrier 2) and reports.
//
// The host checks after power-off, from the pool file itself: shared counter
// == sum of per-VM counters == VMs*Ops, and every alone counter == AloneOps.
// Any difference is a lost (or invented) update.
package castest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Words is the part of a shared region the check needs. *cxl.Region
// implements it; tests use an in-memory one.
type Words interface {
	Load(off uint64) uint64
	Store(off, v uint64)
	CAS(off, old, new uint64) bool
	Add(off, delta uint64) uint64
}

// Magic marks a pool prepared for the CAS check ("DXWCAS01").
const Magic = 0x313053414357_5844

// Layout, in bytes from the start of the pool. Hot words sit 128 bytes
// apart so that unrelated counters do not share a cache line. Barriers are
// per-VM flags (plain stores), not shared counters, so that they work even
// on a device whose atomics are not atomic across VMs (emulated CXL).
const (
	offMagic    = 0
	offVMs      = 8
	offOps      = 16
	offAloneOps = 24
	offTurn     = 512
	offShared   = 1024
	offPerVM    = 2048                  // + 128*slot
	offAlone    = offPerVM + 128*MaxVMs // + 128*slot
	offBarrier  = offAlone + 128*MaxVMs // + 8*MaxVMs*n + 8*slot
	nBarriers   = 3
	// Size is the number of bytes of the pool the check uses.
	Size = offBarrier + 8*MaxVMs*nBarriers
	// MaxVMs bounds the number of participants.
	MaxVMs = 64
)

// Params sizes one run.
type Params struct {
	VMs      int
	Ops      uint64 // contended increments of the shared counter per VM
	AloneOps uint64 // uncontended increments per VM, one VM at a time
}

// Prepare writes the header into a host-side image of the first Size bytes
// of the pool (all other bytes must be zero).
func Prepare(p Params) ([]byte, error) {
	if p.VMs < 1 || p.VMs > MaxVMs {
		return nil, fmt.Errorf("castest: %d VMs (want 1..%d)", p.VMs, MaxVMs)
	}
	b := make([]byte, Size)
	binary.LittleEndian.PutUint64(b[offMagic:], Magic)
	binary.LittleEndian.PutUint64(b[offVMs:], uint64(p.VMs))
	binary.LittleEndian.PutUint64(b[offOps:], p.Ops)
	binary.LittleEndian.PutUint64(b[offAloneOps:], p.AloneOps)
	return b, nil
}

// Result is what one VM reports.
type Result struct {
	Slot           int     `json:"slot"`
	AloneOps       uint64  `json:"alone_ops"`
	AloneSeconds   float64 `json:"alone_seconds"`
	AloneCASPerSec float64 `json:"alone_cas_per_sec"`
	Ops            uint64  `json:"ops"`         // shared-counter increments done
	CASCalls       uint64  `json:"cas_calls"`   // all CAS calls in the contended phase (shared + per-VM, incl. failed)
	Retries        uint64  `json:"retries"`     // failed CAS on the shared counter
	Seconds        float64 `json:"seconds"`     // contended phase
	CASPerSec      float64 `json:"cas_per_sec"` // CASCalls / Seconds
	SharedSeen     uint64  `json:"shared_seen"` // shared counter after the last barrier
	PoolOffset     uint64  `json:"pool_offset"` // where this VM's device starts in the pool file
}

// Run is the guest side for VM slot. It checks the header the host wrote,
// so a VM that maps the wrong memory fails at once.
//
// When the host cannot write the header (the CXL backend: where the guest's
// device starts in the pool is known only inside the guest), pass selfPrep:
// every VM then writes the same header itself before the first barrier.
func Run(ctx context.Context, w Words, slot int, selfPrep *Params, progress func(string)) (Result, error) {
	r := Result{Slot: slot}
	if selfPrep != nil {
		hdr, err := Prepare(*selfPrep)
		if err != nil {
			return r, err
		}
		for _, off := range []uint64{offVMs, offOps, offAloneOps, offMagic} {
			w.Store(off, binary.LittleEndian.Uint64(hdr[off:]))
		}
	}
	if m := w.Load(offMagic); m != Magic {
		return r, fmt.Errorf("castest: pool magic is %#x, want %#x: the region is not the prepared pool (wrong BAR or device?)", m, uint64(Magic))
	}
	vms := int(w.Load(offVMs))
	ops := w.Load(offOps)
	aloneOps := w.Load(offAloneOps)
	if slot < 0 || slot >= vms || vms > MaxVMs {
		return r, fmt.Errorf("castest: slot %d but the pool says %d VMs", slot, vms)
	}
	if err := barrier(ctx, w, 0, slot, vms); err != nil {
		return r, err
	}
	progress("all VMs arrived; alone phase")

	// Alone phase, one VM after the other.
	if err := waitFor(ctx, w, offTurn, uint64(slot), "turn for the alone phase"); err != nil {
		return r, err
	}
	mine := uint64(offAlone + 128*slot)
	start := time.Now()
	for i := uint64(0); i < aloneOps; i++ {
		for {
			old := w.Load(mine)
			if w.CAS(mine, old, old+1) {
				break
			}
		}
	}
	r.AloneSeconds = time.Since(start).Seconds()
	r.AloneOps = aloneOps
	if r.AloneSeconds > 0 {
		r.AloneCASPerSec = float64(aloneOps) / r.AloneSeconds
	}
	w.Store(offTurn, uint64(slot)+1)

	if err := barrier(ctx, w, 1, slot, vms); err != nil {
		return r, err
	}
	progress("contended phase")
	own := uint64(offPerVM + 128*slot)
	start = time.Now()
	for i := uint64(0); i < ops; i++ {
		for {
			old := w.Load(offShared)
			r.CASCalls++
			if w.CAS(offShared, old, old+1) {
				break
			}
			r.Retries++
		}
		old := w.Load(own)
		r.CASCalls++
		if !w.CAS(own, old, old+1) {
			return r, fmt.Errorf("castest: CAS on this VM's own counter at %#x failed (value %d): someone else wrote it", own, old)
		}
		if i&0xffff == 0 && ctx.Err() != nil {
			return r, fmt.Errorf("castest: contended phase stopped after %d of %d ops: %w", i, ops, ctx.Err())
		}
	}
	r.Seconds = time.Since(start).Seconds()
	r.Ops = ops
	if r.Seconds > 0 {
		r.CASPerSec = float64(r.CASCalls) / r.Seconds
	}
	if err := barrier(ctx, w, 2, slot, vms); err != nil {
		return r, err
	}
	r.SharedSeen = w.Load(offShared)
	return r, nil
}

// barrier sets this VM's flag for barrier n and waits for every VM's.
func barrier(ctx context.Context, w Words, n, slot, vms int) error {
	base := uint64(offBarrier + 8*MaxVMs*n)
	w.Store(base+8*uint64(slot), 1)
	for i := 0; i < vms; i++ {
		if err := waitFor(ctx, w, base+8*uint64(i), 1, fmt.Sprintf("barrier %d (VM %d of %d)", n, i, vms)); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls until the word at off is at least want. It sleeps between
// polls so that a waiting VM gives its host CPU to the ones working.
func waitFor(ctx context.Context, w Words, off, want uint64, what string) error {
	for d := 10 * time.Microsecond; ; {
		v := w.Load(off)
		if v >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("castest: %s: word at %#x is %d, waited for %d: %w", what, off, v, want, ctx.Err())
		case <-time.After(d):
		}
		if d < 5*time.Millisecond {
			d *= 2
		}
	}
}

// Verdict is the host's reading of the pool after every VM powered off.
type Verdict struct {
	VMs          int      `json:"vms"`
	Expected     uint64   `json:"expected"` // VMs*Ops
	Shared       uint64   `json:"shared"`
	PerVM        []uint64 `json:"per_vm"`
	Alone        []uint64 `json:"alone"`
	Lost         int64    `json:"lost"`           // Expected - Shared (negative: invented updates)
	TotalCASOps  uint64   `json:"total_cas_ops"`  // successful CAS on all counters, both phases
	SharedCASOps uint64   `json:"shared_cas_ops"` // successful CAS on the shared counter
	// PerVMExact: every per-VM and alone counter (each written by one VM
	// only) holds exactly what it should. When only the shared counter is
	// off, cross-VM CAS is not atomic; when these are off too, the memory
	// itself is not shared or not coherent.
	PerVMExact bool    `json:"per_vm_exact"`
	Accuracy   float64 `json:"accuracy"` // Shared / Expected
}

// ErrLost is wrapped by Verify when counts do not add up.
var ErrLost = errors.New("lost updates")

// Verify reads the counters from img (at least Size bytes of the pool).
func Verify(img []byte) (Verdict, error) {
	var v Verdict
	if len(img) < Size {
		return v, fmt.Errorf("castest: pool image is %d bytes, need %d", len(img), Size)
	}
	u := func(off int) uint64 { return binary.LittleEndian.Uint64(img[off:]) }
	if m := u(offMagic); m != Magic {
		return v, fmt.Errorf("castest: pool magic is %#x after the run, want %#x", m, uint64(Magic))
	}
	v.VMs = int(u(offVMs))
	if v.VMs < 1 || v.VMs > MaxVMs {
		return v, fmt.Errorf("castest: pool header says %d VMs", v.VMs)
	}
	ops, aloneOps := u(offOps), u(offAloneOps)
	v.Expected = uint64(v.VMs) * ops
	v.Shared = u(offShared)
	v.Lost = int64(v.Expected) - int64(v.Shared)
	v.SharedCASOps = v.Shared
	var sum uint64
	var errs []error
	for i := 0; i < v.VMs; i++ {
		p, a := u(offPerVM+128*i), u(offAlone+128*i)
		v.PerVM = append(v.PerVM, p)
		v.Alone = append(v.Alone, a)
		sum += p
		v.TotalCASOps += p + a
		if p != ops {
			errs = append(errs, fmt.Errorf("VM %d per-VM counter is %d, want %d", i, p, ops))
		}
		if a != aloneOps {
			errs = append(errs, fmt.Errorf("VM %d alone counter is %d, want %d", i, a, aloneOps))
		}
	}
	v.TotalCASOps += v.Shared
	v.PerVMExact = len(errs) == 0
	if v.Expected > 0 {
		v.Accuracy = float64(v.Shared) / float64(v.Expected)
	}
	if v.Shared != v.Expected {
		errs = append(errs, fmt.Errorf("shared counter is %d, want %d (%d lost updates)", v.Shared, v.Expected, v.Lost))
	}
	if sum != v.Shared {
		errs = append(errs, fmt.Errorf("shared counter %d != sum of per-VM counters %d", v.Shared, sum))
	}
	if len(errs) > 0 {
		return v, fmt.Errorf("castest: %w: %w", ErrLost, errors.Join(errs...))
	}
	return v, nil
}
