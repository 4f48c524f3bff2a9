package fuse

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// defaultFsxOps is the make test size (smaller under -race, race_test.go).
var defaultFsxOps = 4000

var (
	fsxOps  = flag.Int("fsx.ops", 0, "operations per fsx run (0: 4000, 1500 under -race; make fuse-soak uses 100000)")
	fsxSeed = flag.Uint64("fsx.seed", 0, "fsx seed (0: from the clock; printed on failure)")
)

// fsx is an fsx-style checker: seeded random read/write/truncate/mmap/
// fallocate on one file, through one or more paths (mounts), against a
// shadow copy in memory. Every read, mapped read and size is checked.
type fsx struct {
	t       testing.TB
	rng     *rand.Rand
	seed    uint64
	fds     []int
	shadow  []byte
	maxSize int
	maxLen  int
	log     []string
	counts  map[string]int
}

func newFsx(t testing.TB, seed uint64, paths []string) *fsx {
	x := &fsx{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		maxSize: 512 << 10, maxLen: 96 << 10, counts: map[string]int{}}
	for i, p := range paths {
		flags := os.O_RDWR
		if i == 0 {
			flags |= os.O_CREATE | os.O_TRUNC
		}
		fd, err := syscall.Open(p, flags, 0o644)
		if err != nil {
			t.Fatalf("fsx: open %s: %v", p, err)
		}
		x.fds = append(x.fds, fd)
	}
	t.Cleanup(func() {
		for _, fd := range x.fds {
			syscall.Close(fd)
		}
	})
	return x
}

func (x *fsx) fail(format string, a ...any) {
	x.t.Helper()
	n := len(x.log)
	from := max(0, n-25)
	x.t.Fatalf("fsx (seed %d, op %d): %s\nlast ops:\n  %s", x.seed, n, fmt.Sprintf(format, a...), strings.Join(x.log[from:], "\n  "))
}

func (x *fsx) note(fdi int, format string, a ...any) {
	x.log = append(x.log, fmt.Sprintf("%6d fd%d ", len(x.log), fdi)+fmt.Sprintf(format, a...))
}

func (x *fsx) resize(n int) {
	if n <= len(x.shadow) {
		x.shadow = x.shadow[:n]
		return
	}
	x.shadow = append(x.shadow, make([]byte, n-len(x.shadow))...)
}

func (x *fsx) rangeFor() (off, n int) {
	off = x.rng.IntN(x.maxSize)
	n = 1 + x.rng.IntN(x.maxLen)
	if x.rng.IntN(4) == 0 {
		// Page-aligned ops hit the whole-page paths.
		off &^= 4095
		n = (n + 4095) &^ 4095
	}
	if off+n > x.maxSize {
		n = x.maxSize - off
	}
	return off, max(n, 1)
}

func (x *fsx) run(ops int) {
	for range ops {
		fdi := x.rng.IntN(len(x.fds))
		fd := x.fds[fdi]
		switch p := x.rng.IntN(100); {
		case p < 30:
			x.write(fdi, fd)
		case p < 55:
			x.read(fdi, fd)
		case p < 65:
			x.truncate(fdi, fd)
		case p < 75:
			x.mapWrite(fdi, fd)
		case p < 85:
			x.mapRead(fdi, fd)
		default:
			x.fallocate(fdi, fd)
		}
		x.checkSize(x.rng.IntN(len(x.fds)))
	}
}

func (x *fsx) write(fdi, fd int) {
	off, n := x.rangeFor()
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(x.rng.Uint32()) | 1 // never zero: holes stay visible
	}
	x.note(fdi, "write %d+%d", off, n)
	x.counts["write"]++
	w, err := syscall.Pwrite(fd, buf, int64(off))
	if err != nil || w != n {
		x.fail("pwrite %d+%d = %d, %v", off, n, w, err)
	}
	if off+n > len(x.shadow) {
		x.resize(off + n)
	}
	copy(x.shadow[off:], buf)
}

func (x *fsx) read(fdi, fd int) {
	off, n := x.rangeFor()
	if len(x.shadow) > 0 && x.rng.IntN(2) == 0 {
		off = x.rng.IntN(len(x.shadow))
	}
	x.note(fdi, "read %d+%d (size %d)", off, n, len(x.shadow))
	x.counts["read"]++
	buf := make([]byte, n)
	got := 0
	for got < n {
		r, err := syscall.Pread(fd, buf[got:], int64(off+got))
		if err != nil {
			x.fail("pread %d+%d: %v", off, n, err)
		}
		if r == 0 {
			break
		}
		got += r
	}
	want := []byte{}
	if off < len(x.shadow) {
		want = x.shadow[off:min(off+n, len(x.shadow))]
	}
	x.compare("read", off, buf[:got], want)
}

func (x *fsx) compare(what string, off int, got, want []byte) {
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		x.fail("%s at %d: got %d bytes, want %d (size %d)", what, off, len(got), len(want), len(x.shadow))
	}
	for i := range got {
		if got[i] != want[i] {
			x.fail("%s at %d: first difference at file offset %d: got %#x want %#x", what, off, off+i, got[i], want[i])
		}
	}
}

func (x *fsx) truncate(fdi, fd int) {
	n := x.rng.IntN(x.maxSize + 1)
	if x.rng.IntN(3) == 0 {
		n &^= 4095
	}
	x.note(fdi, "truncate %d (from %d)", n, len(x.shadow))
	x.counts["truncate"]++
	if err := syscall.Ftruncate(fd, int64(n)); err != nil {
		x.fail("ftruncate %d: %v", n, err)
	}
	x.resize(n)
}

func (x *fsx) mapWrite(fdi, fd int) {
	off, n := x.rangeFor()
	if off+n > len(x.shadow) {
		// Extend first, as fsx does: a mapping cannot grow the file.
		x.note(fdi, "truncate %d (for mapwrite)", off+n)
		if err := syscall.Ftruncate(fd, int64(off+n)); err != nil {
			x.fail("ftruncate %d: %v", off+n, err)
		}
		x.resize(off + n)
	}
	x.note(fdi, "mapwrite %d+%d", off, n)
	x.counts["mapwrite"]++
	x.statBeforeMap(fdi)
	m, err := unix.Mmap(fd, 0, len(x.shadow), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		x.fail("mmap %d: %v", len(x.shadow), err)
	}
	for i := off; i < off+n; i++ {
		b := byte(x.rng.Uint32()) | 1
		m[i] = b
		x.shadow[i] = b
	}
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		x.fail("msync: %v", err)
	}
	if err := unix.Munmap(m); err != nil {
		x.fail("munmap: %v", err)
	}
}

func (x *fsx) mapRead(fdi, fd int) {
	if len(x.shadow) == 0 {
		return
	}
	off := x.rng.IntN(len(x.shadow))
	n := min(1+x.rng.IntN(x.maxLen), len(x.shadow)-off)
	x.note(fdi, "mapread %d+%d", off, n)
	x.counts["mapread"]++
	x.statBeforeMap(fdi)
	m, err := unix.Mmap(fd, 0, len(x.shadow), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		x.fail("mmap %d: %v", len(x.shadow), err)
	}
	got := append([]byte(nil), m[off:off+n]...)
	unix.Munmap(m)
	x.compare("mapread", off, got, x.shadow[off:off+n])
}

func (x *fsx) fallocate(fdi, fd int) {
	off, n := x.rangeFor()
	var mode uint32
	if x.rng.IntN(2) == 0 {
		mode = unix.FALLOC_FL_KEEP_SIZE
	}
	x.note(fdi, "fallocate %d+%d mode %d", off, n, mode)
	x.counts["fallocate"]++
	if err := unix.Fallocate(fd, mode, int64(off), int64(n)); err != nil {
		x.fail("fallocate %d+%d mode %d: %v", off, n, mode, err)
	}
	if mode == 0 && off+n > len(x.shadow) {
		x.resize(off + n)
	}
}

// statBeforeMap does what a program does before mapping a file: fstat it
// for the length. A page fault past the size the local kernel last heard
// of raises SIGBUS without asking the server, so a mapping through mount B
// sees a file grown through mount A once B has refreshed its attributes
// (any stat, which zero attribute timeouts always send to the server).
func (x *fsx) statBeforeMap(fdi int) { x.checkSize(fdi) }

func (x *fsx) checkSize(fdi int) {
	var st syscall.Stat_t
	if err := syscall.Fstat(x.fds[fdi], &st); err != nil {
		x.fail("fstat: %v", err)
	}
	if int(st.Size) != len(x.shadow) {
		x.fail("fstat through fd%d: size %d, want %d", fdi, st.Size, len(x.shadow))
	}
}

// final reads the whole file through every path.
func (x *fsx) final() {
	for i, fd := range x.fds {
		buf := make([]byte, len(x.shadow)+4096)
		got := 0
		for {
			r, err := syscall.Pread(fd, buf[got:], int64(got))
			if err != nil {
				x.fail("final pread through fd%d: %v", i, err)
			}
			if r == 0 {
				break
			}
			got += r
		}
		x.compare(fmt.Sprintf("final read through fd%d", i), 0, buf[:got], x.shadow)
	}
}

func opsToRun() int {
	if *fsxOps > 0 {
		return *fsxOps
	}
	return defaultFsxOps
}

func seed(t testing.TB) uint64 {
	if *fsxSeed != 0 {
		return *fsxSeed
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("fsx seed %d (rerun with -fsx.seed=%d)", s, s)
	return s
}

// TestFsx runs the checker on one mount.
func TestFsx(t *testing.T) {
	requireFUSE(t)
	region := newRegion(t, 128<<20)
	mnt := mountDir(t)
	serve(t, region, mnt, CoherenceZero)
	x := newFsx(t, seed(t), []string{filepath.Join(mnt, "fsx")})
	start := time.Now()
	x.run(opsToRun())
	x.final()
	t.Logf("fsx: %d ops on one mount in %v, no mismatch: %v", opsToRun(), time.Since(start).Round(time.Millisecond), x.counts)
}

// TestFsxTwoMounts splits the ops at random between two mounts of one
// region, each served by its own process.
func TestFsxTwoMounts(t *testing.T) {
	requireFUSE(t)
	region := newRegion(t, 128<<20)
	a, b := mountDir(t), mountDir(t)
	serve(t, region, a, CoherenceZero)
	serve(t, region, b, CoherenceZero)
	x := newFsx(t, seed(t), []string{filepath.Join(a, "fsx"), filepath.Join(b, "fsx")})
	start := time.Now()
	x.run(opsToRun())
	x.final()
	t.Logf("fsx: %d ops across two mounts in %v, no mismatch: %v", opsToRun(), time.Since(start).Round(time.Millisecond), x.counts)
}
