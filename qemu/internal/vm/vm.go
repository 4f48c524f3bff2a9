// Package vm starts testbed VMs with qemu-system-x86_64 (TCG), captures their
// serial consoles, enforces timeouts and makes sure no qemu process outlives
// the run.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/qemu/internal/result"
)

// QEMU is the emulator binary the testbed uses.
const QEMU = "qemu-system-x86_64"

// Machine describes one VM.
type Machine struct {
	Name    string // for progress lines and errors, e.g. "vm0"
	QEMU    string // emulator path; default: QEMU from $PATH
	Kernel  string
	Initrd  string
	Append  string // kernel command line (the testbed's own parameters included)
	MemMB   int    // guest RAM; default 512
	SMP     string // -smp value; default "1,maxcpus=2" (see docs/TESTBED.md: atomics)
	CPU     string // -cpu model; "" leaves QEMU's default (qemu64 under TCG)
	Backend string // "ivshmem" (default) or "cxl"
	Pool    string // the shared memory backend file (in /dev/shm)
	Size    int64  // its size in bytes (a power of two for ivshmem)
	LSA     string // cxl: this VM's label storage area file
	LogPath string // where the serial console is written; "" for none
	Stdio   bool   // interactive: console on the caller's terminal
	Echo    bool   // pass every console line to progress, not only the guest's own lines
}

// Args returns qemu's arguments for m.
func (m Machine) Args() ([]string, error) {
	if m.Kernel == "" || m.Initrd == "" {
		return nil, fmt.Errorf("vm %s: kernel and initrd are required", m.Name)
	}
	mem := m.MemMB
	if mem == 0 {
		mem = 512
	}
	smp := m.SMP
	if smp == "" {
		smp = "1,maxcpus=2"
	}
	args := []string{
		"-accel", "tcg,thread=multi",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio", "-monitor", "none",
		"-no-reboot",
		"-m", strconv.Itoa(mem) + "M",
		"-smp", smp,
		"-kernel", m.Kernel, "-initrd", m.Initrd,
		"-append", m.Append,
	}
	if m.CPU != "" {
		args = append(args, "-cpu", m.CPU)
	}
	if m.Pool == "" {
		return args, nil
	}
	if m.Size <= 0 {
		return nil, fmt.Errorf("vm %s: pool %s has no size", m.Name, m.Pool)
	}
	switch m.Backend {
	case "", "ivshmem":
		if m.Size&(m.Size-1) != 0 {
			return nil, fmt.Errorf("vm %s: ivshmem needs a power-of-two pool size, got %d", m.Name, m.Size)
		}
		args = append([]string{"-M", "q35"}, args...)
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-file,id=shm,share=on,mem-path=%s,size=%d", m.Pool, m.Size),
			"-device", "ivshmem-plain,memdev=shm")
	case "cxl":
		if m.LSA == "" {
			return nil, fmt.Errorf("vm %s: the cxl backend needs a label storage area file", m.Name)
		}
		// A pxb-cxl host bridge with TWO root ports: with one, QEMU 7.2
		// silently drops writes to the device. One fixed memory window
		// (CFMW) covers the device.
		window := int64(4) << 30
		for window < m.Size {
			window <<= 1
		}
		args = append([]string{"-M", "q35,cxl=on"}, args...)
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-file,id=cxl-mem0,share=on,mem-path=%s,size=%d", m.Pool, m.Size),
			"-object", fmt.Sprintf("memory-backend-file,id=cxl-lsa0,share=on,mem-path=%s,size=%d", m.LSA, LSASize),
			"-device", "pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1",
			"-device", "cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2",
			"-device", "cxl-rp,port=1,bus=cxl.1,id=root_port14,chassis=0,slot=3",
			"-device", "cxl-type3,bus=root_port13,memdev=cxl-mem0,lsa=cxl-lsa0,id=cxl-pmem0",
			"-M", fmt.Sprintf("cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=%d", window))
	default:
		return nil, fmt.Errorf("vm %s: unknown backend %q (want ivshmem or cxl)", m.Name, m.Backend)
	}
	return args, nil
}

// LSASize is the size of each VM's CXL label storage area file.
const LSASize = 256 << 20

// Outcome is what happened to one VM.
type Outcome struct {
	Name     string
	Log      []byte // the whole serial console
	Reports  []result.Report
	ParseErr error         // the console had a malformed report
	Err      error         // qemu failed to start, exited non-zero, or was killed
	TimedOut bool          // killed because the run's deadline passed
	Boot     time.Duration // from start to the guest's ready marker (0: never ready)
	Wall     time.Duration // from start to exit
}

// Preflight checks that the emulator is installed.
func Preflight(qemu string) (string, error) {
	if qemu == "" {
		qemu = QEMU
	}
	p, err := exec.LookPath(qemu)
	if err != nil {
		return "", fmt.Errorf("%s not found: install it (Debian: apt-get install qemu-system-x86)", qemu)
	}
	return p, nil
}

// RunAll boots every machine at once and waits for all of them to power
// off, or until ctx is done, whereupon every still-running qemu is killed.
// progress receives the guests' own progress lines (prefixed with the VM's
// name) and testbed events. RunAll returns only after every qemu process has
// exited.
func RunAll(ctx context.Context, ms []Machine, progress func(string)) []Outcome {
	return RunStaggered(ctx, ms, "", progress)
}

// RunStaggered is RunAll, except that when marker is not empty each machine
// starts only once the one before it printed a console line containing
// marker (or exited). The CXL backend uses it so that one VM at a time sets
// up its region and namespace on the shared device.
func RunStaggered(ctx context.Context, ms []Machine, marker string, progress func(string)) []Outcome {
	out := make([]Outcome, len(ms))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	close(gate)
	for i := range ms {
		next := make(chan struct{})
		var once sync.Once
		signal := func() { once.Do(func() { close(next) }) }
		if marker == "" {
			signal()
		}
		wg.Add(1)
		go func(i int, gate <-chan struct{}) {
			defer wg.Done()
			defer signal()
			select {
			case <-gate:
			case <-ctx.Done():
				out[i] = Outcome{Name: ms[i].Name, Err: fmt.Errorf("vm %s: not started (%v)", ms[i].Name, context.Cause(ctx))}
				return
			}
			out[i] = run(ctx, ms[i], marker, signal, progress)
		}(i, gate)
		gate = next
	}
	wg.Wait()
	return out
}

func run(ctx context.Context, m Machine, marker string, signal func(), progress func(string)) Outcome {
	o := Outcome{Name: m.Name}
	qemu, err := Preflight(m.QEMU)
	if err != nil {
		o.Err = err
		return o
	}
	args, err := m.Args()
	if err != nil {
		o.Err = err
		return o
	}
	cmd := exec.Command(qemu, args...)
	// Own process group, so a kill reaches anything qemu started; and
	// killed with us if the testbed itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var logf io.Writer = io.Discard
	if m.LogPath != "" {
		f, err := os.Create(m.LogPath)
		if err != nil {
			o.Err = fmt.Errorf("vm %s: console log: %w", m.Name, err)
			return o
		}
		defer f.Close()
		logf = f
	}
	var console bytes.Buffer
	var stdout io.ReadCloser
	if m.Stdio {
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
		cmd.SysProcAttr.Setpgid = false // stay in the terminal's foreground group
	} else {
		cmd.Stdin = nil
		stdout, err = cmd.StdoutPipe()
		if err != nil {
			o.Err = fmt.Errorf("vm %s: %w", m.Name, err)
			return o
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		o.Err = fmt.Errorf("vm %s: start %s: %w", m.Name, qemu, err)
		return o
	}
	progress(fmt.Sprintf("%s: started qemu pid %d", m.Name, cmd.Process.Pid))
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		if stdout == nil {
			return
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 64<<20)
		for sc.Scan() {
			line := sc.Bytes()
			console.Write(line)
			console.WriteByte('\n')
			_, _ = logf.Write(append(line, '\n'))
			s := strings.TrimRight(string(line), "\r")
			if o.Boot == 0 && strings.Contains(s, result.ReadyMarker) {
				o.Boot = time.Since(start)
				progress(fmt.Sprintf("%s: guest init running after %.1fs", m.Name, o.Boot.Seconds()))
			}
			if marker != "" && strings.Contains(s, marker) {
				signal()
			}
			if m.Echo || strings.HasPrefix(s, "daxwio-vm") {
				progress(m.Name + ": " + s)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	waitDone := make(chan error, 1)
	go func() {
		<-readDone // Wait closes the pipe; read it to the end first
		waitDone <- cmd.Wait()
	}()
	var werr error
	select {
	case werr = <-waitDone:
	case <-ctx.Done():
		o.TimedOut = true
		progress(fmt.Sprintf("%s: stopping (%v) after %.0fs; killing qemu pid %d", m.Name, context.Cause(ctx), time.Since(start).Seconds(), cmd.Process.Pid))
		t := kill(cmd)
		werr = <-waitDone
		t.Stop()
	}
	o.Wall = time.Since(start)
	o.Log = console.Bytes()
	o.Reports, o.ParseErr = result.Parse(o.Log)
	switch {
	case o.TimedOut:
		o.Err = fmt.Errorf("vm %s: killed (%v) after %.0fs%s", m.Name, context.Cause(ctx), o.Wall.Seconds(), bootNote(o))
	case werr != nil:
		o.Err = fmt.Errorf("vm %s: qemu exited: %v: %s", m.Name, werr, strings.TrimSpace(stderr.String()))
	}
	return o
}

func bootNote(o Outcome) string {
	if o.Boot == 0 {
		return "; the guest never reached init"
	}
	return ""
}

// kill ends qemu: SIGTERM to its process group, then SIGKILL if it
// lingers. The caller stops the returned timer once qemu has been reaped.
func kill(cmd *exec.Cmd) *time.Timer {
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	return time.AfterFunc(3*time.Second, func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
	})
}

// NewestKernel finds the newest /boot/vmlinuz-* and its version.
func NewestKernel(boot string) (path, version string, err error) {
	ms, _ := filepath.Glob(filepath.Join(boot, "vmlinuz-*"))
	if len(ms) == 0 {
		return "", "", fmt.Errorf("no kernel %s/vmlinuz-*: install one (Debian: apt-get install linux-image-amd64) or pass --kernel", boot)
	}
	sort.Slice(ms, func(i, j int) bool { return versionLess(ms[i], ms[j]) })
	p := ms[len(ms)-1]
	if f, err := os.Open(p); err != nil {
		return "", "", fmt.Errorf("kernel %s is not readable: %w (run as root, or pass a readable copy with --kernel)", p, err)
	} else {
		f.Close()
	}
	return p, KernelVersion(p), nil
}

// KernelVersion derives "6.1.0-26-amd64" from ".../vmlinuz-6.1.0-26-amd64".
func KernelVersion(p string) string {
	return strings.TrimPrefix(filepath.Base(p), "vmlinuz-")
}

// versionLess orders kernel paths by their numeric fields.
func versionLess(a, b string) bool {
	fa, fb := numFields(a), numFields(b)
	for i := 0; i < len(fa) && i < len(fb); i++ {
		if fa[i] != fb[i] {
			return fa[i] < fb[i]
		}
	}
	if len(fa) != len(fb) {
		return len(fa) < len(fb)
	}
	return a < b
}

func numFields(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// ErrNoReport is wrapped when a VM powered off without reporting.
var ErrNoReport = errors.New("no report")
