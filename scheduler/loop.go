package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Clock is the loop's time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WallClock is the real clock.
var WallClock Clock = wallClock{}

// Source supplies one sample of the signals and the actors' statistics.
type Source interface {
	Sample(ctx context.Context) (Signals, []Actor, error)
}

// Mover carries out a migration (drain-and-switch) and returns its blackout.
type Mover interface {
	Move(ctx context.Context, actor string, to Side) (blackout time.Duration, err error)
}

// Loop samples the source every Period, runs the policy, logs every
// decision with its reason, updates metrics and carries out migrations one
// at a time, in the policy's order.
type Loop struct {
	Policy  *Policy
	Source  Source
	Mover   Mover
	Clock   Clock         // default WallClock
	Period  time.Duration // default 100ms
	Log     *slog.Logger  // default slog.Default()
	Metrics *Metrics      // may be nil
	// OnDecision, if set, is called for every decision after it is carried out.
	OnDecision func(Decision, error)
}

// Tick runs one iteration: sample, decide, log, move.
func (l *Loop) Tick(ctx context.Context) ([]Decision, error) {
	clock := l.Clock
	if clock == nil {
		clock = WallClock
	}
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	sig, actors, err := l.Source.Sample(ctx)
	if err != nil {
		return nil, fmt.Errorf("scheduler: sampling signals: %w", err)
	}
	if sig.At.IsZero() {
		sig.At = clock.Now()
	}
	ds := l.Policy.Step(sig, actors)
	l.Metrics.observeView(l.Policy.View(), actors)
	var errs []error
	for _, d := range ds {
		l.Metrics.observeDecision(d)
		attrs := []any{
			slog.String("actor", d.Actor), slog.String("action", d.Action.String()),
			slog.String("from", d.From.String()), slog.String("to", d.To.String()),
			slog.String("reason", string(d.Reason)), slog.Float64("temp_c", round3(d.TempC)),
			slog.Float64("slope_c_per_s", round3(d.SlopeCps)), slog.Float64("predicted_c", round3(d.PredC)),
			slog.Bool("host_constrained", d.HostConstrained), slog.Duration("dwell", d.Dwell),
		}
		var merr error
		if d.Action == Migrate && l.Mover != nil {
			var bo time.Duration
			bo, merr = l.Mover.Move(ctx, d.Actor, d.To)
			l.Metrics.observeMove(d, bo.Seconds(), merr)
			attrs = append(attrs, slog.Duration("blackout", bo))
			if merr != nil {
				attrs = append(attrs, slog.String("error", merr.Error()))
				errs = append(errs, fmt.Errorf("scheduler: moving %s to %s: %w", d.Actor, d.To, merr))
			}
		}
		lvl := slog.LevelInfo
		if d.Action == Hold {
			lvl = slog.LevelDebug
		}
		if merr != nil {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "placement decision", attrs...)
		if l.OnDecision != nil {
			l.OnDecision(d, merr)
		}
	}
	return ds, errors.Join(errs...)
}

// Run ticks every Period until ctx ends. A failed sample is logged and the
// tick skipped (a sensor that glitches must not stop placement); failed
// moves are logged and retried by later ticks after the actor's dwell.
func (l *Loop) Run(ctx context.Context) error {
	clock := l.Clock
	if clock == nil {
		clock = WallClock
	}
	period := l.Period
	if period <= 0 {
		period = 100 * time.Millisecond
	}
	for {
		if _, err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			log := l.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn("scheduler tick failed", slog.String("error", err.Error()))
			l.Metrics.observeTickError()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(period):
		}
	}
}

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5*sign(v))) / 1000
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
