package scheduler

import (
	"slices"
	"sync"
	"time"
)

// Stats collects the per-actor measurements the policy needs: service time
// on each side (EWMA), queue depth, migration cost (EWMA of measured drain +
// instantiate) and current side. Safe for concurrent use.
type Stats struct {
	alpha float64
	mu    sync.Mutex
	m     map[string]*Actor
}

// NewStats returns a collector whose averages weigh a new observation by
// alpha in (0,1] (values outside take 0.2).
func NewStats(alpha float64) *Stats {
	if !(alpha > 0 && alpha <= 1) {
		alpha = 0.2
	}
	return &Stats{alpha: alpha, m: map[string]*Actor{}}
}

func (s *Stats) get(id string) *Actor {
	a, ok := s.m[id]
	if !ok {
		a = &Actor{ID: id}
		s.m[id] = a
	}
	return a
}

func (s *Stats) ewma(old, v time.Duration) time.Duration {
	if old == 0 {
		return v
	}
	return old + time.Duration(s.alpha*float64(v-old))
}

// Place records where an actor runs now.
func (s *Stats) Place(id string, side Side) {
	s.mu.Lock()
	s.get(id).Side = side
	s.mu.Unlock()
}

// ObserveService records one request's service time on a side.
func (s *Stats) ObserveService(id string, side Side, d time.Duration) {
	s.mu.Lock()
	a := s.get(id)
	if side == Host {
		a.SvcHost = s.ewma(a.SvcHost, d)
	} else {
		a.SvcDevice = s.ewma(a.SvcDevice, d)
	}
	s.mu.Unlock()
}

// ObserveMigration records the measured cost of one move.
func (s *Stats) ObserveMigration(id string, d time.Duration) {
	s.mu.Lock()
	a := s.get(id)
	a.MigrationCost = s.ewma(a.MigrationCost, d)
	s.mu.Unlock()
}

// SetQueue records the current queue depth.
func (s *Stats) SetQueue(id string, n int) {
	s.mu.Lock()
	s.get(id).QueueDepth = n
	s.mu.Unlock()
}

// Actors returns a snapshot sorted by ID.
func (s *Stats) Actors() []Actor {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Actor, 0, len(s.m))
	for _, a := range s.m {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(x, y Actor) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return out
}
