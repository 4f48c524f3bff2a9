// Package scheduler decides where each storage actor runs: on a host CPU or
// on the device's compute units. Its core, Policy, is a pure deterministic
// function of time-stamped signal samples and per-actor statistics; Loop is
// the thin driver that samples, logs, exports metrics and carries out moves.
// See docs/SCHEDULER.md for the policy and why it cannot ping-pong.
package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Side is where an actor runs.
type Side uint8

const (
	Host Side = iota
	Device
)

func (s Side) String() string {
	switch s {
	case Host:
		return "host"
	case Device:
		return "device"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// Other returns the opposite side.
func (s Side) Other() Side {
	if s == Host {
		return Device
	}
	return Host
}

// Signals is one time-stamped sample of both sides.
type Signals struct {
	At           time.Time
	DeviceTempC  float64
	DeviceFactor float64 // throttle factor, 1 = full speed; 0 means unknown (taken as 1)
	HostPowerW   float64
	HostCapW     float64 // 0 = no cap known
	HostSpeed    float64 // host speed factor under the cap, 1 = full; 0 means unknown (taken as 1)
}

// Actor is what the policy knows about one actor.
type Actor struct {
	ID            string
	Side          Side
	SvcHost       time.Duration // measured mean service time per request on the host (0 = unknown)
	SvcDevice     time.Duration // same on the device (0 = unknown)
	QueueDepth    int
	MigrationCost time.Duration // measured drain + instantiate (0 = Config.DefaultMigrationCost)
}

// Action is what a decision does.
type Action uint8

const (
	Hold Action = iota // a move was wanted but is not allowed now
	Migrate
)

func (a Action) String() string {
	if a == Migrate {
		return "migrate"
	}
	return "hold"
}

// Reason says why a decision was made.
type Reason string

const (
	ReasonThrottled      Reason = "device_throttled"        // device reports a throttle factor < 1
	ReasonHot            Reason = "device_hot"              // smoothed temperature >= HotC
	ReasonLookAhead      Reason = "device_lookahead"        // temperature + slope*LookAhead >= HotC
	ReasonCoolHostCapped Reason = "device_cool_host_capped" // device <= CoolC and host at its power cap
	ReasonDeviceFaster   Reason = "device_cool_faster"      // device <= CoolC and measured faster by FasterMargin
	ReasonHoldDwell      Reason = "hold_dwell"              // actor moved less than its dwell time ago
	ReasonHoldBudget     Reason = "hold_budget"             // migration budget of the window spent
	ReasonHoldHostSlower Reason = "hold_host_slower"        // device hot but the capped host is measured slower
)

// Decision is one output of the policy.
type Decision struct {
	At     time.Time
	Actor  string
	Action Action
	From   Side
	To     Side
	Reason Reason
	// The smoothed inputs that led to it.
	TempC, SlopeCps, PredC float64
	HostConstrained        bool
	Dwell                  time.Duration
}

// Config holds the policy parameters. Times are on the clock of
// Signals.At (wall time of the emulator, which may be time-compressed).
type Config struct {
	HotC      float64       // offload device->host at or above (smoothed or predicted)
	CoolC     float64       // return host->device only at or below
	LookAhead time.Duration // horizon of the slope look-ahead
	// TempTau is the time constant of the temperature EWMA; SlopeWindow the
	// span of the least-squares fit that estimates the slope.
	TempTau     time.Duration
	SlopeWindow time.Duration

	HostCapHigh  float64 // host constrained when power >= HostCapHigh*cap ...
	HostCapLow   float64 // ... and unconstrained again only when <= HostCapLow*cap
	HostSpeedLow float64 // ... or when speed < HostSpeedLow (until >= HostSpeedOK)
	HostSpeedOK  float64

	MinDwell             time.Duration // minimum time between two moves of one actor
	DwellFactor          float64       // dwell is also at least DwellFactor * migration cost
	Window               time.Duration // migration budget window (sliding)
	MaxPerWindow         int           // migrations allowed in any Window, all actors together
	DefaultMigrationCost time.Duration
	FasterMargin         float64 // device must be this much faster to return for speed alone
}

// DefaultConfig returns the parameters for a device that throttles at
// throttleC: HotC = throttleC-3, CoolC = throttleC-8 (wio.md §6).
func DefaultConfig(throttleC float64) Config {
	return Config{
		HotC:                 throttleC - 3,
		CoolC:                throttleC - 8,
		LookAhead:            30 * time.Second,
		TempTau:              2 * time.Second,
		SlopeWindow:          15 * time.Second,
		HostCapHigh:          0.95,
		HostCapLow:           0.85,
		HostSpeedLow:         0.9,
		HostSpeedOK:          0.97,
		MinDwell:             time.Second,
		DwellFactor:          10,
		Window:               time.Minute,
		MaxPerWindow:         8,
		DefaultMigrationCost: 50 * time.Millisecond,
		FasterMargin:         0.2,
	}
}

// ErrBadConfig is wrapped by Config.Validate.
var ErrBadConfig = errors.New("scheduler: invalid config")

// Validate reports the first unusable parameter.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(f, a...)) }
	switch {
	case !(c.CoolC < c.HotC):
		return bad("CoolC %g must be below HotC %g", c.CoolC, c.HotC)
	case c.LookAhead < 0:
		return bad("negative look-ahead")
	case c.TempTau < 0:
		return bad("negative temperature time constant")
	case c.SlopeWindow <= 0:
		return bad("slope window must be > 0")
	case !(c.HostCapLow < c.HostCapHigh) || c.HostCapLow <= 0:
		return bad("host cap band [%g,%g] invalid", c.HostCapLow, c.HostCapHigh)
	case !(c.HostSpeedLow < c.HostSpeedOK):
		return bad("host speed band [%g,%g] invalid", c.HostSpeedLow, c.HostSpeedOK)
	case c.MinDwell <= 0 || c.DwellFactor < 0:
		return bad("dwell must be > 0")
	case c.Window <= 0 || c.MaxPerWindow < 1:
		return bad("budget window %v / %d invalid", c.Window, c.MaxPerWindow)
	case c.DefaultMigrationCost <= 0:
		return bad("default migration cost must be > 0")
	case c.FasterMargin < 0 || c.FasterMargin >= 1:
		return bad("faster margin %g not in [0,1)", c.FasterMargin)
	}
	return nil
}

// View is the policy's smoothed view of the signals after a Step.
type View struct {
	At              time.Time
	TempC           float64 // EWMA of the device temperature
	SlopeCps        float64 // EWMA of its slope, °C per second
	PredC           float64 // TempC + max(0,slope)*LookAhead
	Factor          float64
	HostConstrained bool
	WindowMoves     int // migrations in the current budget window
}

// Policy is the deterministic placement policy. Not safe for concurrent use.
type Policy struct {
	cfg      Config
	started  bool
	view     View
	lastMove map[string]time.Time
	moves    []time.Time // migration times inside the window, oldest first
	hist     []tpoint    // smoothed temperature samples inside the slope window
}

type tpoint struct {
	at time.Time
	c  float64
}

// NewPolicy returns a policy; the config must be valid.
func NewPolicy(c Config) (*Policy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: c, lastMove: map[string]time.Time{}}, nil
}

// Config returns the parameters.
func (p *Policy) Config() Config { return p.cfg }

// View returns the smoothed state after the last Step.
func (p *Policy) View() View { return p.view }

// Dwell is the minimum time between two moves of a.
func (p *Policy) Dwell(a Actor) time.Duration {
	cost := a.MigrationCost
	if cost <= 0 {
		cost = p.cfg.DefaultMigrationCost
	}
	return max(p.cfg.MinDwell, time.Duration(p.cfg.DwellFactor*float64(cost)))
}

func finiteOr(v, def float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return def
	}
	return v
}

// observe folds one sample into the smoothed view.
func (p *Policy) observe(s Signals) {
	c := &p.cfg
	v := &p.view
	temp := s.DeviceTempC
	tempOK := !math.IsNaN(temp) && !math.IsInf(temp, 0)
	v.Factor = finiteOr(s.DeviceFactor, 1)
	if v.Factor <= 0 {
		v.Factor = 1
	}
	switch {
	case !tempOK:
		// A bad read: keep the smoothed state; the next good sample
		// covers the whole gap.
	case !p.started:
		p.started = true
		v.At, v.TempC, v.SlopeCps = s.At, temp, 0
		p.hist = append(p.hist[:0], tpoint{s.At, temp})
	case s.At.After(v.At):
		dt := s.At.Sub(v.At)
		a := 1.0
		if c.TempTau > 0 {
			a = 1 - math.Exp(-dt.Seconds()/c.TempTau.Seconds())
		}
		v.TempC += a * (temp - v.TempC)
		v.At = s.At
		// The slope is fitted over the smoothed temperature, kept at most
		// every SlopeWindow/64 so a step costs O(64) whatever the rate.
		if s.At.Sub(p.hist[len(p.hist)-1].at) >= c.SlopeWindow/64 {
			p.hist = append(p.hist, tpoint{s.At, v.TempC})
		}
		i := 0
		for i < len(p.hist) && s.At.Sub(p.hist[i].at) > c.SlopeWindow {
			i++
		}
		p.hist = p.hist[i:]
		v.SlopeCps = p.slope()
	default:
		// Out-of-order or repeated timestamp: keep the smoothed state.
	}
	v.PredC = v.TempC + math.Max(0, v.SlopeCps)*c.LookAhead.Seconds()

	speed := finiteOr(s.HostSpeed, 1)
	if speed <= 0 {
		speed = 1
	}
	load := 0.0
	if s.HostCapW > 0 {
		load = finiteOr(s.HostPowerW, 0) / s.HostCapW
	}
	if !v.HostConstrained {
		v.HostConstrained = (s.HostCapW > 0 && load >= c.HostCapHigh) || speed < c.HostSpeedLow
	} else {
		v.HostConstrained = !((s.HostCapW <= 0 || load <= c.HostCapLow) && speed >= c.HostSpeedOK)
	}
}

// slope is the least-squares slope (°C/s) of the samples in the window, or
// 0 while they span less than a quarter of it.
func (p *Policy) slope() float64 {
	h := p.hist
	if len(h) < 3 || h[len(h)-1].at.Sub(h[0].at) < p.cfg.SlopeWindow/4 {
		return 0
	}
	var sx, sy float64
	for _, q := range h {
		sx += q.at.Sub(h[0].at).Seconds()
		sy += q.c
	}
	n := float64(len(h))
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for _, q := range h {
		dx := q.at.Sub(h[0].at).Seconds() - mx
		sxy += dx * (q.c - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

type candidate struct {
	a      Actor
	to     Side
	reason Reason
	score  float64
}

// Step folds one sample into the policy and returns its decisions for the
// actors as they are placed now. Migrations it returns are counted against
// the dwell and the budget at once: the caller is expected to carry them
// out in order (a failed move still waits out its dwell, which is the
// back-off). Hold decisions are returned only when a move was wanted.
func (p *Policy) Step(s Signals, actors []Actor) []Decision {
	p.observe(s)
	c := &p.cfg
	v := &p.view
	now := v.At

	// Slide the budget window.
	i := 0
	for i < len(p.moves) && now.Sub(p.moves[i]) >= c.Window {
		i++
	}
	p.moves = p.moves[i:]

	var hot Reason
	switch {
	case v.Factor < 1-1e-9:
		hot = ReasonThrottled
	case v.TempC >= c.HotC:
		hot = ReasonHot
	case v.PredC >= c.HotC:
		hot = ReasonLookAhead
	}
	cool := hot == "" && v.TempC <= c.CoolC

	var out []Decision
	dec := func(a Actor, act Action, to Side, r Reason) Decision {
		return Decision{At: now, Actor: a.ID, Action: act, From: a.Side, To: to, Reason: r, TempC: v.TempC,
			SlopeCps: v.SlopeCps, PredC: v.PredC, HostConstrained: v.HostConstrained, Dwell: p.Dwell(a)}
	}
	var cands []candidate
	for _, a := range actors {
		switch {
		case hot != "" && a.Side == Device:
			if v.HostConstrained && a.SvcHost > 0 && a.SvcDevice > 0 && a.SvcHost >= a.SvcDevice {
				out = append(out, dec(a, Hold, Host, ReasonHoldHostSlower))
				continue
			}
			cands = append(cands, candidate{a: a, to: Host, reason: hot, score: agility(a, Device, Host, p.Dwell(a))})
		case cool && a.Side == Host && v.HostConstrained:
			// The device cores may be slower per request; the point is to
			// give the capped host its power back for the application.
			cands = append(cands, candidate{a: a, to: Device, reason: ReasonCoolHostCapped, score: agility(a, Host, Device, p.Dwell(a))})
		case cool && a.Side == Host && a.SvcHost > 0 && a.SvcDevice > 0 &&
			float64(a.SvcDevice) < (1-c.FasterMargin)*float64(a.SvcHost):
			cands = append(cands, candidate{a: a, to: Device, reason: ReasonDeviceFaster, score: agility(a, Host, Device, p.Dwell(a))})
		}
	}
	slices.SortStableFunc(cands, func(x, y candidate) int {
		if r := cmp.Compare(y.score, x.score); r != 0 {
			return r
		}
		return cmp.Compare(x.a.ID, y.a.ID)
	})
	for _, cd := range cands {
		a := cd.a
		if last, ok := p.lastMove[a.ID]; ok && now.Sub(last) < p.Dwell(a) {
			out = append(out, dec(a, Hold, cd.to, ReasonHoldDwell))
			continue
		}
		if len(p.moves) >= c.MaxPerWindow {
			out = append(out, dec(a, Hold, cd.to, ReasonHoldBudget))
			continue
		}
		p.lastMove[a.ID] = now
		p.moves = append(p.moves, now)
		out = append(out, dec(a, Migrate, cd.to, cd.reason))
	}
	v.WindowMoves = len(p.moves)
	return out
}

// agility ranks candidates: the work per second a move frees on the source
// side (queued requests times service time there), divided by the time the
// move costs. Agile actors (cheap to move, much to gain) move first.
func agility(a Actor, from, to Side, dwell time.Duration) float64 {
	svc := a.SvcDevice
	if from == Host {
		svc = a.SvcHost
	}
	cost := a.MigrationCost
	if cost <= 0 {
		cost = dwell
	}
	return float64(a.QueueDepth+1) * max(float64(svc), 1) / float64(cost)
}
