package sensor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/internal/csvrows"
)

// DeviceSource is what the emulated-device sensors read: *device.Device.
type DeviceSource interface {
	Snapshot() device.Snapshot
	Profile() device.Profile
}

// EmulatedDevice returns the temperature and power sensors of an emulated
// device running in this process. The temperature limit is the profile's
// throttle point.
func EmulatedDevice(d DeviceSource) (temp, power Sensor) {
	return &devSensor{d: d, kind: Temperature}, &devSensor{d: d, kind: Power}
}

type devSensor struct {
	d    DeviceSource
	kind Kind
}

func (s *devSensor) Name() string { return "emulated/" + s.d.Profile().Name + "/" + s.kind.String() }
func (s *devSensor) Kind() Kind   { return s.kind }
func (s *devSensor) Read() (Reading, error) {
	sn := s.d.Snapshot()
	r := Reading{Sensor: s.Name(), Kind: s.kind, At: sn.Wall}
	if s.kind == Temperature {
		r.Value, r.Limit = sn.TempC, s.d.Profile().ThrottleOnC
	} else {
		r.Value = sn.PowerW
	}
	return r, nil
}

// RegionDevice returns temperature and power sensors that read an emulated
// device's telemetry words from the shared region (the device runs in
// another process). A record older than maxAge (by its publisher's clock
// against now) is ErrStale; maxAge 0 disables the check.
func RegionDevice(r device.Words, off uint64, maxAge time.Duration, now func() time.Time) (temp, power Sensor) {
	if now == nil {
		now = time.Now
	}
	return &regionSensor{r: r, off: off, maxAge: maxAge, now: now, kind: Temperature},
		&regionSensor{r: r, off: off, maxAge: maxAge, now: now, kind: Power}
}

type regionSensor struct {
	r      device.Words
	off    uint64
	maxAge time.Duration
	now    func() time.Time
	kind   Kind
}

func (s *regionSensor) Name() string {
	return fmt.Sprintf("region/telemetry@%#x/%s", s.off, s.kind)
}
func (s *regionSensor) Kind() Kind { return s.kind }
func (s *regionSensor) Read() (Reading, error) {
	smp, err := device.ReadTelemetry(s.r, s.off)
	if errors.Is(err, device.ErrNoTelemetry) {
		return Reading{}, fmt.Errorf("%s: %w: %v", s.Name(), ErrNotPresent, err)
	}
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", s.Name(), err)
	}
	now := s.now()
	if s.maxAge > 0 && now.Sub(smp.Wall) > s.maxAge {
		return Reading{}, fmt.Errorf("%s: %w: published %v ago", s.Name(), ErrStale, now.Sub(smp.Wall).Round(time.Millisecond))
	}
	r := Reading{Sensor: s.Name(), Kind: s.kind, At: smp.Wall}
	if s.kind == Temperature {
		r.Value = smp.TempC
	} else {
		r.Value = smp.PowerW
	}
	return r, nil
}

// CapPoint is one step of a host power-cap trace: from At on, the cap is CapW
// (0 = uncapped).
type CapPoint struct {
	At   time.Duration
	CapW float64
}

// ErrBadCapTrace is wrapped by ReadCapTrace errors.
var ErrBadCapTrace = errors.New("sensor: bad power-cap trace")

// ReadCapTrace parses a CSV of "time_s,cap_w" rows (optional header, '#'
// comments, strictly increasing times, cap >= 0 where 0 means no cap).
func ReadCapTrace(r io.Reader) ([]CapPoint, error) {
	var out []CapPoint
	_, err := csvrows.Read(r, "time_s,cap_w", 1<<20, func(_ int, v []float64) error {
		t, c := v[0], v[1]
		if !(t >= 0 && t <= 1e9) || !(c >= 0 && c <= 1e6) {
			return fmt.Errorf("time %g s or cap %g W out of range", t, c)
		}
		at := time.Duration(t * float64(time.Second))
		if n := len(out); n > 0 && at <= out[n-1].At {
			return fmt.Errorf("time %g s not after the previous row", t)
		}
		out = append(out, CapPoint{At: at, CapW: c})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCapTrace, err)
	}
	return out, nil
}

// HostCap emulates a host under a power cap that follows a trace. The host
// would draw DemandW uncapped; under a lower cap it draws the cap and runs
// at speed (cap/demand)^(1/3), dynamic power scaling roughly with f³ under
// DVFS, never below MinSpeed. Safe for concurrent use.
type HostCap struct {
	trace       []CapPoint
	compression float64
	minSpeed    float64
	start       time.Time
	now         func() time.Time

	mu     sync.Mutex
	demand float64
}

// HostCapOptions configure NewHostCap.
type HostCapOptions struct {
	DemandW     float64          // uncapped host power (default 200 W)
	MinSpeed    float64          // floor of the speed factor (default 0.4)
	Compression float64          // trace seconds per wall second (default 1)
	Now         func() time.Time // default time.Now; the trace starts at the first call
}

// NewHostCap starts replaying a cap trace now.
func NewHostCap(trace []CapPoint, o HostCapOptions) (*HostCap, error) {
	if len(trace) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadCapTrace)
	}
	if o.DemandW == 0 {
		o.DemandW = 200
	}
	if o.MinSpeed == 0 {
		o.MinSpeed = 0.4
	}
	if o.Compression == 0 {
		o.Compression = 1
	}
	if !(o.DemandW > 0) || !(o.MinSpeed > 0 && o.MinSpeed <= 1) || !(o.Compression > 0) {
		return nil, fmt.Errorf("sensor: host cap: demand %g W, min speed %g, compression %g out of range",
			o.DemandW, o.MinSpeed, o.Compression)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &HostCap{trace: trace, compression: o.Compression, minSpeed: o.MinSpeed, now: o.Now,
		start: o.Now(), demand: o.DemandW}, nil
}

// SetDemand changes the uncapped power the host would draw.
func (h *HostCap) SetDemand(w float64) {
	if w >= 0 {
		h.mu.Lock()
		h.demand = w
		h.mu.Unlock()
	}
}

// HostState is the emulated host at one instant.
type HostState struct {
	At     time.Time
	CapW   float64 // 0 = uncapped
	PowerW float64
	Speed  float64 // 1 = full speed
}

// State returns the host state now.
func (h *HostCap) State() HostState {
	now := h.now()
	el := time.Duration(float64(now.Sub(h.start)) * h.compression)
	i := sort.Search(len(h.trace), func(i int) bool { return h.trace[i].At > el }) - 1
	cp := 0.0
	if i >= 0 {
		cp = h.trace[i].CapW
	}
	h.mu.Lock()
	d := h.demand
	h.mu.Unlock()
	st := HostState{At: now, CapW: cp, PowerW: d, Speed: 1}
	if cp > 0 && cp < d {
		st.PowerW = cp
		st.Speed = math.Max(h.minSpeed, math.Cbrt(cp/d))
	}
	return st
}

// Speed is the host speed factor now.
func (h *HostCap) Speed() float64 { return h.State().Speed }

// Sensor returns the host's power sensor (Limit = the cap).
func (h *HostCap) Sensor() Sensor { return hostSensor{h} }

type hostSensor struct{ h *HostCap }

func (hostSensor) Name() string { return "emulated/host/power" }
func (hostSensor) Kind() Kind   { return Power }
func (s hostSensor) Read() (Reading, error) {
	st := s.h.State()
	return Reading{Sensor: s.Name(), Kind: Power, Value: st.PowerW, Limit: st.CapW, At: st.At}, nil
}
