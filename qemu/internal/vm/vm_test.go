package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func has(args []string, pair ...string) bool {
	for i := 0; i+len(pair) <= len(args); i++ {
		ok := true
		for j := range pair {
			ok = ok && args[i+j] == pair[j]
		}
		if ok {
			return true
		}
	}
	return false
}

func TestArgsIvshmem(t *testing.T) {
	m := Machine{Name: "vm0", Kernel: "/k", Initrd: "/i", Append: "console=ttyS0", Pool: "/dev/shm/p", Size: 16 << 20}
	a, err := m.Args()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]string{
		{"-accel", "tcg,thread=multi"},
		{"-smp", "1,maxcpus=2"}, // more than one possible vCPU: atomics are host atomics
		{"-no-reboot"},
		{"-kernel", "/k"},
		{"-object", "memory-backend-file,id=shm,share=on,mem-path=/dev/shm/p,size=16777216"},
		{"-device", "ivshmem-plain,memdev=shm"},
	} {
		if !has(a, p...) {
			t.Errorf("args lack %q: %q", p, a)
		}
	}
	m.Size = 3 << 20
	if _, err := m.Args(); err == nil || !strings.Contains(err.Error(), "power-of-two") {
		t.Errorf("odd size: err = %v", err)
	}
	m.Size, m.Backend = 16<<20, "nvme"
	if _, err := m.Args(); err == nil {
		t.Error("unknown backend accepted")
	}
	if _, err := (Machine{Name: "x"}).Args(); err == nil {
		t.Error("missing kernel accepted")
	}
}

func TestArgsCXL(t *testing.T) {
	m := Machine{Name: "vm1", Kernel: "/k", Initrd: "/i", Backend: "cxl", Pool: "/dev/shm/p", Size: 256 << 20}
	if _, err := m.Args(); err == nil || !strings.Contains(err.Error(), "label storage") {
		t.Fatalf("no LSA: err = %v", err)
	}
	m.LSA = "/dev/shm/lsa1"
	a, err := m.Args()
	if err != nil {
		t.Fatal(err)
	}
	if !has(a, "-M", "q35,cxl=on") || !has(a, "-device", "cxl-type3,bus=root_port13,memdev=cxl-mem0,lsa=cxl-lsa0,id=cxl-pmem0") {
		t.Errorf("cxl args: %q", a)
	}
	ports := 0
	for _, s := range a {
		if strings.HasPrefix(s, "cxl-rp,") {
			ports++
		}
	}
	if ports != 2 {
		t.Errorf("%d cxl root ports, want 2 (with one QEMU 7.2 drops writes)", ports)
	}
}

func TestKernelVersion(t *testing.T) {
	if v := KernelVersion("/boot/vmlinuz-6.1.0-26-amd64"); v != "6.1.0-26-amd64" {
		t.Errorf("version %q", v)
	}
	if !versionLess("/boot/vmlinuz-6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-26-amd64") {
		t.Error("6.1.0-9 should sort before 6.1.0-26")
	}
	if _, _, err := NewestKernel(t.TempDir()); err == nil || !strings.Contains(err.Error(), "linux-image-amd64") {
		t.Errorf("no kernel: err = %v", err)
	}
}

func TestPreflightMissing(t *testing.T) {
	if _, err := Preflight("qemu-system-nonexistent-arch"); err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("err = %v", err)
	}
}

// fakeQEMU writes a shell script that stands in for the emulator.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunStaggeredAndTimeout(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	// vm0 prints the ready marker and exits; vm1 must start only after that
	// and then hangs until killed.
	ok := fakeQEMU(t, `echo '@@DAXWIO-READY slot=0@@'; echo 'cxl: ready'; exit 0`)
	hang := fakeQEMU(t, `echo '@@DAXWIO-READY slot=1@@'; exec sleep 60`)
	ms := []Machine{
		{Name: "vm0", QEMU: ok, Kernel: "k", Initrd: "i"},
		{Name: "vm1", QEMU: hang, Kernel: "k", Initrd: "i"},
	}
	var mu sync.Mutex
	var events []string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	outs := RunStaggered(ctx, ms, "cxl: ready", func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	})
	if outs[0].Err != nil || outs[0].Boot == 0 || outs[0].TimedOut {
		t.Errorf("vm0 outcome %+v", outs[0])
	}
	if !outs[1].TimedOut || outs[1].Err == nil || !strings.Contains(outs[1].Err.Error(), "killed") {
		t.Errorf("vm1 outcome %+v", outs[1])
	}
	// vm1 was started after vm0's marker, and its process is gone.
	var pid int
	started := map[string]int{}
	for i, e := range events {
		var name string
		if n, _ := fmt.Sscanf(e, "%s started qemu pid %d", &name, &pid); n == 2 {
			started[strings.TrimSuffix(name, ":")] = i
		}
	}
	if started["vm1"] <= started["vm0"] {
		t.Errorf("vm1 did not start after vm0: %q", events)
	}
	if pid == 0 {
		t.Fatalf("no pid in %q", events)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still running after RunStaggered returned", pid)
	}
}

// TestBootKernel decompresses the real kernel when there is one: slow-ish
// (seconds), so not in -short.
func TestBootKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("decompresses a kernel")
	}
	k, _, err := NewestKernel("/boot")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	p, note, err := BootKernel(k, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", p, note)
	p2, note2, err := BootKernel(k, dir)
	if err != nil || p2 != p {
		t.Fatalf("second call: %s %s %v", p2, note2, err)
	}
	if p != k && note2 != "cached PVH vmlinux" {
		t.Errorf("second call did not use the cache: %s", note2)
	}
}

func TestDecompressGarbage(t *testing.T) {
	b := append([]byte("junk"), xzMagic...)
	b = append(b, "not really xz"...)
	if _, err := decompress(b); err == nil {
		t.Fatal("garbage decompressed")
	}
	if ok, _ := hasPVHNote([]byte("not elf")); ok {
		t.Fatal("PVH note found in garbage")
	}
	p := filepath.Join(t.TempDir(), "vmlinuz-x")
	os.WriteFile(p, b, 0o644)
	got, note, err := BootKernel(p, t.TempDir())
	if err != nil || got != p || !strings.Contains(note, "compressed kernel") {
		t.Fatalf("fallback: %s %q %v", got, note, err)
	}
}
