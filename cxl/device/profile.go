// Package device emulates a computational storage device (CSD) attached to
// the shared region: a few slow compute units, a first-order RC thermal
// model, a throttle curve with hysteresis, a power draw, trace replay with
// time compression, and telemetry words published in the region.
//
// Every parameter here is a MODEL fitted to the parametric curves described
// in docs/DEVICE.md; none of them is a measurement of real hardware.
package device

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Profile holds the parameters of the emulated device. All temperatures are
// in °C, powers in W, times in model seconds.
type Profile struct {
	Name string

	// Units is the number of compute units (K) and SpeedFactor their speed
	// relative to one host core (0.25 = four times slower).
	Units       int
	SpeedFactor float64

	// BandwidthMBs is the nominal sustained write bandwidth in MB/s, used
	// only to turn delivered I/O into an I/O utilisation for the power model.
	BandwidthMBs float64

	// Thermal RC model: dT/dt = (AmbientC + RthCPerW*P - T) / TauS.
	AmbientC float64
	RthCPerW float64
	TauS     float64

	// Power model: P = IdleW + IOW*io + ComputeW*util, io and util in [0,1].
	IdleW    float64
	IOW      float64
	ComputeW float64

	// Throttle curve. Throttling starts when T >= ThrottleOnC and stops when
	// T <= ThrottleOffC (hysteresis). While throttling the throughput factor
	// ramps linearly from 1 down to FloorFactor over RampDownS; after
	// throttling stops it ramps back to 1 over RampUpS.
	ThrottleOnC  float64
	ThrottleOffC float64
	FloorFactor  float64
	RampDownS    float64
	RampUpS      float64
}

// ErrBadProfile is wrapped by Profile.Validate.
var ErrBadProfile = errors.New("device: invalid profile")

// Validate reports the first parameter that makes the profile unusable.
func (p Profile) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrBadProfile, p.Name, fmt.Sprintf(f, a...))
	}
	finite := func(vs ...float64) bool {
		for _, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
		return true
	}
	switch {
	case !finite(p.SpeedFactor, p.BandwidthMBs, p.AmbientC, p.RthCPerW, p.TauS, p.IdleW, p.IOW,
		p.ComputeW, p.ThrottleOnC, p.ThrottleOffC, p.FloorFactor, p.RampDownS, p.RampUpS):
		return bad("a parameter is NaN or infinite")
	case p.Units < 1:
		return bad("units %d < 1", p.Units)
	case p.SpeedFactor <= 0 || p.SpeedFactor > 1:
		return bad("speed factor %g not in (0,1]", p.SpeedFactor)
	case p.BandwidthMBs <= 0:
		return bad("bandwidth %g <= 0", p.BandwidthMBs)
	case p.RthCPerW <= 0 || p.TauS <= 0:
		return bad("thermal resistance %g and time constant %g must be > 0", p.RthCPerW, p.TauS)
	case p.IdleW < 0 || p.IOW < 0 || p.ComputeW < 0:
		return bad("negative power term")
	case p.ThrottleOffC >= p.ThrottleOnC:
		return bad("throttle off %g°C must be below on %g°C", p.ThrottleOffC, p.ThrottleOnC)
	case p.FloorFactor <= 0 || p.FloorFactor > 1:
		return bad("floor factor %g not in (0,1]", p.FloorFactor)
	case p.RampDownS <= 0 || p.RampUpS <= 0:
		return bad("ramps must be > 0")
	}
	return nil
}

// PowerW is the power draw for an I/O utilisation io and a compute
// utilisation util, both clamped to [0,1].
func (p Profile) PowerW(io, util float64) float64 {
	return p.IdleW + p.IOW*clamp01(io) + p.ComputeW*clamp01(util)
}

// SteadyC is the temperature the device converges to at constant power w.
func (p Profile) SteadyC(w float64) float64 { return p.AmbientC + p.RthCPerW*w }

// IdleC is the steady temperature of an idle device.
func (p Profile) IdleC() float64 { return p.SteadyC(p.IdleW) }

// TimeToThrottle is the analytic time for a device starting at its idle
// temperature and running flat out (io = util = 1) to reach ThrottleOnC, or
// ok=false if it never does.
func (p Profile) TimeToThrottle() (d time.Duration, ok bool) {
	full := p.SteadyC(p.PowerW(1, 1))
	t0 := p.IdleC()
	if full <= p.ThrottleOnC || t0 >= p.ThrottleOnC {
		return 0, t0 >= p.ThrottleOnC
	}
	s := p.TauS * math.Log((full-t0)/(full-p.ThrottleOnC))
	return time.Duration(s * float64(time.Second)), true
}

// SmartSSD is a SmartSSD-like profile: two compute units at a quarter of a
// host core, heat mostly from compute (the FPGA-class engine) and some from
// I/O. Flat out from idle it reaches the 77 °C OCP throttle point after
// about 13.6 model minutes and then falls to 50 % throughput over 5 minutes
// (the shape of the parametric curve in wio.md §7). A model, not a
// measurement.
func SmartSSD() Profile {
	return Profile{
		Name:         "smartssd-like",
		Units:        2,
		SpeedFactor:  0.25,
		BandwidthMBs: 2000,
		AmbientC:     40,
		RthCPerW:     2.0,
		TauS:         800,
		IdleW:        7,
		IOW:          4,
		ComputeW:     14,
		ThrottleOnC:  77,
		ThrottleOffC: 72,
		FloorFactor:  0.5,
		RampDownS:    300,
		RampUpS:      120,
	}
}

// ScaleFlux is a ScaleFlux-CSD1000-like profile: throttles at 70 °C about 11
// model minutes after idle under full load and falls to 40 % throughput over
// 6 minutes. A model, not a measurement.
func ScaleFlux() Profile {
	return Profile{
		Name:         "scaleflux-like",
		Units:        2,
		SpeedFactor:  0.3,
		BandwidthMBs: 1800,
		AmbientC:     38,
		RthCPerW:     1.9,
		TauS:         640,
		IdleW:        6,
		IOW:          4,
		ComputeW:     12,
		ThrottleOnC:  70,
		ThrottleOffC: 65,
		FloorFactor:  0.4,
		RampDownS:    360,
		RampUpS:      120,
	}
}

// ProfileByName returns a built-in profile: "smartssd" or "scaleflux".
func ProfileByName(name string) (Profile, error) {
	switch name {
	case "smartssd", "smartssd-like":
		return SmartSSD(), nil
	case "scaleflux", "scaleflux-like":
		return ScaleFlux(), nil
	}
	return Profile{}, fmt.Errorf("%w: unknown profile %q (want smartssd or scaleflux)", ErrBadProfile, name)
}

func clamp01(v float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v > 1:
		return 1
	}
	return v
}
