package cxl

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The host table follows the region header. Each process that uses the
// region holds one slot for as long as it runs:
//
//	table: [ 64-byte table header ][ slot 0 ][ slot 1 ] ... [ slot N-1 ]
//	table header: joins u64 (count of successful joins), 56 bytes reserved
//	slot (64 bytes):
//	  0  owner      u64  incarnation of the holder; 0 = free
//	  8  heartbeat  u64  unix nanoseconds of the holder's last beat
//	  16 pid        u64  informational
//	  24 joined     u64  unix nanoseconds of the join, informational
//	  32 name       [32]byte, informational, NUL padded
//
// Liveness: a slot is held by incarnation I while owner == I and the
// heartbeat is younger than the lease. Claiming a slot — free or expired —
// first CASes the heartbeat from the value seen to now, then CASes owner from
// the value seen to the new incarnation; so a just-claimed slot always shows
// a fresh heartbeat and cannot be stolen as expired. The holder's own beat is
// a CAS from its last written heartbeat, so it notices at once that someone
// took the slot and fences itself. Clocks of hosts are assumed synchronised
// to well within the lease.
const (
	hostTableHdr = 64
	slotSize     = 64
	slotOwner    = 0
	slotBeat     = 8
	slotPID      = 16
	slotJoined   = 24
	slotName     = 32
)

func hostTableLen(maxHosts int) uint64 { return hostTableHdr + uint64(maxHosts)*slotSize }

var (
	// ErrNoSlot reports a full host table.
	ErrNoSlot = errors.New("cxl: no free host slot")
	// ErrFenced reports that this host lost its slot (it was declared dead
	// after missing its lease) and must stop touching the region.
	ErrFenced = errors.New("cxl: host fenced: slot taken over after a missed lease")
)

// HostTable is a view of the region's host table.
type HostTable struct {
	r     *Region
	off   uint64
	slots int
	lease time.Duration
	now   func() int64
}

// OpenHostTable returns the host table of a region whose header is h.
func OpenHostTable(r *Region, h *Header) (*HostTable, error) {
	if err := r.Check(h.HostsOff, hostTableLen(h.MaxHosts)); err != nil {
		return nil, fmt.Errorf("cxl: host table: %w", err)
	}
	return &HostTable{r: r, off: h.HostsOff, slots: h.MaxHosts, lease: h.Lease, now: func() int64 { return time.Now().UnixNano() }}, nil
}

// MaxHosts is the number of slots.
func (t *HostTable) MaxHosts() int { return t.slots }

// Lease is how long a heartbeat stays valid.
func (t *HostTable) Lease() time.Duration { return t.lease }

func (t *HostTable) slotOff(slot int) uint64 { return t.off + hostTableHdr + uint64(slot)*slotSize }

func (t *HostTable) expired(beat uint64) bool {
	return t.now()-int64(beat) >= int64(t.lease)
}

// Alive reports whether slot is held by incarnation inc with a live lease.
func (t *HostTable) Alive(slot int, inc uint64) bool {
	if slot < 0 || slot >= t.slots || inc == 0 {
		return false
	}
	so := t.slotOff(slot)
	if t.r.Load(so+slotOwner) != inc {
		return false
	}
	return !t.expired(t.r.Load(so + slotBeat))
}

// Fence makes sure incarnation inc can never again act as the holder of
// slot and reports whether that is so now. It returns false only while inc
// still holds slot with a live lease. After Fence returns true, whatever inc
// left in the region (per-host records tagged with inc) may be taken over.
func (t *HostTable) Fence(slot int, inc uint64) bool {
	if slot < 0 || slot >= t.slots || inc == 0 {
		return true
	}
	so := t.slotOff(slot)
	for {
		o := t.r.Load(so + slotOwner)
		if o != inc {
			return true
		}
		if !t.expired(t.r.Load(so + slotBeat)) {
			return false
		}
		if t.r.CAS(so+slotOwner, inc, 0) {
			return true
		}
	}
}

// HostInfo describes one slot.
type HostInfo struct {
	Slot        int
	Incarnation uint64
	PID         int
	Name        string
	Joined      time.Time
	Heartbeat   time.Time
	Alive       bool
}

// Hosts lists every slot that is or was held (owner != 0).
func (t *HostTable) Hosts() []HostInfo {
	var out []HostInfo
	for s := range t.slots {
		so := t.slotOff(s)
		o := t.r.Load(so + slotOwner)
		if o == 0 {
			continue
		}
		beat := t.r.Load(so + slotBeat)
		name := make([]byte, 32)
		copy(name, t.r.Bytes(so+slotName, 32))
		n := 0
		for n < len(name) && name[n] != 0 {
			n++
		}
		out = append(out, HostInfo{
			Slot:        s,
			Incarnation: o,
			PID:         int(t.r.Load(so + slotPID)),
			Name:        string(name[:n]),
			Joined:      time.Unix(0, int64(t.r.Load(so+slotJoined))),
			Heartbeat:   time.Unix(0, int64(beat)),
			Alive:       !t.expired(beat),
		})
	}
	return out
}

// LiveHosts counts slots held with a live lease.
func (t *HostTable) LiveHosts() int {
	n := 0
	for _, h := range t.Hosts() {
		if h.Alive {
			n++
		}
	}
	return n
}

// JoinOptions describe a joining host.
type JoinOptions struct {
	// Name is shown by inspect; at most 31 bytes are kept.
	Name string
}

// Host is this process's membership in the host table.
type Host struct {
	t      *HostTable
	slot   int
	inc    uint64
	so     uint64
	last   atomic.Uint64 // heartbeat value we last wrote
	fenced atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newIncarnation() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Errorf("cxl: crypto/rand: %w", err))
		}
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Join claims a free slot, or the slot of a host whose lease expired, and
// starts heartbeating it until Leave.
func (t *HostTable) Join(o JoinOptions) (*Host, error) {
	if t.r.ro {
		return nil, fmt.Errorf("cxl: join host table of %s: region is read-only", t.r.path)
	}
	inc := newIncarnation()
	// Two passes: prefer free slots, then take over expired ones.
	for pass := 0; pass < 2; pass++ {
		for s := range t.slots {
			so := t.slotOff(s)
			owner := t.r.Load(so + slotOwner)
			beat := t.r.Load(so + slotBeat)
			if pass == 0 && owner != 0 {
				continue
			}
			if owner != 0 && !t.expired(beat) {
				continue
			}
			now := uint64(t.now())
			if now == beat {
				now++
			}
			if !t.r.CAS(so+slotBeat, beat, now) {
				continue
			}
			if !t.r.CAS(so+slotOwner, owner, inc) {
				continue
			}
			h := &Host{t: t, slot: s, inc: inc, so: so, stop: make(chan struct{}), done: make(chan struct{})}
			h.last.Store(now)
			t.r.Store(so+slotPID, uint64(os.Getpid()))
			t.r.Store(so+slotJoined, now)
			var name [32]byte
			copy(name[:31], o.Name)
			copy(t.r.Bytes(so+slotName, 32), name[:])
			t.r.Add(t.off, 1)
			t.r.onClose(h.halt)
			go h.beatLoop()
			return h, nil
		}
	}
	return nil, fmt.Errorf("%w: all %d slots of %s are held by live hosts", ErrNoSlot, t.slots, t.r.path)
}

// Slot is the index of this host's slot.
func (h *Host) Slot() int { return h.slot }

// Incarnation is this join's random, non-zero identity.
func (h *Host) Incarnation() uint64 { return h.inc }

// Table is the host table this host joined.
func (h *Host) Table() *HostTable { return h.t }

// Err returns ErrFenced once this host has lost its slot or missed its own
// lease; a fenced host must stop mutating the region.
func (h *Host) Err() error {
	if h.fenced.Load() {
		return ErrFenced
	}
	if h.t.r.Load(h.so+slotOwner) != h.inc || h.t.expired(h.last.Load()) {
		h.fenced.Store(true)
		return ErrFenced
	}
	return nil
}

// Beat renews the lease now. The background loop calls it every lease/4.
func (h *Host) Beat() error {
	if err := h.Err(); err != nil {
		return err
	}
	last := h.last.Load()
	now := uint64(h.t.now())
	if now <= last {
		now = last + 1
	}
	if !h.t.r.CAS(h.so+slotBeat, last, now) {
		h.fenced.Store(true)
		return ErrFenced
	}
	h.last.Store(now)
	return nil
}

func (h *Host) beatLoop() {
	defer close(h.done)
	tick := time.NewTicker(h.t.lease / 4)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
			if h.Beat() != nil {
				return
			}
		}
	}
}

// Leave stops heartbeating and frees the slot.
func (h *Host) Leave() error {
	h.halt()
	if h.fenced.Load() {
		return nil
	}
	h.fenced.Store(true)
	if !h.t.r.CAS(h.so+slotOwner, h.inc, 0) {
		return fmt.Errorf("cxl: leave slot %d: %w", h.slot, ErrFenced)
	}
	return nil
}

// Abandon stops heartbeating without freeing the slot, as a crash would.
// Tests use it to play a host that died.
func (h *Host) Abandon() {
	h.halt()
	h.fenced.Store(true)
}

func (h *Host) halt() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}
