package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/cxl/sensor"
	"github.com/daxwio/daxwio/scheduler"
)

// Executor runs actor requests on whichever side owns each actor and moves
// actors between sides. The demo drives the workload and the scheduler
// through it only, so an executor backed by the multi-process actors runtime
// (actors.Node on each side, actors.Client, Arena.Migrate) plugs in here.
type Executor interface {
	// Do runs one request of actor on its current side and returns the output.
	Do(ctx context.Context, actor string, in []byte) ([]byte, error)
	// Move migrates actor to side with drain-and-switch and returns the
	// blackout: from the drain to the first request served on the new side
	// (or to the switch, if nothing was waiting).
	Move(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error)
	// Actors returns per-actor statistics for the scheduler.
	Actors() []scheduler.Actor
	// Busy returns the execution time consumed so far on each side.
	Busy() (host, device time.Duration)
	Close() error
}

// ErrUnknownActor is returned for an actor the executor does not run.
var ErrUnknownActor = errors.New("demo: unknown actor")

// Local is an in-process Executor: each actor is one worker serving its
// queue in FIFO order (like a request ring), running the actor's native
// twin either on the emulated device (device.Exec: K units, execution time
// dilated by the speed and throttle factors) or on emulated host cores
// (execution time dilated by the power-cap speed factor). The state arena is
// one byte slice shared by both sides, so a move copies nothing: drain (the
// worker finishes the request it holds), instantiate a fresh actor instance
// on the new side over the same state, switch.
type Local struct {
	dev       *device.Device
	host      *sensor.HostCap
	hostUnits chan struct{}
	stats     *scheduler.Stats
	clock     device.Clock
	actors    map[string]*localActor
	busyHost  atomic.Int64
	busyDev   atomic.Int64
	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}
}

type request struct {
	ctx  context.Context
	in   []byte
	out  []byte
	err  error
	done chan struct{}
}

type localActor struct {
	name  string
	newFn func() abi.Actor
	twin  *abi.Twin
	reqs  chan *request
	kick  chan struct{}

	mu         sync.Mutex
	side       scheduler.Side
	draining   bool
	target     scheduler.Side
	drainStart time.Time
	moved      chan time.Duration // receives the blackout of the pending move
}

// LocalActor describes one actor to run.
type LocalActor struct {
	Name      string
	New       func() abi.Actor
	StateSize int
	Arg       []byte
	Side      scheduler.Side // initial placement
}

// NewLocal starts one worker per actor. hostCores bounds how many actors
// run on the host at once.
func NewLocal(dev *device.Device, host *sensor.HostCap, hostCores int, clock device.Clock, as []LocalActor) (*Local, error) {
	if clock == nil {
		clock = device.WallClock{}
	}
	if hostCores < 1 {
		hostCores = 1
	}
	l := &Local{dev: dev, host: host, hostUnits: make(chan struct{}, hostCores), stats: scheduler.NewStats(0.2),
		clock: clock, actors: map[string]*localActor{}, done: make(chan struct{})}
	for _, a := range as {
		twin, err := abi.NewTwin(a.New(), a.StateSize, a.Arg)
		if err != nil {
			return nil, fmt.Errorf("demo: initialising actor %s: %w", a.Name, err)
		}
		la := &localActor{name: a.Name, newFn: a.New, twin: twin, reqs: make(chan *request, 64),
			kick: make(chan struct{}, 1), side: a.Side}
		l.actors[a.Name] = la
		l.stats.Place(a.Name, a.Side)
		l.wg.Add(1)
		go l.worker(la)
	}
	return l, nil
}

// Do implements Executor.
func (l *Local) Do(ctx context.Context, actor string, in []byte) ([]byte, error) {
	a, ok := l.actors[actor]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownActor, actor)
	}
	r := &request{ctx: ctx, in: in, done: make(chan struct{})}
	select {
	case a.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, fmt.Errorf("demo: actor %s: executor closed", actor)
	}
	l.stats.SetQueue(actor, len(a.reqs))
	select {
	case <-r.done:
		return r.out, r.err
	case <-l.done:
		return nil, fmt.Errorf("demo: actor %s: executor closed", actor)
	}
}

// Move implements Executor.
func (l *Local) Move(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error) {
	a, ok := l.actors[actor]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownActor, actor)
	}
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return 0, fmt.Errorf("demo: move %s to %v: another move is in flight", actor, to)
	}
	if a.side == to {
		a.mu.Unlock()
		return 0, nil
	}
	ch := make(chan time.Duration, 1)
	a.draining, a.target, a.drainStart, a.moved = true, to, l.clock.Now(), ch
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	select {
	case bo := <-ch:
		l.stats.Place(actor, to)
		l.stats.ObserveMigration(actor, bo)
		return bo, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("demo: move %s to %v: %w", actor, to, ctx.Err())
	case <-l.done:
		return 0, fmt.Errorf("demo: move %s to %v: executor closed", actor, to)
	}
}

func (l *Local) worker(a *localActor) {
	defer l.wg.Done()
	var pending chan time.Duration // blackout to report after the next request
	var drainStart time.Time
	switchIfDraining := func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.draining {
			return
		}
		// Drained: this worker holds no request. Instantiate on the new
		// side over the same state arena, then switch.
		a.twin.A = a.newFn()
		a.side, a.draining = a.target, false
		pending, drainStart = a.moved, a.drainStart
		a.moved = nil
		if len(a.reqs) == 0 {
			pending <- l.clock.Now().Sub(drainStart)
			pending = nil
		}
	}
	for {
		select {
		case <-l.done:
			return
		case <-a.kick:
			switchIfDraining()
		case r := <-a.reqs:
			switchIfDraining()
			a.mu.Lock()
			side := a.side
			a.mu.Unlock()
			d := l.run(r, a, side)
			l.stats.ObserveService(a.name, side, d)
			l.stats.SetQueue(a.name, len(a.reqs))
			close(r.done)
			if pending != nil {
				pending <- l.clock.Now().Sub(drainStart)
				pending = nil
			}
		}
	}
}

// run executes one request on side and returns its (dilated) service time.
func (l *Local) run(r *request, a *localActor, side scheduler.Side) time.Duration {
	fn := func() error {
		out, err := a.twin.Handle(r.in)
		r.out, r.err = out, err
		return nil
	}
	if side == scheduler.Device {
		st, err := l.dev.Exec(r.ctx, fn)
		if err != nil && r.err == nil {
			r.err = err
		}
		l.busyDev.Add(int64(st.Dilated))
		return st.Dilated
	}
	select {
	case l.hostUnits <- struct{}{}:
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
		return 0
	}
	defer func() { <-l.hostUnits }()
	speed := 1.0
	if l.host != nil {
		speed = l.host.Speed()
	}
	t0 := l.clock.Now()
	_ = fn()
	measured := l.clock.Now().Sub(t0)
	dil := time.Duration(float64(measured) / speed)
	if err := l.clock.Sleep(r.ctx, dil-measured); err != nil && r.err == nil {
		r.err = err
	}
	l.busyHost.Add(int64(dil))
	return dil
}

// Actors implements Executor.
func (l *Local) Actors() []scheduler.Actor { return l.stats.Actors() }

// Busy implements Executor.
func (l *Local) Busy() (host, dev time.Duration) {
	return time.Duration(l.busyHost.Load()), time.Duration(l.busyDev.Load())
}

// Side returns where actor runs now.
func (l *Local) Side(actor string) scheduler.Side {
	a := l.actors[actor]
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.side
}

// State returns a copy of an actor's state arena.
func (l *Local) State(actor string) []byte {
	return append([]byte(nil), l.actors[actor].twin.State...)
}

// Close stops the workers; requests in flight fail.
func (l *Local) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	l.wg.Wait()
	return nil
}
