package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/daxwio/daxwio/qemu/internal/vm"
	"github.com/daxwio/daxwio/qemu/internal/wiotest"
)

func newFlags(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: daxwio-testbed %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func cmdInitramfs(ctx context.Context, args []string) error {
	var c common
	fs := newFlags("initramfs", "Build the testbed initramfs (busybox, daxwio-vminit as /init, --add binaries;\nwith --backend cxl also the CXL/nvdimm/dax modules and the cxl and ndctl tools).")
	c.register(fs)
	out := fs.String("o", "initramfs.cpio", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := c.preflight()
	if err != nil {
		return err
	}
	if err := b.buildInitramfs(); err != nil {
		b.cleanup(false)
		return err
	}
	if err := os.Rename(b.initrd, *out); err != nil {
		return fmt.Errorf("move initramfs to %s: %w", *out, err)
	}
	b.cleanup(true)
	fmt.Println(*out)
	return nil
}

func cmdRun(ctx context.Context, args []string) error {
	var c common
	fs := newFlags("run", "Boot --vms VMs on one fresh pool, each running --role, and print every VM's\nreport as JSON on stdout. Roles: cas (needs the pool prepared: use 'test'), probe, daxfs, wio-probe\n(times compiling, instantiating and calling an example actor in the VM;\n--param actor=crc32c|lz4, --param trusted=1).")
	c.register(fs)
	role := fs.String("role", "probe", "role for every VM")
	timeout := fs.Duration("timeout", 2*time.Minute, "kill the VMs after this long")
	params := paramFlag{}
	fs.Var(params, "param", "role parameter key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := c.preflight()
	if err != nil {
		return err
	}
	ok := false
	defer func() { b.cleanup(ok) }()
	if *role == "wio-probe" {
		b.withActors = wiotest.Actors
	}
	if err := b.buildInitramfs(); err != nil {
		return err
	}
	size := poolSize(c.poolMB, 16<<20)
	pool, err := b.newPool("run", size)
	if err != nil {
		return err
	}
	ms, err := b.machines("run", *role, pool, size, *timeout-10*time.Second, func(int) map[string]string { return params })
	if err != nil {
		return err
	}
	outs := b.boot(ctx, ms, *timeout)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	var errs []error
	for _, o := range outs {
		reps, err := reportsOf(o)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range reps {
			_ = enc.Encode(r)
		}
	}
	if len(errs) > 0 {
		return joinErrs(errs)
	}
	ok = true
	return nil
}

func cmdShell(ctx context.Context, args []string) error {
	var c common
	fs := newFlags("shell", "Boot one VM on a fresh pool with a busybox shell on this terminal. The pool's\nBAR is /sys/bus/pci/devices/*/resource2 (vendor 0x1af4 device 0x1110).\n'poweroff -f' ends it.")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.vms = 1
	b, err := c.preflight()
	if err != nil {
		return err
	}
	defer b.cleanup(true)
	if err := b.buildInitramfs(); err != nil {
		return err
	}
	size := poolSize(c.poolMB, 16<<20)
	pool, err := b.newPool("shell", size)
	if err != nil {
		return err
	}
	ms, err := b.machines("shell", "shell", pool, size, 0, nil)
	if err != nil {
		return err
	}
	ms[0].Stdio = true
	ms[0].LogPath = ""
	outs := vm.RunAll(ctx, ms, progress)
	return outs[0].Err
}

func poolSize(mb, def int64) int64 {
	if mb > 0 {
		return mb << 20
	}
	return def
}
