package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/daxwio/daxwio/qemu/internal/result"
	"github.com/daxwio/daxwio/qemu/internal/vm"
)

func TestReportsOf(t *testing.T) {
	ok := vm.Outcome{Name: "vm0", Reports: []result.Report{{Slot: 0, Role: "cas", OK: true}}}
	if rs, err := reportsOf(ok); err != nil || len(rs) != 1 {
		t.Fatalf("good outcome: %v %v", rs, err)
	}
	silent := vm.Outcome{Name: "vm1", Log: []byte("[ 1.0] Linux\nKernel panic - not syncing\n")}
	_, err := reportsOf(silent)
	if err == nil || !strings.Contains(err.Error(), "without a report") || !strings.Contains(err.Error(), "Kernel panic") {
		t.Fatalf("silent VM: err = %v", err)
	}
	failed := vm.Outcome{Name: "vm2", Reports: []result.Report{{Slot: 2, Role: "daxfs", Error: "phase B: boom"}}}
	if _, err := reportsOf(failed); err == nil || !strings.Contains(err.Error(), "phase B: boom") {
		t.Fatalf("failed role: err = %v", err)
	}
	killed := vm.Outcome{Name: "vm3", Err: errors.New("vm vm3: killed (timeout 1m)")}
	if _, err := reportsOf(killed); err == nil || !strings.Contains(err.Error(), "console empty") {
		t.Fatalf("killed VM: err = %v", err)
	}
}

func TestParamFlag(t *testing.T) {
	p := paramFlag{}
	if err := p.Set("ops=5"); err != nil || p["ops"] != "5" {
		t.Fatalf("Set: %v %v", p, err)
	}
	if err := p.Set("noequals"); err == nil {
		t.Fatal("bad param accepted")
	}
	if poolSize(0, 16<<20) != 16<<20 || poolSize(64, 1) != 64<<20 {
		t.Fatal("poolSize")
	}
}

func TestPreflightReportsEverythingMissing(t *testing.T) {
	c := common{vms: 2, backend: "ivshmem", qemuPath: "qemu-nope", kernel: "/nonexistent/vmlinuz", busybox: "/nonexistent/busybox", init: "/nonexistent/init"}
	_, err := c.preflight()
	if err == nil {
		t.Fatal("preflight passed without qemu, kernel, busybox")
	}
	for _, want := range []string{"qemu-system-x86", "kernel", "busybox-static", "daxwio-vminit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("preflight error does not mention %q: %v", want, err)
		}
	}
	c.backend = "nvme"
	if _, err := c.preflight(); err == nil || !strings.Contains(err.Error(), "--backend") {
		t.Errorf("bad backend: %v", err)
	}
}

func TestStalePID(t *testing.T) {
	for name, want := range map[string]int{
		"daxwio-testbed-4251-cas":   4251,
		"daxwio-testbed-77-123456":  77,
		"daxwio-testbed-x-cas":      0,
		"daxwio-testbed-4251":       0,
		"daxwio-demo-11869":         0,
		"daxwio-testbed-1-init":     0,
		"daxwio-testbed-2051108533": 0,
	} {
		pid, ok := stalePID(name)
		if (want == 0) == ok || (ok && pid != want) {
			t.Errorf("stalePID(%q) = %d, %v; want %d", name, pid, ok, want)
		}
	}
}
