package cxl

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

func newRegion(t testing.TB, size int64) *Region {
	t.Helper()
	p := filepath.Join(t.TempDir(), "region")
	r, err := Open(p, OpenOptions{Create: true, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func formatted(t testing.TB, size int64, lease time.Duration) (*Region, *Header) {
	t.Helper()
	r := newRegion(t, size)
	h, err := Format(r, FormatOptions{Extents: []ExtentSpec{{Name: "a", Size: 10000}, {Name: "b", Size: 4096}}, MaxHosts: 8, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	return r, h
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing"), OpenOptions{}); err == nil {
		t.Fatal("opening a missing file succeeded")
	}
	if _, err := Open(filepath.Join(dir, "x"), OpenOptions{Create: true}); err == nil {
		t.Fatal("create without size succeeded")
	}
	if _, err := Open(filepath.Join(dir, "small"), OpenOptions{Create: true, Size: 100}); err == nil {
		t.Fatal("tiny region accepted")
	}
}

func TestBoundsAndAtomics(t *testing.T) {
	r := newRegion(t, 1<<20)
	if err := r.Check(r.Len()-8, 8); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n uint64 }{{r.Len(), 1}, {r.Len() - 7, 8}, {1 << 63, 1 << 63}, {0, r.Len() + 1}} {
		if err := r.Check(c.off, c.n); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Check(%#x, %#x) = %v, want ErrOutOfRange", c.off, c.n, err)
		}
	}
	if err := r.CheckWord(12); !errors.Is(err, ErrMisaligned) {
		t.Errorf("CheckWord(12) = %v", err)
	}
	mustPanic(t, func() { r.Word(4) })
	mustPanic(t, func() { r.Word(r.Len()) })
	mustPanic(t, func() { r.Bytes(r.Len()-1, 2) })

	r.Store(64, 5)
	if !r.CAS(64, 5, 7) || r.CAS(64, 5, 9) || r.Load(64) != 7 {
		t.Fatalf("CAS semantics broken: %d", r.Load(64))
	}
	if r.Add(64, 3) != 10 {
		t.Fatal("Add")
	}
	if err := r.Persist(0, r.Len()); err != nil {
		t.Fatal(err)
	}
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	f()
}

func TestHeaderRoundTrip(t *testing.T) {
	r, h := formatted(t, 1<<20, time.Second)
	got, err := ReadHeader(r)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(h) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, h)
	}
	a, err := got.Extent("a")
	if err != nil || a.Len != 12288 || a.Off%ExtentAlign != 0 {
		t.Fatalf("extent a = %+v, %v", a, err)
	}
	if _, err := got.Extent("zzz"); !errors.Is(err, ErrNoExtent) {
		t.Fatalf("missing extent: %v", err)
	}
	// Reopening sees the same header.
	r2, err := Open(r.Path(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := ReadHeader(r2); err != nil {
		t.Fatal(err)
	}
}

func TestFormatRejects(t *testing.T) {
	r := newRegion(t, 1<<20)
	bad := []FormatOptions{
		{Extents: []ExtentSpec{{Name: "", Size: 1}}},
		{Extents: []ExtentSpec{{Name: "a", Size: 1}, {Name: "a", Size: 1}}},
		{Extents: []ExtentSpec{{Name: "toolongnamexxxxx", Size: 1}}},
		{Extents: []ExtentSpec{{Name: "a", Size: 2 << 20}}},
		{Extents: []ExtentSpec{{Name: "a", Size: 1<<64 - 1}}},
		{MaxHosts: -1},
	}
	for i, o := range bad {
		if _, err := Format(r, o); err == nil {
			t.Errorf("case %d: Format accepted %+v", i, o)
		}
	}
}

// Every single-byte corruption of the header is rejected, never accepted
// silently and never a panic.
func TestHeaderCorruption(t *testing.T) {
	r, _ := formatted(t, 1<<20, time.Second)
	img := append([]byte(nil), r.Bytes(0, HeaderSize)...)
	for i := range HeaderSize {
		b := append([]byte(nil), img...)
		b[i] ^= 0x5a
		if _, err := DecodeHeader(b, r.Len()); err == nil {
			t.Fatalf("flipping byte %d was accepted", i)
		}
	}
	if _, err := DecodeHeader(img, r.Len()+4096); err == nil {
		t.Fatal("size mismatch accepted")
	}
	if _, err := DecodeHeader(img[:100], r.Len()); err == nil {
		t.Fatal("short header accepted")
	}
}

func FuzzDecodeHeader(f *testing.F) {
	r, _ := formatted(f, 1<<20, time.Second)
	f.Add(append([]byte(nil), r.Bytes(0, HeaderSize)...), uint64(1<<20))
	f.Add(make([]byte, HeaderSize), uint64(1<<20))
	f.Fuzz(func(t *testing.T, b []byte, size uint64) {
		h, err := DecodeHeader(b, size)
		if err != nil {
			return
		}
		// Whatever validates must be self-consistent.
		end := h.HostsOff + h.HostsLen
		for _, e := range h.Extents {
			if e.Off < end || e.Off+e.Len > size {
				t.Fatalf("accepted overlapping extent %+v", e)
			}
			end = e.Off + e.Len
		}
	})
}

func TestHostJoinLeave(t *testing.T) {
	r, h := formatted(t, 1<<20, time.Hour)
	ht, err := OpenHostTable(r, h)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*Host
	seen := map[int]bool{}
	for range 8 {
		x, err := ht.Join(JoinOptions{Name: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[x.Slot()] {
			t.Fatalf("slot %d handed out twice", x.Slot())
		}
		seen[x.Slot()] = true
		hosts = append(hosts, x)
	}
	if _, err := ht.Join(JoinOptions{}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("9th join: %v", err)
	}
	if ht.LiveHosts() != 8 {
		t.Fatalf("live hosts %d", ht.LiveHosts())
	}
	if err := hosts[3].Leave(); err != nil {
		t.Fatal(err)
	}
	if ht.Alive(hosts[3].Slot(), hosts[3].Incarnation()) {
		t.Fatal("left host still alive")
	}
	x, err := ht.Join(JoinOptions{})
	if err != nil || x.Slot() != hosts[3].Slot() {
		t.Fatalf("rejoin: slot %v err %v", x, err)
	}
	for _, h := range append(hosts, x) {
		h.Leave()
	}
}

// A host that stops heartbeating is taken over once its lease expires; it
// then finds itself fenced.
func TestHostTakeover(t *testing.T) {
	r, h := formatted(t, 1<<20, 50*time.Millisecond)
	ht, _ := OpenHostTable(r, h)
	clock := time.Now().UnixNano()
	var mu sync.Mutex
	ht.now = func() int64 { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock += int64(d); mu.Unlock() }

	var hs []*Host
	for range 8 {
		x, err := ht.Join(JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		x.halt() // drive beats by hand
		hs = append(hs, x)
	}
	dead := hs[5]
	if ht.Fence(dead.Slot(), dead.Incarnation()) {
		t.Fatal("fenced a live host")
	}
	advance(40 * time.Millisecond)
	for i, x := range hs {
		if i != 5 {
			if err := x.Beat(); err != nil {
				t.Fatal(err)
			}
		}
	}
	advance(20 * time.Millisecond)
	if ht.Alive(dead.Slot(), dead.Incarnation()) {
		t.Fatal("expired host alive")
	}
	nx, err := ht.Join(JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nx.Slot() != dead.Slot() {
		t.Fatalf("took slot %d, want %d", nx.Slot(), dead.Slot())
	}
	if err := dead.Beat(); !errors.Is(err, ErrFenced) {
		t.Fatalf("dead host beat: %v", err)
	}
	if !ht.Fence(dead.Slot(), dead.Incarnation()) {
		t.Fatal("dead incarnation not fenced")
	}
	if !ht.Alive(nx.Slot(), nx.Incarnation()) {
		t.Fatal("new holder not alive")
	}
}

// Many goroutines join and leave at once: no slot is ever held twice.
func TestHostJoinHammer(t *testing.T) {
	r, h := formatted(t, 1<<20, time.Hour)
	ht, _ := OpenHostTable(r, h)
	var held [8]int32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				x, err := ht.Join(JoinOptions{Name: strconv.Itoa(g)})
				if err != nil {
					continue
				}
				mu.Lock()
				held[x.Slot()]++
				if held[x.Slot()] != 1 {
					t.Errorf("slot %d held twice", x.Slot())
				}
				mu.Unlock()
				mu.Lock()
				held[x.Slot()]--
				mu.Unlock()
				if err := x.Leave(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestZero(t *testing.T) {
	r := newRegion(t, 1<<20)
	b := r.Bytes(0, r.Len())
	for i := range b {
		b[i] = 0xab
	}
	if err := r.Zero(100, 3*4096+50); err != nil {
		t.Fatal(err)
	}
	for i, c := range b {
		inside := i >= 100 && i < 100+3*4096+50
		if inside && c != 0 || !inside && c != 0xab {
			t.Fatalf("byte %d = %#x after Zero", i, c)
		}
	}
}

func TestPopulate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pop")
	r, err := Open(p, OpenOptions{Create: true, Size: 1 << 20, Populate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Store(8, 42)
	if r.Load(8) != 42 {
		t.Fatal("populated mapping does not hold a store")
	}
}
