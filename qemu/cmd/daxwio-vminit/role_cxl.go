package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/daxwio/daxwio/qemu/internal/bootparam"
)

// cxlPoolOffset is where /dev/daxX.Y starts inside the shared backend file,
// learned by setupCXL (the devdax namespace keeps an info block in front).
var cxlPoolOffset uint64

// setupCXL turns the emulated CXL type-3 device into a device-dax node:
// a pmem region over mem0 under the root decoder (cxl create-region), then a
// devdax namespace in it (ndctl create-namespace -m devdax -M mem).
func setupCXL(cfg bootparam.Config) (string, error) {
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "daxwio-vm[%d] cxl: %s\n", cfg.Slot, fmt.Sprintf(format, a...))
	}
	if err := waitPath("/sys/bus/cxl/devices/mem0", 30*time.Second); err != nil {
		return "", fmt.Errorf("cxl: no memory device: %w (was the VM started with a cxl-type3 device, and did cxl_pci/cxl_mem load?)", err)
	}
	if err := waitPath("/sys/bus/cxl/devices/decoder0.0", 30*time.Second); err != nil {
		return "", fmt.Errorf("cxl: no root decoder: %w (cxl_acpi loaded? -M cxl-fmw set?)", err)
	}
	out, err := run("/usr/bin/cxl", "create-region", "-m", "-d", "decoder0.0", "-w", "1", "-t", "pmem", "mem0")
	if err != nil {
		return "", fmt.Errorf("cxl: %w", err)
	}
	var reg struct {
		Region   string `json:"region"`
		Resource any    `json:"resource"` // a number or a hex string, by ndctl version
		Size     any    `json:"size"`
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &reg); err != nil {
		return "", fmt.Errorf("cxl: create-region output %q: %w", out, err)
	}
	logf("created %s at %v (%v bytes)", reg.Region, reg.Resource, reg.Size)
	if err := waitGlob("/sys/bus/nd/devices/region*", 30*time.Second); err != nil {
		return "", fmt.Errorf("cxl: no nvdimm region after create-region: %w", err)
	}
	out, err = run("/usr/bin/ndctl", "create-namespace", "-m", "devdax", "-M", "mem")
	if err != nil {
		return "", fmt.Errorf("cxl: %w", err)
	}
	var ns struct {
		Dev       string `json:"dev"`
		DaxRegion struct {
			Devices []struct {
				Chardev string `json:"chardev"`
			} `json:"devices"`
		} `json:"daxregion"`
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &ns); err != nil {
		return "", fmt.Errorf("cxl: create-namespace output %q: %w", out, err)
	}
	if len(ns.DaxRegion.Devices) == 0 {
		return "", fmt.Errorf("cxl: create-namespace made no dax device: %s", out)
	}
	dax := ns.DaxRegion.Devices[0].Chardev
	dev := "/dev/" + dax
	if err := waitPath(dev, 10*time.Second); err != nil {
		return "", fmt.Errorf("cxl: %w", err)
	}
	regionStart, err := readUint(filepath.Join("/sys/bus/cxl/devices", reg.Region, "resource"))
	if err != nil {
		return "", fmt.Errorf("cxl: %w", err)
	}
	daxStart, err := readUint(filepath.Join("/sys/bus/dax/devices", dax, "resource"))
	if err != nil {
		return "", fmt.Errorf("cxl: %w", err)
	}
	if daxStart < regionStart {
		return "", fmt.Errorf("cxl: %s starts at %#x, before %s at %#x", dax, daxStart, reg.Region, regionStart)
	}
	cxlPoolOffset = daxStart - regionStart
	logf("%s (%s) starts at byte %#x of the shared backend", dev, ns.Dev, cxlPoolOffset)
	fmt.Printf("daxwio-vm[%d] cxl: ready\n", cfg.Slot)
	return dev, nil
}

// jsonPart drops anything before the first '{' (tools may print notes).
func jsonPart(s string) string {
	if i := strings.IndexByte(s, '{'); i >= 0 {
		return s[i:]
	}
	return s
}

func readUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return v, nil
}

func waitPath(p string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", p, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitGlob(g string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if m, _ := filepath.Glob(g); len(m) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing matched %s within %v", g, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
