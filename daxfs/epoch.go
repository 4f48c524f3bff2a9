package daxfs

import (
	"math/bits"
	"runtime"
	"time"
)

// Epoch-based reclamation across hosts (docs/PROTOCOLS.md, "Reclamation").
//
// Every operation that follows offsets found in the region runs inside a
// guard: it announces the global epoch E in one of its host's epoch words
// (E<<1|1) and clears the word when done. An object unlinked from every
// shared structure is retired into the host's limbo list stamped with the
// epoch at retire time r; it is freed once E >= r+2. E advances from e to e+1
// only when every announced word of every live host shows e. A reader active
// since before an unlink therefore keeps E <= r+1 and its object alive. Dead
// hosts (fenced through the host table) do not hold the epoch back: their
// records are reaped first.

// guard is an operation's epoch announcement and intent slot.
type guard struct {
	fs   *FS
	slot int
	word uint64 // offset of our epoch word, 0 for a read-only mount
}

func (fs *FS) enter() guard {
	if fs.rec == 0 {
		return guard{fs: fs, slot: -1}
	}
	slot := fs.takeSlot()
	w := fs.rec + hrEpochs + uint64(slot)*8
	e := fs.r.Load(fs.sb.sharedWord(swEpoch))
	for {
		fs.r.Store(w, e<<1|1)
		e2 := fs.r.Load(fs.sb.sharedWord(swEpoch))
		if e2 == e {
			break
		}
		e = e2
	}
	return guard{fs: fs, slot: slot, word: w}
}

func (g guard) exit() {
	if g.word == 0 {
		return
	}
	g.fs.r.Store(g.word, 0)
	g.fs.busy.And(^(uint64(1) << g.slot))
}

// takeSlot claims a free epoch slot of this host (a bitmap in host memory:
// cheaper than a channel on every operation); with all 64 in use it yields
// until one frees.
func (fs *FS) takeSlot() int {
	for i := 0; ; i++ {
		m := fs.busy.Load()
		if m == ^uint64(0) {
			backoff(i + 8)
			continue
		}
		s := bits.TrailingZeros64(^m)
		if fs.busy.CompareAndSwap(m, m|uint64(1)<<s) {
			return s
		}
	}
}

// Limbo block (one page):
//
//	0   header  (type limbo)
//	8   next    older limbo block, 0 = none
//	16  epoch   highest retire epoch of the entries
//	24  count   entries in use
//	32  entries [limboCap]u64 object offsets
const (
	lbNext    = 8
	lbEpoch   = 16
	lbCount   = 24
	lbEntries = 32
	limboCap  = (BlockSize - lbEntries) / 8
)

// retire hands an unlinked object to reclamation.
func (fs *FS) retire(off uint64) {
	if fs.rec == 0 {
		return
	}
	fs.stats.Retired.Add(1)
	fs.limboMu.Lock()
	defer fs.limboMu.Unlock()
	fs.retireLocked(off)
	fs.retires++
	if fs.retires%256 == 0 {
		fs.tryAdvance()
		fs.freeExpiredLocked()
	}
}

func (fs *FS) retireLocked(off uint64) {
	r := fs.r
	e := r.Load(fs.sb.sharedWord(swEpoch))
	head := r.Load(fs.rec + hrLimbo)
	if head == 0 || r.Load(head+lbCount) == limboCap {
		nb, err := fs.alloc(pageClass)
		if err != nil {
			// No room for bookkeeping: leak the object rather than free it
			// early. fsck finds it.
			return
		}
		clear(r.Bytes(nb, BlockSize))
		r.Store(nb, hdrWord(typeLimbo, pageClass, 0))
		r.Store(nb+lbNext, head)
		r.Store(fs.rec+hrLimbo, nb)
		head = nb
	}
	n := r.Load(head + lbCount)
	r.Store(head+lbEntries+8*n, off)
	if r.Load(head+lbEpoch) < e {
		r.Store(head+lbEpoch, e)
	}
	r.Store(head+lbCount, n+1)
}

// reclaim advances the epoch if it can and frees what has aged.
func (fs *FS) reclaim() {
	if fs.rec == 0 {
		return
	}
	fs.limboMu.Lock()
	defer fs.limboMu.Unlock()
	fs.tryAdvance()
	fs.freeExpiredLocked()
}

// tryAdvance moves E forward by one if every live announcement shows E.
func (fs *FS) tryAdvance() bool {
	r := fs.r
	ew := fs.sb.sharedWord(swEpoch)
	e := r.Load(ew)
	for s := range fs.sb.MaxHosts {
		rec := fs.sb.hostRec(s)
		inc := r.Load(rec + hrInc)
		if inc == 0 {
			continue
		}
		for i := range epochSlots {
			a := r.Load(rec + hrEpochs + uint64(i)*8)
			if a == 0 || a>>1 == e {
				continue
			}
			// Someone lags. A dead host stops lagging once the background
			// loop has reaped it (reapDead), which clears its words.
			return false
		}
	}
	if r.CAS(ew, e, e+1) {
		fs.stats.EpochAdvance.Add(1)
		return true
	}
	return false
}

// freeExpiredLocked frees every limbo block whose entries are two epochs old.
func (fs *FS) freeExpiredLocked() {
	r := fs.r
	e := r.Load(fs.sb.sharedWord(swEpoch))
	prev := fs.rec + hrLimbo // word pointing at b
	for b := r.Load(prev); b != 0; {
		if !fs.validObj(b, pageClass) {
			r.Store(prev, 0) // corrupt chain: drop it (leak, fsck repairs)
			return
		}
		next := r.Load(b + lbNext)
		if r.Load(b+lbEpoch)+2 > e {
			prev = b + lbNext
			b = next
			continue
		}
		n := min(r.Load(b+lbCount), limboCap)
		for i := range n {
			off := r.Load(b + lbEntries + 8*i)
			fs.free(off)
			fs.stats.Reclaimed.Add(1)
		}
		if prev == fs.rec+hrLimbo && next == 0 {
			// Keep the only block for reuse.
			r.Store(b+lbCount, 0)
			r.Store(b+lbEpoch, 0)
			return
		}
		r.Store(prev, next)
		fs.free(b)
		b = next
	}
}

// adoptLimbo links a limbo block taken from a dead host's record into ours,
// behind our head so that the head stays the block we fill.
func (fs *FS) adoptLimbo(b uint64) {
	fs.limboMu.Lock()
	defer fs.limboMu.Unlock()
	r := fs.r
	head := r.Load(fs.rec + hrLimbo)
	if head == 0 {
		r.Store(b+lbNext, 0)
		r.Store(fs.rec+hrLimbo, b)
		return
	}
	r.Store(b+lbNext, r.Load(head+lbNext))
	r.Store(head+lbNext, b)
}

// reapDead takes over the records of every host that died.
func (fs *FS) reapDead() {
	for s := range fs.sb.MaxHosts {
		rec := fs.sb.hostRec(s)
		inc := fs.r.Load(rec + hrInc)
		if inc == 0 || inc == fs.host.Incarnation() {
			continue
		}
		if fs.ht.Fence(s, inc) {
			fs.reap(s, inc)
		}
	}
}

// reap finishes what dead incarnation inc left in slot's record: its
// pending intents, its limbo list (re-retired here, because readers of
// other hosts may still hold those objects), its epoch announcements.
// Several hosts may try at once; the reaper word makes one of them do it,
// and a reaper that dies is itself replaced.
func (fs *FS) reap(slot int, inc uint64) {
	r := fs.r
	rec := fs.sb.hostRec(slot)
	me := fs.host.Incarnation()
	for {
		if r.Load(rec+hrInc) != inc {
			return // already reaped
		}
		cur := r.Load(rec + hrReaper)
		if cur == me {
			break
		}
		if cur != 0 && !fs.reaperDead(cur) {
			return // a live host is reaping it
		}
		if r.CAS(rec+hrReaper, cur, me) {
			break
		}
	}
	// Intents first: while the dead host's epoch words are still set,
	// nothing it referenced can have been freed.
	for i := range epochSlots {
		fs.finishIntent(rec + hrIntents + uint64(i)*intentSize)
	}
	// Limbo blocks keep their epoch stamps, so they can be freed by
	// whoever holds them: move them one by one into our own chain (a
	// reaper dying here loses at most one block, never frees twice). In
	// our own slot the chain simply becomes ours.
	if rec != fs.rec {
		for {
			b := r.Load(rec + hrLimbo)
			if b == 0 {
				break
			}
			if !fs.validObj(b, pageClass) {
				r.Store(rec+hrLimbo, 0)
				break
			}
			if r.CAS(rec+hrLimbo, b, r.Load(b+lbNext)) {
				fs.adoptLimbo(b)
			}
		}
	}
	for i := range epochSlots {
		r.Store(rec+hrEpochs+uint64(i)*8, 0)
	}
	if r.CAS(rec+hrInc, inc, 0) {
		fs.stats.Reaped.Add(1)
	}
	r.CAS(rec+hrReaper, me, 0)
}

// reaperDead reports whether the incarnation inc is no longer a live holder
// of any slot.
func (fs *FS) reaperDead(inc uint64) bool {
	for s := range fs.sb.MaxHosts {
		if fs.r.Load(fs.sb.hostRec(s)+hrInc) == inc {
			return fs.ht.Fence(s, inc)
		}
	}
	return true
}

// backoff yields and, after a while, sleeps: contention between hosts is
// resolved by retrying, never by blocking on another host.
func backoff(i int) {
	switch {
	case i < 8:
	case i < 64:
		runtime.Gosched()
	default:
		time.Sleep(time.Duration(min(i, 1000)) * time.Microsecond)
	}
}
