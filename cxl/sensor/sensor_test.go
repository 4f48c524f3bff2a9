package sensor

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl/device"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func fakeSys(t *testing.T) string {
	root := t.TempDir()
	write(t, root, map[string]string{
		"sys/class/hwmon/hwmon0/name":         "coretemp\n",
		"sys/class/hwmon/hwmon0/temp1_input":  "45000\n",
		"sys/class/hwmon/hwmon0/temp1_label":  "Package id 0\n",
		"sys/class/hwmon/hwmon0/temp1_crit":   "100000\n",
		"sys/class/hwmon/hwmon0/temp2_input":  "43500\n",
		"sys/class/hwmon/hwmon0/temp2_max":    "90000\n",
		"sys/class/hwmon/hwmon1/name":         "nvme\n",
		"sys/class/hwmon/hwmon1/temp1_input":  "38850\n",
		"sys/class/hwmon/hwmon1/temp1_label":  "Composite\n",
		"sys/class/hwmon/hwmon1/temp1_crit":   "84850\n",
		"sys/class/hwmon/hwmon2/name":         "acpi_power\n",
		"sys/class/hwmon/hwmon2/power1_input": "12500000\n",
		"sys/class/hwmon/hwmon2/power1_cap":   "25000000\n",

		"sys/class/thermal/thermal_zone0/type":              "x86_pkg_temp\n",
		"sys/class/thermal/thermal_zone0/temp":              "52000\n",
		"sys/class/thermal/thermal_zone0/trip_point_0_type": "passive\n",
		"sys/class/thermal/thermal_zone0/trip_point_0_temp": "95000\n",
		"sys/class/thermal/thermal_zone0/trip_point_1_type": "critical\n",
		"sys/class/thermal/thermal_zone0/trip_point_1_temp": "105000\n",
		"sys/class/thermal/thermal_zone1/type":              "acpitz\n",
		"sys/class/thermal/thermal_zone1/temp":              "27800\n",
		"sys/class/thermal/cooling_device0/type":            "Processor\n",

		"sys/class/powercap/intel-rapl/enabled":                         "1\n",
		"sys/class/powercap/intel-rapl:0/name":                          "package-0\n",
		"sys/class/powercap/intel-rapl:0/energy_uj":                     "1000000\n",
		"sys/class/powercap/intel-rapl:0/max_energy_range_uj":           "262143328850\n",
		"sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw":   "150000000\n",
		"sys/class/powercap/intel-rapl:0:0/name":                        "core\n",
		"sys/class/powercap/intel-rapl:0:0/energy_uj":                   "500\n",
		"sys/class/powercap/intel-rapl:0:0/constraint_0_power_limit_uw": "0\n",
	})
	return root
}

func byName(ss []Sensor) map[string]Sensor {
	m := map[string]Sensor{}
	for _, s := range ss {
		m[s.Name()] = s
	}
	return m
}

func TestHwmon(t *testing.T) {
	root := fakeSys(t)
	ss, err := Hwmon(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	m := byName(ss)
	want := map[string][3]float64{ // value, limit, kind
		"hwmon/hwmon0/coretemp/Package id 0": {45, 100, 0},
		"hwmon/hwmon0/coretemp/temp2":        {43.5, 90, 0},
		"hwmon/hwmon1/nvme/Composite":        {38.85, 84.85, 0},
		"hwmon/hwmon2/acpi_power/power1":     {12.5, 25, 1},
	}
	if len(ss) != len(want) {
		t.Fatalf("sensors %v", keys(m))
	}
	for name, w := range want {
		s, ok := m[name]
		if !ok {
			t.Fatalf("missing %s in %v", name, keys(m))
		}
		r, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Value-w[0]) > 1e-9 || math.Abs(r.Limit-w[1]) > 1e-9 || r.Kind != Kind(w[2]) {
			t.Errorf("%s: %+v want %v", name, r, w)
		}
	}
	nv, err := NVMe(Options{Root: root})
	if err != nil || len(nv) != 1 || nv[0].Name() != "hwmon/hwmon1/nvme/Composite" {
		t.Fatalf("nvme: %v %v", nv, err)
	}
}

func keys(m map[string]Sensor) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestThermalZones(t *testing.T) {
	ss, err := ThermalZones(Options{Root: fakeSys(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("%d zones", len(ss))
	}
	m := byName(ss)
	r, err := m["thermal/thermal_zone0/x86_pkg_temp"].Read()
	if err != nil || r.Value != 52 || r.Limit != 95 {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = m["thermal/thermal_zone1/acpitz"].Read()
	if err != nil || r.Value != 27.8 || r.Limit != 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestRAPL(t *testing.T) {
	root := fakeSys(t)
	c := &clock{t: time.Unix(100, 0)}
	ss, err := RAPL(Options{Root: root, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("%d zones", len(ss))
	}
	pkg := byName(ss)["rapl/intel-rapl:0/package-0"]
	if _, err := pkg.Read(); !errors.Is(err, ErrWarmup) {
		t.Fatalf("first read: %v", err)
	}
	// 50 J in 0.5 s = 100 W.
	write(t, root, map[string]string{"sys/class/powercap/intel-rapl:0/energy_uj": "51000000"})
	c.t = c.t.Add(500 * time.Millisecond)
	r, err := pkg.Read()
	if err != nil || math.Abs(r.Value-100) > 1e-9 || r.Limit != 150 {
		t.Fatalf("%+v %v", r, err)
	}
	// Counter wraps: range 262143328850 µJ.
	write(t, root, map[string]string{"sys/class/powercap/intel-rapl:0/energy_uj": "262143328850"})
	c.t = c.t.Add(time.Second)
	if _, err := pkg.Read(); err != nil {
		t.Fatal(err)
	}
	write(t, root, map[string]string{"sys/class/powercap/intel-rapl:0/energy_uj": "19999999"})
	c.t = c.t.Add(time.Second)
	r, err = pkg.Read()
	if err != nil || math.Abs(r.Value-20) > 1e-9 {
		t.Fatalf("after wrap: %+v %v", r, err)
	}
}

// Missing classes and files are ErrNotPresent, malformed values ErrBadValue.
func TestNotPresent(t *testing.T) {
	empty := Options{Root: t.TempDir()}
	if _, err := Hwmon(empty); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("hwmon: %v", err)
	}
	if _, err := NVMe(empty); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("nvme: %v", err)
	}
	if _, err := ThermalZones(empty); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("thermal: %v", err)
	}
	if _, err := RAPL(empty); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("rapl: %v", err)
	}
	if got := Discover(empty); len(got) != 0 {
		t.Fatalf("discover on empty root: %v", got)
	}
	// No nvme chip in a tree that has hwmon.
	root := t.TempDir()
	write(t, root, map[string]string{"sys/class/hwmon/hwmon0/name": "coretemp", "sys/class/hwmon/hwmon0/temp1_input": "1000"})
	if _, err := NVMe(Options{Root: root}); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("nvme absent: %v", err)
	}
	// A sensor whose file disappears (device unplugged) and one with garbage.
	full := fakeSys(t)
	ss, _ := Hwmon(Options{Root: full})
	m := byName(ss)
	os.Remove(filepath.Join(full, "sys/class/hwmon/hwmon1/temp1_input"))
	if _, err := m["hwmon/hwmon1/nvme/Composite"].Read(); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("vanished: %v", err)
	}
	write(t, full, map[string]string{"sys/class/hwmon/hwmon0/temp2_input": "hot\n"})
	if _, err := m["hwmon/hwmon0/coretemp/temp2"].Read(); !errors.Is(err, ErrBadValue) {
		t.Fatalf("garbage: %v", err)
	}
	if n := len(Discover(Options{Root: full})); n != 7 { // 3 hwmon (one vanished), 2 zones, 2 RAPL
		t.Fatalf("discover found %d sensors, want 7", n)
	}
}

// The real machine: whatever exists reads without panicking.
func TestDiscoverReal(t *testing.T) {
	for _, s := range Discover(Options{}) {
		if _, err := s.Read(); err != nil && !errors.Is(err, ErrWarmup) && !errors.Is(err, ErrNotPresent) {
			t.Logf("%s: %v", s.Name(), err)
		}
	}
}

type fakeDevClock struct{ t atomic.Int64 }

func (c *fakeDevClock) Now() time.Time { return time.Unix(0, c.t.Load()) }
func (c *fakeDevClock) Sleep(ctx context.Context, d time.Duration) error {
	c.t.Add(int64(d))
	return ctx.Err()
}

func TestEmulatedDeviceAndRegion(t *testing.T) {
	clk := &fakeDevClock{}
	clk.t.Store(time.Unix(1000, 0).UnixNano())
	d, err := device.New(device.SmartSSD(), device.Options{Clock: clk, StartTempC: 70})
	if err != nil {
		t.Fatal(err)
	}
	temp, pw := EmulatedDevice(d)
	clk.Sleep(context.Background(), time.Second)
	r, err := temp.Read()
	if err != nil || r.Kind != Temperature || r.Limit != 77 || r.Value >= 70 || r.Value < 69 {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := pw.Read(); err != nil || r.Value != 7 {
		t.Fatalf("idle power %+v %v", r, err)
	}

	words := &memWords{w: make([]atomic.Uint64, 16)}
	rt, rp := RegionDevice(words, 64, 2*time.Second, clk.Now)
	if _, err := rt.Read(); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("before publish: %v", err)
	}
	tel, err := device.NewTelemetry(words, 64)
	if err != nil {
		t.Fatal(err)
	}
	tel.PublishSnapshot(d.Snapshot())
	r, err = rt.Read()
	if err != nil || math.Abs(r.Value-d.Snapshot().TempC) > 1e-3 {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := rp.Read(); err != nil || r.Value != 7 {
		t.Fatalf("%+v %v", r, err)
	}
	clk.Sleep(context.Background(), 3*time.Second)
	if _, err := rt.Read(); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
}

type memWords struct{ w []atomic.Uint64 }

func (m *memWords) Check(off, n uint64) error {
	if off+n > uint64(len(m.w))*8 {
		return errors.New("out of range")
	}
	return nil
}
func (m *memWords) Load(off uint64) uint64       { return m.w[off/8].Load() }
func (m *memWords) Store(off, v uint64)          { m.w[off/8].Store(v) }
func (m *memWords) Add(off, delta uint64) uint64 { return m.w[off/8].Add(delta) }

func TestHostCap(t *testing.T) {
	tr, err := ReadCapTrace(strings.NewReader("time_s,cap_w\n0,0\n600,150\n1200,100\n1500,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Unix(0, 0)}
	h, err := NewHostCap(tr, HostCapOptions{DemandW: 200, Compression: 30, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	at := func(modelS float64) HostState {
		c.t = time.Unix(0, 0).Add(time.Duration(modelS / 30 * float64(time.Second)))
		return h.State()
	}
	if s := at(10); s.Speed != 1 || s.PowerW != 200 || s.CapW != 0 {
		t.Fatalf("uncapped %+v", s)
	}
	if s := at(700); s.PowerW != 150 || math.Abs(s.Speed-math.Cbrt(0.75)) > 1e-12 {
		t.Fatalf("capped 150 %+v", s)
	}
	if s := at(1300); s.CapW != 100 || math.Abs(s.Speed-math.Cbrt(0.5)) > 1e-12 {
		t.Fatalf("capped 100 %+v", s)
	}
	h.SetDemand(90) // light load under the cap: full speed
	if s := at(1300); s.Speed != 1 || s.PowerW != 90 {
		t.Fatalf("light load %+v", s)
	}
	if r, _ := h.Sensor().Read(); r.Limit != 100 || r.Kind != Power {
		t.Fatalf("%+v", r)
	}
	for name, in := range map[string]string{
		"empty": "", "fields": "1,2,3\n", "order": "5,1\n4,1\n", "neg": "0,-1\n", "text": "0,1\nx,y\n",
	} {
		if _, err := ReadCapTrace(strings.NewReader(in)); !errors.Is(err, ErrBadCapTrace) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadCapTrace(f *testing.F) {
	f.Add("time_s,cap_w\n0,0\n600,150\n")
	f.Add("# c\n1,2\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ReadCapTrace(strings.NewReader(s))
		if err != nil {
			return
		}
		h, err := NewHostCap(tr, HostCapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := h.State(); !(st.Speed > 0 && st.Speed <= 1) {
			t.Fatalf("%+v", st)
		}
	})
}
