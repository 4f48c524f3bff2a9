package device

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// fakeClock: Sleep advances time instantly.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.Advance(d)
	}
	return ctx.Err()
}

// memWords is an in-memory Words (what *cxl.Region provides).
type memWords struct{ w []atomic.Uint64 }

func newMemWords(n int) *memWords { return &memWords{w: make([]atomic.Uint64, n/8)} }

func (m *memWords) Check(off, n uint64) error {
	if off+n < off || off+n > uint64(len(m.w))*8 {
		return fmt.Errorf("range [%#x,+%d) out of %d bytes", off, n, len(m.w)*8)
	}
	return nil
}
func (m *memWords) Load(off uint64) uint64       { return m.w[off/8].Load() }
func (m *memWords) Store(off, v uint64)          { m.w[off/8].Store(v) }
func (m *memWords) Add(off, delta uint64) uint64 { return m.w[off/8].Add(delta) }
