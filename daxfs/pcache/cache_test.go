package pcache

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/prometheus/client_golang/prometheus"
)

func readPage(t testing.TB, c *Cache, s Source, page uint64) {
	t.Helper()
	buf := make([]byte, PageSize)
	n, err := c.Read(s, page, 0, buf)
	if err != nil {
		t.Fatalf("read page %d: %v", page, err)
	}
	if n != PageSize {
		t.Fatalf("read page %d: %d bytes", page, n)
	}
	if err := checkPage(s.ID(), page, 0, buf); err != nil {
		t.Fatal(err)
	}
}

func TestReadAndPin(t *testing.T) {
	e := newEnv(t, 64, 256, time.Second)
	c, _ := e.open(t, "a")
	s := &src{id: 42, e: e, pages: 256}
	for p := range uint64(32) {
		readPage(t, c, s, p)
	}
	for p := range uint64(32) {
		readPage(t, c, s, p)
	}
	st := c.Stats()
	if st.Misses != 32 || st.Fills != 32 || st.Hits < 20 {
		t.Errorf("stats after 32 cold and 32 warm reads: %v", st)
	}
	// Partial reads at an offset.
	buf := make([]byte, 100)
	n, err := c.Read(s, 3, PageSize-40, buf)
	if err != nil || n != 40 {
		t.Fatalf("read at tail: n %d err %v", n, err)
	}
	if err := checkPage(42, 3, PageSize-40, buf[:n]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(s, 3, PageSize+1, buf); !errors.Is(err, ErrRange) {
		t.Errorf("read past the page: %v, want ErrRange", err)
	}
	p, err := c.Pin(s, 5)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Pin(s, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPage(42, 5, 0, p.Bytes()); err != nil {
		t.Fatal(err)
	}
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 1 || rep.Pins != 1 {
		t.Errorf("two pins of one page by one host: pinned %d pins %d, want 1 and 1 (one bit per host)", rep.Pinned, rep.Pins)
	}
	p.Unpin()
	p.Unpin() // second call does nothing
	rep, _ = Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 1 {
		t.Errorf("after one of two unpins: pinned %d, want 1", rep.Pinned)
	}
	p2.Unpin()
	rep, _ = Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 0 || !rep.Healthy() || rep.Valid != 32 {
		t.Errorf("after unpins: %v", rep)
	}
	if !strings.Contains(rep.String(), "valid 32") {
		t.Errorf("report: %s", rep)
	}
}

// Two backing files with the same page numbers never alias, and page
// numbers past 2^32 pages (16 TiB files) are distinct from small ones.
func TestTagsDoNotAlias(t *testing.T) {
	e := newEnv(t, 64, 16, time.Second)
	c, _ := e.open(t, "a")
	a, b := &src{id: 1}, &src{id: 1 << 32}
	pages := []uint64{0, 1, 1 << 32, 1<<32 + 1, 1 << 52, ^uint64(0)}
	for range 2 {
		for _, p := range pages {
			readPage(t, c, a, p)
			readPage(t, c, b, p)
		}
	}
	// Force every page into one window: collisions cost probes only.
	c.hash = func(uint64, uint64) uint64 { return 0 }
	for range 2 {
		for _, p := range pages[:3] {
			readPage(t, c, a, p)
			readPage(t, c, b, p)
		}
	}
}

// Trace-driven: one host, every page in the window at slot 0 of an 8-slot
// cache, no clock-hand ageing, so victims are deterministic.
func TestEvictionPhasesTrace(t *testing.T) {
	e := newEnv(t, 8, 64, time.Second)
	c, _ := e.open(t, "a")
	c.hash = func(uint64, uint64) uint64 { return 0 }
	c.ageEvery = 0
	s := &src{id: 9}
	slotOf := func(page uint64) int {
		for i := range uint64(8) {
			w := c.word(i)
			if st := wState(w); (st == StateValid || st == StateEvicting) && c.tagIs(i, w, 9, page) {
				return int(i)
			}
		}
		return -1
	}
	expect := func(step string, page uint64, slot int) {
		t.Helper()
		if got := slotOf(page); got != slot {
			t.Fatalf("%s: page %d in slot %d, want %d", step, page, got, slot)
		}
	}
	phases := func() [3]uint64 {
		st := c.Stats()
		return [3]uint64{st.EvictCold, st.EvictClear, st.EvictForce}
	}
	for p := range uint64(8) {
		readPage(t, c, s, p)
		expect("fill", p, int(p))
	}
	for p := range uint64(4) {
		readPage(t, c, s, p) // ref bits on slots 0-3
	}
	// (a) cold: the first VALID slot with ref clear is slot 4.
	readPage(t, c, s, 8)
	expect("cold", 8, 4)
	expect("cold", 4, -1)
	// A new page comes in with ref clear: the next miss takes it again
	// (scan resistance), not a referenced page.
	readPage(t, c, s, 9)
	expect("cold again", 9, 4)
	if got := phases(); got != [3]uint64{2, 0, 0} {
		t.Fatalf("phases after two cold evictions: %v", got)
	}
	// (b) every slot referenced: clear the window, then slot 0 is cold.
	for _, p := range []uint64{0, 1, 2, 3, 9, 5, 6, 7} {
		readPage(t, c, s, p)
	}
	readPage(t, c, s, 10)
	expect("clear", 10, 0)
	if got := phases(); got != [3]uint64{2, 1, 0} {
		t.Fatalf("phases after clear-and-retry: %v", got)
	}
	for i := range uint64(8) {
		if i != 0 && c.word(i)&refBit != 0 {
			t.Fatalf("slot %d still referenced after phase (b)", i)
		}
	}
	// (c) other hosts re-reference every slot between the clear and the
	// rescan: force-evict the first unpinned VALID slot, but skip pins.
	pin, err := c.Pin(s, 10) // slot 0
	if err != nil {
		t.Fatal(err)
	}
	touchAll := func() {
		for i := range uint64(8) {
			c.touch(i, c.word(i))
		}
	}
	touchAll()
	c.afterClear = touchAll
	readPage(t, c, s, 11)
	expect("force", 11, 1)
	expect("force", 10, 0)
	if got := phases(); got != [3]uint64{2, 1, 1} {
		t.Fatalf("phases after forced eviction: %v", got)
	}
	c.afterClear = nil
	// Pinned slots are never victims; with every slot pinned there is no
	// victim, and one unpin makes one.
	var pins []*Pinned
	for i := range uint64(8) {
		w := c.word(i)
		pg := c.r.Load(c.metaOff(i) + metaPage)
		if wState(w) != StateValid {
			t.Fatalf("slot %d not valid: %v", i, DecodeSlotWord(w))
		}
		p, err := c.Pin(s, pg)
		if err != nil {
			t.Fatal(err)
		}
		pins = append(pins, p)
	}
	c.waitLimit = 20 * time.Millisecond
	if _, err := c.Read(s, 12, 0, make([]byte, 8)); !errors.Is(err, ErrNoVictim) {
		t.Fatalf("all pinned: %v, want ErrNoVictim", err)
	}
	pins[5].Unpin()
	readPage(t, c, s, 12)
	expect("after unpin", 12, 5)
	pin.Unpin()
	for _, p := range pins {
		p.Unpin()
	}
	if rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len); rep.Pinned != 0 || !rep.Healthy() {
		t.Fatalf("after all unpins: %v", rep)
	}
}

// The clock hand ages one window every ageEvery misses, whichever host
// misses; the host whose CAS wins the window clears its ref bits and no
// other slot's.
func TestClockHandAges(t *testing.T) {
	e := newEnv(t, 64, 256, time.Second)
	a, _ := e.open(t, "a")
	b, _ := e.open(t, "b")
	s := &src{id: 3}
	a.ageEvery, b.ageEvery = 0, 0
	for p := range uint64(16) {
		readPage(t, a, s, p)
		readPage(t, b, s, p) // hit: ref bit set
	}
	refs := func() (n int) {
		for i := range uint64(64) {
			if a.word(i)&refBit != 0 {
				n++
			}
		}
		return n
	}
	if n := refs(); n != 16 {
		t.Fatalf("%d referenced slots, want 16", n)
	}
	hand := e.r.Load(e.ext.Off + hdrHand)
	inWindow := 0
	for i := range Window {
		if a.word(a.slotAt(hand%64, i))&refBit != 0 {
			inWindow++
		}
	}
	b.age()
	if got := e.r.Load(e.ext.Off + hdrHand); got != hand+Window {
		t.Fatalf("hand %d after one ageing, want %d", got, hand+Window)
	}
	if n := refs(); n != 16-inWindow {
		t.Fatalf("%d referenced slots after ageing a window that had %d, want %d", n, inWindow, 16-inWindow)
	}
	a.ageEvery, b.ageEvery = 4, 4
	for p := uint64(100); p < 116; p++ {
		readPage(t, a, s, p)
		readPage(t, b, s, p+100)
	}
	if got := e.r.Load(e.ext.Off + hdrHand); got != hand+Window+8*Window {
		t.Fatalf("hand %d after 32 misses at one window per 4, want %d", got, hand+9*Window)
	}
	if st := a.Stats().Aged + b.Stats().Aged; st != 9 {
		t.Fatalf("aged %d windows, want 9", st)
	}
}

// A fill that fails frees the slot and reports the source's error.
func TestFillError(t *testing.T) {
	e := newEnv(t, 16, 16, time.Second)
	c, _ := e.open(t, "a")
	boom := errors.New("disk on fire")
	s := &failSrc{err: boom}
	if _, err := c.Read(s, 1, 0, make([]byte, 10)); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pending != 0 || rep.Free != 16 {
		t.Fatalf("after failed fill: %v", rep)
	}
}

type failSrc struct{ err error }

func (f *failSrc) ID() uint64                    { return 77 }
func (f *failSrc) ReadPage(uint64, []byte) error { return f.err }

// A filler stalls in its backing read; its host is declared dead; another
// host takes the slot over, fills it, and the slot is evicted and refilled
// with another page. When the stalled filler resumes, its bytes must not
// end up in the slot: the generation in the slot word has moved on. Run
// once with the fence check and once with only the generation standing.
func TestStalledFillerCannotPublish(t *testing.T) {
	for _, noFence := range []bool{false, true} {
		name := "fenced"
		if noFence {
			name = "generation-only"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 8, 64, time.Second)
			cA, hA := e.open(t, "stalled")
			cB, _ := e.open(t, "survivor")
			for _, c := range []*Cache{cA, cB} {
				c.hash = func(uint64, uint64) uint64 { return 0 }
				c.ageEvery = 0
			}
			cA.noFence = noFence
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			sA := &src{id: 5, hook: func(page uint64) {
				if page == 0 {
					once.Do(func() { close(entered); <-release })
				}
			}}
			sB := &src{id: 5}
			done := make(chan error, 1)
			go func() {
				_, err := cA.Read(sA, 0, 0, make([]byte, PageSize))
				done <- err
			}()
			<-entered
			w := DecodeSlotWord(cA.word(0))
			if w.State != StatePending || w.Owner != hA.Slot() {
				t.Fatalf("slot 0 while A fills: %v", w)
			}
			hA.Abandon() // A's heartbeat stops: after the lease it is dead
			readPage(t, cB, sB, 0)
			if cB.Stats().Takeovers == 0 {
				t.Fatal("survivor did not take the slot over")
			}
			// Evict page 0 and refill slot 0 with other pages.
			for p := uint64(1); p < 20; p++ {
				readPage(t, cB, sB, p)
			}
			w0 := DecodeSlotWord(cB.word(0))
			if pg := e.r.Load(cB.metaOff(0) + metaPage); w0.State != StateValid || pg == 0 {
				t.Fatalf("slot 0 should hold another page now: %v page %d", w0, pg)
			}
			close(release)
			err := <-done
			if !noFence && !errors.Is(err, cxl.ErrFenced) {
				t.Errorf("stalled filler of a fenced host: %v, want ErrFenced", err)
			}
			if noFence && cA.Stats().LostFills == 0 {
				t.Errorf("stalled filler did not notice it lost the slot (err %v)", err)
			}
			verifyAll(t, cB)
		})
	}
}

// verifyAll checks that every VALID slot holds the bytes of its tag.
func verifyAll(t testing.TB, c *Cache) {
	t.Helper()
	want := make([]byte, PageSize)
	for s := range c.n {
		w := c.word(s)
		if wState(w) != StateValid {
			continue
		}
		m := c.metaOff(s)
		id, pg := c.r.Load(m+metaSrc), c.r.Load(m+metaPage)
		genPage(id, pg, want)
		if string(c.page(s)) != string(want) && c.word(s) == w {
			t.Errorf("slot %d VALID with tag (%#x, %d) holds wrong bytes", s, id, pg)
		}
	}
}

// A host dies holding pins (in-process: heartbeat stopped). After its
// lease, a miss with no victim reaps it and the slots become evictable.
func TestDeadHostPinsReleased(t *testing.T) {
	e := newEnv(t, 8, 64, time.Second)
	cA, hA := e.open(t, "pinner")
	cB, _ := e.open(t, "survivor")
	for _, c := range []*Cache{cA, cB} {
		c.hash = func(uint64, uint64) uint64 { return 0 }
	}
	s := &src{id: 8}
	for p := range uint64(8) {
		if _, err := cA.Pin(s, p); err != nil {
			t.Fatal(err)
		}
	}
	// A also dies in the middle of evicting slot 3 (after its CAS to
	// EVICTING): the reaper must put the slot back to VALID, same bytes.
	w3 := cA.word(3)
	ev := mkWord(StateEvicting, wGen(w3), wFP(w3), hA.Slot())
	if !e.r.CAS(cA.metaOff(3)+metaWord, w3, ev) {
		t.Fatal("could not stage an eviction")
	}
	hA.Abandon()
	readPage(t, cB, s, 8) // waits for the lease, reaps A, evicts
	if st := cB.Stats(); st.PinsReleased != 8 || st.Reaped != 1 || st.Takeovers != 1 {
		t.Fatalf("survivor stats: %v", st)
	}
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 0 || rep.Evicting != 0 || len(rep.Hosts) != 1 || !rep.Healthy() {
		t.Fatalf("after reaping: %v", rep)
	}
	for p := range uint64(9) {
		readPage(t, cB, s, p)
	}
	verifyAll(t, cB)
}

// Goroutines of two hosts read and pin overlapping random pages of a
// backing file 8x the cache: every byte is right, no page is read twice
// while cached, nothing stays pinned.
func TestHammer(t *testing.T) {
	const slots, pages = 64, 512
	e := newEnv(t, slots, pages, 10*time.Second)
	caches := make([]*Cache, 2)
	for i := range caches {
		caches[i], _ = e.open(t, "hammer")
	}
	s := &src{id: 11, e: e, pages: pages}
	ops := 3000
	if testing.Short() {
		ops = 500
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := caches[g%2]
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, PageSize)
			for range ops {
				var p uint64
				if rng.IntN(2) == 0 {
					p = uint64(rng.IntN(48)) // hot set, fits
				} else {
					p = uint64(rng.IntN(pages))
				}
				if rng.IntN(5) == 0 {
					pin, err := c.Pin(s, p)
					if err != nil {
						errs <- err
						return
					}
					if err := checkPage(11, p, 0, pin.Bytes()); err != nil {
						errs <- err
						return
					}
					pin.Unpin()
					continue
				}
				off := rng.IntN(PageSize)
				n, err := c.Read(s, p, off, buf)
				if err == nil {
					err = checkPage(11, p, off, buf[:n])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.checkOnce(t)
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 0 || rep.Pending != 0 || rep.Evicting != 0 || !rep.Healthy() {
		t.Fatalf("after the hammer: %v", rep)
	}
	for i, c := range caches {
		t.Logf("host %d: %v", i, c.Stats())
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, 16, 16, time.Second)
	c, _ := e.open(t, "a")
	reg := prometheus.NewRegistry()
	NewMetrics(reg, c)
	readPage(t, c, &src{id: 1}, 1)
	readPage(t, c, &src{id: 1}, 1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if got["daxfs_pcache_hits_total"] != 1 || got["daxfs_pcache_misses_total"] != 1 || got["daxfs_pcache_fills_total"] != 1 {
		t.Fatalf("metrics: %v", got)
	}
	if _, ok := got["daxfs_pcache_evictions_total"]; !ok {
		t.Fatalf("no eviction metric: %v", got)
	}
}

func TestFormatAndOpenErrors(t *testing.T) {
	e := newEnv(t, 16, 16, time.Second)
	if err := Format(e.r, e.ext.Off, 8192, 16); !errors.Is(err, ErrTooSmall) {
		t.Errorf("format too small: %v", err)
	}
	if err := Format(e.r, e.ext.Off+8, e.ext.Len, 16); err == nil {
		t.Errorf("format misaligned: no error")
	}
	h, _ := e.ht.Join(cxl.JoinOptions{})
	defer h.Leave()
	e.r.Store(e.ext.Off+16, 1<<40) // slots field: checksum breaks
	if _, err := Open(e.r, e.ext.Off, e.ext.Len, e.ht, h); !errors.Is(err, ErrBadFormat) {
		t.Errorf("open corrupt: %v", err)
	}
	if err := Format(e.r, e.ext.Off, e.ext.Len, 0); err != nil {
		t.Fatal(err)
	}
	c, err := Open(e.r, e.ext.Off, e.ext.Len, e.ht, h)
	if err != nil {
		t.Fatal(err)
	}
	if c.Header().Slots < 16 {
		t.Errorf("format with 0 slots used %d", c.Header().Slots)
	}
	c.Close()
	if _, err := c.Read(&src{id: 1}, 0, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}

// Many goroutines of two hosts miss the same cold page at the same moment
// while the backing read is slow: the page is read from the backing file
// exactly once and everybody gets its bytes.
// With slow claimers (a pause between the claim and the tag stores), two
// claims of one page in two slots happen, and one of them must yield.
func TestConcurrentMissesFillOnce(t *testing.T) {
	for _, slowClaim := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "slow-claim"}[slowClaim], func(t *testing.T) {
			testConcurrentMisses(t, slowClaim)
		})
	}
}

func testConcurrentMisses(t *testing.T, slowClaim bool) {
	const pages = 40
	e := newEnv(t, 64, pages, 10*time.Second)
	a, _ := e.open(t, "a")
	b, _ := e.open(t, "b")
	if slowClaim {
		a.afterClaim = func() { time.Sleep(50 * time.Microsecond) }
		b.afterClaim = a.afterClaim
	}
	s := &src{id: 21, e: e, pages: pages, hook: func(uint64) { time.Sleep(200 * time.Microsecond) }}
	for p := range uint64(pages) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := a
				if g%2 == 1 {
					c = b
				}
				buf := make([]byte, PageSize)
				<-start
				n, err := c.Read(s, p, 0, buf)
				if err == nil {
					err = checkPage(21, p, 0, buf[:n])
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := e.r.Load(e.readsOff(p)); n != 1 {
			t.Fatalf("page %d read %d times by 8 concurrent misses", p, n)
		}
	}
	st := a.Stats()
	st2 := b.Stats()
	t.Logf("waits %d, yields %d", st.Waits+st2.Waits, st.Yields+st2.Yields)
	if slowClaim && st.Yields+st2.Yields == 0 {
		t.Error("no claim ever yielded: the duplicate-claim path was not exercised")
	}
}

// A host dies holding pins; after its lease a new process joins the host
// table and gets the same slot: Open reaps the predecessor's record (its
// pins) before it uses the record.
func TestOpenReapsPredecessor(t *testing.T) {
	e := newEnv(t, 16, 16, time.Second)
	cA, hA := e.open(t, "dies")
	s := &src{id: 4}
	if _, err := cA.Pin(s, 1); err != nil {
		t.Fatal(err)
	}
	hA.Abandon()
	// Take every other slot, so that the next join must take A's.
	for range e.ht.MaxHosts() - 1 {
		h, err := e.ht.Join(cxl.JoinOptions{Name: "filler"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Leave() })
	}
	for e.ht.Alive(hA.Slot(), hA.Incarnation()) {
		time.Sleep(10 * time.Millisecond)
	}
	h, err := e.ht.Join(cxl.JoinOptions{Name: "successor"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Leave()
	if h.Slot() != hA.Slot() {
		t.Fatalf("successor got slot %d, not the dead host's %d", h.Slot(), hA.Slot())
	}
	c, err := Open(e.r, e.ext.Off, e.ext.Len, e.ht, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st := c.Stats(); st.PinsReleased != 1 || st.Reaped != 1 {
		t.Fatalf("successor stats: %v", st)
	}
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 0 || len(rep.Hosts) != 1 || rep.Hosts[0].Inc != h.Incarnation() {
		t.Fatalf("after Open: %v", rep)
	}
	readPage(t, c, s, 1)
}
