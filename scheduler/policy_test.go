package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

var base = time.Unix(1_700_000_000, 0).UTC()

func loadSignals(t testing.TB, name string) []Signals {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ss, err := ReadSignals(f, base)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// testConfig is the SmartSSD-like band (throttle at 77 °C) with a two-minute
// look-ahead, on model time.
func testConfig() Config {
	c := DefaultConfig(77)
	c.LookAhead = 2 * time.Minute
	c.TempTau = 3 * time.Second
	c.SlopeWindow = time.Minute
	c.MinDwell = 30 * time.Second
	c.Window = 5 * time.Minute
	c.MaxPerWindow = 8
	return c
}

func actorsOn(side Side, n int) []Actor {
	var as []Actor
	for i := 0; i < n; i++ {
		as = append(as, Actor{ID: fmt.Sprintf("a%d", i), Side: side, SvcHost: time.Millisecond,
			SvcDevice: 4 * time.Millisecond, QueueDepth: i, MigrationCost: 20 * time.Millisecond})
	}
	return as
}

// replay runs the policy over a trace, applying each migration at once.
func replay(t testing.TB, c Config, ss []Signals, as []Actor) []Decision {
	t.Helper()
	p, err := NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	var all []Decision
	for _, s := range ss {
		ds := p.Step(s, as)
		for _, d := range ds {
			if d.Action != Migrate {
				continue
			}
			for i := range as {
				if as[i].ID == d.Actor {
					if as[i].Side != d.From {
						t.Fatalf("decision %+v for actor on %v", d, as[i].Side)
					}
					as[i].Side = d.To
				}
			}
		}
		all = append(all, ds...)
	}
	return all
}

func migrations(ds []Decision) []Decision {
	var out []Decision
	for _, d := range ds {
		if d.Action == Migrate {
			out = append(out, d)
		}
	}
	return out
}

func firstCross(ss []Signals, f func(Signals) bool) time.Duration {
	for _, s := range ss {
		if f(s) {
			return s.At.Sub(base)
		}
	}
	return -1
}

// Under sustained load the slope look-ahead offloads well before the raw
// temperature reaches HotC, and so before the cliff; without look-ahead the
// same trace offloads later, at HotC.
func TestOffloadBeforeCliff(t *testing.T) {
	ss := loadSignals(t, "cliff.csv")
	c := testConfig()
	cliff := firstCross(ss, func(s Signals) bool { return s.DeviceFactor < 1 })
	hot := firstCross(ss, func(s Signals) bool { return s.DeviceTempC >= c.HotC })

	ms := migrations(replay(t, c, ss, actorsOn(Device, 4)))
	if len(ms) != 4 {
		t.Fatalf("%d migrations, want 4 (one per actor): %+v", len(ms), ms)
	}
	at := ms[0].At.Sub(base)
	for i, m := range ms {
		if m.To != Host || m.Reason != ReasonLookAhead || !m.At.Equal(ms[0].At) {
			t.Fatalf("migration %d: %+v", i, m)
		}
	}
	// Most agile first: the deepest queue (a3) moves first.
	if ms[0].Actor != "a3" || ms[3].Actor != "a0" {
		t.Errorf("order %s..%s, want a3 first", ms[0].Actor, ms[3].Actor)
	}
	if at >= hot || ms[0].TempC >= c.HotC {
		t.Fatalf("offloaded at %v (T=%.2f), raw trace crosses HotC %.0f at %v", at, ms[0].TempC, c.HotC, hot)
	}
	if cliff-at < 3*time.Minute {
		t.Fatalf("offloaded at %v, only %v before the cliff at %v", at, cliff-at, cliff)
	}
	// Not spuriously early either: the noise-free curve is within 4 °C of HotC.
	if ms[0].TempC < c.HotC-4 {
		t.Fatalf("offloaded at T=%.2f, far below HotC", ms[0].TempC)
	}
	t.Logf("look-ahead offload at %v (T=%.2f, predicted %.2f); HotC crossed at %v; cliff at %v", at, ms[0].TempC, ms[0].PredC, hot, cliff)

	c.LookAhead = 0
	ms0 := migrations(replay(t, c, ss, actorsOn(Device, 4)))
	if len(ms0) != 4 || ms0[0].Reason != ReasonHot {
		t.Fatalf("without look-ahead: %+v", ms0)
	}
	at0 := ms0[0].At.Sub(base)
	if at0 <= at || at0 < hot {
		t.Fatalf("without look-ahead offloaded at %v, with at %v, HotC at %v", at0, at, hot)
	}
	t.Logf("without look-ahead: offload at %v, %v later", at0, at0-at)
}

// Cool device, host capped at t=300s: actors return right after the cap,
// never before it (a cool device alone is no reason when the device is the
// slower side).
func TestReturnWhenCoolAndCapped(t *testing.T) {
	ss := loadSignals(t, "cool_capped.csv")
	c := testConfig()
	capAt := firstCross(ss, func(s Signals) bool { return s.HostCapW == 200 })
	ds := replay(t, c, ss, actorsOn(Host, 3))
	ms := migrations(ds)
	if len(ms) != 3 {
		t.Fatalf("%d migrations, want 3: %+v", len(ms), ms)
	}
	for _, m := range ms {
		if m.To != Device || m.Reason != ReasonCoolHostCapped {
			t.Fatalf("%+v", m)
		}
		if d := m.At.Sub(base) - capAt; d < 0 || d > 5*time.Second {
			t.Fatalf("returned at %v, cap at %v", m.At.Sub(base), capAt)
		}
	}
	if len(ds) != len(ms) {
		t.Fatalf("unexpected holds: %+v", ds)
	}
}

// Host capped early while the device is still in the band: hold until the
// device is at or below CoolC (hysteresis), then return.
func TestReturnWaitsForCool(t *testing.T) {
	ss := loadSignals(t, "capped_then_cool.csv")
	c := testConfig()
	cool := firstCross(ss, func(s Signals) bool { return s.DeviceTempC <= c.CoolC })
	ms := migrations(replay(t, c, ss, actorsOn(Host, 2)))
	if len(ms) != 2 {
		t.Fatalf("%+v", ms)
	}
	at := ms[0].At.Sub(base)
	if at < cool || ms[0].TempC > c.CoolC || ms[0].Reason != ReasonCoolHostCapped {
		t.Fatalf("returned at %v (T=%.2f); raw trace reaches CoolC at %v", at, ms[0].TempC, cool)
	}
	t.Logf("capped at 60s, device cool at %v, returned at %v", cool, at)
}

// A device whose (noisy) temperature stays inside the hysteresis band never
// moves anything, whatever the host does.
func TestNoMovesInsideBand(t *testing.T) {
	c := testConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	p, _ := NewPolicy(c)
	as := append(actorsOn(Host, 2), actorsOn(Device, 2)...)
	as[2].ID, as[3].ID = "d0", "d1"
	mid := (c.HotC + c.CoolC) / 2
	for i := 0; i < 20000; i++ {
		s := Signals{At: base.Add(time.Duration(i) * time.Second), DeviceTempC: mid + rng.NormFloat64()*0.3,
			DeviceFactor: 1, HostPowerW: 190 + rng.NormFloat64()*20, HostCapW: 200, HostSpeed: 1}
		if ds := p.Step(s, as); len(ds) != 0 {
			t.Fatalf("step %d: %+v", i, ds)
		}
	}
}

// Property: under arbitrary noisy signals that cross both bands all the
// time, (1) no actor moves twice within its dwell, (2) no window holds more
// than the budget, so (3) total moves are bounded by budget * windows.
func TestNoPingPongUnderNoise(t *testing.T) {
	seeds := uint64(40)
	if raceEnabled {
		seeds = 8 // the race detector adds nothing to a single-goroutine policy; keep it quick
	}
	for seed := uint64(0); seed < seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		c := testConfig()
		c.LookAhead = time.Duration(rng.IntN(180)) * time.Second
		c.MaxPerWindow = 1 + rng.IntN(6)
		c.MinDwell = time.Duration(1+rng.IntN(60)) * time.Second
		c.Window = time.Duration(10+rng.IntN(300)) * time.Second
		p, err := NewPolicy(c)
		if err != nil {
			t.Fatal(err)
		}
		as := actorsOn(Device, 1+rng.IntN(6))
		for i := range as {
			as[i].MigrationCost = time.Duration(rng.IntN(5000)) * time.Millisecond
		}
		last := map[string]time.Time{}
		var moves []time.Time
		step := time.Duration(50+rng.IntN(2000)) * time.Millisecond
		amp, sigma := 5+rng.Float64()*15, rng.Float64()*6
		period := 20 + rng.Float64()*600
		total := 2 * time.Hour
		n := int(total / step)
		for i := 0; i < n; i++ {
			at := base.Add(time.Duration(i) * step)
			ts := at.Sub(base).Seconds()
			s := Signals{
				At:           at,
				DeviceTempC:  (c.HotC+c.CoolC)/2 + amp*math.Sin(2*math.Pi*ts/period) + rng.NormFloat64()*sigma,
				DeviceFactor: 1 - 0.5*float64(rng.IntN(3)/2),
				HostPowerW:   150 + rng.Float64()*100,
				HostCapW:     200,
				HostSpeed:    0.7 + rng.Float64()*0.3,
			}
			if rng.IntN(50) == 0 {
				s.DeviceTempC = math.NaN() // a bad sensor read now and then
			}
			for _, d := range p.Step(s, as) {
				if d.Action != Migrate {
					continue
				}
				for j := range as {
					if as[j].ID != d.Actor {
						continue
					}
					if l, ok := last[d.Actor]; ok && d.At.Sub(l) < p.Dwell(as[j]) {
						t.Fatalf("seed %d: %s moved again after %v, dwell %v", seed, d.Actor, d.At.Sub(l), p.Dwell(as[j]))
					}
					last[d.Actor] = d.At
					as[j].Side = d.To
				}
				moves = append(moves, d.At)
				k := 0
				for _, m := range moves {
					if d.At.Sub(m) < c.Window {
						k++
					}
				}
				if k > c.MaxPerWindow {
					t.Fatalf("seed %d: %d moves in one window, budget %d", seed, k, c.MaxPerWindow)
				}
			}
		}
		bound := c.MaxPerWindow * (int(total/c.Window) + 1)
		if len(moves) > bound {
			t.Fatalf("seed %d: %d moves, bound %d", seed, len(moves), bound)
		}
	}
}

func TestDeterministic(t *testing.T) {
	ss := loadSignals(t, "cliff.csv")
	a := replay(t, testConfig(), ss, actorsOn(Device, 5))
	b := replay(t, testConfig(), ss, actorsOn(Device, 5))
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("two runs over the same trace differ")
	}
}

func TestConfigValidate(t *testing.T) {
	c := testConfig()
	c.CoolC = c.HotC
	if _, err := NewPolicy(c); err == nil {
		t.Fatal("accepted CoolC == HotC")
	}
	c = testConfig()
	c.MaxPerWindow = 0
	if err := c.Validate(); err == nil {
		t.Fatal("accepted zero budget")
	}
}
