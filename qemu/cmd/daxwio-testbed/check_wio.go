package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/qemu/internal/wiotest"
)

// wioResult is what the wio check reports.
type wioResult struct {
	Params        wiotest.Params   `json:"params"`
	DeploySeconds float64          `json:"deploy_seconds"` // host: format the pool, compile and deploy the actor
	VMs           []wiotest.Report `json:"vms"`            // completions left out (the verdict covers them)
	Verdict       wiotest.Verdict  `json:"verdict"`
	BootSecs      []float64        `json:"boot_seconds"`
	Error         string           `json:"error,omitempty"`
}

// runWio: the host formats the pool with an actors extent and deploys an
// example actor on the host side; VM 0 runs the host-side runtime, VM 1 the
// device-side runtime, every VM a client streaming requests while the two
// side VMs migrate the actor back and forth; after power-off the host checks
// exactly-once, per-client order and every output against the native twin
// (wiotest.Check).
func runWio(ctx context.Context, b *bed, o testOpts) (any, error) {
	p := wiotest.Params{VMs: b.c.vms, Actor: o.wioActor, Requests: o.wioRequests, Depth: o.wioDepth, Migrations: o.wioMigrations}
	res := &wioResult{Params: p}
	switch {
	case !o.wio:
		return res, fmt.Errorf("%w: --wio=false", errSkipped)
	case b.c.backend != "ivshmem":
		return res, fmt.Errorf("%w: the wio check runs on ivshmem only (CAS on the emulated CXL device is not atomic across VMs)", errSkipped)
	case b.c.vms < 2:
		return res, fmt.Errorf("%w: the wio check needs 2 VMs or more (a host side and a device side)", errSkipped)
	}
	if err := p.Validate(); err != nil {
		return res, failf(&res.Error, err)
	}
	wasmPath := filepath.Join(b.c.actors, p.Actor+".wasm")
	wasm, err := os.ReadFile(wasmPath)
	if errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("%w: %s missing: run `make actors` (the Go example actors need only the Go toolchain), or pass --actors DIR", errSkipped, wasmPath)
	}
	if err != nil {
		return res, failf(&res.Error, err)
	}
	size := poolSize(b.c.poolMB, 32<<20)
	pool, err := b.newPool("wio", size)
	if err != nil {
		return res, failf(&res.Error, err)
	}
	t0 := time.Now()
	if err := wioFormat(ctx, pool, p, wasm); err != nil {
		return res, failf(&res.Error, err)
	}
	res.DeploySeconds = time.Since(t0).Seconds()
	progressf("wio: deployed %s (%d KiB of wasm) on the host side of %s in %.1fs; %d VMs x %d requests (depth %d), %d migrations between vm0 (host side) and vm1 (device side)",
		p.Actor, len(wasm)>>10, pool, res.DeploySeconds, p.VMs, p.Requests, p.Depth, p.Migrations)
	ms, err := b.machines("wio", "wio", pool, size, o.timeout-15*time.Second, func(int) map[string]string { return p.Boot() })
	if err != nil {
		return res, failf(&res.Error, err)
	}
	outs := b.boot(ctx, ms, o.timeout)
	var errs []error
	var reps []wiotest.Report
	for _, out := range outs {
		res.BootSecs = append(res.BootSecs, out.Boot.Seconds())
		rs, err := reportsOf(out)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range rs {
			var wr wiotest.Report
			if r.OK && json.Unmarshal(r.Data, &wr) == nil {
				reps = append(reps, wr)
			}
		}
	}
	for _, r := range reps {
		if r.Role == "client" {
			progressf("wio: vm%d client: %d requests in %.1fs (%.0f/s)", r.Slot, len(r.Completions), r.StreamSeconds, r.PerSec)
			continue
		}
		progressf("wio: vm%d %s side (wazero %s): served %d requests; %d migrations in, %d triggered here (%d aborted); mean blackout %.1f ms; its client: first completion after %.1fs, %d requests in %.1fs (%.0f/s)",
			r.Slot, r.Role, r.Engine, r.Served, r.MigrationsIn, r.Migrated, r.Aborted, r.BlackoutsMS, r.FirstSeconds, len(r.Completions), r.StreamSeconds, r.PerSec)
	}
	if len(errs) > 0 {
		res.VMs = strip(reps)
		return res, failf(&res.Error, joinErrs(errs))
	}
	r, err := cxl.Open(pool, cxl.OpenOptions{})
	if err != nil {
		return res, failf(&res.Error, err)
	}
	ar, err := wiotest.ReadArena(r, p.Actor)
	r.Close()
	if err != nil {
		return res, failf(&res.Error, err)
	}
	v, err := wiotest.Check(p, reps, ar)
	res.Verdict, res.VMs = v, strip(reps)
	progressf("wio: %d requests, arena completed %d; lost %d, duplicated %d, out of order %d, failed %d, outputs differing from the twin %d; state equals the twin's: %v; exactly once: %v",
		v.Requests, v.Completed, v.Lost, v.Duplicated, v.OutOfOrder, v.Failed, v.Mismatched, v.StateEqual, v.ExactlyOnce)
	progressf("wio: %d migrations (%d aborted), arena counts %d; served by host side %d, device side %d",
		v.Migrations, v.Aborted, v.ArenaMigrations, v.ServedBySide["host"], v.ServedBySide["device"])
	if err != nil {
		return res, failf(&res.Error, err)
	}
	return res, nil
}

// wioFormat prepares the pool file: region, actors extent, actor deployed.
// The host compiles the actor to validate it (and to run wio_init); its
// compilation cache keeps that to a load after the first run.
func wioFormat(ctx context.Context, pool string, p wiotest.Params, wasm []byte) error {
	r, err := cxl.Open(pool, cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	rtc := actors.RuntimeConfig{InitTimeout: 2 * time.Minute}
	if dir, err := os.UserCacheDir(); err == nil {
		rtc.CacheDir = filepath.Join(dir, "daxwio-testbed", "wazero")
	}
	return wiotest.Format(ctx, r, p, wasm, rtc)
}

// strip drops the per-request lists from reports kept in the JSON results.
func strip(reps []wiotest.Report) []wiotest.Report {
	out := make([]wiotest.Report, len(reps))
	for i, r := range reps {
		r.Completions = nil
		out[i] = r
	}
	return out
}
