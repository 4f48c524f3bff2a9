package pcache

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// env is a region with a formatted cache extent and a counters extent:
// counts[0:pages] backing reads per page, counts[pages:2*pages] evictions
// per page (recorded through the onEvict hook), further words free for
// tests to signal through.
type env struct {
	path          string
	r             *cxl.Region
	ht            *cxl.HostTable
	ext, counts   cxl.Extent
	slots, pages  int
	lease         time.Duration
	mustCleanPath bool
}

func newEnv(t testing.TB, slots, pages int, lease time.Duration) *env {
	t.Helper()
	var rnd [6]byte
	rand.Read(rnd[:])
	path := cxl.DefaultPath("pcache-test-" + hex.EncodeToString(rnd[:]))
	const maxHosts = 16
	csize := uint64(2*pages+64) * 8
	size := int64(cxl.HeaderSize + 4096 + ExtentSize(slots, maxHosts) + alignUp(csize, 4096) + 4096)
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: max(size, cxl.MinRegionSize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); os.Remove(path) })
	h, err := cxl.Format(r, cxl.FormatOptions{MaxHosts: maxHosts, Lease: lease, Extents: []cxl.ExtentSpec{
		{Name: ExtentName, Size: ExtentSize(slots, maxHosts)}, {Name: "counts", Size: csize},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{path: path, r: r, slots: slots, pages: pages, lease: lease}
	e.ext, _ = h.Extent(ExtentName)
	e.counts, _ = h.Extent("counts")
	if err := Format(r, e.ext.Off, e.ext.Len, slots); err != nil {
		t.Fatal(err)
	}
	e.ht, _ = cxl.OpenHostTable(r, h)
	return e
}

// attach opens an existing env region (in a child process).
func attach(path string, pages int) (*env, error) {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return nil, err
	}
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	e := &env{path: path, r: r, pages: pages, lease: h.Lease}
	e.ext, _ = h.Extent(ExtentName)
	e.counts, _ = h.Extent("counts")
	e.ht, err = cxl.OpenHostTable(r, h)
	return e, err
}

func (e *env) readsOff(p uint64) uint64  { return e.counts.Off + 8*p }
func (e *env) evictsOff(p uint64) uint64 { return e.counts.Off + 8*(uint64(e.pages)+p) }
func (e *env) sigOff(i int) uint64       { return e.counts.Off + 8*(2*uint64(e.pages)+uint64(i)) }

// open joins the host table and opens the cache, counting evictions.
func (e *env) open(t testing.TB, name string) (*Cache, *cxl.Host) {
	t.Helper()
	c, h, err := e.openErr(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); h.Leave() })
	return c, h
}

func (e *env) openErr(name string) (*Cache, *cxl.Host, error) {
	h, err := e.ht.Join(cxl.JoinOptions{Name: name})
	if err != nil {
		return nil, nil, err
	}
	c, err := Open(e.r, e.ext.Off, e.ext.Len, e.ht, h)
	if err != nil {
		h.Leave()
		return nil, nil, err
	}
	c.onEvict = func(src, page uint64) {
		if page < uint64(e.pages) {
			e.r.Add(e.evictsOff(page), 1)
		}
	}
	return c, h, nil
}

// src is a generated backing file that counts its reads in the region.
type src struct {
	id    uint64
	e     *env
	pages uint64
	file  *os.File // when set, pages are read from it
	hook  func(page uint64)
}

func (s *src) ID() uint64 { return s.id }

func (s *src) ReadPage(page uint64, dst []byte) error {
	if s.e != nil && page < uint64(s.e.pages) {
		s.e.r.Add(s.e.readsOff(page), 1)
	}
	if s.hook != nil {
		s.hook(page)
	}
	if s.file != nil {
		n, err := s.file.ReadAt(dst, int64(page)*PageSize)
		if n == len(dst) {
			return nil
		}
		if n < len(dst) && page < s.pages {
			return fmt.Errorf("backing file: page %d: short read %d: %v", page, n, err)
		}
		clear(dst[n:])
		return nil
	}
	genPage(s.id, page, dst)
	return nil
}

func genPage(id, page uint64, dst []byte) {
	for i := 0; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], splitmix64(id<<40^page<<12^uint64(i)))
	}
}

// checkPage compares got (bytes from off) against the page's content.
func checkPage(id, page uint64, off int, got []byte) error {
	want := make([]byte, PageSize)
	genPage(id, page, want)
	for i, b := range got {
		if want[off+i] != b {
			return fmt.Errorf("source %#x page %d byte %d: got %#x want %#x", id, page, off+i, b, want[off+i])
		}
	}
	return nil
}

func writeBacking(t testing.TB, id uint64, pages int) string {
	t.Helper()
	f, err := os.CreateTemp("", "pcache-backing-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	buf := make([]byte, PageSize)
	for p := range pages {
		genPage(id, uint64(p), buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return f.Name()
}

// checkOnce asserts that no page was read from the backing file more often
// than it was evicted plus once: while it stayed cached it was read once.
func (e *env) checkOnce(t testing.TB) {
	t.Helper()
	bad := 0
	var reads uint64
	for p := range uint64(e.pages) {
		rd, ev := e.r.Load(e.readsOff(p)), e.r.Load(e.evictsOff(p))
		reads += rd
		if rd > ev+1 {
			if bad < 10 {
				t.Errorf("page %d read %d times from the backing file but evicted only %d times", p, rd, ev)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d pages read more than once while cached", bad)
	}
	t.Logf("%d backing reads in all", reads)
}
