// Package cxl maps a region of shared memory — a file in /dev/shm, a CXL
// /dev/dax device or a PCI BAR resource file — and gives bounds-checked,
// 8-byte-aligned atomic access to its words.
//
// Every word that another host may touch at the same time is read and written
// only through the atomic accessors. Nothing in the region ever holds a Go
// pointer: structures inside refer to each other by offset.
package cxl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sentinel errors callers branch on.
var (
	// ErrOutOfRange reports an offset or length outside the region.
	ErrOutOfRange = errors.New("cxl: out of range")
	// ErrMisaligned reports a word offset that is not 8-byte aligned.
	ErrMisaligned = errors.New("cxl: misaligned word offset")
)

// OpenOptions say how to open a region.
type OpenOptions struct {
	// Create makes a regular file of Size bytes when the path does not exist.
	Create bool
	// Size is the size of a created file. With Create it must be > 0; an
	// existing regular file smaller than Size is grown to it.
	Size int64
	// ReadOnly maps the region without write permission.
	ReadOnly bool
	// Populate faults every page of the mapping in at Open, so that the
	// first access of each page later costs nothing (on a virtual machine a
	// first touch can cost tens of microseconds). It costs that time once.
	Populate bool
}

// Region is a shared mapping. Its methods are safe for concurrent use.
type Region struct {
	path string
	file *os.File // kept open to punch holes (Zero) in file-backed regions
	mem  []byte
	kind regionKind
	ro   bool

	mu      sync.Mutex
	closers []func() // stop background users (heartbeats) before unmapping
}

type regionKind int

const (
	kindFile regionKind = iota
	kindDax
	kindPCI
)

// DefaultPath is where regions live on a machine without CXL hardware.
func DefaultPath(name string) string { return "/dev/shm/daxwio-" + name }

// Open maps the region at path MAP_SHARED.
func Open(path string, o OpenOptions) (*Region, error) {
	kind := classify(path)
	flags := os.O_RDWR
	if o.ReadOnly {
		flags = os.O_RDONLY
	}
	if o.Create && kind == kindFile {
		if o.Size <= 0 {
			return nil, fmt.Errorf("cxl: create %s: size must be > 0", path)
		}
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cxl: open region: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()

	size, err := regionSize(f, path, kind)
	if err != nil {
		return nil, err
	}
	if kind == kindFile && o.Size > 0 && size < o.Size {
		if o.ReadOnly {
			return nil, fmt.Errorf("cxl: open %s: file is %d bytes, want %d", path, size, o.Size)
		}
		if err := f.Truncate(o.Size); err != nil {
			return nil, fmt.Errorf("cxl: size %s to %d bytes: %w", path, o.Size, err)
		}
		size = o.Size
	}
	if size <= 0 {
		return nil, fmt.Errorf("cxl: open %s: region is empty", path)
	}
	if uint64(size) < MinRegionSize {
		return nil, fmt.Errorf("cxl: open %s: %d bytes is smaller than the minimum %d", path, size, MinRegionSize)
	}
	prot := unix.PROT_READ
	if !o.ReadOnly {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cxl: mmap %s (%d bytes): %w", path, size, err)
	}
	if o.Populate {
		advice := unix.MADV_POPULATE_WRITE
		if o.ReadOnly {
			advice = unix.MADV_POPULATE_READ
		}
		if err := unix.Madvise(mem, advice); err != nil {
			unix.Munmap(mem)
			return nil, fmt.Errorf("cxl: populate %s (%d bytes): %w", path, size, err)
		}
	}
	keep = true
	return &Region{path: path, file: f, mem: mem, kind: kind, ro: o.ReadOnly}, nil
}

// MinRegionSize is the smallest region Open accepts (header + host table).
const MinRegionSize = 64 << 10

func classify(path string) regionKind {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(path, "/dev/dax"):
		return kindDax
	case strings.HasPrefix(base, "resource") && strings.Contains(path, "/sys/"):
		return kindPCI
	}
	return kindFile
}

func regionSize(f *os.File, path string, kind regionKind) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cxl: stat %s: %w", path, err)
	}
	if kind != kindDax {
		return st.Size(), nil
	}
	// A device-dax character device reports its size in sysfs.
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("cxl: %s: no device numbers", path)
	}
	rdev := uint64(sys.Rdev)
	p := fmt.Sprintf("/sys/dev/char/%d:%d/size", unix.Major(rdev), unix.Minor(rdev))
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("cxl: size of %s from %s: %w", path, p, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cxl: size of %s: parse %q: %w", path, b, err)
	}
	return n, nil
}

// Path is the path the region was opened from.
func (r *Region) Path() string { return r.path }

// Len is the size of the mapping in bytes.
func (r *Region) Len() uint64 { return uint64(len(r.mem)) }

// ReadOnly reports whether the region is mapped without write permission.
func (r *Region) ReadOnly() bool { return r.ro }

// Close unmaps the region. No view or word obtained from it may be used after.
func (r *Region) Close() error {
	r.mu.Lock()
	closers := r.closers
	r.closers = nil
	r.mu.Unlock()
	for _, c := range closers {
		c()
	}
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
	if err != nil {
		return fmt.Errorf("cxl: unmap %s: %w", r.path, err)
	}
	return nil
}

// onClose registers f to run before the region is unmapped.
func (r *Region) onClose(f func()) {
	r.mu.Lock()
	r.closers = append(r.closers, f)
	r.mu.Unlock()
}

// Check reports whether [off, off+n) lies inside the region. Use it on every
// offset read from region bytes before touching what it points at.
func (r *Region) Check(off, n uint64) error {
	if off > uint64(len(r.mem)) || n > uint64(len(r.mem))-off {
		return fmt.Errorf("%w: [%#x, +%#x) in a region of %#x bytes", ErrOutOfRange, off, n, len(r.mem))
	}
	return nil
}

// CheckWord reports whether off is an aligned word inside the region.
func (r *Region) CheckWord(off uint64) error {
	if off%8 != 0 {
		return fmt.Errorf("%w: %#x", ErrMisaligned, off)
	}
	return r.Check(off, 8)
}

// Bytes returns a view of [off, off+n). The view aliases shared memory:
// other hosts may change it at any time. It panics when the range is outside
// the region, which is a broken invariant: check untrusted offsets first.
func (r *Region) Bytes(off, n uint64) []byte {
	if err := r.Check(off, n); err != nil {
		panic(err)
	}
	return r.mem[off : off+n : off+n]
}

// Word returns the atomic word at off. It panics when off is misaligned or
// outside the region (a broken invariant: check untrusted offsets first).
func (r *Region) Word(off uint64) *atomic.Uint64 {
	if off%8 != 0 || off > uint64(len(r.mem))-8 {
		panic(fmt.Errorf("cxl: word at %#x in a region of %#x bytes: %w", off, len(r.mem), ErrOutOfRange))
	}
	return (*atomic.Uint64)(unsafe.Pointer(&r.mem[off]))
}

// Load atomically reads the word at off.
func (r *Region) Load(off uint64) uint64 { return r.Word(off).Load() }

// Store atomically writes the word at off.
func (r *Region) Store(off, v uint64) { r.Word(off).Store(v) }

// CAS atomically replaces old with new at off and reports whether it did.
func (r *Region) CAS(off, old, new uint64) bool { return r.Word(off).CompareAndSwap(old, new) }

// Add atomically adds delta to the word at off and returns the new value.
func (r *Region) Add(off, delta uint64) uint64 { return r.Word(off).Add(delta) }

// Zero sets [off, off+n) to zeros. On a file-backed region whole pages are
// given back to the file system by punching a hole (they read as zeros and
// cost nothing until touched again); on devices and at the edges it stores
// zeros. Nobody may use the range meanwhile.
func (r *Region) Zero(off, n uint64) error {
	if err := r.Check(off, n); err != nil {
		return fmt.Errorf("cxl: zero: %w", err)
	}
	if r.ro {
		return fmt.Errorf("cxl: zero %s: region is read-only", r.path)
	}
	page := uint64(os.Getpagesize())
	lo, hi := alignUpPage(off, page), (off+n)&^(page-1)
	if r.kind != kindFile || r.file == nil || hi <= lo {
		clear(r.mem[off : off+n])
		return nil
	}
	if err := unix.Fallocate(int(r.file.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(lo), int64(hi-lo)); err != nil {
		clear(r.mem[off : off+n]) // file system without hole punching
		return nil
	}
	clear(r.mem[off:lo])
	clear(r.mem[hi : off+n])
	return nil
}

func alignUpPage(v, page uint64) uint64 { return (v + page - 1) &^ (page - 1) }

// Persist makes [off, off+n) durable. On a file-backed region it is msync of
// the covering pages; on device DAX the same call flushes the CPU caches of
// the range through the kernel. Stores are already visible to other hosts
// before Persist: it is a durability point, not a visibility one.
func (r *Region) Persist(off, n uint64) error {
	if err := r.Check(off, n); err != nil {
		return fmt.Errorf("cxl: persist: %w", err)
	}
	if r.ro || n == 0 {
		return nil
	}
	page := uint64(os.Getpagesize())
	start := off &^ (page - 1)
	end := off + n
	if err := unix.Msync(r.mem[start:end], unix.MS_SYNC); err != nil {
		return fmt.Errorf("cxl: msync %s [%#x, %#x): %w", r.path, start, end, err)
	}
	return nil
}
