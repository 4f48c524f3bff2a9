package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/daxwio/daxwio/daxfs"
	daxfuse "github.com/daxwio/daxwio/daxfs/fuse"
	"github.com/daxwio/daxwio/qemu/internal/fstest"
)

// fuseMount is where the daxfs-fuse role mounts the pool in the guest.
const fuseMount = "/mnt/daxfs"

func init() {
	// The daxfs multi-VM check: the host formatted the pool (fstest.Format);
	// this VM works in the shared tree through the daxfs library.
	roles["daxfs"] = role{needsRegion: true, run: func(ctx context.Context, e *env) (any, error) {
		return fstest.Run(ctx, e.region, e.cfg.Slot, func(s string) { e.logf("%s", s) })
	}}
	// The same work through the guest kernel: daxfs mounted with FUSE in
	// this VM, driven with ordinary system calls. Each VM's kernel has its
	// own caches, so this also tests the FUSE front end's coherence.
	roles["daxfs-fuse"] = role{needsRegion: true, run: runFuse}
}

func runFuse(ctx context.Context, e *env) (any, error) {
	fs, err := daxfs.Open(e.region, daxfs.Options{Name: fmt.Sprintf("vm%d-fuse", e.cfg.Slot)})
	if err != nil {
		return nil, fmt.Errorf("daxfs-fuse: open: %w", err)
	}
	defer fs.Close()
	if err := os.MkdirAll(fuseMount, 0o755); err != nil {
		return nil, fmt.Errorf("daxfs-fuse: %w", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("daxfs-fuse: %w (is fuse.ko in the initramfs module list?)", err)
	}
	srv, err := daxfuse.Mount(fs, fuseMount, daxfuse.Options{FsName: "daxfs:" + e.path})
	if err != nil {
		return nil, fmt.Errorf("daxfs-fuse: mount on %s: %w", fuseMount, err)
	}
	e.logf("mounted daxfs on %s with FUSE", fuseMount)
	rep, werr := fstest.Work(ctx, e.region, e.cfg.Slot, fstest.OSOps(fuseMount), fs, func(s string) { e.logf("%s", s) })
	if uerr := srv.Unmount(true); uerr != nil {
		werr = errors.Join(werr, fmt.Errorf("daxfs-fuse: unmount: %w", uerr))
	}
	return rep, werr
}
