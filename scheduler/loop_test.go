package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type traceSource struct {
	ss     []Signals
	i      int
	actors []Actor
}

func (s *traceSource) Sample(context.Context) (Signals, []Actor, error) {
	if s.i >= len(s.ss) {
		return Signals{}, nil, errors.New("trace exhausted")
	}
	s.i++
	return s.ss[s.i-1], append([]Actor(nil), s.actors...), nil
}

// cancelAtEnd fails like its trace source once exhausted, and then ends the run.
type cancelAtEnd struct {
	*traceSource
	cancel func()
}

func (c cancelAtEnd) Sample(ctx context.Context) (Signals, []Actor, error) {
	s, a, err := c.traceSource.Sample(ctx)
	if err != nil && c.i == len(c.ss) {
		c.i++ // one failed tick first, then stop
	} else if err != nil {
		c.cancel()
	}
	return s, a, err
}

type fakeMover struct {
	src   *traceSource
	fail  map[string]bool
	moves int
}

func (m *fakeMover) Move(_ context.Context, id string, to Side) (time.Duration, error) {
	if m.fail[id] {
		return 0, errors.New("drain timed out")
	}
	for i := range m.src.actors {
		if m.src.actors[i].ID == id {
			m.src.actors[i].Side = to
		}
	}
	m.moves++
	return 3 * time.Millisecond, nil
}

// The loop logs every decision with its reason (structured), exports
// metrics on its own registry, and keeps going when one move fails.
func TestLoopLogsAndMetrics(t *testing.T) {
	src := &traceSource{ss: loadSignals(t, "cliff.csv"), actors: actorsOn(Device, 3)}
	mv := &fakeMover{src: src, fail: map[string]bool{"a1": true}}
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	p, _ := NewPolicy(testConfig())
	l := &Loop{Policy: p, Source: src, Mover: mv, Metrics: NewMetrics(reg),
		Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	var failed int
	for range src.ss {
		_, err := l.Tick(context.Background())
		if err != nil {
			if !strings.Contains(err.Error(), "a1") {
				t.Fatal(err)
			}
			failed++
		}
	}
	if mv.moves != 2 || failed == 0 {
		t.Fatalf("moves %d failed %d", mv.moves, failed)
	}
	// Every logged line is a decision with a reason.
	var lookahead int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] != "placement decision" || rec["reason"] == "" || rec["actor"] == "" {
			t.Fatalf("log line %s", line)
		}
		if rec["reason"] == string(ReasonLookAhead) && rec["action"] == "migrate" {
			lookahead++
		}
	}
	if lookahead < 3 {
		t.Fatalf("%d look-ahead migrations logged", lookahead)
	}
	if got := testutil.ToFloat64(l.Metrics.migrations.WithLabelValues("device", "host", "ok")); got != 2 {
		t.Fatalf("ok migrations metric %v", got)
	}
	if got := testutil.ToFloat64(l.Metrics.migrations.WithLabelValues("device", "host", "error")); got != float64(failed) {
		t.Fatalf("failed migrations metric %v, want %d", got, failed)
	}
	if got := testutil.ToFloat64(l.Metrics.actors.WithLabelValues("host")); got != 2 {
		t.Fatalf("actors on host %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "wio_scheduler_decisions_total"); err != nil || n == 0 {
		t.Fatalf("decisions metric: %d %v", n, err)
	}
	// The failing actor is retried only after its dwell.
	if failed > int(src.ss[len(src.ss)-1].At.Sub(src.ss[0].At)/p.Dwell(src.actors[1]))+1 {
		t.Fatalf("a1 retried %d times, more often than its dwell allows", failed)
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Run keeps going when the source fails (logged, counted) and stops when
// the context ends.
func TestLoopRun(t *testing.T) {
	src := &traceSource{ss: loadSignals(t, "cool_capped.csv")[:50], actors: actorsOn(Host, 1)}
	p, _ := NewPolicy(testConfig())
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{now: base}
	reg := prometheus.NewRegistry()
	l := &Loop{Policy: p, Source: src, Clock: clk, Log: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: NewMetrics(reg),
		OnDecision: func(Decision, error) {}}
	l.Source = cancelAtEnd{src, cancel}
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(l.Metrics.tickErrors); got == 0 || !strings.Contains(logs.String(), "exhausted") {
		t.Fatalf("tick errors %v, logs %q", got, logs.String())
	}
}

func TestStats(t *testing.T) {
	s := NewStats(0.5)
	s.Place("b", Device)
	s.ObserveService("b", Device, 4*time.Millisecond)
	s.ObserveService("b", Device, 8*time.Millisecond)
	s.ObserveService("a", Host, time.Millisecond)
	s.ObserveMigration("a", 10*time.Millisecond)
	s.SetQueue("a", 7)
	as := s.Actors()
	if len(as) != 2 || as[0].ID != "a" || as[1].SvcDevice != 6*time.Millisecond || as[0].QueueDepth != 7 ||
		as[0].MigrationCost != 10*time.Millisecond || as[1].Side != Device {
		t.Fatalf("%+v", as)
	}
}

func TestReadSignalsErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"fields":    "1,2,3\n",
		"back":      "2,50,1,0,0,1\n1,50,1,0,0,1\n",
		"factor":    "0,50,2,0,0,1\n",
		"bad num":   "0,50,1,0,0,1\n1,x,1,0,0,1\n",
		"inf":       "0,+Inf,1,0,0,1\n",
		"neg power": "0,50,1,-1,0,1\n",
	} {
		if _, err := ReadSignals(strings.NewReader(in), base); !errors.Is(err, ErrBadTrace) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var buf bytes.Buffer
	ss := loadSignals(t, "cool_capped.csv")
	if err := WriteSignals(&buf, base, ss); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSignals(&buf, base)
	if err != nil || len(back) != len(ss) || back[400] != ss[400] {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzReadSignals(f *testing.F) {
	f.Add(SignalColumns + "\n0,50,1,100,200,1\n1,51,0.5,100,0,0.8\n")
	f.Add("# x\n\n0,0,0,0,0,0\n")
	f.Fuzz(func(t *testing.T, s string) {
		ss, err := ReadSignals(strings.NewReader(s), base)
		if err != nil {
			return
		}
		// Whatever parses drives the policy without panicking.
		p, _ := NewPolicy(testConfig())
		for _, x := range ss {
			if x.At.Before(base) || x.DeviceFactor < 0 || x.DeviceFactor > 1 {
				t.Fatalf("%+v", x)
			}
			p.Step(x, actorsOn(Device, 2))
		}
	})
}
