// Command daxwio-vminit is the init (PID 1) of a daxwio testbed VM and the
// in-VM test driver.
//
// As PID 1 it mounts proc, sys and dev, reads its role from the kernel
// command line (daxwio.role=..., see qemu/internal/bootparam), loads the
// kernel modules listed in /etc/daxwio/modules, finds the shared-memory
// device (the ivshmem BAR, or /dev/dax0.0 on the CXL backend), runs the role,
// prints a framed report on the console (qemu/internal/result) and powers the
// VM off. It never returns: PID 1 exiting panics the kernel.
//
// Run as an ordinary process it does the same work against a region file,
// which is how the roles are smoke-tested without QEMU:
//
//	daxwio-vminit --region /dev/shm/pool --cmdline 'daxwio.role=cas daxwio.slot=0 daxwio.vms=1'
//
// It must be built with CGO_ENABLED=0.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/qemu/internal/bootparam"
	"github.com/daxwio/daxwio/qemu/internal/castest"
	"github.com/daxwio/daxwio/qemu/internal/guest"
	"github.com/daxwio/daxwio/qemu/internal/initramfs"
	"github.com/daxwio/daxwio/qemu/internal/result"
)

// env is what a role gets.
type env struct {
	cfg    bootparam.Config
	path   string        // the shared region's path
	region *cxl.Region   // opened MAP_SHARED; nil for roles that need none (or when only words could be mapped)
	words  castest.Words // atomic word access to the region (the region itself, or a fallback mapping)
	logf   func(format string, a ...any)
}

// role runs one workload and returns what to report under "data".
type role struct {
	needsRegion bool
	wordsOnly   bool // the role uses only env.words, not env.region
	run         func(ctx context.Context, e *env) (any, error)
}

// roles is filled by the role_*.go files.
var roles = map[string]role{}

func main() {
	if os.Getpid() == 1 {
		asInit()
		return
	}
	asProcess()
}

func asProcess() {
	fs := flag.NewFlagSet("daxwio-vminit", flag.ExitOnError)
	region := fs.String("region", "", "path of the shared region (a file, /dev/daxX.Y or a PCI resource file)")
	cmdline := fs.String("cmdline", "", "parameters as on the kernel command line, e.g. 'daxwio.role=cas daxwio.slot=0 daxwio.vms=1'")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: daxwio-vminit --region PATH --cmdline 'daxwio.role=ROLE daxwio.slot=N ...'\n\n"+
			"The testbed VM's init. As PID 1 it reads its role from /proc/cmdline; run as a\n"+
			"process it runs one role against a region file and prints the framed report.\n\nRoles: %s\n\n", strings.Join(roleNames(), ", "))
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *cmdline == "" {
		fs.Usage()
		os.Exit(2)
	}
	cfg, err := bootparam.Parse(*cmdline)
	if err != nil {
		fmt.Fprintln(os.Stderr, "daxwio-vminit:", err)
		os.Exit(2)
	}
	rep := runRole(cfg, func() (string, error) {
		if *region == "" {
			return "", errors.New("--region is required for this role")
		}
		return *region, nil
	})
	if err := result.Write(os.Stdout, rep); err != nil {
		fmt.Fprintln(os.Stderr, "daxwio-vminit:", err)
	}
	if !rep.OK {
		os.Exit(1)
	}
}

func roleNames() []string {
	var ns []string
	for n := range roles {
		ns = append(ns, n)
	}
	return ns
}

func asInit() {
	slot := -1
	defer func() {
		// Whatever happens, report and power off; never let PID 1 return.
		if p := recover(); p != nil {
			_ = result.Write(os.Stdout, result.Report{Slot: slot, Role: "init", Error: fmt.Sprintf("panic: %v\n%s", p, debug.Stack())})
		}
		powerOff()
	}()
	if err := mountBasics(); err != nil {
		_ = result.Write(os.Stdout, result.Report{Slot: slot, Role: "init", Error: err.Error()})
		return
	}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		_ = result.Write(os.Stdout, result.Report{Slot: slot, Role: "init", Error: "read /proc/cmdline: " + err.Error()})
		return
	}
	cfg, err := bootparam.Parse(string(b))
	if err != nil {
		_ = result.Write(os.Stdout, result.Report{Slot: slot, Role: "init", Error: err.Error()})
		return
	}
	slot = cfg.Slot
	fmt.Printf("%s uptime=%s\n", result.Ready(slot), uptime())
	if cfg.Role == "shell" {
		shell()
		return
	}
	if err := loadModules(slot); err != nil {
		_ = result.Write(os.Stdout, result.Report{Slot: slot, Role: cfg.Role, Error: err.Error()})
		return
	}
	rep := runRole(cfg, func() (string, error) { return findRegion(cfg) })
	if err := result.Write(os.Stdout, rep); err != nil {
		fmt.Fprintln(os.Stderr, "daxwio-vminit: write report:", err)
	}
}

// runRole opens the region (when the role needs one), runs the role under
// the configured timeout and turns the outcome into a report.
func runRole(cfg bootparam.Config, regionPath func() (string, error)) result.Report {
	rep := result.Report{Slot: cfg.Slot, Role: cfg.Role}
	r, ok := roles[cfg.Role]
	if !ok {
		rep.Error = fmt.Sprintf("unknown role %q (this init knows: %s)", cfg.Role, strings.Join(roleNames(), ", "))
		return rep
	}
	e := &env{cfg: cfg, logf: func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "daxwio-vm[%d] %s: %s\n", cfg.Slot, cfg.Role, fmt.Sprintf(format, a...))
	}}
	if r.needsRegion {
		p, err := regionPath()
		if err != nil {
			rep.Error = err.Error()
			return rep
		}
		e.path = p
		reg, err := cxl.Open(p, cxl.OpenOptions{})
		switch {
		case err == nil:
			defer reg.Close()
			e.region, e.words = reg, reg
			e.logf("region %s, %d MiB", p, reg.Len()>>20)
		case r.wordsOnly && strings.HasPrefix(p, "/dev/dax"):
			// cxl.Open cannot size device-dax nodes yet (docs/TESTBED.md,
			// known gaps); roles that only need words map it directly.
			m, merr := guest.MapDevice(p)
			if merr != nil {
				rep.Error = fmt.Sprintf("open shared region %s: %v; fallback: %v", p, err, merr)
				return rep
			}
			defer m.Close()
			e.words = m
			e.logf("region %s, %d MiB (direct mapping: cxl.Open said: %v)", p, m.Len()>>20, err)
		default:
			rep.Error = fmt.Sprintf("open shared region %s: %v", p, err)
			return rep
		}
	}
	ctx := context.Background()
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	start := time.Now()
	data, err := r.run(ctx, e)
	rep.Seconds = time.Since(start).Seconds()
	if data != nil {
		b, jerr := json.Marshal(data)
		if jerr != nil {
			err = errors.Join(err, fmt.Errorf("encode role data: %w", jerr))
		} else {
			rep.Data = b
		}
	}
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.OK = true
	return rep
}

func mountBasics() error {
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("init: mkdir %s: %w", m.dst, err)
		}
		if err := syscall.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("init: mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	return nil
}

func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0] + "s"
}

// loadModules loads /etc/daxwio/modules in order with finit_module.
func loadModules(slot int) error {
	b, err := os.ReadFile(initramfs.ModuleList)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, p := range strings.Fields(string(b)) {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("init: load module: %w", err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("init: load module %s: %w", p, err)
		}
		fmt.Fprintf(os.Stderr, "daxwio-vm[%d]: loaded %s\n", slot, p)
	}
	return nil
}

// findRegion returns the guest path of the shared memory for the backend.
func findRegion(cfg bootparam.Config) (string, error) {
	switch cfg.Backend {
	case "ivshmem":
		return guest.IvshmemResource("/sys")
	case "cxl":
		return setupCXL(cfg)
	}
	return "", fmt.Errorf("init: unknown backend %q (want ivshmem or cxl)", cfg.Backend)
}

// run executes a tool in the guest and returns its combined output, with
// the command in any error.
func run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func shell() {
	fmt.Println("daxwio-vm: role shell: starting /bin/sh; 'poweroff -f' ends the VM")
	c := exec.Command("/bin/sh")
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "TERM=vt100"}
	if err := c.Run(); err != nil {
		fmt.Println("daxwio-vm: shell:", err)
	}
}

func powerOff() {
	syscall.Sync()
	if err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintln(os.Stderr, "daxwio-vm: power off:", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
