package plot

import (
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func decode(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Fatalf("%s: %v", path, b)
	}
}

func TestLines(t *testing.T) {
	dir := t.TempDir()
	var x, y, s []float64
	for i := 0; i < 200; i++ {
		x = append(x, float64(i))
		y = append(y, 60+20*(1-math.Exp(-float64(i)/50)))
		s = append(s, float64((i/40)%2))
	}
	p := filepath.Join(dir, "temp.png")
	if d := os.Getenv("PLOT_KEEP"); d != "" {
		p = filepath.Join(d, "temp.png")
	}
	err := Lines(p, Chart{Title: "device temperature", XLabel: "s", YLabel: "°C",
		Series: []Series{{Name: "adaptive", X: x, Y: y}, {Name: "placement", X: x, Y: s, Step: true}},
		HLines: []HLine{{Name: "throttle", Y: 77}}})
	if err != nil {
		t.Fatal(err)
	}
	decode(t, p)
	if err := Lines(filepath.Join(dir, "e.png"), Chart{}); !errors.Is(err, ErrNoData) {
		t.Fatalf("empty chart: %v", err)
	}
	if err := Lines(filepath.Join(dir, "x.svg"), Chart{Series: []Series{{X: x, Y: y}}}); err == nil {
		t.Fatal("accepted .svg")
	}
	if err := Lines(filepath.Join(dir, "m.png"), Chart{Series: []Series{{X: x, Y: y[:3]}}}); err == nil {
		t.Fatal("accepted mismatched series")
	}
}

func TestBars(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bars.png")
	err := Bars(p, BarChart{Title: "throughput", YLabel: "MiB/s",
		Categories: []string{"device-pinned", "host-pinned", "adaptive"},
		Groups:     []BarGroup{{Name: "run", Values: []float64{10, 20, math.NaN()}}}})
	if err != nil {
		t.Fatal(err)
	}
	decode(t, p)
	if err := Bars(p, BarChart{}); !errors.Is(err, ErrNoData) {
		t.Fatalf("%v", err)
	}
}
