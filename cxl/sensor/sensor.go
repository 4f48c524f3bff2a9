// Package sensor reads temperature and power signals behind one interface:
// Linux hwmon, thermal zones, RAPL powercap and NVMe temperature where the
// kernel exposes them, the emulated device, and an emulated host power cap.
//
// Every sysfs reader takes a root path (Options.Root) so tests run against
// fake trees; a missing path is reported as ErrNotPresent, never a panic.
package sensor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Errors callers branch on.
var (
	ErrNotPresent = errors.New("sensor: not present")
	ErrWarmup     = errors.New("sensor: needs a second sample")
	ErrBadValue   = errors.New("sensor: malformed value")
	ErrStale      = errors.New("sensor: value is stale")
)

// Kind is what a sensor measures.
type Kind uint8

const (
	Temperature Kind = iota // °C
	Power                   // W
)

func (k Kind) String() string {
	if k == Power {
		return "power"
	}
	return "temperature"
}

// Reading is one value of one sensor.
type Reading struct {
	Sensor string
	Kind   Kind
	Value  float64   // °C or W
	Limit  float64   // throttle/critical point in °C, or power cap in W; 0 = unknown
	At     time.Time // when it was read
}

// Sensor is one source of temperature or power.
type Sensor interface {
	Name() string
	Kind() Kind
	Read() (Reading, error)
}

// Options for the sysfs readers.
type Options struct {
	Root string           // prefix of /sys (default "/"); tests use t.TempDir()
	Now  func() time.Time // default time.Now
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

func (o Options) path(p ...string) string {
	return filepath.Join(append([]string{o.root()}, p...)...)
}

// readString reads a small sysfs file; a missing file is ErrNotPresent.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrNotPresent, path)
		}
		return "", fmt.Errorf("sensor: reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readInt reads a sysfs file holding one decimal integer.
func readInt(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not an integer", ErrBadValue, path, truncate(s))
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// dirsMatching lists dir/prefix* directories; a missing dir is ErrNotPresent.
func dirsMatching(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotPresent, dir)
		}
		return nil, fmt.Errorf("sensor: listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// Discover returns every real sensor found under o.Root (hwmon including
// NVMe, thermal zones, RAPL). Missing classes are skipped; it never fails.
func Discover(o Options) []Sensor {
	var out []Sensor
	if s, err := Hwmon(o); err == nil {
		out = append(out, s...)
	}
	if s, err := ThermalZones(o); err == nil {
		out = append(out, s...)
	}
	if s, err := RAPL(o); err == nil {
		out = append(out, s...)
	}
	return out
}
