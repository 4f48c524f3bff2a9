package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/qemu/internal/bootparam"
	"github.com/daxwio/daxwio/qemu/internal/initramfs"
	"github.com/daxwio/daxwio/qemu/internal/vm"
	"github.com/daxwio/daxwio/qemu/internal/wiotest"
)

// common holds the flags every command that boots VMs shares.
type common struct {
	vms      int
	backend  string
	kernel   string
	busybox  string
	init     string
	extra    string
	memMB    int
	smp      string
	cpu      string
	actors   string
	poolMB   int64
	workdir  string
	keep     bool
	verbose  bool
	qemuPath string
	append   string
	pvh      bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.vms, "vms", 2, "number of VMs sharing the pool")
	fs.StringVar(&c.backend, "backend", "ivshmem", "shared memory device: ivshmem (atomic across VMs) or cxl (emulated CXL type-3; not atomic across VMs)")
	fs.StringVar(&c.kernel, "kernel", "", "guest kernel (default: newest /boot/vmlinuz-*); modules come from /lib/modules/VERSION")
	fs.StringVar(&c.busybox, "busybox", "/bin/busybox", "static busybox for the initramfs")
	fs.StringVar(&c.init, "init", "", "static daxwio-vminit binary (default: next to this program)")
	fs.StringVar(&c.extra, "add", "", "extra static binaries, comma-separated HOST[:GUEST] (GUEST default /usr/bin/NAME)")
	fs.IntVar(&c.memMB, "mem", 512, "guest RAM in MiB")
	fs.StringVar(&c.smp, "smp", "1,maxcpus=2", "guest -smp; keep maxcpus>1: with a single possible vCPU TCG does not make guest atomics host atomics and cross-VM CAS loses updates")
	fs.StringVar(&c.cpu, "cpu", "", "guest -cpu model (default: QEMU's, qemu64 under TCG; it lacks SSE4.1, so wazero runs actors with its interpreter in the guest)")
	fs.StringVar(&c.actors, "actors", examples.Dir(), "directory with the example actors' .wasm files (make actors builds them)")
	fs.Int64Var(&c.poolMB, "pool-mb", 0, "pool size in MiB, a power of two (default: what the check needs)")
	fs.StringVar(&c.workdir, "workdir", "", "directory for the initramfs and console logs (default: a new temporary directory, removed on success)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (console logs) even on success")
	fs.BoolVar(&c.verbose, "v", false, "copy every guest console line to stderr (and drop 'quiet' from the kernel command line)")
	fs.StringVar(&c.qemuPath, "qemu", vm.QEMU, "emulator binary")
	fs.BoolVar(&c.pvh, "pvh", true, "boot an uncompressed vmlinux through QEMU's PVH entry (extracted once from the bzImage with xz, cached): saves the guest decompressing its kernel under TCG")
	fs.StringVar(&c.append, "append", "", "extra kernel command-line parameters for every VM")
}

// bed is a prepared testbed: kernel found, initramfs built, work directory.
type bed struct {
	c          common
	kernel     string // the bzImage (its name gives the module version)
	bootKernel string // what -kernel gets: kernel, or its uncompressed PVH vmlinux
	kver       string
	initrd     string
	workdir    string
	tmpWork    bool
	pools      []string
	withActors []string // example actors to carry in the initramfs (wio-probe)
}

// preflight finds everything the VMs need and fails with one message that
// names every missing piece.
func (c *common) preflight() (*bed, error) {
	if c.vms < 1 || c.vms > 16 {
		return nil, fmt.Errorf("--vms %d: want 1..16", c.vms)
	}
	if c.backend != "ivshmem" && c.backend != "cxl" {
		return nil, fmt.Errorf("--backend %q: want ivshmem or cxl", c.backend)
	}
	b := &bed{c: *c}
	var missing []string
	if _, err := vm.Preflight(c.qemuPath); err != nil {
		missing = append(missing, err.Error())
	}
	if c.kernel == "" {
		k, v, err := vm.NewestKernel("/boot")
		if err != nil {
			missing = append(missing, err.Error())
		}
		b.kernel, b.kver = k, v
	} else {
		if _, err := os.Stat(c.kernel); err != nil {
			missing = append(missing, fmt.Sprintf("kernel: %v", err))
		}
		b.kernel, b.kver = c.kernel, vm.KernelVersion(c.kernel)
	}
	if _, err := os.Stat(c.busybox); err != nil {
		missing = append(missing, fmt.Sprintf("busybox %s: %v (Debian: apt-get install busybox-static)", c.busybox, err))
	}
	if c.init == "" {
		exe, err := os.Executable()
		if err == nil {
			c.init = filepath.Join(filepath.Dir(exe), "daxwio-vminit")
		}
	}
	if _, err := os.Stat(c.init); err != nil {
		missing = append(missing, fmt.Sprintf("in-VM driver %s: %v (build it: CGO_ENABLED=0 go build -o bin/daxwio-vminit ./qemu/cmd/daxwio-vminit, or run make qemu-test)", c.init, err))
	}
	if c.backend == "cxl" {
		for _, t := range []string{"/usr/bin/cxl", "/usr/bin/ndctl"} {
			if _, err := os.Stat(t); err != nil {
				missing = append(missing, fmt.Sprintf("%s: %v (the cxl backend needs Debian's ndctl package in the initramfs: apt-get install ndctl)", t, err))
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the testbed cannot run on this machine:\n  - %s", strings.Join(missing, "\n  - "))
	}
	b.c.init = c.init
	b.bootKernel = b.kernel
	if c.pvh {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		k, note, err := vm.BootKernel(b.kernel, filepath.Join(cache, "daxwio-testbed"))
		if err != nil {
			return nil, err
		}
		b.bootKernel = k
		progressf("kernel %s: %s", b.kernel, note)
	}
	removeStale()
	if c.workdir == "" {
		d, err := os.MkdirTemp("", fmt.Sprintf("daxwio-testbed-%d-", os.Getpid()))
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		b.workdir, b.tmpWork = d, true
	} else {
		if err := os.MkdirAll(c.workdir, 0o755); err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		b.workdir = c.workdir
	}
	return b, nil
}

// cxlModules are what the CXL backend loads in the guest to get /dev/dax0.0.
var cxlModules = []string{"cxl_acpi", "cxl_pci", "cxl_mem", "cxl_pmem", "cxl_port",
	"libnvdimm", "nd_pmem", "dax_pmem", "device_dax"}

func (b *bed) buildInitramfs() error {
	spec := initramfs.Spec{Init: b.c.init, Busybox: b.c.busybox, KernelVersion: b.kver}
	if b.c.extra != "" {
		for _, e := range strings.Split(b.c.extra, ",") {
			host, guest, ok := strings.Cut(e, ":")
			if !ok {
				guest = "/usr/bin/" + filepath.Base(host)
			}
			spec.Static = append(spec.Static, initramfs.File{Host: host, Guest: guest})
		}
	}
	// The Go example actors, for the wio-probe role only (the wio check
	// deploys its actor into the pool: the guests compile it from there).
	// make actors builds them with the Go toolchain alone.
	for _, name := range b.withActors {
		host := filepath.Join(b.c.actors, name+".wasm")
		if _, err := os.Stat(host); err == nil {
			spec.Data = append(spec.Data, initramfs.File{Host: host, Guest: wiotest.WasmPath(name)})
		}
	}
	spec.Modules = []string{"fuse"} // for the daxfs-fuse role
	if b.c.backend == "cxl" {
		spec.Modules = cxlModules
		spec.Dynamic = []initramfs.File{{Host: "/usr/bin/cxl", Guest: "/usr/bin/cxl"}, {Host: "/usr/bin/ndctl", Guest: "/usr/bin/ndctl"}}
	}
	b.initrd = filepath.Join(b.workdir, "initramfs.cpio")
	f, err := os.Create(b.initrd)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	m, err := initramfs.Build(f, spec)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("initramfs: %w", cerr)
	}
	if err != nil {
		return err
	}
	progressf("initramfs %s: %.1f MiB, %d files, %d modules (kernel %s)", b.initrd, float64(m.Bytes)/(1<<20), len(m.Files), len(m.Modules), b.kver)
	return nil
}

// newPool creates a zeroed pool file in /dev/shm, its pages reserved up
// front (a full tmpfs would otherwise kill qemu with SIGBUS mid-run);
// removePools or cleanup removes it.
func (b *bed) newPool(name string, size int64) (string, error) {
	return b.newShm(name, size, true)
}

// newShm creates a file in /dev/shm; reserve allocates its pages.
func (b *bed) newShm(name string, size int64, reserve bool) (string, error) {
	if size&(size-1) != 0 {
		return "", fmt.Errorf("pool %s: size %d is not a power of two", name, size)
	}
	const dir = "/dev/shm"
	if reserve {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return "", fmt.Errorf("pool: %s: %w (the testbed keeps its pools in %s)", dir, err, dir)
		}
		if free := int64(st.Bavail) * int64(st.Bsize); free < size+size/8 {
			return "", fmt.Errorf("pool %s: %s has %d MiB free, the pool needs %d MiB", name, dir, free>>20, size>>20)
		}
	}
	p := fmt.Sprintf("%s/daxwio-testbed-%d-%s", dir, os.Getpid(), name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("pool: %w", err)
	}
	b.pools = append(b.pools, p)
	defer f.Close()
	if reserve {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			return "", fmt.Errorf("pool %s: reserve %d MiB: %w", p, size>>20, err)
		}
	} else if err := f.Truncate(size); err != nil {
		return "", fmt.Errorf("pool %s: size to %d bytes: %w", p, size, err)
	}
	return p, nil
}

// removePools deletes every pool made so far.
func (b *bed) removePools() {
	for _, p := range b.pools {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			progressf("cleanup: %v", err)
		}
	}
	b.pools = nil
}

// cleanup removes pools (always) and the work directory (when temporary and
// ok and not --keep).
func (b *bed) cleanup(ok bool) {
	b.removePools()
	if b.tmpWork && ok && !b.c.keep {
		_ = os.RemoveAll(b.workdir)
		return
	}
	progressf("console logs and initramfs kept in %s", b.workdir)
}

// machines describes n VMs running role on pool.
func (b *bed) machines(run string, role string, pool string, size int64, timeout time.Duration, params func(slot int) map[string]string) ([]vm.Machine, error) {
	var ms []vm.Machine
	for i := 0; i < b.c.vms; i++ {
		cfg := bootparam.Config{Role: role, Slot: i, VMs: b.c.vms, Backend: b.c.backend, Timeout: timeout}
		if params != nil {
			cfg.Params = params(i)
		}
		tb, err := cfg.Format()
		if err != nil {
			return nil, err
		}
		m := vm.Machine{
			Name:    fmt.Sprintf("vm%d", i),
			QEMU:    b.c.qemuPath,
			Kernel:  b.bootKernel,
			Initrd:  b.initrd,
			Append:  kernelArgs(b.c.verbose) + b.c.append + " " + tb,
			MemMB:   b.c.memMB,
			SMP:     b.c.smp,
			CPU:     b.c.cpu,
			Backend: b.c.backend,
			Pool:    pool,
			Size:    size,
			LogPath: filepath.Join(b.workdir, fmt.Sprintf("%s-vm%d.log", run, i)),
			Echo:    b.c.verbose,
		}
		if b.c.backend == "cxl" {
			lsa, err := b.newShm(fmt.Sprintf("lsa%d", i), vm.LSASize, false) // sparse: labels use a few KiB
			if err != nil {
				return nil, err
			}
			m.LSA = lsa
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func kernelArgs(verbose bool) string {
	if verbose {
		return "console=ttyS0 panic=-1 "
	}
	return "console=ttyS0 quiet loglevel=3 panic=-1 "
}

// vmProgress forwards guest lines only with -v, testbed events always.
func (b *bed) vmProgress(s string) {
	if !b.c.verbose && strings.Contains(s, ": daxwio-vm[") && !strings.Contains(s, "phase") && !strings.Contains(s, "arrived") && !strings.Contains(s, "cxl:") {
		return
	}
	progress(s)
}

// cxlReady is what the guest prints once its CXL device is set up; on the
// CXL backend VMs start one after the other on this line.
const cxlReady = "cxl: ready"

// boot runs the machines with a deadline and returns their outcomes.
func (b *bed) boot(ctx context.Context, ms []vm.Machine, timeout time.Duration) []vm.Outcome {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timeout %v", timeout))
	defer cancel()
	marker := ""
	if b.c.backend == "cxl" {
		marker = cxlReady
	}
	return vm.RunStaggered(ctx, ms, marker, b.vmProgress)
}

// removeStale deletes pools and temporary work directories left by testbed
// runs that were killed (their names carry the dead process's id). A
// SIGKILLed testbed cannot clean up; its qemu processes die with it
// (parent-death signal), its files are removed here by the next run.
func removeStale() {
	for _, pat := range []string{"/dev/shm/daxwio-testbed-*", filepath.Join(os.TempDir(), "daxwio-testbed-*")} {
		ms, _ := filepath.Glob(pat)
		for _, m := range ms {
			pid, ok := stalePID(filepath.Base(m))
			if !ok {
				continue
			}
			if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
				continue // still running
			}
			if err := os.RemoveAll(m); err == nil {
				progressf("removed %s, left by testbed process %d that is gone", m, pid)
			}
		}
	}
}

// stalePID parses "daxwio-testbed-PID-rest".
func stalePID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "daxwio-testbed-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return 0, false
	}
	return pid, true
}
