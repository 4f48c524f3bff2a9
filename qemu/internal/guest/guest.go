// Package guest holds the parts of the VM-side init that are worth testing
// on the host: finding the shared-memory device in sysfs and the CXL set-up
// sequence.
package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The ivshmem-plain PCI device (Red Hat, Inc. / Inter-VM shared memory).
const (
	IvshmemVendor = 0x1af4
	IvshmemDevice = 0x1110
	// IvshmemBAR is the BAR that maps the shared memory.
	IvshmemBAR = 2
)

// FindPCI returns the sysfs directories of PCI devices with the given vendor
// and device id, sorted by address. sysfs is normally "/sys".
func FindPCI(sysfs string, vendor, device uint16) ([]string, error) {
	base := filepath.Join(sysfs, "bus", "pci", "devices")
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("guest: list PCI devices: %w", err)
	}
	var out []string
	for _, e := range ents {
		dir := filepath.Join(base, e.Name())
		v, err1 := readHex(filepath.Join(dir, "vendor"))
		d, err2 := readHex(filepath.Join(dir, "device"))
		if err1 != nil || err2 != nil {
			continue
		}
		if v == uint64(vendor) && d == uint64(device) {
			out = append(out, dir)
		}
	}
	sort.Strings(out)
	return out, nil
}

func readHex(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 64)
}

// IvshmemResource finds the one ivshmem device and returns the path of its
// shared-memory BAR resource file, after enabling the device (a PCI device
// without a driver may have memory decoding off).
func IvshmemResource(sysfs string) (string, error) {
	devs, err := FindPCI(sysfs, IvshmemVendor, IvshmemDevice)
	if err != nil {
		return "", err
	}
	switch len(devs) {
	case 0:
		return "", fmt.Errorf("guest: no ivshmem PCI device (vendor %#04x device %#04x) in %s/bus/pci/devices: was the VM started with -device ivshmem-plain?", IvshmemVendor, IvshmemDevice, sysfs)
	case 1:
	default:
		return "", fmt.Errorf("guest: %d ivshmem devices (%s); the testbed expects one", len(devs), strings.Join(devs, ", "))
	}
	res := filepath.Join(devs[0], "resource"+strconv.Itoa(IvshmemBAR))
	if _, err := os.Stat(res); err != nil {
		return "", fmt.Errorf("guest: ivshmem device %s has no BAR %d: %w", devs[0], IvshmemBAR, err)
	}
	if en := filepath.Join(devs[0], "enable"); fileExists(en) {
		// Best effort: writing fails harmlessly when already enabled by firmware.
		_ = os.WriteFile(en, []byte("1"), 0o600)
	}
	return res, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
