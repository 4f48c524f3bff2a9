package device

import (
	"math"
	"testing"
	"time"
)

func noThrottle(p Profile) Profile {
	p.ThrottleOnC, p.ThrottleOffC = 1000, 999
	return p
}

// The RC part is integrated exactly, so any step size lands on the analytic
// solution T(t) = Tss + (T0 - Tss) e^{-t/tau}, for heating and for cooling.
func TestRCMatchesAnalytic(t *testing.T) {
	for _, prof := range []Profile{SmartSSD(), ScaleFlux()} {
		p := noThrottle(prof)
		for _, step := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 7300 * time.Millisecond} {
			m := NewModel(p)
			t0 := m.State().TempC
			full := p.PowerW(1, 1)
			var el time.Duration
			for el < 90*time.Minute {
				m.Step(step, 1, 1)
				el += step
				want := p.RCTemp(t0, full, el)
				if got := m.State().TempC; math.Abs(got-want) > 1e-6 {
					t.Fatalf("%s step %v heating at %v: T=%.9f want %.9f", p.Name, step, el, got, want)
				}
			}
			// Converges to the steady state (5+ time constants).
			if got, ss := m.State().TempC, p.SteadyC(full); math.Abs(got-ss) > 0.01*(ss-t0) {
				t.Fatalf("%s: after %v T=%.3f, steady %.3f", p.Name, el, got, ss)
			}
			// Cooling from hot back toward idle.
			hot := m.State().TempC
			el = 0
			for el < 90*time.Minute {
				m.Step(step, 0, 0)
				el += step
				want := p.RCTemp(hot, p.IdleW, el)
				if got := m.State().TempC; math.Abs(got-want) > 1e-6 {
					t.Fatalf("%s step %v cooling at %v: T=%.9f want %.9f", p.Name, step, el, got, want)
				}
			}
			if got := m.State().TempC; math.Abs(got-p.IdleC()) > 0.01*(hot-p.IdleC()) {
				t.Fatalf("%s: did not cool to idle %.3f: %.3f", p.Name, p.IdleC(), got)
			}
		}
	}
}

func TestTimeToThrottleMatchesModel(t *testing.T) {
	for _, p := range []Profile{SmartSSD(), ScaleFlux()} {
		want, ok := p.TimeToThrottle()
		if !ok {
			t.Fatalf("%s never throttles", p.Name)
		}
		if want < 10*time.Minute || want > 16*time.Minute {
			t.Errorf("%s: throttle onset %v, profile is meant to throttle at 10-16 model minutes", p.Name, want)
		}
		m := NewModel(p)
		for !m.State().Throttled {
			m.Step(100*time.Millisecond, 1, 1)
		}
		if d := m.State().At - want; d < 0 || d > 200*time.Millisecond {
			t.Errorf("%s: model throttled at %v, analytic %v", p.Name, m.State().At, want)
		}
	}
}

// Throttle hysteresis: on at >= ThrottleOnC, stays on while cooling through
// the band, off only at <= ThrottleOffC; the factor ramps to the floor and
// back; one event per entry.
func TestThrottleHysteresis(t *testing.T) {
	p := SmartSSD()
	m := NewModel(p)
	step := 500 * time.Millisecond
	for !m.State().Throttled {
		if m.State().TempC >= p.ThrottleOnC {
			t.Fatalf("T=%.3f above on threshold but not throttled", m.State().TempC)
		}
		m.Step(step, 1, 1)
	}
	if m.State().Events != 1 {
		t.Fatalf("events %d, want 1", m.State().Events)
	}
	// Keep loading: factor ramps down to the floor in RampDownS.
	ramp := time.Duration(p.RampDownS * float64(time.Second))
	m.Step(ramp+step, m.State().Factor, 1)
	if f := m.State().Factor; f != p.FloorFactor {
		t.Fatalf("factor after ramp %.4f, want floor %.2f", f, p.FloorFactor)
	}
	// Cool down: inside the band it stays throttled.
	sawBand := false
	for m.State().Throttled {
		s := m.State()
		if s.TempC < p.ThrottleOnC && s.TempC > p.ThrottleOffC {
			sawBand = true
		}
		if s.TempC <= p.ThrottleOffC {
			t.Fatalf("T=%.3f <= off threshold but still throttled", s.TempC)
		}
		m.Step(step, 0, 0)
	}
	if !sawBand {
		t.Fatal("never observed the hysteresis band")
	}
	if m.State().TempC > p.ThrottleOffC {
		t.Fatalf("unthrottled at %.3f above off threshold %.1f", m.State().TempC, p.ThrottleOffC)
	}
	// Warming up again inside the band does not re-throttle.
	m.Step(10*time.Second, 1, 1)
	if s := m.State(); s.TempC < p.ThrottleOnC && s.Throttled {
		t.Fatalf("re-throttled at %.3f below on threshold", s.TempC)
	}
	m.Step(time.Duration(p.RampUpS*float64(time.Second)), 0, 0)
	if f := m.State().Factor; f != 1 {
		t.Fatalf("factor after recovery %.4f, want 1", f)
	}
	if m.State().Events != 1 {
		t.Fatalf("events %d, want 1", m.State().Events)
	}
}

// Sustained full demand: throughput falls toward the floor after the cliff.
func TestSustainedLoadCliff(t *testing.T) {
	for _, p := range []Profile{SmartSSD(), ScaleFlux()} {
		m := NewModel(p)
		onset, _ := p.TimeToThrottle()
		minF := 1.0
		for m.State().At < 30*time.Minute {
			s := m.Step(time.Second, m.State().Factor, m.State().Factor)
			if s.At < onset && s.Factor != 1 {
				t.Fatalf("%s: factor %.3f before onset %v", p.Name, s.Factor, onset)
			}
			minF = math.Min(minF, s.Factor)
		}
		if minF > p.FloorFactor+0.15 {
			t.Errorf("%s: throughput only fell to %.2f (floor %.2f)", p.Name, minF, p.FloorFactor)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	bad := SmartSSD()
	bad.ThrottleOffC = bad.ThrottleOnC
	if err := bad.Validate(); err == nil {
		t.Fatal("accepted off >= on")
	}
	bad = SmartSSD()
	bad.TauS = math.NaN()
	if err := bad.Validate(); err == nil {
		t.Fatal("accepted NaN tau")
	}
	if _, err := ProfileByName("nope"); err == nil {
		t.Fatal("accepted unknown profile")
	}
}

func TestProfileOnsets(t *testing.T) {
	for _, p := range []Profile{SmartSSD(), ScaleFlux()} {
		d, _ := p.TimeToThrottle()
		t.Logf("%s: idle %.1f°C, full load %.1f W -> %.1f°C, throttle at %.0f°C after %v", p.Name, p.IdleC(),
			p.PowerW(1, 1), p.SteadyC(p.PowerW(1, 1)), p.ThrottleOnC, d.Round(time.Second))
	}
}
