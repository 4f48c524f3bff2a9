package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeDev(t *testing.T, sys, bdf, vendor, device string, bars ...int) {
	t.Helper()
	dir := filepath.Join(sys, "bus", "pci", "devices", bdf)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vendor", vendor+"\n")
	write("device", device+"\n")
	write("enable", "0\n")
	for _, b := range bars {
		write("resource"+string(rune('0'+b)), "")
	}
}

func TestIvshmemResource(t *testing.T) {
	sys := t.TempDir()
	fakeDev(t, sys, "0000:00:01.0", "0x8086", "0x29c0")
	fakeDev(t, sys, "0000:00:03.0", "0x1af4", "0x1000", 0) // virtio-net, same vendor
	if _, err := IvshmemResource(sys); err == nil || !strings.Contains(err.Error(), "no ivshmem") {
		t.Fatalf("no device: err = %v", err)
	}
	fakeDev(t, sys, "0000:00:04.0", "0x1af4", "0x1110", 0, 2)
	got, err := IvshmemResource(sys)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(sys, "bus/pci/devices/0000:00:04.0/resource2"); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	b, _ := os.ReadFile(filepath.Join(sys, "bus/pci/devices/0000:00:04.0/enable"))
	if string(b) != "1" {
		t.Errorf("device not enabled: enable = %q", b)
	}
	fakeDev(t, sys, "0000:00:05.0", "0x1af4", "0x1110", 2)
	if _, err := IvshmemResource(sys); err == nil || !strings.Contains(err.Error(), "2 ivshmem devices") {
		t.Fatalf("two devices: err = %v", err)
	}
}

func TestIvshmemNoBAR(t *testing.T) {
	sys := t.TempDir()
	fakeDev(t, sys, "0000:00:04.0", "0x1af4", "0x1110", 0)
	if _, err := IvshmemResource(sys); err == nil || !strings.Contains(err.Error(), "no BAR 2") {
		t.Fatalf("err = %v", err)
	}
	if _, err := FindPCI(filepath.Join(sys, "nope"), 1, 1); err == nil {
		t.Fatal("missing sysfs not reported")
	}
}

func TestMapFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pool")
	if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := MapDevice(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Len() != 4096 || !m.CAS(8, 0, 5) || m.CAS(8, 0, 6) || m.Add(8, 2) != 7 || m.Load(8) != 7 {
		t.Fatal("atomic ops on the mapping misbehave")
	}
	m.Store(16, 9)
	m2, err := MapDevice(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Load(16) != 9 || m2.Load(8) != 7 {
		t.Fatal("second mapping does not share the first one's words")
	}
}
