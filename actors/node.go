package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/daxwio/daxwio/cxl"
)

// NodeOptions configure a side's daemon.
type NodeOptions struct {
	// Persist calls Region.Persist on the state, output and commit word of
	// every request (durability across power loss, at a syscall per
	// request on file-backed regions). Crash of a process needs no Persist.
	Persist bool
	// HoleTimeout is how long a claimed but never written ring slot is
	// waited for before it is abandoned; default 2s.
	HoleTimeout time.Duration
	// Scan is how often the actor table is scanned for new actors; default 5ms.
	Scan time.Duration
	// Registerer receives the node's metrics (nil: none).
	Registerer prometheus.Registerer
	// Log receives one line per ownership change; nil discards.
	Log io.Writer
	// Exec, if set, runs every actor call of this side (the seam where the
	// device emulator of cxl/device slows and accounts the device's
	// cores); nil runs calls directly.
	Exec func(ctx context.Context, call func() error) error
}

// Node serves one side: it runs the actors this side owns, takes over
// actors whose owner died, and follows drain-and-switch migrations.
type Node struct {
	a    *Arena
	host *cxl.Host
	side Side
	rt   *Runtime
	o    NodeOptions
	m    *nodeMetrics

	mu      sync.Mutex
	workers map[int]*worker
	wg      sync.WaitGroup
}

const sideLocked = 1 // registration in progress

// NewNode registers host as side's daemon. It fails if another live
// daemon serves that side.
func NewNode(a *Arena, host *cxl.Host, side Side, rt *Runtime, o NodeOptions) (*Node, error) {
	if side >= maxSides {
		return nil, fmt.Errorf("actors: side %d", side)
	}
	if o.HoleTimeout == 0 {
		o.HoleTimeout = 2 * time.Second
	}
	if o.Scan == 0 {
		o.Scan = 5 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	rec := ahSides + uint64(side)*sideRecLen
	lockedSince := time.Time{}
	for {
		inc := a.load(rec)
		if inc == sideLocked {
			if lockedSince.IsZero() {
				lockedSince = time.Now()
			}
			if time.Since(lockedSince) < 2*a.hosts.Lease() {
				time.Sleep(time.Millisecond)
				continue
			}
		} else if inc != 0 {
			_, slot, pid := a.sideRec(side)
			if !a.hosts.Fence(int(slot), inc) {
				return nil, fmt.Errorf("actors: side %v is already served by pid %d (host slot %d)", side, pid, slot)
			}
		}
		if a.cas(rec, inc, sideLocked) {
			break
		}
	}
	a.store(rec+8, uint64(host.Slot()))
	a.store(rec+16, uint64(os.Getpid()))
	a.store(rec, host.Incarnation())
	n := &Node{a: a, host: host, side: side, rt: rt, o: o, workers: map[int]*worker{}}
	n.m = newNodeMetrics(o.Registerer, side)
	return n, nil
}

func (n *Node) logf(format string, args ...any) {
	if n.o.Log == io.Discard {
		return // ownership changes are on the blackout's critical path
	}
	fmt.Fprintf(n.o.Log, "wio %v: "+format+"\n", append([]any{n.side}, args...)...)
}

// Run serves until ctx is done or the host is fenced (ErrFenced). On a
// clean stop, actors this side owns are handed to the other side if it is
// alive.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		n.wg.Wait()
	}()
	t := time.NewTicker(n.o.Scan)
	defer t.Stop()
	for {
		if err := n.host.Err(); err != nil {
			return fmt.Errorf("actors: %v daemon: %w", n.side, err)
		}
		n.scan(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (n *Node) scan(ctx context.Context) {
	for i := 0; i < int(n.a.hdr.MaxActors); i++ {
		n.mu.Lock()
		_, have := n.workers[i]
		n.mu.Unlock()
		if have || n.a.load(n.a.entryRel(i)+enClaim)&0xff != claimLive {
			continue
		}
		d, err := n.a.desc(i)
		if err != nil {
			n.logf("actor entry %d: %v", i, err)
			continue
		}
		w := &worker{n: n, idx: i, d: d, e: n.a.entryRel(i)}
		w.met = n.m.actor(d.Name)
		n.mu.Lock()
		n.workers[i] = w
		n.mu.Unlock()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			w.run(ctx)
		}()
	}
}

type worker struct {
	n   *Node
	idx int
	d   *desc
	e   uint64
	met *actorMetrics

	inst      *Instance
	instErr   error
	instFails int
	preparing bool
	ready     chan instResult
	my        uint64 // epoch we own the actor at; 0 = not owner

	blackoutPending bool
	holeSeq         uint64
	holeSince       time.Time
	buf             []byte
}

func (w *worker) ownerWord() (uint64, owner) {
	v := w.n.a.load(w.e + enOwner)
	return v, decodeOwner(v)
}

func (w *worker) run(ctx context.Context) {
	a, me := w.n.a, w.n.side
	var b backoff
	// Instantiate up front on both sides, so a migration costs a switch,
	// not an instantiation.
	w.ready = make(chan instResult, 1)
	w.instance(ctx)
	defer func() {
		if w.preparing {
			if r := <-w.ready; r.inst != nil {
				r.inst.Close(context.Background())
			}
		}
		if w.inst != nil {
			w.inst.Close(context.Background())
		}
	}()
	for {
		if ctx.Err() != nil {
			w.release()
			return
		}
		if w.n.host.Err() != nil {
			return
		}
		ow, o := w.ownerWord()
		busy := false
		switch {
		case o.state == ownRunning && o.side == me:
			if o.epoch != w.my {
				// Left by an earlier incarnation of this side: re-acquire
				// with a new epoch, which fences that incarnation's commits.
				if a.cas(w.e+enOwner, ow, owner{state: ownRunning, side: me, epoch: o.epoch + 1}.word()) {
					w.acquire(o.epoch+1, "acquired")
				}
				continue
			}
			busy = w.serve(ctx)
		case o.state == ownDraining && o.side == me:
			if o.epoch != w.my {
				// Drain left by an earlier incarnation of this side (or one
				// that started before we acquired): this incarnation has
				// dequeued nothing, so the drain is complete.
				w.lose()
				if a.cas(w.e+enOwner, ow, owner{state: ownHandoff, side: o.target, epoch: o.epoch + 1}.word()) {
					w.n.logf("%s: completed a drain to %v left by an earlier owner", w.d.Name, o.target)
				}
				continue
			}
			w.drain(ow, o)
			continue
		case o.state == ownHandoff && o.side == me:
			if _, err := w.instance(ctx); err == errNotReady {
				runtimeGosched()
				continue
			} else if err != nil {
				// Abort: the old side resumes.
				back := owner{state: ownRunning, side: otherSide(me), epoch: o.epoch + 1}
				if a.cas(w.e+enOwner, ow, back.word()) {
					w.n.logf("%s: cannot start here (%v): migration aborted", w.d.Name, err)
					w.met.aborts.Inc()
				}
				continue
			}
			if a.cas(w.e+enOwner, ow, owner{state: ownRunning, side: me, epoch: o.epoch}.word()) {
				w.blackoutPending = true
				w.acquire(o.epoch, "migrated in")
				a.r.Add(a.base+w.e+enMigrations, 1)
				w.met.migrations.Inc()
			}
			continue
		case o.state == ownHandoff && o.side != me:
			// We handed off; if the target died, roll back to us.
			if a.sideFenced(o.side) {
				if a.cas(w.e+enOwner, ow, owner{state: ownRunning, side: me, epoch: o.epoch + 1}.word()) {
					w.n.logf("%s: handoff target %v is dead: migration aborted", w.d.Name, o.side)
					w.met.aborts.Inc()
					w.acquire(o.epoch+1, "handoff rolled back")
				}
				continue
			}
		case (o.state == ownRunning || o.state == ownDraining) && o.side != me:
			if o.state == ownDraining && o.target == me {
				w.instance(ctx) // prepare before the handoff
				busy = true     // poll eagerly: the handoff is near
			}
			if a.sideFenced(o.side) {
				if a.cas(w.e+enOwner, ow, owner{state: ownRunning, side: me, epoch: o.epoch + 1}.word()) {
					w.n.logf("%s: owner side %v is dead: taking over", w.d.Name, o.side)
					a.r.Add(a.base+w.e+enTakeovers, 1)
					w.met.takeovers.Inc()
					w.blackoutPending = o.state == ownDraining
					w.acquire(o.epoch+1, "takeover")
				}
				continue
			}
			w.lose()
		}
		if busy {
			b.reset()
			if o.side != me {
				runtimeGosched()
			}
			continue
		}
		if err := b.wait(ctx); err != nil {
			w.release()
			return
		}
	}
}

func otherSide(s Side) Side { return 1 - s }

// acquire makes this worker the owner at epoch: the commit word is moved
// to the new epoch, so commits of any earlier owner now fail.
func (w *worker) acquire(epoch uint64, why string) {
	a := w.n.a
	for {
		c := a.load(w.e + enCommit)
		if commitEpoch(c) == epoch&epochMask {
			break
		}
		if a.cas(w.e+enCommit, c, commitWord(epoch, commitBuf(c), commitDone(c))) {
			break
		}
	}
	w.lose()
	w.my = epoch
	w.n.m.owned.Inc()
	w.n.logf("%s: owner at epoch %d (%s)", w.d.Name, epoch, why)
}

func (w *worker) lose() {
	if w.my != 0 {
		w.my = 0
		w.n.m.owned.Dec()
	}
}

// release hands an owned actor to the other side on a clean stop.
func (w *worker) release() {
	a := w.n.a
	ow, o := w.ownerWord()
	if o.state != ownRunning || o.side != w.n.side || o.epoch != w.my || !a.sideAlive(otherSide(w.n.side)) {
		return
	}
	if !w.flush() {
		return
	}
	a.store(w.e+enDrainStart, uint64(time.Now().UnixNano()))
	if a.cas(w.e+enOwner, ow, owner{state: ownHandoff, side: otherSide(w.n.side), epoch: o.epoch + 1}.word()) {
		w.n.logf("%s: stopping: handed to %v", w.d.Name, otherSide(w.n.side))
		w.lose()
	}
}

// drain finishes a migration away from this side. Requests are served one
// at a time and the owner word is checked between them, so by now nothing
// dequeued is outstanding: flush, then hand off.
func (w *worker) drain(ow uint64, o owner) {
	a := w.n.a
	if !a.sideAlive(o.target) {
		if a.cas(w.e+enOwner, ow, owner{state: ownRunning, side: o.side, epoch: o.epoch + 1}.word()) {
			w.n.logf("%s: migration target %v is not running: aborted", w.d.Name, o.target)
			w.met.aborts.Inc()
			w.acquire(o.epoch+1, "migration aborted")
		}
		return
	}
	if !w.flush() {
		return
	}
	if a.cas(w.e+enOwner, ow, owner{state: ownHandoff, side: o.target, epoch: o.epoch + 1}.word()) {
		w.lose()
	}
}

// flush runs wio_flush (if the actor has one and an instance that served
// here) and commits what it wrote without advancing the completions. It
// reports false if this side lost the actor meanwhile.
func (w *worker) flush() bool {
	a := w.n.a
	if w.inst == nil || w.inst.flush == nil || w.inst.Broken() != nil {
		return true
	}
	c := a.load(w.e + enCommit)
	tx := w.txn(c)
	if err := w.inst.Flush(context.Background(), tx); err != nil {
		w.n.logf("%s: flush before handoff: %v", w.d.Name, err)
		return true
	}
	if tx.dirty {
		w.persist(tx)
		if !a.cas(w.e+enCommit, c, commitWord(w.my, tx.shadow, commitDone(c))) {
			w.lose()
			return false
		}
	}
	return true
}

// errNotReady: the instance is still being prepared in the background.
var errNotReady = errors.New("actors: instance not ready yet")

type instResult struct {
	inst *Instance
	err  error
}

// instance returns a ready instance. Instantiation (tens of milliseconds
// for a Go guest, far more on a loaded machine) runs in the background so
// the worker keeps following the owner word meanwhile: until it is done,
// instance starts it if needed and returns errNotReady.
func (w *worker) instance(ctx context.Context) (*Instance, error) {
	if w.inst != nil && w.inst.Broken() == nil {
		return w.inst, nil
	}
	if w.inst != nil {
		w.inst.Close(context.Background())
		w.inst = nil
	}
	if w.preparing {
		select {
		case r := <-w.ready:
			w.preparing = false
			if r.err != nil {
				w.instErr = r.err
				return nil, r.err
			}
			w.inst = r.inst
			w.met.instantiations.Inc()
			return w.inst, nil
		default:
			return nil, errNotReady
		}
	}
	w.preparing = true
	go func() {
		compile := w.n.rt.Compile
		if w.d.Trusted {
			compile = w.n.rt.CompileTrusted
		}
		m, err := compile(ctx, w.n.a.module(w.d))
		var inst *Instance
		if err == nil {
			inst, err = m.Instantiate(ctx, w.d.Name, uint32(w.d.InCap))
		}
		w.ready <- instResult{inst, err}
	}()
	return nil, errNotReady
}

// txn is one request's view of the state arena: reads see the published
// buffer until the first write copies it to the shadow buffer; the
// shadow becomes current only through the commit CAS.
type txn struct {
	cur, shadow int
	curB, shB   []byte
	dirty       bool
}

func (w *worker) txn(c uint64) *txn {
	a, d := w.n.a, w.d
	ss := stateStride(d.StateSize)
	cur := commitBuf(c)
	if cur > 2 {
		// Only bytes corrupted outside this protocol can get here; keep
		// the published buffer index in range and say so.
		w.n.logf("%s: commit word %#x names state buffer %d (corrupt); using buffer 0", d.Name, c, cur)
		cur = 0
	}
	t := &txn{cur: cur, shadow: shadowBuf(cur, w.my)}
	t.curB = a.bytes(d.StateOff+uint64(t.cur)*ss, d.StateSize)
	t.shB = a.bytes(d.StateOff+uint64(t.shadow)*ss, d.StateSize)
	return t
}

func (t *txn) Size() int { return len(t.curB) }

func (t *txn) Read(off int, p []byte) error {
	src := t.curB
	if t.dirty {
		src = t.shB
	}
	if off < 0 || off > len(src) || len(p) > len(src)-off {
		return fmt.Errorf("state read [%d,+%d) of %d: %w", off, len(p), len(src), ErrTooLarge)
	}
	copy(p, src[off:])
	return nil
}

func (t *txn) Write(off int, p []byte) error {
	if off < 0 || off > len(t.shB) || len(p) > len(t.shB)-off {
		return fmt.Errorf("state write [%d,+%d) of %d: %w", off, len(p), len(t.shB), ErrTooLarge)
	}
	if !t.dirty {
		copy(t.shB, t.curB)
		t.dirty = true
	}
	copy(t.shB[off:], p)
	return nil
}

func (w *worker) persist(t *txn) {
	if w.n.o.Persist && t != nil && t.dirty {
		a, d := w.n.a, w.d
		a.r.Persist(a.base+d.StateOff+uint64(t.shadow)*stateStride(d.StateSize), d.StateSize)
	}
}

// serve processes the requests at the head of the ring while this side
// owns the actor. It reports whether it did any work.
func (w *worker) serve(ctx context.Context) bool {
	a, d := w.n.a, w.d
	did := false
	for k := 0; k < 64; k++ {
		c := a.load(w.e + enCommit)
		if commitEpoch(c) != w.my&epochMask {
			w.lose() // someone took over
			return did
		}
		if k > 0 {
			if _, o := w.ownerWord(); o.state != ownRunning || o.epoch != w.my {
				return true
			}
		}
		s := commitDone(c)
		so := d.slotOff(s)
		sw := decodeSlot(a.load(so + slWord))
		if sw.seq != s&seqMask {
			w.idle()
			return did // ring empty (previous occupant not yet released)
		}
		switch sw.state {
		case slotReady:
			if !w.process(ctx, c, s, so) {
				return did
			}
		case slotAbandoned:
			if !w.complete(c, s, so, nil, stAbandoned, nil) {
				return did
			}
			a.cas(so+slWord, sw.word(), slotWordT{seq: (s + d.Slots) & seqMask, state: slotFree}.word())
		case slotWriting:
			if a.hostDead(sw.host, sw.tag) {
				a.cas(so+slWord, sw.word(), slotWordT{seq: sw.seq, state: slotAbandoned}.word())
				continue
			}
			return did
		case slotFree:
			if a.load(w.e+enTail) <= s {
				w.idle()
				return did // empty
			}
			// Claimed but not yet written: wait, and abandon a hole that
			// stays open too long (its producer stalled or died).
			if w.holeSeq != s || w.holeSince.IsZero() {
				w.holeSeq, w.holeSince = s, time.Now()
			} else if time.Since(w.holeSince) > w.n.o.HoleTimeout {
				a.cas(so+slWord, sw.word(), slotWordT{seq: sw.seq, state: slotAbandoned}.word())
			}
			return did
		default:
			// Not a state any writer produces: corrupt bytes. Abandon the
			// request rather than trust anything in the slot.
			w.n.logf("%s: slot of request %d holds unknown state %d (corrupt): abandoning it", d.Name, s, sw.state)
			a.cas(so+slWord, sw.word(), slotWordT{seq: sw.seq, state: slotAbandoned}.word())
			return did
		}
		did = true
	}
	return did
}

func (w *worker) idle() {
	if w.blackoutPending {
		w.endBlackout()
	}
}

func (w *worker) endBlackout() {
	a := w.n.a
	w.blackoutPending = false
	start := a.load(w.e + enDrainStart)
	if start == 0 {
		return
	}
	bo := time.Now().UnixNano() - int64(start)
	if bo < 0 {
		bo = 0
	}
	a.store(w.e+enBlackout, uint64(bo))
	w.met.blackout.Observe(float64(bo) / 1e9)
}

// process runs request s (READY in slot so) and completes it.
func (w *worker) process(ctx context.Context, c, s, so uint64) bool {
	a, d := w.n.a, w.d
	start := time.Now()
	inLen := a.load(so + slInLen)
	if inLen > d.InCap {
		return w.complete(c, s, so, nil, stTooLarge, []byte(fmt.Sprintf("request length %d over %d", inLen, d.InCap)))
	}
	inst, err := w.instance(ctx)
	if err == errNotReady {
		return false
	}
	if err != nil {
		// Instantiation can fail for passing reasons (a deadline on a
		// loaded machine): leave the request in the ring and retry; only
		// a module that keeps failing turns its request into an error.
		w.instFails++
		if w.instFails < 3 || ctx.Err() != nil {
			w.n.logf("%s: request %d waits: %v", d.Name, s, err)
			return false
		}
		w.instFails = 0
		return w.complete(c, s, so, nil, stBadModule, []byte(err.Error()))
	}
	w.instFails = 0
	tx := w.txn(c)
	var out []byte
	if w.n.o.Exec != nil {
		ran := false
		xerr := w.n.o.Exec(ctx, func() error {
			ran = true
			out, err = inst.Handle(ctx, tx, a.bytes(so+slData, inLen))
			return nil
		})
		if !ran {
			// Not executed (e.g. shutting down): leave it in the ring.
			w.n.logf("%s: request %d not run: %v", d.Name, s, xerr)
			return false
		}
	} else {
		out, err = inst.Handle(ctx, tx, a.bytes(so+slData, inLen))
	}
	status := stOK
	switch {
	case err == nil && uint64(len(out)) > d.OutCap:
		status, out = stTooLarge, []byte(fmt.Sprintf("output of %d bytes over %d", len(out), d.OutCap))
	case err == nil:
	case errors.Is(err, ErrDeadline):
		status, out = stDeadline, []byte(err.Error())
	case errors.Is(err, ErrTrap):
		status, out = stTrap, []byte(err.Error())
	case errors.Is(err, ErrTooLarge):
		status, out = stTooLarge, []byte(err.Error())
	default:
		status, out = stActorError, []byte(err.Error())
	}
	if status != stOK {
		tx = nil // a failed request changes no state
		if len(out) > int(d.OutCap) {
			out = out[:d.OutCap]
		}
	}
	ok := w.complete(c, s, so, tx, status, out)
	if ok {
		w.met.observe(status, time.Since(start))
	}
	return ok
}

// complete writes the result of request s into its slot and publishes it,
// together with the state the request wrote, with one CAS of the commit
// word. It reports false if this side no longer owns the actor.
func (w *worker) complete(c, s, so uint64, tx *txn, status int, out []byte) bool {
	a, d := w.n.a, w.d
	copy(a.bytes(so+slData+align(d.InCap, 64), uint64(len(out))), out)
	a.store(so+slResult, uint64(len(out))|uint64(status)<<32)
	buf := commitBuf(c)
	if tx != nil && tx.dirty {
		buf = tx.shadow
	}
	if w.n.o.Persist {
		w.persist(tx)
		a.r.Persist(a.base+so, slData+align(d.InCap, 64)+uint64(len(out)))
	}
	if w.n.host.Err() != nil || !a.cas(w.e+enCommit, c, commitWord(w.my, buf, s+1)) {
		w.lose()
		return false
	}
	if w.n.o.Persist {
		a.r.Persist(a.base+w.e+enCommit, 8)
	}
	if w.blackoutPending {
		w.endBlackout()
	}
	return true
}

type nodeMetrics struct {
	reg            prometheus.Registerer
	side           Side
	owned          prometheus.Gauge
	requests       *prometheus.CounterVec
	seconds        *prometheus.HistogramVec
	migrations     *prometheus.CounterVec
	takeovers      *prometheus.CounterVec
	aborts         *prometheus.CounterVec
	instantiations *prometheus.CounterVec
	blackout       *prometheus.HistogramVec
}

type actorMetrics struct {
	ok, failed                                    prometheus.Counter
	seconds                                       prometheus.Observer
	migrations, takeovers, aborts, instantiations prometheus.Counter
	blackout                                      prometheus.Observer
}

func newNodeMetrics(reg prometheus.Registerer, side Side) *nodeMetrics {
	cl := prometheus.Labels{"side": side.String()}
	m := &nodeMetrics{reg: reg, side: side,
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_actors_owned", Help: "Actors this side currently owns.", ConstLabels: cl}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wio_requests_total",
			Help: "Requests completed by this side, by actor and result.", ConstLabels: cl}, []string{"actor", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wio_request_seconds",
			Help: "Service time of one request on this side.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}, []string{"actor"}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wio_migrations_in_total",
			Help: "Drain-and-switch migrations that ended on this side.", ConstLabels: cl}, []string{"actor"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wio_takeovers_total",
			Help: "Actors taken over from a dead owner.", ConstLabels: cl}, []string{"actor"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wio_migration_aborts_total",
			Help: "Migrations rolled back by this side.", ConstLabels: cl}, []string{"actor"}),
		instantiations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wio_instantiations_total",
			Help: "Actor instantiations on this side.", ConstLabels: cl}, []string{"actor"}),
		blackout: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wio_migration_blackout_seconds",
			Help: "From the DRAINING CAS to the first request served (or the ring seen empty) on this side.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(1e-5, 2, 16)}, []string{"actor"}),
	}
	if reg != nil {
		// A daemon that re-joins after being fenced builds a new Node on
		// the same registry: reuse the collectors already there.
		m.owned = register(reg, m.owned)
		m.requests = register(reg, m.requests)
		m.seconds = register(reg, m.seconds)
		m.migrations = register(reg, m.migrations)
		m.takeovers = register(reg, m.takeovers)
		m.aborts = register(reg, m.aborts)
		m.instantiations = register(reg, m.instantiations)
		m.blackout = register(reg, m.blackout)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(fmt.Sprintf("actors: registering metrics: %v", err))
	}
	return c
}

func (m *nodeMetrics) actor(name string) *actorMetrics {
	return &actorMetrics{
		ok: m.requests.WithLabelValues(name, "ok"), failed: m.requests.WithLabelValues(name, "error"),
		seconds: m.seconds.WithLabelValues(name), migrations: m.migrations.WithLabelValues(name),
		takeovers: m.takeovers.WithLabelValues(name), aborts: m.aborts.WithLabelValues(name),
		instantiations: m.instantiations.WithLabelValues(name), blackout: m.blackout.WithLabelValues(name),
	}
}

func (am *actorMetrics) observe(status int, d time.Duration) {
	if status == stOK {
		am.ok.Inc()
	} else {
		am.failed.Inc()
	}
	am.seconds.Observe(d.Seconds())
}
