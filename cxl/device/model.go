package device

import (
	"math"
	"time"
)

// maxSubstep bounds one integration step of the throttle state machine. The
// RC part is integrated exactly for any step (power is constant within a
// step), so substeps only make throttle on/off transitions happen on time.
const maxSubstep = time.Second

// State is the observable state of the model.
type State struct {
	At        time.Duration // model time since start
	TempC     float64
	Factor    float64 // throughput/compute factor in [FloorFactor, 1]
	PowerW    float64 // power during the last step
	Throttled bool
	Events    uint64 // number of transitions into the throttled state
}

// Model is the pure thermal/throttle/power model of one device. It has no
// clock: callers advance it with Step. It is not safe for concurrent use.
type Model struct {
	p Profile
	s State
}

// NewModel returns a model at its idle steady state (T = ambient + R*idle).
// The profile must be valid (see Profile.Validate); an invalid profile is a
// programming error and panics.
func NewModel(p Profile) *Model {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return &Model{p: p, s: State{TempC: p.IdleC(), Factor: 1, PowerW: p.IdleW}}
}

// SetTemp sets the current temperature (e.g. to start a run hot).
func (m *Model) SetTemp(c float64) { m.s.TempC = c }

// Profile returns the model's parameters.
func (m *Model) Profile() Profile { return m.p }

// State returns the current state.
func (m *Model) State() State { return m.s }

// Step advances the model by dt with the given delivered I/O utilisation and
// compute utilisation (fractions of nominal, clamped to [0,1]) held constant.
func (m *Model) Step(dt time.Duration, io, util float64) State {
	for dt > 0 {
		h := min(dt, maxSubstep)
		m.substep(h.Seconds(), io, util)
		m.s.At += h
		dt -= h
	}
	return m.s
}

func (m *Model) substep(h, io, util float64) {
	p := &m.p
	// Throttle factor ramps according to the state at the start of the step.
	if m.s.Throttled {
		m.s.Factor = math.Max(p.FloorFactor, m.s.Factor-(1-p.FloorFactor)*h/p.RampDownS)
	} else {
		m.s.Factor = math.Min(1, m.s.Factor+(1-p.FloorFactor)*h/p.RampUpS)
	}
	w := p.PowerW(io, util)
	m.s.PowerW = w
	// Exact solution of dT/dt = (Tss - T)/tau for constant power.
	tss := p.SteadyC(w)
	m.s.TempC = tss + (m.s.TempC-tss)*math.Exp(-h/p.TauS)
	switch {
	case !m.s.Throttled && m.s.TempC >= p.ThrottleOnC:
		m.s.Throttled = true
		m.s.Events++
	case m.s.Throttled && m.s.TempC <= p.ThrottleOffC:
		m.s.Throttled = false
	}
}

// RCTemp is the analytic solution of the RC model: the temperature after t at
// constant power w starting from t0.
func (p Profile) RCTemp(t0, w float64, t time.Duration) float64 {
	tss := p.SteadyC(w)
	return tss + (t0-tss)*math.Exp(-t.Seconds()/p.TauS)
}
