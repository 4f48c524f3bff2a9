package device

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
)

// Words is the part of *cxl.Region that telemetry needs: 8-byte atomic
// words at 8-byte-aligned offsets, and a bounds check.
type Words interface {
	Check(off, n uint64) error
	Load(off uint64) uint64
	Store(off, v uint64)
	Add(off, delta uint64) uint64
}

// Telemetry layout: TelemetrySize bytes at an 8-aligned offset, one cache
// line. Every field is one little-endian 64-bit word written atomically.
//
//	+0  magic      TelemetryMagic
//	+8  seq        seqlock and heartbeat: odd while a publish is in progress,
//	               +2 per completed publish
//	+16 temp_mc    temperature, milli-°C, int64
//	+24 factor_ppm throughput factor, parts per million, 0..1e6
//	+32 power_mw   power draw, mW
//	+40 events     throttle events (transitions into throttling)
//	+48 wall_ns    publisher's wall clock, Unix ns
//	+56 flags      bit 0: throttled; other bits zero
const (
	TelemetrySize  = 64
	TelemetryMagic = 0x31304C4554_4F4957 // "WIOTEL01" little-endian

	offMagic  = 0
	offSeq    = 8
	offTemp   = 16
	offFactor = 24
	offPower  = 32
	offEvents = 40
	offWall   = 48
	offFlags  = 56

	flagThrottled = 1
)

// Telemetry errors callers branch on.
var (
	ErrNoTelemetry  = errors.New("device: no telemetry at offset (bad magic)")
	ErrBadTelemetry = errors.New("device: malformed telemetry")
	ErrTorn         = errors.New("device: telemetry kept changing while read")
)

// Sample is one decoded telemetry record.
type Sample struct {
	Seq       uint64 // even; grows by 2 per publish (heartbeat)
	TempC     float64
	Factor    float64
	PowerW    float64
	Events    uint64
	Wall      time.Time
	Throttled bool
}

// Telemetry publishes device state into the region. One publisher per
// offset; any number of readers in any process.
type Telemetry struct {
	r   Words
	off uint64
}

// NewTelemetry claims TelemetrySize bytes at off for publishing. If a
// previous publisher died mid-publish (odd seq) the sequence is made even
// again so readers are not stuck. Readers see ErrNoTelemetry until the
// first Publish writes the magic word.
func NewTelemetry(r Words, off uint64) (*Telemetry, error) {
	if off%8 != 0 {
		return nil, fmt.Errorf("device: telemetry offset %#x not 8-byte aligned", off)
	}
	if err := r.Check(off, TelemetrySize); err != nil {
		return nil, fmt.Errorf("device: telemetry at %#x: %w", off, err)
	}
	if r.Load(off+offSeq)%2 == 1 {
		r.Add(off+offSeq, 1)
	}
	return &Telemetry{r: r, off: off}, nil
}

// Publish writes one snapshot under the seqlock.
func (t *Telemetry) Publish(s Sample) {
	w := encodeWords(s)
	o := t.off
	t.r.Add(o+offSeq, 1) // odd: in progress
	for i := 2; i < 8; i++ {
		t.r.Store(o+uint64(i)*8, w[i])
	}
	t.r.Store(o+offMagic, TelemetryMagic) // a record exists from the first publish on
	t.r.Add(o+offSeq, 1)                  // even: stable
}

// PublishSnapshot publishes a device snapshot.
func (t *Telemetry) PublishSnapshot(s Snapshot) {
	t.Publish(Sample{TempC: s.TempC, Factor: s.Factor, PowerW: s.PowerW, Events: s.Events,
		Wall: s.Wall, Throttled: s.Throttled})
}

// ReadTelemetry reads a consistent sample from off. It retries while a
// publish is in progress and gives up with ErrTorn after a bounded number of
// attempts (a publisher that died mid-write is indistinguishable from a slow
// one until NewTelemetry repairs it).
func ReadTelemetry(r Words, off uint64) (Sample, error) {
	if off%8 != 0 {
		return Sample{}, fmt.Errorf("device: telemetry offset %#x not 8-byte aligned", off)
	}
	if err := r.Check(off, TelemetrySize); err != nil {
		return Sample{}, fmt.Errorf("device: telemetry at %#x: %w", off, err)
	}
	const attempts = 1000
	for i := 0; i < attempts; i++ {
		var w [8]uint64
		w[offSeq/8] = r.Load(off + offSeq)
		if w[1]%2 == 1 {
			runtime.Gosched()
			continue
		}
		w[0] = r.Load(off + offMagic)
		for j := 2; j < 8; j++ {
			w[j] = r.Load(off + uint64(j)*8)
		}
		if r.Load(off+offSeq) != w[1] {
			runtime.Gosched()
			continue
		}
		s, err := decodeWords(w)
		if err != nil {
			return Sample{}, fmt.Errorf("at %#x: %w", off, err)
		}
		return s, nil
	}
	return Sample{}, fmt.Errorf("%w at %#x after %d attempts", ErrTorn, off, attempts)
}

// DecodeTelemetry decodes a TelemetrySize-byte little-endian copy of the
// telemetry words (e.g. read from a dump). It never panics.
func DecodeTelemetry(b []byte) (Sample, error) {
	if len(b) != TelemetrySize {
		return Sample{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadTelemetry, len(b), TelemetrySize)
	}
	var w [8]uint64
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	return decodeWords(w)
}

// EncodeTelemetry is the inverse of DecodeTelemetry for a stable sample.
func EncodeTelemetry(s Sample) []byte {
	w := encodeWords(s)
	w[0], w[1] = TelemetryMagic, s.Seq&^1
	b := make([]byte, TelemetrySize)
	for i, v := range w {
		binary.LittleEndian.PutUint64(b[i*8:], v)
	}
	return b
}

const (
	minMilliC = -273150
	maxMilliC = 1_000_000 // 1000 °C: anything hotter is garbage
	maxPPM    = 1_000_000
	maxMW     = 1_000_000_000 // 1 MW
)

func encodeWords(s Sample) [8]uint64 {
	var w [8]uint64
	mc := int64(math.Round(s.TempC * 1000))
	mc = max(minMilliC, min(maxMilliC, mc))
	w[offTemp/8] = uint64(mc)
	w[offFactor/8] = uint64(math.Round(clamp01(s.Factor) * maxPPM))
	p := s.PowerW * 1000
	if !(p >= 0) { // also NaN
		p = 0
	}
	w[offPower/8] = uint64(math.Round(math.Min(p, maxMW)))
	w[offEvents/8] = s.Events
	if !s.Wall.IsZero() {
		w[offWall/8] = uint64(s.Wall.UnixNano())
	}
	if s.Throttled {
		w[offFlags/8] = flagThrottled
	}
	return w
}

func decodeWords(w [8]uint64) (Sample, error) {
	if w[0] != TelemetryMagic {
		return Sample{}, fmt.Errorf("%w: magic %#x", ErrNoTelemetry, w[0])
	}
	if w[1]%2 == 1 {
		return Sample{}, fmt.Errorf("%w: seq %d odd (publish in progress)", ErrBadTelemetry, w[1])
	}
	mc := int64(w[offTemp/8])
	if mc < minMilliC || mc > maxMilliC {
		return Sample{}, fmt.Errorf("%w: temperature %d m°C out of range", ErrBadTelemetry, mc)
	}
	ppm := w[offFactor/8]
	if ppm > maxPPM {
		return Sample{}, fmt.Errorf("%w: factor %d ppm > 1e6", ErrBadTelemetry, ppm)
	}
	mw := w[offPower/8]
	if mw > maxMW {
		return Sample{}, fmt.Errorf("%w: power %d mW out of range", ErrBadTelemetry, mw)
	}
	if w[offWall/8] > math.MaxInt64 {
		return Sample{}, fmt.Errorf("%w: wall clock %#x negative", ErrBadTelemetry, w[offWall/8])
	}
	if w[offFlags/8]&^flagThrottled != 0 {
		return Sample{}, fmt.Errorf("%w: unknown flags %#x", ErrBadTelemetry, w[offFlags/8])
	}
	s := Sample{
		Seq:       w[1],
		TempC:     float64(mc) / 1000,
		Factor:    float64(ppm) / maxPPM,
		PowerW:    float64(mw) / 1000,
		Events:    w[offEvents/8],
		Throttled: w[offFlags/8]&flagThrottled != 0,
	}
	if ns := w[offWall/8]; ns != 0 {
		s.Wall = time.Unix(0, int64(ns))
	}
	return s, nil
}
