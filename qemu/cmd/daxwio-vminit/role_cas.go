package main

import (
	"context"

	"github.com/daxwio/daxwio/qemu/internal/castest"
)

func init() {
	roles["cas"] = role{needsRegion: true, run: func(ctx context.Context, e *env) (any, error) {
		return castest.Run(ctx, e.region, e.cfg.Slot, func(s string) { e.logf("%s", s) })
	}}
	roles["probe"] = role{needsRegion: true, run: func(ctx context.Context, e *env) (any, error) {
		// Report what the VM sees: proves the device and mapping work.
		return map[string]any{"path": e.path, "bytes": e.region.Len(), "word0": e.region.Load(0)}, nil
	}}
}
