package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/qemu/internal/fstest"
)

// daxfsResult is what the daxfs check reports.
type daxfsResult struct {
	Params          fstest.Params     `json:"params"`
	Solo            *fstest.Report    `json:"solo,omitempty"` // one VM alone, same work
	VMs             []fstest.Report   `json:"vms"`
	Summary         fstest.Summary    `json:"summary"`
	SoloCreatesPS   float64           `json:"creates_per_sec_1vm"`
	SharedCreatesPS float64           `json:"creates_per_sec_all_vms"` // all VMs' creates / the slowest VM's phase A (they start together at a barrier)
	Fsck            fstest.FsckResult `json:"fsck"`
	SoloFsck        fstest.FsckResult `json:"fsck_solo"`
	Error           string            `json:"error,omitempty"`
}

// runDaxfs: the host formats the pool, every VM works in one shared tree
// through the daxfs library (fstest.Run), and after power-off the host
// compares the tree with the union of the reports (fstest.Check). Before
// that, one VM does the same work alone, for creates/s 1 VM vs N VMs.
func runDaxfs(ctx context.Context, b *bed, o testOpts) (any, error) {
	res := &daxfsResult{Params: fstest.Params{VMs: b.c.vms, Own: o.fsOwn, Common: o.fsCommon, FileSize: o.fsSize}}
	if b.c.backend != "ivshmem" {
		return res, fmt.Errorf("%w: the daxfs check runs on ivshmem only (CAS on the emulated CXL device is not atomic across VMs)", errSkipped)
	}
	if b.c.vms > 1 && o.fsSolo {
		solo, err := b.daxfsRun(ctx, "daxfs-solo", "daxfs", fstest.Params{VMs: 1, Own: o.fsOwn, Common: o.fsCommon, FileSize: o.fsSize}, o)
		if err != nil {
			return res, failf(&res.Error, fmt.Errorf("one VM alone: %w", err))
		}
		res.Solo = &solo.vms[0]
		res.SoloFsck = solo.fsck
		res.SoloCreatesPS = solo.vms[0].CreatesPerSec
	}
	run, err := b.daxfsRun(ctx, "daxfs", "daxfs", res.Params, o)
	res.VMs, res.Summary, res.Fsck = run.vms, run.summary, run.fsck
	var creates int
	var span float64
	for _, r := range run.vms {
		creates += r.OwnCreated
		span = max(span, r.CreateSeconds)
	}
	if span > 0 {
		res.SharedCreatesPS = float64(creates) / span
	}
	if err != nil {
		return res, failf(&res.Error, err)
	}
	if res.Solo != nil {
		progressf("daxfs: creates/s: 1 VM alone %.0f; %d VMs together %.0f (each: %s)", res.SoloCreatesPS, b.c.vms, res.SharedCreatesPS, perVM(run.vms))
	}
	return res, nil
}

func perVM(rs []fstest.Report) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("vm%d %.0f", r.Slot, r.CreatesPerSec)
	}
	return s
}

func failf(dst *string, err error) error {
	*dst = err.Error()
	return err
}

type fsRun struct {
	vms     []fstest.Report
	summary fstest.Summary
	fsck    fstest.FsckResult
}

func (b *bed) daxfsRun(ctx context.Context, name, role string, p fstest.Params, o testOpts) (fsRun, error) {
	var out fsRun
	size := poolSize(b.c.poolMB, 64<<20)
	pool, err := b.newPool(name, size)
	if err != nil {
		return out, err
	}
	r, err := cxl.Open(pool, cxl.OpenOptions{})
	if err != nil {
		return out, err
	}
	defer r.Close()
	if err := fstest.Format(r, p); err != nil {
		return out, err
	}
	progressf("%s: formatted %s (%d MiB); %d VMs x (%d own files + racing for %d common), %d bytes each", name, pool, size>>20, p.VMs, p.Own, p.Common, p.FileSize)
	saved := b.c.vms
	b.c.vms = p.VMs
	ms, err := b.machines(name, role, pool, size, o.timeout-15*time.Second, nil)
	b.c.vms = saved
	if err != nil {
		return out, err
	}
	outs := b.boot(ctx, ms, o.timeout)
	var errs []error
	for _, vo := range outs {
		reps, err := reportsOf(vo)
		if err != nil {
			errs = append(errs, err)
		}
		for _, rep := range reps {
			var fr fstest.Report
			if rep.OK && json.Unmarshal(rep.Data, &fr) == nil {
				out.vms = append(out.vms, fr)
				progressf("%s: vm%d: %d own creates at %.0f/s; won %d of %d racing creates, %d of %d racing renames, %d of %d racing deletes; %.0f namespace ops/s overall; %d daxfs CAS retries",
					name, fr.Slot, fr.OwnCreated, fr.CreatesPerSec, len(fr.CommonWon), p.Common,
					len(fr.MovedWon), (p.Common+2)/3, len(fr.RemovedWon), (p.Common+1)/3, fr.TotalOpsPerSec, fr.CASRetries)
			}
		}
	}
	if len(errs) > 0 || len(out.vms) != p.VMs {
		errs = append(errs, fmt.Errorf("tree not checked: %d of %d VMs finished the daxfs role", len(out.vms), p.VMs))
		return out, joinErrs(errs)
	}
	s, err := fstest.Check(r, p, out.vms)
	out.summary = s
	if err != nil {
		return out, fmt.Errorf("the tree after the run is not the union of what the VMs reported:\n%w", err)
	}
	progressf("%s: tree matches the union of the reports: %d entries, every byte as written", name, s.Found)
	fr, err := fstest.Fsck(r)
	out.fsck = fr
	if err != nil {
		return out, err
	}
	progressf("%s: fsck (daxfs Check) clean: %d inodes, %d files, %d dirents, %d warnings, %d live / %d dead hosts in the table",
		name, fr.Inodes, fr.Files, fr.Dirents, fr.Warnings, fr.Live, fr.Dead)
	for _, p := range fr.Problems {
		progressf("%s: fsck: %s", name, p)
	}
	return out, nil
}

// runFuse is the daxfs check through a FUSE mount inside every VM: the
// guest kernels (each with its own caches) drive daxfs with ordinary system
// calls. Same phases, same host-side comparison and fsck.
func runFuse(ctx context.Context, b *bed, o testOpts) (any, error) {
	res := &daxfsResult{Params: fstest.Params{VMs: b.c.vms, Own: o.fuseOwn, Common: o.fuseCommon, FileSize: o.fsSize}}
	if b.c.backend != "ivshmem" {
		return res, fmt.Errorf("%w: the fuse check runs on ivshmem only", errSkipped)
	}
	run, err := b.daxfsRun(ctx, "fuse", "daxfs-fuse", res.Params, o)
	res.VMs, res.Summary, res.Fsck = run.vms, run.summary, run.fsck
	var creates int
	var span float64
	for _, r := range run.vms {
		creates += r.OwnCreated
		span = max(span, r.CreateSeconds)
	}
	if span > 0 {
		res.SharedCreatesPS = float64(creates) / span
	}
	if err != nil {
		return res, failf(&res.Error, err)
	}
	progressf("fuse: creates/s through FUSE: %d VMs together %.0f (each: %s)", b.c.vms, res.SharedCreatesPS, perVM(run.vms))
	return res, nil
}
