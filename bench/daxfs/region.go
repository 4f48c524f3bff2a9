package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	"golang.org/x/sys/unix"
)

// Files this process created under the tmpfs directory, removed on exit
// (and on every error path through cleanup()).
var (
	tmpMu    sync.Mutex
	tmpFiles []string
)

func tmpPath(name string) string {
	p := filepath.Join(*flagShm, fmt.Sprintf("daxwio-bench-%d-%s", os.Getpid(), name))
	tmpMu.Lock()
	tmpFiles = append(tmpFiles, p)
	tmpMu.Unlock()
	return p
}

func cleanup() {
	tmpMu.Lock()
	defer tmpMu.Unlock()
	for _, p := range tmpFiles {
		os.RemoveAll(p)
	}
	tmpFiles = nil
}

// newRegion makes a region file of size bytes with every page allocated
// (so no run pays tmpfs page allocation inside its timing) and formats it.
func newRegion(path string, size int64) error {
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		f.Close()
		return fmt.Errorf("fallocate %s: %w", path, err)
	}
	f.Close()
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	prefault(r) // Mkfs zeroes every byte: populate the mapping first
	return daxfs.Mkfs(r, daxfs.MkfsOptions{MaxHosts: 16, Lease: 10 * time.Second})
}

// mount opens the region at path and mounts its daxfs; close undoes both.
func mount(path, name string) (fs *daxfs.FS, close func(), err error) {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return nil, nil, err
	}
	fs, err = daxfs.Open(r, daxfs.Options{Name: name})
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return fs, func() { fs.Close(); r.Close() }, nil
}

// prefault populates this process's page tables for the whole region, so
// that the timed loops take no first-touch page faults. One fault per 4 KiB
// page costs 15-35 us on the Firecracker VMs this runs on (1-2 s for 256
// MiB); MADV_POPULATE_WRITE does the same in ~30 ms.
func prefault(r *cxl.Region) {
	b := r.Bytes(0, r.Len())
	if unix.Madvise(b, unix.MADV_POPULATE_WRITE) == nil {
		return
	}
	var x byte
	for i := 0; i < len(b); i += 4096 {
		x ^= b[i]
	}
	sink = x
}

var sink byte
