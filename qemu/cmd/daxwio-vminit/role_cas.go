package main

import (
	"context"

	"github.com/daxwio/daxwio/qemu/internal/castest"
)

func init() {
	roles["cas"] = role{needsRegion: true, wordsOnly: true, run: runCAS}
	roles["probe"] = role{needsRegion: true, wordsOnly: true, run: func(ctx context.Context, e *env) (any, error) {
		// Report what the VM sees: proves the device and mapping work.
		return map[string]any{"path": e.path, "word0": e.words.Load(0), "pool_offset": cxlPoolOffset}, nil
	}}
}

// runCAS runs the cross-VM CAS check. On the CXL backend the host cannot
// write the header (only the guest knows where its dax device starts in the
// pool), so the sizes come from the command line (daxwio.p.ops,
// daxwio.p.alone_ops) and every VM writes the header itself.
func runCAS(ctx context.Context, e *env) (any, error) {
	var self *castest.Params
	if e.cfg.Params["selfprep"] == "1" {
		ops, err := e.cfg.Int("ops", 0)
		if err != nil {
			return nil, err
		}
		alone, err := e.cfg.Int("alone_ops", 0)
		if err != nil {
			return nil, err
		}
		self = &castest.Params{VMs: e.cfg.VMs, Ops: uint64(ops), AloneOps: uint64(alone)}
	}
	r, err := castest.Run(ctx, e.words, e.cfg.Slot, self, func(s string) { e.logf("%s", s) })
	r.PoolOffset = cxlPoolOffset
	return r, err
}
