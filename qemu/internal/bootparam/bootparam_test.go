package bootparam

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	c := Config{Role: "cas", Slot: 1, VMs: 2, Backend: "cxl", Timeout: 90 * time.Second,
		Params: map[string]string{"ops": "5000000", "dir": "/vm1"}}
	s, err := c.Format()
	if err != nil {
		t.Fatal(err)
	}
	full := "BOOT_IMAGE=/vmlinuz console=ttyS0 quiet " + s + " panic=1"
	got, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("Parse(Format(c)) = %+v, want %+v", got, c)
	}
	n, err := got.Int("ops", 7)
	if err != nil || n != 5000000 {
		t.Fatalf("Int(ops) = %d, %v", n, err)
	}
	if n, _ := got.Int("absent", 7); n != 7 {
		t.Fatalf("Int(absent) = %d", n)
	}
	if _, err := got.Int("dir", 0); err == nil {
		t.Fatal("Int of a non-number did not fail")
	}
}

func TestDefaults(t *testing.T) {
	got, err := Parse("console=ttyS0 daxwio.role=shell daxwio.slot=0\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Backend != "ivshmem" || got.VMs != 1 || got.Timeout != 0 {
		t.Fatalf("defaults: %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"console=ttyS0", "no daxwio.role="},
		{"daxwio.role=cas", "no daxwio.slot="},
		{"daxwio.role=cas daxwio.slot=x", "invalid syntax"},
		{"daxwio.role=cas daxwio.slot=2 daxwio.vms=2", "out of range"},
		{"daxwio.role=cas daxwio.slot=0 daxwio.bogus=1", "unknown parameter"},
		{"daxwio.role=cas daxwio.slot=0 daxwio.timeout=soon", "daxwio.timeout"},
		{"daxwio.role daxwio.slot=0", "has no '='"},
	} {
		_, err := Parse(tc.cmdline)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) err = %v, want it to mention %q", tc.cmdline, err, tc.want)
		}
	}
}

func TestFormatErrors(t *testing.T) {
	for _, c := range []Config{
		{Role: "", Slot: 0, VMs: 1},
		{Role: "a b", Slot: 0, VMs: 1},
		{Role: "cas", Slot: 1, VMs: 1},
		{Role: "cas", Slot: 0, VMs: 1, Params: map[string]string{"Bad": "1"}},
		{Role: "cas", Slot: 0, VMs: 1, Params: map[string]string{"k": "has\"quote"}},
	} {
		if _, err := c.Format(); err == nil {
			t.Errorf("Format(%+v) succeeded", c)
		}
	}
}
