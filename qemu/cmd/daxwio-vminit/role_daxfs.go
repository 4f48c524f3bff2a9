package main

import (
	"context"

	"github.com/daxwio/daxwio/qemu/internal/fstest"
)

func init() {
	// The daxfs multi-VM check: the host formatted the pool (fstest.Format);
	// this VM works in the shared tree through the daxfs library.
	roles["daxfs"] = role{needsRegion: true, run: func(ctx context.Context, e *env) (any, error) {
		return fstest.Run(ctx, e.region, e.cfg.Slot, func(s string) { e.logf("%s", s) })
	}}
}
