// Package pcache is the shared page cache of daxfs's split mode: one cache
// of backing-file pages in a region extent, used by every host at once.
//
// A page is filled once, by the host that claims its slot, and is then a hit
// for every host. Eviction is MH-clock: an 8-slot probe window per page, ref
// bits, clear-and-retry, forced eviction, and a shared clock hand that ages
// one window per miss. Readers copy optimistically (Read) or pin a slot for
// a zero-copy view (Pin). A host that dies mid-fill or while pinning is
// reaped through the region's host table: its PENDING slots are freed and
// its pins dropped. docs/PCACHE.md describes every word and CAS protocol.
package pcache

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/daxwio/daxwio/cxl"
)

// ExtentName is the conventional name of the region extent of the cache.
const ExtentName = "pcache"

// Source is a backing file whose pages the cache holds.
type Source interface {
	// ID is stable per backing file (e.g. from the superblock) and the same
	// on every host. Together with the page number it is the slot's tag.
	ID() uint64
	// ReadPage fills dst (PageSize bytes) with the page's bytes; bytes past
	// the end of the file must be zero.
	ReadPage(page uint64, dst []byte) error
}

// ExtentSize is the extent length a cache of slots slots needs in a region
// whose host table has maxHosts slots.
func ExtentSize(slots, maxHosts int) uint64 {
	return alignUp(geometry(uint64(slots), maxHosts).ExtentLen, 4096)
}

// Format writes an empty cache of slots slots into [off, off+length) of r;
// slots == 0 uses as many as fit. The region header must already exist (the
// host-table size sizes the pin bitmaps). Format must not run while any
// host uses the extent.
func Format(r *cxl.Region, off, length uint64, slots int) error {
	if off%4096 != 0 {
		return fmt.Errorf("pcache: format at %#x: offset is not 4096-aligned", off)
	}
	if err := r.Check(off, length); err != nil {
		return fmt.Errorf("pcache: format: %w", err)
	}
	rh, err := cxl.ReadHeader(r)
	if err != nil {
		return fmt.Errorf("pcache: format: %w", err)
	}
	n := uint64(slots)
	if slots == 0 {
		n = maxSlots(length, rh.MaxHosts)
	}
	if slots < 0 || n < Window {
		return fmt.Errorf("%w: %d slots asked, at least %d needed (extent of %d bytes at %#x)", ErrTooSmall, slots, Window, length, off)
	}
	g := geometry(n, rh.MaxHosts)
	if g.ExtentLen > length {
		return fmt.Errorf("%w: %d slots need %d bytes, the extent at %#x has %d", ErrTooSmall, n, g.ExtentLen, off, length)
	}
	// Zero header, records and slot metadata (FREE, generation 0, no pins);
	// the header fields last, so a crash mid-format does not validate.
	clear(r.Bytes(off, g.DataOff))
	copy(r.Bytes(off, hdrFixed), g.encode())
	return r.Persist(off, g.DataOff)
}

// Cache is one host's handle on the shared cache. It is safe for
// concurrent use by many goroutines.
type Cache struct {
	r    *cxl.Region
	ht   *cxl.HostTable
	host *cxl.Host
	base uint64
	h    Header
	n    uint64
	meta uint64 // absolute offsets
	data uint64
	me   int
	inc  uint64
	rec  uint64

	pinWord uint64 // offset of our bitmap word within a slot's metadata
	pinMask uint64

	pinMu [64]sync.Mutex
	local []int32 // this host's pins per slot (guarded by pinMu[slot%64])

	closed   atomic.Bool
	lastReap atomic.Int64
	bufs     sync.Pool
	st       counters

	// Tunables and test hooks (set before use).
	hash       func(src, page uint64) uint64
	ageEvery   int           // misses per window aged by the clock hand (0: never)
	insertRef  bool          // publish new pages with the ref bit set
	waitLimit  time.Duration // how long to wait for a fill or a victim
	onEvict    func(src, page uint64)
	afterClear func() // between phase (b) and its rescan
	afterClaim func() // between the claim CAS and the tag stores
	noFence    bool   // skip the host.Err check before copying in
}

// Open attaches host, a member of ht, to the cache formatted at
// [off, off+length) of r. It takes the host's record in the extent, first
// reaping what an earlier, dead holder of the same host slot left there.
func Open(r *cxl.Region, off, length uint64, ht *cxl.HostTable, host *cxl.Host) (*Cache, error) {
	if r == nil || ht == nil || host == nil {
		return nil, fmt.Errorf("pcache: open: region, host table and host are required")
	}
	if off%4096 != 0 {
		return nil, fmt.Errorf("pcache: open at %#x: offset is not 4096-aligned", off)
	}
	if err := r.Check(off, length); err != nil {
		return nil, fmt.Errorf("pcache: open: %w", err)
	}
	if length < hdrSize {
		return nil, fmt.Errorf("pcache: open at %#x: %w: extent of %d bytes", off, ErrBadFormat, length)
	}
	b := make([]byte, hdrFixed)
	copy(b, r.Bytes(off, hdrFixed))
	h, err := DecodeHeader(b, length)
	if err != nil {
		return nil, fmt.Errorf("pcache: open at %#x: %w", off, err)
	}
	if h.MaxHosts != ht.MaxHosts() {
		return nil, fmt.Errorf("pcache: open at %#x: %w: formatted for %d hosts, host table has %d", off, ErrBadFormat, h.MaxHosts, ht.MaxHosts())
	}
	if err := host.Err(); err != nil {
		return nil, fmt.Errorf("pcache: open at %#x: %w", off, err)
	}
	me := host.Slot()
	c := &Cache{
		r: r, ht: ht, host: host, base: off, h: *h, n: h.Slots,
		meta: off + h.MetaOff, data: off + h.DataOff,
		me: me, inc: host.Incarnation(), rec: off + h.RecsOff + uint64(me)*recSize,
		pinWord: metaPins + 8*uint64(me/64), pinMask: 1 << (me % 64),
		local:     make([]int32, h.Slots),
		hash:      tagHash,
		ageEvery:  32,
		waitLimit: 2 * ht.Lease(),
	}
	c.bufs.New = func() any { b := make([]byte, PageSize); return &b }
	deadline := time.Now().Add(10 * ht.Lease())
	for i := 0; ; i++ {
		old := r.Load(c.rec + recInc)
		if old == 0 {
			if r.CAS(c.rec+recInc, 0, c.inc) {
				break
			}
			continue
		}
		// We hold host slot me, so old is a dead incarnation of it.
		c.reap(me, old)
		if r.Load(c.rec+recInc) == old {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("pcache: open at %#x: record %d: %w", off, me, ErrRecordBusy)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return c, nil
}

// Close releases this host's record: pins it still holds are dropped and
// slots it was filling are freed. No Read, Pin or Pinned view may be in use.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.reap(c.me, c.inc)
	return nil
}

// Header returns the decoded extent header.
func (c *Cache) Header() Header { return c.h }

func (c *Cache) metaOff(s uint64) uint64 { return c.meta + s*c.h.MetaStride }
func (c *Cache) word(s uint64) uint64    { return c.r.Load(c.metaOff(s) + metaWord) }
func (c *Cache) page(s uint64) []byte    { return c.r.Bytes(c.data+s*PageSize, PageSize) }
func (c *Cache) recOff(h int) uint64     { return c.base + c.h.RecsOff + uint64(h)*recSize }

func (c *Cache) window(key uint64) uint64 {
	hi, _ := bits.Mul64(key, c.n)
	return hi
}

func (c *Cache) slotAt(start uint64, i int) uint64 {
	s := start + uint64(i)
	if s >= c.n {
		s -= c.n
	}
	return s
}

// tagIs reports whether slot s, whose word w was just read, holds tag
// (id, page). The caller re-reads the word (same generation) before it
// trusts the answer.
func (c *Cache) tagIs(s, w, id, page uint64) bool {
	m := c.metaOff(s)
	if c.r.Load(m+metaTagGen) != wGen(w) {
		return false
	}
	return c.r.Load(m+metaSrc) == id && c.r.Load(m+metaPage) == page
}

// Read copies the page's bytes from off into dst and returns how many it
// copied (min(len(dst), PageSize-off)). On a miss it fills the page from src.
func (c *Cache) Read(src Source, page uint64, off int, dst []byte) (int, error) {
	if off < 0 || off > PageSize {
		return 0, fmt.Errorf("pcache: read page %d of source %#x at %d: %w", page, src.ID(), off, ErrRange)
	}
	var bp *[]byte // taken from the pool on a miss only
	defer func() {
		if bp != nil {
			c.bufs.Put(bp)
		}
	}()
	for {
		s, w, filled, err := c.acquire(src, page, &bp)
		if err != nil {
			return 0, err
		}
		if filled {
			return copy(dst, (*bp)[off:]), nil
		}
		n := copy(dst, c.page(s)[off:])
		w2 := c.word(s)
		if wGen(w2) == wGen(w) && (wState(w2) == StateValid || wState(w2) == StateEvicting) {
			c.st.hits.Add(1)
			c.touch(s, w2)
			return n, nil
		}
		c.st.optRetries.Add(1)
	}
}

// touch sets the ref bit of a VALID slot if it is clear (one attempt).
func (c *Cache) touch(s, w uint64) {
	if wState(w) == StateValid && w&refBit == 0 {
		c.r.CAS(c.metaOff(s)+metaWord, w, w|refBit)
	}
}

// Pinned is a zero-copy view of a cached page. The slot is not evicted until
// Unpin; if this host dies first, a survivor drops the pin when it reaps.
type Pinned struct {
	c    *Cache
	slot uint64
	gen  uint64
	data []byte
	done atomic.Bool
}

// Bytes is the page (PageSize bytes). It aliases shared memory: do not write
// it, and do not use it after Unpin.
func (p *Pinned) Bytes() []byte { return p.data }

// Slot is the cache slot holding the page.
func (p *Pinned) Slot() uint64 { return p.slot }

// Unpin releases the pin. A second call does nothing.
func (p *Pinned) Unpin() {
	if p.done.Swap(true) {
		return
	}
	c := p.c
	mu := &c.pinMu[p.slot%64]
	mu.Lock()
	c.local[p.slot]--
	if c.local[p.slot] < 0 {
		mu.Unlock()
		panic(fmt.Sprintf("pcache: slot %d: pin count below zero", p.slot))
	}
	if c.local[p.slot] == 0 {
		c.clearPinBit(p.slot, c.pinWord, c.pinMask)
	}
	mu.Unlock()
	c.st.unpins.Add(1)
}

// Pin returns a pinned zero-copy view of the page, filling it on a miss.
// There is no limit on pins: a host counts its own pins per slot in process
// memory and shows the region one bit per slot.
func (c *Cache) Pin(src Source, page uint64) (*Pinned, error) {
	var bp *[]byte
	defer func() {
		if bp != nil {
			c.bufs.Put(bp)
		}
	}()
	for {
		s, w, filled, err := c.acquire(src, page, &bp)
		if err != nil {
			return nil, err
		}
		mu := &c.pinMu[s%64]
		mu.Lock()
		first := c.local[s] == 0
		if first {
			c.setPinBit(s)
		}
		// Our bit is set before this load; an evictor sets EVICTING before
		// it loads the bits. So either we see EVICTING or it sees our bit.
		w2 := c.word(s)
		st := wState(w2)
		if wGen(w2) == wGen(w) && (st == StateValid || st == StateEvicting && !first) {
			c.local[s]++
			mu.Unlock()
			if !filled {
				c.st.hits.Add(1)
			}
			c.st.pins.Add(1)
			c.touch(s, w2)
			return &Pinned{c: c, slot: s, gen: wGen(w), data: c.page(s)}, nil
		}
		if first {
			c.clearPinBit(s, c.pinWord, c.pinMask)
		}
		mu.Unlock()
		c.st.optRetries.Add(1)
		runtime.Gosched()
	}
}

func (c *Cache) setPinBit(s uint64) {
	off := c.metaOff(s) + c.pinWord
	for {
		v := c.r.Load(off)
		if v&c.pinMask != 0 || c.r.CAS(off, v, v|c.pinMask) {
			return
		}
	}
}

// clearPinBit clears one bit and reports whether it was set.
func (c *Cache) clearPinBit(s, word, mask uint64) bool {
	off := c.metaOff(s) + word
	for {
		v := c.r.Load(off)
		if v&mask == 0 {
			return false
		}
		if c.r.CAS(off, v, v&^mask) {
			return true
		}
	}
}

func (c *Cache) unpinned(s uint64) bool {
	m := c.metaOff(s) + metaPins
	for i := range c.h.PinWords {
		if c.r.Load(m+8*uint64(i)) != 0 {
			return false
		}
	}
	return true
}

// acquire finds the slot holding (src.ID(), page) and returns it with the
// word it read (VALID or EVICTING, tag matched), or fills the page into a
// slot and into *bp (taken from the pool when nil) and returns filled =
// true. The caller re-checks the word's generation after using the slot.
func (c *Cache) acquire(src Source, page uint64, bp **[]byte) (slot, word uint64, filled bool, err error) {
	id := src.ID()
	key := c.hash(id, page)
	fp := uint16(key >> 48)
	start := c.window(key)
	var began time.Time
	missed := false
	for attempt := 0; ; attempt++ {
		if c.closed.Load() {
			return 0, 0, false, ErrClosed
		}
		free, freeW := -1, uint64(0)
		wait, waitW := -1, uint64(0)
		for i := range Window {
			s := c.slotAt(start, i)
			w := c.word(s)
			switch wState(w) {
			case StateFree:
				if free < 0 {
					free, freeW = int(s), w
				}
			case StateValid, StateEvicting:
				if wFP(w) == fp && c.tagIs(s, w, id, page) {
					return s, w, false, nil
				}
			case StatePending:
				if wait < 0 && wFP(w) == fp && c.tagIs(s, w, id, page) {
					wait, waitW = int(s), w
				}
			}
		}
		if began.IsZero() {
			began = time.Now()
		}
		if wait >= 0 {
			if err := c.waitFill(uint64(wait), waitW, began, id, page); err != nil {
				return 0, 0, false, err
			}
			continue
		}
		if !missed {
			missed = true
			if m := c.st.misses.Add(1); c.ageEvery > 0 && m%uint64(c.ageEvery) == 0 {
				c.age()
			}
		}
		if free < 0 {
			if c.evict(start) {
				continue
			}
			if err := c.noVictim(start, began, attempt, id, page); err != nil {
				return 0, 0, false, err
			}
			continue
		}
		s := uint64(free)
		gen := nextGen(wGen(freeW))
		nw := mkWord(StatePending, gen, fp, c.me)
		m := c.metaOff(s)
		if !c.r.CAS(m+metaWord, freeW, nw) {
			c.st.casRetries.Add(1)
			continue
		}
		if c.afterClaim != nil {
			c.afterClaim()
		}
		c.r.Store(m+metaSrc, id)
		c.r.Store(m+metaPage, page)
		c.r.Store(m+metaTagGen, gen)
		if c.duplicate(start, s, fp, id, page) {
			// Another host claimed the same page in this window: at least
			// one of two such claimers sees the other (both published their
			// tag before they looked), so never both fill.
			c.r.CAS(m+metaWord, nw, mkWord(StateFree, nextGen(gen), 0, 0))
			c.st.yields.Add(1)
			if time.Since(began) > c.waitLimit {
				return 0, 0, false, fmt.Errorf("pcache: page %d of source %#x: concurrent claims kept yielding: %w", page, id, ErrBusy)
			}
			jitter(attempt)
			continue
		}
		if *bp == nil {
			*bp = c.bufs.Get().(*[]byte)
		}
		buf := **bp
		if err := src.ReadPage(page, buf); err != nil {
			c.r.CAS(m+metaWord, nw, mkWord(StateFree, nextGen(gen), 0, 0))
			c.st.fillErrors.Add(1)
			return 0, 0, false, fmt.Errorf("pcache: fill page %d of source %#x into slot %d: %w", page, id, s, err)
		}
		if !c.noFence {
			if err := c.host.Err(); err != nil {
				// Declared dead: a survivor may own this slot now.
				return 0, 0, false, fmt.Errorf("pcache: fill page %d of source %#x into slot %d: %w", page, id, s, err)
			}
		}
		if c.word(s) != nw {
			// Taken over (the generation moved on): our bytes must not land
			// in what is now someone else's page.
			c.st.lostFills.Add(1)
			continue
		}
		copy(c.page(s), buf)
		vw := mkWord(StateValid, gen, fp, 0)
		if c.insertRef {
			vw |= refBit
		}
		if !c.r.CAS(m+metaWord, nw, vw) {
			c.st.lostFills.Add(1)
			continue
		}
		c.st.fills.Add(1)
		c.r.Add(c.base+hdrFills, 1)
		return s, vw, true, nil
	}
}

// duplicate reports whether another slot of the window holds, or may be
// claiming, the same tag. A PENDING slot with our fingerprint whose tag is
// not yet published counts as a duplicate (unless its owner is dead).
func (c *Cache) duplicate(start, self uint64, fp uint16, id, page uint64) bool {
	for i := range Window {
		s := c.slotAt(start, i)
		if s == self {
			continue
		}
		w := c.word(s)
		if wState(w) == StateFree || wFP(w) != fp {
			continue
		}
		m := c.metaOff(s)
		if c.r.Load(m+metaTagGen) != wGen(w) {
			if wState(w) == StatePending && !c.ownerDead(wOwner(w)) {
				return true
			}
			continue
		}
		if c.r.Load(m+metaSrc) == id && c.r.Load(m+metaPage) == page {
			return true
		}
	}
	return false
}

// waitFill waits while slot s stays PENDING with word w (another host, or
// goroutine, is filling our page). It takes the slot over when its owner
// is dead and gives up with ErrBusy after the wait limit.
func (c *Cache) waitFill(s, w uint64, began time.Time, id, page uint64) error {
	c.st.waits.Add(1)
	for i := 0; ; i++ {
		if c.word(s) != w {
			return nil
		}
		if i%32 == 31 {
			if h := wOwner(w); c.ownerDead(h) {
				c.takeOver(s, w, h)
				return nil
			}
			if time.Since(began) > c.waitLimit {
				return fmt.Errorf("pcache: page %d of source %#x in slot %d, filled by host %d: %w", page, id, s, wOwner(w), ErrBusy)
			}
		}
		backoff(i)
	}
}

// ownerDead reports whether the host holding record h is dead (fenced) or
// gone. Our own record is never dead while we run.
func (c *Cache) ownerDead(h int) bool {
	if h >= c.h.MaxHosts {
		return true
	}
	inc := c.r.Load(c.recOff(h) + recInc)
	if inc == 0 {
		return true
	}
	if inc == c.inc {
		return false
	}
	return c.ht.Fence(h, inc)
}

// takeOver frees slot s (word w) left PENDING or EVICTING by dead host h,
// reaping the whole host when its record still names it.
func (c *Cache) takeOver(s, w uint64, h int) {
	if h < c.h.MaxHosts {
		if inc := c.r.Load(c.recOff(h) + recInc); inc != 0 && inc != c.inc {
			c.reap(h, inc)
			return
		}
	}
	if nw, ok := released(w); ok && c.r.CAS(c.metaOff(s)+metaWord, w, nw) {
		c.st.takeovers.Add(1)
		c.r.Add(c.base+hdrTakeover, 1)
	}
}

// released is what a slot left by a dead owner becomes: PENDING -> FREE
// (next generation), EVICTING -> VALID (same generation, the bytes are
// intact).
func released(w uint64) (uint64, bool) {
	switch wState(w) {
	case StatePending:
		return mkWord(StateFree, nextGen(wGen(w)), 0, 0), true
	case StateEvicting:
		return mkWord(StateValid, wGen(w), wFP(w), 0), true
	}
	return 0, false
}

// age advances the shared clock hand by one window per miss; the host whose
// CAS wins a window clears its ref bits.
func (c *Cache) age() {
	hand := c.base + hdrHand
	{
		h := c.r.Load(hand)
		if !c.r.CAS(hand, h, h+Window) {
			return // another host aged this window
		}
		c.st.aged.Add(1)
		start := h % c.n
		for i := range Window {
			s := c.slotAt(start, i)
			w := c.word(s)
			if wState(w) == StateValid && w&refBit != 0 {
				c.r.CAS(c.metaOff(s)+metaWord, w, w&^refBit)
			}
		}
	}
}

// evict frees one slot of the window starting at start by MH-clock:
// (a) the first cold slot (VALID, ref clear, unpinned); (b) clear the
// window's ref bits and look again; (c) the first unpinned VALID slot.
func (c *Cache) evict(start uint64) bool {
	if c.evictPass(start, false) {
		c.st.evictCold.Add(1)
		return true
	}
	for i := range Window {
		s := c.slotAt(start, i)
		w := c.word(s)
		if wState(w) == StateValid && w&refBit != 0 {
			c.r.CAS(c.metaOff(s)+metaWord, w, w&^refBit)
		}
	}
	if c.afterClear != nil {
		c.afterClear()
	}
	if c.evictPass(start, false) {
		c.st.evictClear.Add(1)
		return true
	}
	if c.evictPass(start, true) {
		c.st.evictForce.Add(1)
		return true
	}
	return false
}

func (c *Cache) evictPass(start uint64, force bool) bool {
	for i := range Window {
		s := c.slotAt(start, i)
		w := c.word(s)
		if wState(w) != StateValid || (!force && w&refBit != 0) || !c.unpinned(s) {
			continue
		}
		if c.tryEvict(s, w) {
			return true
		}
	}
	return false
}

// tryEvict frees VALID slot s (word w): VALID -> EVICTING(me), then, with
// no pin bit set, EVICTING -> FREE(next generation); with a pin, back to w.
func (c *Cache) tryEvict(s, w uint64) bool {
	m := c.metaOff(s) + metaWord
	ev := mkWord(StateEvicting, wGen(w), wFP(w), c.me) | w&refBit
	if !c.r.CAS(m, w, ev) {
		c.st.casRetries.Add(1)
		return false
	}
	if !c.unpinned(s) {
		c.r.CAS(m, ev, w)
		return false
	}
	var src, page uint64
	if c.onEvict != nil {
		src, page = c.r.Load(c.metaOff(s)+metaSrc), c.r.Load(c.metaOff(s)+metaPage)
	}
	if !c.r.CAS(m, ev, mkWord(StateFree, nextGen(wGen(w)), 0, 0)) {
		return false // we were declared dead and reaped meanwhile
	}
	c.r.Add(c.base+hdrEvicts, 1)
	if c.onEvict != nil {
		c.onEvict(src, page)
	}
	return true
}

// noVictim handles a window with no free and no evictable slot: take over
// slots of dead owners, reap dead hosts (their pins), back off, and give up
// after the wait limit.
func (c *Cache) noVictim(start uint64, began time.Time, attempt int, id, page uint64) error {
	c.st.noVictim.Add(1)
	for i := range Window {
		s := c.slotAt(start, i)
		w := c.word(s)
		if st := wState(w); (st == StatePending || st == StateEvicting) && c.ownerDead(wOwner(w)) {
			c.takeOver(s, w, wOwner(w))
		}
	}
	now := time.Now().UnixNano()
	if last := c.lastReap.Load(); now-last > int64(c.ht.Lease()/4) && c.lastReap.CompareAndSwap(last, now) {
		c.ReapDead()
	}
	if time.Since(began) > c.waitLimit {
		return fmt.Errorf("pcache: page %d of source %#x, window at slot %d: %w", page, id, start, ErrNoVictim)
	}
	backoff(attempt)
	return nil
}

// ReapDead reaps every host whose record is still held by an incarnation
// the host table has fenced: its PENDING slots are freed, its EVICTING
// slots restored and its pins dropped. It returns how many it reaped.
// daxfs calls it from its background loop; the cache also calls it when a
// window has no victim.
func (c *Cache) ReapDead() int {
	n := 0
	for h := range c.h.MaxHosts {
		if h == c.me {
			continue
		}
		inc := c.r.Load(c.recOff(h) + recInc)
		if inc == 0 {
			continue
		}
		if c.ht.Fence(h, inc) && c.reap(h, inc) {
			n++
		}
	}
	return n
}

// reap finishes what incarnation inc left in record h. The reaper word makes
// one host do it; a reaper that dies is replaced. Clearing pin bit h is
// idempotent, so a replaced reaper redoing the walk cannot over-release.
func (c *Cache) reap(h int, inc uint64) bool {
	rec := c.recOff(h)
	for {
		if c.r.Load(rec+recInc) != inc {
			return false
		}
		cur := c.r.Load(rec + recReaper)
		if cur == c.inc {
			break
		}
		if cur != 0 && !c.reaperDead(cur) {
			return false
		}
		if c.r.CAS(rec+recReaper, cur, c.inc) {
			break
		}
	}
	// Holding the reaper word, re-check: only its holder moves recInc off
	// inc, so from here on no new incarnation can use record h.
	if c.r.Load(rec+recInc) != inc {
		c.r.CAS(rec+recReaper, c.inc, 0)
		return false
	}
	word, mask := metaPins+8*uint64(h/64), uint64(1)<<(h%64)
	for s := range c.n {
		m := c.metaOff(s)
		for {
			w := c.r.Load(m + metaWord)
			st := wState(w)
			if (st != StatePending && st != StateEvicting) || wOwner(w) != h {
				break
			}
			nw, _ := released(w)
			if c.r.CAS(m+metaWord, w, nw) {
				c.st.takeovers.Add(1)
				c.r.Add(c.base+hdrTakeover, 1)
				break
			}
		}
		if c.clearPinBit(s, word, mask) {
			c.st.pinsReleased.Add(1)
		}
	}
	ok := c.r.CAS(rec+recInc, inc, 0)
	c.r.CAS(rec+recReaper, c.inc, 0)
	if ok && inc != c.inc {
		c.st.reaped.Add(1)
	}
	return ok
}

// reaperDead reports whether incarnation inc no longer holds any record
// with a live lease.
func (c *Cache) reaperDead(inc uint64) bool {
	for h := range c.h.MaxHosts {
		if c.r.Load(c.recOff(h)+recInc) == inc {
			return c.ht.Fence(h, inc)
		}
	}
	return true
}

// backoff spins, then yields, then sleeps: hosts wait for each other by
// retrying, never by blocking.
func backoff(i int) {
	switch {
	case i < 16:
	case i < 64:
		runtime.Gosched()
	default:
		time.Sleep(time.Duration(min(i-63, 200)) * 5 * time.Microsecond)
	}
}

// jitter breaks the symmetry of two claimers that yielded to each other.
func jitter(attempt int) {
	runtime.Gosched()
	if attempt > 0 {
		time.Sleep(time.Duration(rand.IntN(min(attempt, 50)*10+1)) * time.Microsecond)
	}
}
