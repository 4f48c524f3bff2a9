package pcache

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/daxwio/daxwio/cxl"
	"github.com/prometheus/client_golang/prometheus"
)

type counters struct {
	hits, misses, fills, fillErrors, lostFills  atomic.Uint64
	waits, yields, optRetries, casRetries       atomic.Uint64
	evictCold, evictClear, evictForce, noVictim atomic.Uint64
	aged, takeovers, pinsReleased, reaped       atomic.Uint64
	pins, unpins                                atomic.Uint64
}

// Stats are this host's counters.
type Stats struct {
	Hits         uint64 // lookups served from the cache
	Misses       uint64 // lookups that found no copy and went to fill
	Fills        uint64 // pages this host read from a source and published
	FillErrors   uint64 // source reads that failed
	LostFills    uint64 // fills abandoned because the slot was taken over
	Waits        uint64 // lookups that waited for another host's fill
	Yields       uint64 // claims given up to a concurrent claim of the same page
	OptRetries   uint64 // optimistic copies or pins redone after a concurrent change
	CASRetries   uint64 // failed CAS on slot words
	EvictCold    uint64 // phase (a): cold victim
	EvictClear   uint64 // phase (b): victim after clearing the window's ref bits
	EvictForce   uint64 // phase (c): forced victim
	NoVictim     uint64 // windows found with nothing to evict
	Aged         uint64 // windows aged by this host's clock-hand wins
	Takeovers    uint64 // PENDING/EVICTING slots taken from dead hosts
	PinsReleased uint64 // dead hosts' pins dropped
	Reaped       uint64 // dead hosts' records reaped
	Pins         uint64
	Unpins       uint64
}

// Stats returns a snapshot of this host's counters.
func (c *Cache) Stats() Stats {
	s := &c.st
	return Stats{
		Hits: s.hits.Load(), Misses: s.misses.Load(), Fills: s.fills.Load(), FillErrors: s.fillErrors.Load(),
		LostFills: s.lostFills.Load(), Waits: s.waits.Load(), Yields: s.yields.Load(), OptRetries: s.optRetries.Load(),
		CASRetries: s.casRetries.Load(), EvictCold: s.evictCold.Load(), EvictClear: s.evictClear.Load(),
		EvictForce: s.evictForce.Load(), NoVictim: s.noVictim.Load(), Aged: s.aged.Load(), Takeovers: s.takeovers.Load(),
		PinsReleased: s.pinsReleased.Load(), Reaped: s.reaped.Load(), Pins: s.pins.Load(), Unpins: s.unpins.Load(),
	}
}

// HitRatio is hits / (hits + misses), 0 without lookups.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

func (s Stats) String() string {
	return fmt.Sprintf("hits %d misses %d (hit ratio %.3f) fills %d fill-errors %d lost-fills %d waits %d yields %d "+
		"opt-retries %d evictions cold/clear/force %d/%d/%d no-victim %d aged %d takeovers %d pins-released %d reaped %d pins %d unpins %d",
		s.Hits, s.Misses, s.HitRatio(), s.Fills, s.FillErrors, s.LostFills, s.Waits, s.Yields, s.OptRetries,
		s.EvictCold, s.EvictClear, s.EvictForce, s.NoVictim, s.Aged, s.Takeovers, s.PinsReleased, s.Reaped, s.Pins, s.Unpins)
}

// Metrics exports a cache's counters to Prometheus.
type Metrics struct{ c *Cache }

// NewMetrics registers the counters of c on reg (one registry per process;
// nothing is registered globally).
func NewMetrics(reg prometheus.Registerer, c *Cache) *Metrics {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(c.Stats())) })
	}
	evictions := prometheus.NewDesc("daxfs_pcache_evictions_total", "Slots this host evicted, by MH-clock phase.", []string{"phase"}, nil)
	reg.MustRegister(
		counter("daxfs_pcache_hits_total", "Page-cache lookups served from the cache.", func(s Stats) uint64 { return s.Hits }),
		counter("daxfs_pcache_misses_total", "Page-cache lookups that missed.", func(s Stats) uint64 { return s.Misses }),
		counter("daxfs_pcache_fills_total", "Pages this host read from the backing file and published.", func(s Stats) uint64 { return s.Fills }),
		counter("daxfs_pcache_fill_errors_total", "Backing-file reads that failed.", func(s Stats) uint64 { return s.FillErrors }),
		counter("daxfs_pcache_waits_total", "Lookups that waited for another host's fill.", func(s Stats) uint64 { return s.Waits }),
		counter("daxfs_pcache_takeovers_total", "Slots taken over from dead hosts.", func(s Stats) uint64 { return s.Takeovers }),
		counter("daxfs_pcache_pins_released_total", "Pins of dead hosts dropped by this host.", func(s Stats) uint64 { return s.PinsReleased }),
		counter("daxfs_pcache_optimistic_retries_total", "Optimistic copies or pins redone after a concurrent change.", func(s Stats) uint64 { return s.OptRetries }),
		&evictCollector{c: c, desc: evictions},
	)
	return &Metrics{c: c}
}

type evictCollector struct {
	c    *Cache
	desc *prometheus.Desc
}

func (e *evictCollector) Describe(ch chan<- *prometheus.Desc) { ch <- e.desc }

func (e *evictCollector) Collect(ch chan<- prometheus.Metric) {
	s := e.c.Stats()
	for _, p := range []struct {
		name string
		v    uint64
	}{{"cold", s.EvictCold}, {"clear", s.EvictClear}, {"force", s.EvictForce}} {
		ch <- prometheus.MustNewConstMetric(e.desc, prometheus.CounterValue, float64(p.v), p.name)
	}
}

// Report is what Inspect finds in a cache extent.
type Report struct {
	Header
	Hand                                 uint64
	Fills, Evictions, Takeovers          uint64 // region-wide counters
	Free, Pending, Valid, Evicting       uint64
	Referenced, Pinned, Pins             uint64 // pinned slots and pin bits
	BadWords, BadPinBits, UntaggedValids uint64 // findings a healthy cache never shows
	Hosts                                []HostRecord
}

// HostRecord is one used host record.
type HostRecord struct {
	Slot   int
	Inc    uint64
	Reaper uint64
}

// Healthy reports whether Inspect found nothing malformed.
func (r *Report) Healthy() bool { return r.BadWords == 0 && r.BadPinBits == 0 && r.UntaggedValids == 0 }

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pcache: %d slots of %d bytes, %d host records, clock hand %d\n", r.Slots, PageSize, len(r.Hosts), r.Hand)
	fmt.Fprintf(&b, "  slots: free %d pending %d valid %d evicting %d (referenced %d, pinned %d by %d pins)\n",
		r.Free, r.Pending, r.Valid, r.Evicting, r.Referenced, r.Pinned, r.Pins)
	fmt.Fprintf(&b, "  region-wide: fills %d evictions %d takeovers %d\n", r.Fills, r.Evictions, r.Takeovers)
	for _, h := range r.Hosts {
		fmt.Fprintf(&b, "  host %d: incarnation %#x reaper %#x\n", h.Slot, h.Inc, h.Reaper)
	}
	if !r.Healthy() {
		fmt.Fprintf(&b, "  PROBLEMS: %d malformed slot words, %d pin bits past the host table, %d VALID slots without a tag\n",
			r.BadWords, r.BadPinBits, r.UntaggedValids)
	}
	return b.String()
}

// Inspect decodes the cache at [off, off+length) of r without joining it.
func Inspect(r *cxl.Region, off, length uint64) (*Report, error) {
	if err := r.Check(off, length); err != nil {
		return nil, fmt.Errorf("pcache: inspect: %w", err)
	}
	if length < hdrSize || off%8 != 0 {
		return nil, fmt.Errorf("pcache: inspect at %#x: %w: extent of %d bytes", off, ErrBadFormat, length)
	}
	b := make([]byte, hdrFixed)
	copy(b, r.Bytes(off, hdrFixed))
	h, err := DecodeHeader(b, length)
	if err != nil {
		return nil, fmt.Errorf("pcache: inspect at %#x: %w", off, err)
	}
	return scan(h, func(o uint64) uint64 { return r.Load(off + o) }), nil
}

// InspectImage decodes a copy of the metadata part of an extent (at least
// its first DataOff bytes). It never panics on bad bytes.
func InspectImage(img []byte, extLen uint64) (*Report, error) {
	h, err := DecodeHeader(img, extLen)
	if err != nil {
		return nil, err
	}
	if uint64(len(img)) < h.DataOff {
		return nil, fmt.Errorf("%w: image of %d bytes, metadata ends at %d", ErrBadFormat, len(img), h.DataOff)
	}
	return scan(h, func(o uint64) uint64 { return binary.LittleEndian.Uint64(img[o:]) }), nil
}

// scan walks records and slots of a validated header; load reads the word
// at an extent-relative offset.
func scan(h *Header, load func(uint64) uint64) *Report {
	rep := &Report{Header: *h, Hand: load(hdrHand), Fills: load(hdrFills), Evictions: load(hdrEvicts), Takeovers: load(hdrTakeover)}
	for i := range h.MaxHosts {
		ro := h.RecsOff + uint64(i)*recSize
		if inc, rp := load(ro+recInc), load(ro+recReaper); inc != 0 || rp != 0 {
			rep.Hosts = append(rep.Hosts, HostRecord{Slot: i, Inc: inc, Reaper: rp})
		}
	}
	pins := make([]uint64, h.PinWords)
	for s := range h.Slots {
		m := h.MetaOff + s*h.MetaStride
		w := DecodeSlotWord(load(m + metaWord))
		if !w.Valid(h.MaxHosts) {
			rep.BadWords++
		}
		switch w.State {
		case StateFree:
			rep.Free++
		case StatePending:
			rep.Pending++
		case StateValid:
			rep.Valid++
			if load(m+metaTagGen) != w.Gen {
				rep.UntaggedValids++
			}
		case StateEvicting:
			rep.Evicting++
		}
		if w.Ref {
			rep.Referenced++
		}
		for i := range pins {
			pins[i] = load(m + metaPins + 8*uint64(i))
		}
		holders, bad := PinHolders(pins, h.MaxHosts)
		rep.BadPinBits += uint64(bad)
		if len(holders) > 0 {
			rep.Pinned++
			rep.Pins += uint64(len(holders))
		}
	}
	return rep
}
