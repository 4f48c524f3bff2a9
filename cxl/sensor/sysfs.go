package sensor

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// fileSensor reads one sysfs value file scaled to °C or W.
type fileSensor struct {
	name  string
	kind  Kind
	path  string
	scale float64 // multiply the integer by this
	limit string  // optional file holding the limit (same scale)
	now   func() time.Time
}

func (s *fileSensor) Name() string { return s.name }
func (s *fileSensor) Kind() Kind   { return s.kind }

func (s *fileSensor) Read() (Reading, error) {
	v, err := readInt(s.path)
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", s.name, err)
	}
	r := Reading{Sensor: s.name, Kind: s.kind, Value: float64(v) * s.scale, At: s.now()}
	if s.limit != "" {
		if l, err := readInt(s.limit); err == nil {
			r.Limit = float64(l) * s.scale
		}
	}
	return r, nil
}

var (
	reTemp  = regexp.MustCompile(`^temp(\d+)_input$`)
	rePower = regexp.MustCompile(`^power(\d+)_(input|average)$`)
)

// Hwmon returns a sensor for every tempN_input (milli-°C) and
// powerN_input/powerN_average (µW) under /sys/class/hwmon. Limits come from
// tempN_crit (else tempN_max) and powerN_cap.
func Hwmon(o Options) ([]Sensor, error) {
	return hwmon(o, func(string) bool { return true })
}

// NVMe returns the temperature sensors of hwmon devices named "nvme" (the
// kernel's NVMe driver exposes the SMART composite temperature as temp1).
func NVMe(o Options) ([]Sensor, error) {
	ss, err := hwmon(o, func(name string) bool { return name == "nvme" })
	if err == nil && len(ss) == 0 {
		return nil, fmt.Errorf("%w: no hwmon device named nvme under %s", ErrNotPresent, o.path("sys/class/hwmon"))
	}
	return ss, err
}

func hwmon(o Options, want func(name string) bool) ([]Sensor, error) {
	dirs, err := dirsMatching(o.path("sys/class/hwmon"), "hwmon")
	if err != nil {
		return nil, err
	}
	var out []Sensor
	for _, dir := range dirs {
		chip, err := readString(filepath.Join(dir, "name"))
		if err != nil {
			chip = "unknown"
		}
		if !want(chip) {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, "*_*"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			base := filepath.Base(f)
			if m := reTemp.FindStringSubmatch(base); m != nil {
				label := labelOf(dir, "temp"+m[1])
				lim := filepath.Join(dir, "temp"+m[1]+"_crit")
				if _, err := readInt(lim); err != nil {
					lim = filepath.Join(dir, "temp"+m[1]+"_max")
				}
				out = append(out, &fileSensor{name: fmt.Sprintf("hwmon/%s/%s/%s", filepath.Base(dir), chip, label),
					kind: Temperature, path: f, scale: 1e-3, limit: lim, now: o.now})
			} else if m := rePower.FindStringSubmatch(base); m != nil {
				label := labelOf(dir, "power"+m[1])
				out = append(out, &fileSensor{name: fmt.Sprintf("hwmon/%s/%s/%s", filepath.Base(dir), chip, label),
					kind: Power, path: f, scale: 1e-6, limit: filepath.Join(dir, "power"+m[1]+"_cap"), now: o.now})
			}
		}
	}
	return out, nil
}

func labelOf(dir, prefix string) string {
	if l, err := readString(filepath.Join(dir, prefix+"_label")); err == nil && l != "" {
		return l
	}
	return prefix
}

// ThermalZones returns one temperature sensor per
// /sys/class/thermal/thermal_zoneN (temp in milli-°C). The limit is the
// lowest passive or critical trip point.
func ThermalZones(o Options) ([]Sensor, error) {
	dirs, err := dirsMatching(o.path("sys/class/thermal"), "thermal_zone")
	if err != nil {
		return nil, err
	}
	var out []Sensor
	for _, dir := range dirs {
		typ, err := readString(filepath.Join(dir, "type"))
		if err != nil {
			typ = "unknown"
		}
		out = append(out, &zoneSensor{fileSensor{name: fmt.Sprintf("thermal/%s/%s", filepath.Base(dir), typ),
			kind: Temperature, path: filepath.Join(dir, "temp"), scale: 1e-3, now: o.now}, dir})
	}
	return out, nil
}

type zoneSensor struct {
	fileSensor
	dir string
}

func (z *zoneSensor) Read() (Reading, error) {
	r, err := z.fileSensor.Read()
	if err != nil {
		return r, err
	}
	trips, _ := filepath.Glob(filepath.Join(z.dir, "trip_point_*_type"))
	for _, t := range trips {
		typ, err := readString(t)
		if err != nil || (typ != "passive" && typ != "critical") {
			continue
		}
		v, err := readInt(strings.TrimSuffix(t, "_type") + "_temp")
		if err != nil {
			continue
		}
		if c := float64(v) / 1000; r.Limit == 0 || c < r.Limit {
			r.Limit = c
		}
	}
	return r, nil
}

// RAPL returns one power sensor per powercap zone under
// /sys/class/powercap/intel-rapl* that has energy_uj. Power is the energy
// delta between two reads (wraparound at max_energy_range_uj handled); the
// first read returns ErrWarmup. The limit is constraint_0_power_limit_uw.
func RAPL(o Options) ([]Sensor, error) {
	dirs, err := dirsMatching(o.path("sys/class/powercap"), "intel-rapl")
	if err != nil {
		return nil, err
	}
	var out []Sensor
	for _, dir := range dirs {
		if _, err := readInt(filepath.Join(dir, "energy_uj")); errors.Is(err, ErrNotPresent) {
			continue
		}
		name, err := readString(filepath.Join(dir, "name"))
		if err != nil {
			name = "zone"
		}
		out = append(out, &raplSensor{name: fmt.Sprintf("rapl/%s/%s", filepath.Base(dir), name), dir: dir, now: o.now})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no RAPL zone with energy_uj under %s", ErrNotPresent, o.path("sys/class/powercap"))
	}
	return out, nil
}

type raplSensor struct {
	name string
	dir  string
	now  func() time.Time

	mu     sync.Mutex
	have   bool
	lastE  int64
	lastAt time.Time
}

func (s *raplSensor) Name() string { return s.name }
func (s *raplSensor) Kind() Kind   { return Power }

func (s *raplSensor) Read() (Reading, error) {
	e, err := readInt(filepath.Join(s.dir, "energy_uj"))
	if err != nil {
		return Reading{}, fmt.Errorf("%s: %w", s.name, err)
	}
	at := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	prevE, prevAt, had := s.lastE, s.lastAt, s.have
	s.lastE, s.lastAt, s.have = e, at, true
	if !had || !at.After(prevAt) {
		return Reading{}, fmt.Errorf("%s: %w", s.name, ErrWarmup)
	}
	d := e - prevE
	if d < 0 {
		rng, err := readInt(filepath.Join(s.dir, "max_energy_range_uj"))
		if err != nil || rng <= 0 {
			return Reading{}, fmt.Errorf("%s: %w: energy went back and max_energy_range_uj is unusable", s.name, ErrBadValue)
		}
		d += rng + 1
		if d < 0 {
			return Reading{}, fmt.Errorf("%s: %w: energy %d below previous %d beyond the range", s.name, ErrBadValue, e, prevE)
		}
	}
	r := Reading{Sensor: s.name, Kind: Power, Value: float64(d) / 1e6 / at.Sub(prevAt).Seconds(), At: at}
	if l, err := readInt(filepath.Join(s.dir, "constraint_0_power_limit_uw")); err == nil && l > 0 {
		r.Limit = float64(l) / 1e6
	}
	return r, nil
}
