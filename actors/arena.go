package actors

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/cxl"
)

// ExtentName is the region extent that holds the actor arena.
const ExtentName = "actors"

// ArenaOptions size a new arena.
type ArenaOptions struct {
	MaxActors  int    // actor table entries; default 16
	Slots      int    // ring slots per actor; default 64
	MaxRequest uint32 // bytes per request; default 64 KiB
	MaxOutput  uint32 // bytes per output; default MaxRequest + MaxRequest/128 + 1024
	MaxState   uint32 // state arena bytes per actor; default 1 MiB
}

func (o *ArenaOptions) fill() {
	if o.MaxActors == 0 {
		o.MaxActors = 16
	}
	if o.Slots == 0 {
		o.Slots = 64
	}
	if o.MaxRequest == 0 {
		o.MaxRequest = 64 << 10
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = o.MaxRequest + o.MaxRequest/128 + 1024
	}
	if o.MaxState == 0 {
		o.MaxState = 1 << 20
	}
}

// Arena is a process's view of the actor arena in a region.
type Arena struct {
	r     *cxl.Region
	base  uint64 // extent offset in the region
	hdr   arenaHeader
	hosts *cxl.HostTable

	mu    sync.Mutex
	descs map[int]*desc
	names map[string]int
}

// OpenArena opens the "actors" extent of a region. If the extent has never
// been formatted (all zero) and o is non-nil, it formats it with o; the
// first process to get there does it, the others wait.
func OpenArena(r *cxl.Region, h *cxl.Header, hosts *cxl.HostTable, o *ArenaOptions) (*Arena, error) {
	ext, err := h.Extent(ExtentName)
	if err != nil {
		return nil, fmt.Errorf("actors: open arena in %s: %w", r.Path(), err)
	}
	if ext.Off%4096 != 0 || ext.Len < arenaHdrLen+entryLen {
		return nil, fmt.Errorf("actors: extent %q [%#x,+%#x) too small or misaligned: %w", ExtentName, ext.Off, ext.Len, ErrCorrupt)
	}
	a := &Arena{r: r, base: ext.Off, hosts: hosts, descs: map[int]*desc{}, names: map[string]int{}}
	const formatting = 1
	for deadline := time.Now().Add(10 * time.Second); ; {
		switch m := r.Load(a.base + ahMagic); m {
		case 0:
			if o == nil {
				return nil, fmt.Errorf("actors: arena in %s is not formatted: %w", r.Path(), ErrCorrupt)
			}
			if r.CAS(a.base+ahMagic, 0, formatting) {
				a.format(ext.Len, *o)
			}
			continue
		case formatting:
			if o == nil {
				return nil, fmt.Errorf("actors: arena in %s is being formatted by a daemon: %w", r.Path(), ErrCorrupt)
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("actors: arena in %s: formatting did not finish: %w", r.Path(), ErrCorrupt)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	a.hdr, err = decodeArenaHeader(r.Bytes(a.base, ahImmutable+8), ext.Len)
	if err != nil {
		return nil, fmt.Errorf("actors: %s: %w", r.Path(), err)
	}
	return a, nil
}

func (a *Arena) format(extLen uint64, o ArenaOptions) {
	o.fill()
	h := arenaHeader{Len: extLen, MaxActors: uint64(o.MaxActors), Slots: uint64(o.Slots),
		MaxReq: uint64(o.MaxRequest), MaxOut: uint64(o.MaxOutput), MaxState: uint64(o.MaxState)}
	if h.tableEnd() > extLen {
		h.MaxActors = (extLen - arenaHdrLen) / entryLen
	}
	clear(a.r.Bytes(a.base+8, h.tableEnd()-8))
	b := h.encode()
	copy(a.r.Bytes(a.base+8, uint64(len(b)-8)), b[8:])
	a.r.Store(a.base+ahBump, h.tableEnd())
	a.r.Persist(a.base, h.tableEnd())
	a.r.Store(a.base+ahMagic, arenaMagic) // publish
	a.r.Persist(a.base, 8)
}

func (a *Arena) entry(i int) uint64 { return a.base + arenaHdrLen + uint64(i)*entryLen }

// word helpers on extent-relative offsets
func (a *Arena) load(off uint64) uint64        { return a.r.Load(a.base + off) }
func (a *Arena) cas(off, old, new uint64) bool { return a.r.CAS(a.base+off, old, new) }
func (a *Arena) store(off, v uint64)           { a.r.Store(a.base+off, v) }
func (a *Arena) bytes(off, n uint64) []byte    { return a.r.Bytes(a.base+off, n) }
func (a *Arena) entryRel(i int) uint64         { return arenaHdrLen + uint64(i)*entryLen }
func nameHash(name string) uint32              { h := fnv.New32a(); h.Write([]byte(name)); return h.Sum32() | 1 }
func (a *Arena) probe(h uint32, k int) int     { return int((uint64(h) + uint64(k)) % a.hdr.MaxActors) }

// desc returns the validated descriptor of live entry i (cached: it is
// immutable once live).
func (a *Arena) desc(i int) (*desc, error) {
	a.mu.Lock()
	d := a.descs[i]
	a.mu.Unlock()
	if d != nil {
		return d, nil
	}
	e := a.entryRel(i)
	if a.load(e+enClaim)&0xff != claimLive {
		return nil, fmt.Errorf("actors: actor entry %d is not live: %w", i, ErrNotFound)
	}
	dd, err := decodeDesc(a.bytes(e+enDesc, descLen+8), a.hdr, a.hdr.tableEnd())
	if err != nil {
		return nil, fmt.Errorf("actors: entry %d: %w", i, err)
	}
	a.mu.Lock()
	a.descs[i] = &dd
	a.names[dd.Name] = i
	a.mu.Unlock()
	return &dd, nil
}

// Lookup finds the live actor called name.
func (a *Arena) Lookup(name string) (int, error) {
	a.mu.Lock()
	i, ok := a.names[name]
	a.mu.Unlock()
	if ok {
		return i, nil
	}
	h := nameHash(name)
	for k := 0; k < int(a.hdr.MaxActors); k++ {
		i := a.probe(h, k)
		cw := a.load(a.entryRel(i) + enClaim)
		if cw == claimFree {
			break
		}
		if uint32(cw>>32) != h || cw&0xff != claimLive {
			continue
		}
		if d, err := a.desc(i); err == nil && d.Name == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("actors: %q: %w", name, ErrNotFound)
}

// DeployOptions describe a deployment.
type DeployOptions struct {
	Side      Side   // where the actor starts
	StateSize uint32 // state arena bytes; default 4096
	Arg       []byte // passed to wio_init
	Slots     int    // ring slots; default (and at most) the arena's
	// Trusted runs the actor without a per-call deadline: several times
	// faster (no termination checks compiled into its loops), but an
	// actor that never returns blocks its own worker. Traps and the memory
	// limit are contained either way. Deploy-time validation and wio_init
	// always run with the deadline.
	Trusted bool
}

// Deploy validates wasm (compiling it with rt and running wio_init over a
// fresh state arena), then publishes it in the arena under name. A module
// that is malformed, imports anything outside the ABI, or traps in its
// start function or wio_init is rejected and nothing is published.
func (a *Arena) Deploy(ctx context.Context, rt *Runtime, name string, wasm []byte, o DeployOptions) error {
	if len(name) == 0 || len(name) > maxNameLen {
		return fmt.Errorf("actors: deploy %q: name must be 1..%d bytes", name, maxNameLen)
	}
	if o.StateSize == 0 {
		o.StateSize = 4096
	}
	if uint64(o.StateSize) > a.hdr.MaxState {
		return fmt.Errorf("actors: deploy %s: state of %d bytes over the arena's limit %d: %w", name, o.StateSize, a.hdr.MaxState, ErrTooLarge)
	}
	if o.Slots <= 0 || uint64(o.Slots) > a.hdr.Slots {
		o.Slots = int(a.hdr.Slots)
	}
	if o.Side >= maxSides {
		return fmt.Errorf("actors: deploy %s: side %d", name, o.Side)
	}
	m, err := rt.Compile(ctx, wasm)
	if err != nil {
		return fmt.Errorf("actors: deploy %s: %w", name, err)
	}
	inst, err := m.Instantiate(ctx, name, uint32(a.hdr.MaxReq))
	if err != nil {
		return fmt.Errorf("actors: deploy %s: %w", name, err)
	}
	state := make(abi.Mem, o.StateSize)
	err = inst.Init(ctx, state, o.Arg)
	inst.Close(ctx)
	if err != nil {
		return fmt.Errorf("actors: deploy %s: %w", name, err)
	}

	// Claim an entry: open addressing on the name hash.
	h := nameHash(name)
	idx := -1
	for k := 0; k < int(a.hdr.MaxActors) && idx < 0; k++ {
		i := a.probe(h, k)
		e := a.entryRel(i)
		for {
			cw := a.load(e + enClaim)
			if cw == claimFree {
				if a.cas(e+enClaim, claimFree, claimWord(h, claimInit)) {
					idx = i
				} else {
					continue
				}
				break
			}
			if uint32(cw>>32) == h && cw&0xff == claimInit {
				select { // same name being deployed: wait for it
				case <-ctx.Done():
					return fmt.Errorf("actors: deploy %s: waiting for a concurrent deploy: %w", name, ctx.Err())
				case <-time.After(time.Millisecond):
				}
				continue
			}
			if uint32(cw>>32) == h && cw&0xff == claimLive {
				if d, err := a.desc(i); err == nil && d.Name == name {
					return fmt.Errorf("actors: deploy %s: %w", name, ErrExists)
				}
			}
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("actors: deploy %s: all %d actor entries used: %w", name, a.hdr.MaxActors, ErrFull)
	}
	e := a.entryRel(idx)
	fail := func(err error) error {
		a.store(e+enClaim, claimWord(h, claimDead))
		return fmt.Errorf("actors: deploy %s: %w", name, err)
	}
	d := desc{ModuleLen: uint64(len(wasm)), StateSize: uint64(o.StateSize), Slots: uint64(o.Slots),
		InCap: a.hdr.MaxReq, OutCap: a.hdr.MaxOut, Name: name, Hash: m.Hash, Side: o.Side, Trusted: o.Trusted}
	d.Stride = align(slData+align(d.InCap, 64)+d.OutCap, 64)
	ss := stateStride(d.StateSize)
	need := align(d.ModuleLen, 64) + 3*ss + d.Slots*d.Stride
	var off uint64
	for {
		b := a.load(ahBump)
		if b+need > a.hdr.Len {
			return fail(fmt.Errorf("needs %d bytes, %d left: %w", need, a.hdr.Len-b, ErrFull))
		}
		if a.cas(ahBump, b, b+need) {
			off = b
			break
		}
	}
	d.ModuleOff = off
	d.StateOff = off + align(d.ModuleLen, 64)
	d.RingOff = d.StateOff + 3*ss
	copy(a.bytes(d.ModuleOff, d.ModuleLen), wasm)
	clear(a.bytes(d.StateOff, 3*ss))
	copy(a.bytes(d.StateOff, d.StateSize), state)
	for s := uint64(0); s < d.Slots; s++ {
		so := d.RingOff + s*d.Stride
		clear(a.bytes(so, slData))
		a.store(so+slWord, slotWordT{seq: s, state: slotFree}.word())
	}
	a.store(e+enCommit, commitWord(1, 0, 0))
	a.store(e+enTail, 0)
	for _, w := range []uint64{enDrainStart, enBlackout, enMigrations, enTakeovers} {
		a.store(e+w, 0)
	}
	a.store(e+enOwner, owner{state: ownRunning, side: o.Side, epoch: 1}.word())
	copy(a.bytes(e+enDesc, descLen+8), d.encode())
	if err := a.r.Persist(a.base+off, need); err != nil {
		return fail(err)
	}
	if err := a.r.Persist(a.base+e, entryLen); err != nil {
		return fail(err)
	}
	a.store(e+enClaim, claimWord(h, claimLive)) // publish
	return a.r.Persist(a.base+e, 8)
}

// Module returns the wasm bytes of a live actor (a view into the region).
func (a *Arena) module(d *desc) []byte { return a.bytes(d.ModuleOff, d.ModuleLen) }

// ActorInfo is one line of `wio status`.
type ActorInfo struct {
	Name        string `json:"name"`
	Owner       string `json:"owner"`
	Side        string `json:"side"`
	Epoch       uint64 `json:"epoch"`
	Submitted   uint64 `json:"submitted"`
	Completed   uint64 `json:"completed"`
	QueueDepth  uint64 `json:"queue_depth"`
	Migrations  uint64 `json:"migrations"`
	Takeovers   uint64 `json:"takeovers"`
	LastBlackNS uint64 `json:"last_blackout_ns"`
	StateSize   uint64 `json:"state_size"`
	ModuleSize  uint64 `json:"module_size"`
	Trusted     bool   `json:"trusted"`
}

// SideInfo describes one side's daemon.
type SideInfo struct {
	Side  string `json:"side"`
	PID   int    `json:"pid"`
	Slot  int    `json:"host_slot"`
	Alive bool   `json:"alive"`
}

// Status lists live actors and sides.
func (a *Arena) Status() ([]ActorInfo, []SideInfo) {
	var out []ActorInfo
	for i := 0; i < int(a.hdr.MaxActors); i++ {
		if a.load(a.entryRel(i)+enClaim)&0xff != claimLive {
			continue
		}
		d, err := a.desc(i)
		if err != nil {
			continue
		}
		e := a.entryRel(i)
		o := decodeOwner(a.load(e + enOwner))
		tail, done := a.load(e+enTail), commitDone(a.load(e+enCommit))
		out = append(out, ActorInfo{Name: d.Name, Owner: o.String(), Side: o.side.String(), Epoch: o.epoch,
			Submitted: tail, Completed: done, QueueDepth: tail - min(done, tail),
			Migrations: a.load(e + enMigrations), Takeovers: a.load(e + enTakeovers),
			LastBlackNS: a.load(e + enBlackout), StateSize: d.StateSize, ModuleSize: d.ModuleLen, Trusted: d.Trusted})
	}
	var sides []SideInfo
	for s := Side(0); s < maxSides; s++ {
		inc, slot, pid := a.sideRec(s)
		si := SideInfo{Side: s.String(), PID: int(pid), Slot: int(slot)}
		if inc != 0 {
			si.Alive = a.hosts.Alive(int(slot), inc)
		} else {
			si.Slot = -1
		}
		sides = append(sides, si)
	}
	return out, sides
}

// State returns a copy of the published state arena of actor name.
func (a *Arena) State(name string) ([]byte, error) {
	i, err := a.Lookup(name)
	if err != nil {
		return nil, err
	}
	d, err := a.desc(i)
	if err != nil {
		return nil, err
	}
	c := a.load(a.entryRel(i) + enCommit)
	if commitBuf(c) > 2 {
		return nil, fmt.Errorf("actors: %s: commit word %#x names state buffer %d: %w", name, c, commitBuf(c), ErrCorrupt)
	}
	return append([]byte(nil), a.bytes(d.StateOff+uint64(commitBuf(c))*stateStride(d.StateSize), d.StateSize)...), nil
}

func (a *Arena) sideRec(s Side) (inc, slot, pid uint64) {
	o := ahSides + uint64(s)*sideRecLen
	for {
		inc = a.load(o)
		slot, pid = a.load(o+8), a.load(o+16)
		if a.load(o) == inc {
			return
		}
	}
}

// sideAlive reports whether side s has a registered daemon with a live lease.
func (a *Arena) sideAlive(s Side) bool {
	inc, slot, _ := a.sideRec(s)
	return inc != 0 && a.hosts.Alive(int(slot), inc)
}

// sideFenced reports whether side s's registered daemon (if any) can never
// act again, fencing it if its lease expired.
func (a *Arena) sideFenced(s Side) bool {
	inc, slot, _ := a.sideRec(s)
	if inc == sideLocked {
		return false
	}
	return inc == 0 || a.hosts.Fence(int(slot), inc)
}

// hostDead reports whether the producer recorded in a slot word is gone.
func (a *Arena) hostDead(slot int, tag uint8) bool {
	for _, h := range a.hosts.Hosts() {
		if h.Slot == slot {
			return incTag(h.Incarnation) != tag || !h.Alive
		}
	}
	return true
}

// Migrate moves actor name to side to with drain-and-switch and waits for
// the outcome: nil once the target serves it, ErrAborted if the handoff
// was rolled back, ErrTargetDown if no daemon serves the target side.
func (a *Arena) Migrate(ctx context.Context, name string, to Side) error {
	i, err := a.Lookup(name)
	if err != nil {
		return err
	}
	e := a.entryRel(i)
	var from owner
	for {
		w := a.load(e + enOwner)
		o := decodeOwner(w)
		if o.state == ownRunning {
			if o.side == to {
				return nil
			}
			if !a.sideAlive(to) {
				return fmt.Errorf("actors: migrate %s to %v: %w", name, to, ErrTargetDown)
			}
			a.store(e+enDrainStart, uint64(time.Now().UnixNano()))
			n := owner{state: ownDraining, side: o.side, target: to, epoch: o.epoch}
			if a.cas(e+enOwner, w, n.word()) {
				from = n
				break
			}
			continue
		}
		// Another migration is in flight: wait for it to settle.
		if err := sleepCtx(ctx, 100*time.Microsecond); err != nil {
			return fmt.Errorf("actors: migrate %s: %s: %w", name, o, err)
		}
	}
	var b backoff
	for {
		o := decodeOwner(a.load(e + enOwner))
		if o.state == ownRunning && o.epoch > from.epoch {
			if o.side == to {
				return nil
			}
			return fmt.Errorf("actors: migrate %s to %v: %w", name, to, ErrAborted)
		}
		if err := b.wait(ctx); err != nil {
			return fmt.Errorf("actors: migrate %s to %v: still %s: %w", name, to, o, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff spins briefly, then yields, then sleeps up to 200µs.
type backoff struct{ n int }

func (b *backoff) reset() { b.n = 0 }

func (b *backoff) wait(ctx context.Context) error {
	b.n++
	switch {
	case b.n < 64:
		runtimeGosched()
		return nil
	default:
		d := time.Duration(min(b.n-63, 20)) * 10 * time.Microsecond
		if ctx == nil {
			time.Sleep(d)
			return nil
		}
		return sleepCtx(ctx, d)
	}
}

var le = binary.LittleEndian
