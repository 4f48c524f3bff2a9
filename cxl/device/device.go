package device

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Clock is the time source of the emulator. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// WallClock is the real clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// Sleep sleeps d or until ctx is done.
func (WallClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Options configure a Device.
type Options struct {
	Clock Clock // default WallClock
	// Compression is how many model seconds pass per wall second (default 1).
	// With 30, a 30-minute thermal profile runs in one wall minute.
	Compression float64
	// Trace, if set, replays temperature and throughput factor from a
	// recorded trace (with Compression) instead of the RC model. Power is
	// still computed from the measured load.
	Trace *Trace
	// NominalIOBps is the wall-clock byte rate counted as 100 % I/O
	// utilisation and the bandwidth of Transfer at factor 1. Default
	// BandwidthMBs*1e6.
	NominalIOBps float64
	// StartTempC, if non-zero, is the initial temperature instead of the
	// idle steady state.
	StartTempC float64
}

// Snapshot is the device state at one instant.
type Snapshot struct {
	State
	Wall time.Time // wall time of the snapshot
	IO   float64   // I/O utilisation over the last step, [0,1]
	Util float64   // compute utilisation over the last step, [0,1]
}

// ExecStats describes one emulated execution on a compute unit.
type ExecStats struct {
	Measured time.Duration // what fn took on the host
	Dilated  time.Duration // how long the emulated unit was held: at least Measured/(SpeedFactor*Factor)
	Factor   float64       // throttle factor applied
}

// Device is a running emulated CSD: K compute units whose execution time is
// dilated by the speed factor and the throttle factor, an I/O pipe of
// nominal bandwidth times the throttle factor, and the thermal model fed by
// the measured load. Safe for concurrent use.
type Device struct {
	p     Profile
	clock Clock
	comp  float64
	trace *Trace
	bw    float64
	units chan struct{}

	mu        sync.Mutex
	model     *Model
	start     time.Time
	last      time.Time
	held      int           // units held right now
	busy      time.Duration // unit time consumed since last step (held units integrated over time)
	ioBytes   float64       // bytes moved since last step, plus any backlog over capacity
	ioIdleAt  time.Time     // when the I/O pipe is next free
	snap      Snapshot
	trThrottl bool
	trEvents  uint64
}

// ErrClosed is returned by Exec and Transfer when the context ends while
// waiting for a unit or the I/O pipe.
var ErrClosed = errors.New("device: cancelled")

// New starts an emulated device at the clock's current time.
func New(p Profile, o Options) (*Device, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = WallClock{}
	}
	if o.Compression == 0 {
		o.Compression = 1
	}
	if o.Compression < 0 {
		return nil, fmt.Errorf("device: compression %g < 0", o.Compression)
	}
	if o.NominalIOBps == 0 {
		o.NominalIOBps = p.BandwidthMBs * 1e6
	}
	if o.NominalIOBps < 0 {
		return nil, fmt.Errorf("device: nominal I/O rate %g < 0", o.NominalIOBps)
	}
	d := &Device{p: p, clock: o.Clock, comp: o.Compression, trace: o.Trace, bw: o.NominalIOBps,
		units: make(chan struct{}, p.Units), model: NewModel(p)}
	if o.StartTempC != 0 {
		d.model.SetTemp(o.StartTempC)
	}
	now := d.clock.Now()
	d.start, d.last, d.ioIdleAt = now, now, now
	d.snap = Snapshot{State: d.model.State(), Wall: now}
	if d.trace != nil {
		d.applyTrace(now)
	}
	return d, nil
}

// Profile returns the device parameters.
func (d *Device) Profile() Profile { return d.p }

// Compression returns model seconds per wall second.
func (d *Device) Compression() float64 { return d.comp }

// Snapshot advances the model to now and returns its state.
func (d *Device) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advanceLocked(d.clock.Now())
	return d.snap
}

// Factor is the current throttle factor.
func (d *Device) Factor() float64 { return d.Snapshot().Factor }

func (d *Device) advanceLocked(now time.Time) {
	wall := now.Sub(d.last)
	if wall <= 0 {
		return
	}
	// Units held during the interval count as busy for all of it: every
	// change of d.held advances the model first, so held was constant.
	d.busy += time.Duration(d.held) * wall
	util := d.busy.Seconds() / (wall.Seconds() * float64(d.p.Units))
	capBytes := wall.Seconds() * d.bw
	io := d.ioBytes / capBytes
	// Bytes beyond the pipe's capacity in this interval are carried into
	// the next ones (a burst accounted at once heats over the time it
	// takes), up to ten seconds of backlog.
	d.ioBytes = math.Min(math.Max(0, d.ioBytes-capBytes), 10*d.bw)
	d.busy = 0
	d.last = now
	model := time.Duration(float64(wall) * d.comp)
	st := d.model.Step(model, io, util)
	d.snap = Snapshot{State: st, Wall: now, IO: clamp01(io), Util: clamp01(util)}
	if d.trace != nil {
		d.applyTrace(now)
	}
}

// applyTrace overrides temperature and factor with the replayed trace and
// runs the same throttle hysteresis over the trace temperature.
func (d *Device) applyTrace(now time.Time) {
	pt := Replay{Trace: d.trace, Compression: d.comp}.At(now.Sub(d.start))
	d.snap.TempC = pt.TempC
	d.snap.Factor = pt.Factor
	switch {
	case !d.trThrottl && pt.TempC >= d.p.ThrottleOnC:
		d.trThrottl = true
		d.trEvents++
	case d.trThrottl && pt.TempC <= d.p.ThrottleOffC:
		d.trThrottl = false
	}
	d.snap.Throttled = d.trThrottl
	d.snap.Events = d.trEvents
}

// Exec runs fn on one of the K compute units. fn runs on the host at host
// speed; its measured duration is then dilated to Measured/(SpeedFactor *
// throttle factor) by holding the unit for the remainder, so the emulated
// unit is honestly slower. It blocks while all units are busy.
func (d *Device) Exec(ctx context.Context, fn func() error) (ExecStats, error) {
	select {
	case d.units <- struct{}{}:
	case <-ctx.Done():
		return ExecStats{}, fmt.Errorf("%w: waiting for a compute unit: %v", ErrClosed, ctx.Err())
	}
	defer func() { <-d.units }()
	d.mu.Lock()
	t0 := d.clock.Now()
	d.advanceLocked(t0)
	d.held++
	f := d.snap.Factor
	d.mu.Unlock()
	err := fn()
	measured := d.clock.Now().Sub(t0)
	target := time.Duration(float64(measured) / (d.p.SpeedFactor * f))
	if serr := d.clock.Sleep(ctx, target-measured); serr != nil && err == nil {
		err = fmt.Errorf("%w: dilating execution: %v", ErrClosed, serr)
	}
	// The unit was held from t0 until now (a sleep may overshoot its
	// target): that is the time it was busy, for the caller and for the
	// thermal model.
	d.mu.Lock()
	end := d.clock.Now()
	d.advanceLocked(end)
	d.held--
	d.mu.Unlock()
	return ExecStats{Measured: measured, Dilated: end.Sub(t0), Factor: f}, err
}

// Transfer moves n bytes through the device's I/O pipe: NominalIOBps times
// the throttle factor, shared by all callers in FIFO order. It returns when
// the bytes have passed.
func (d *Device) Transfer(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	d.mu.Lock()
	now := d.clock.Now()
	d.advanceLocked(now)
	bw := d.bw * d.snap.Factor
	start := d.ioIdleAt
	if start.Before(now) {
		start = now
	}
	done := start.Add(time.Duration(float64(n) / bw * float64(time.Second)))
	d.ioIdleAt = done
	d.ioBytes += float64(n)
	d.mu.Unlock()
	if err := d.clock.Sleep(ctx, done.Sub(now)); err != nil {
		return fmt.Errorf("%w: transferring %d bytes: %v", ErrClosed, n, err)
	}
	return nil
}

// AddIO accounts n bytes of I/O done outside Transfer (for the power model).
func (d *Device) AddIO(n int64) {
	d.mu.Lock()
	d.ioBytes += float64(n)
	d.mu.Unlock()
}
