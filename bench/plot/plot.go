// Package plot writes small PNG charts (time series and bar charts) for
// benchmark and demo reports. It wraps gonum.org/v1/plot, which is pure Go
// (builds with CGO_ENABLED=0).
package plot

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// ErrNoData is returned for a chart with nothing to draw.
var ErrNoData = errors.New("plot: no data")

// Series is one line of a time-series chart.
type Series struct {
	Name string
	X, Y []float64
	Step bool // draw as a step function (e.g. placement over time)
}

// Chart is a line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// Optional horizontal reference lines (e.g. a throttle threshold).
	HLines []HLine
	// Width and Height in centimetres (default 16 x 9).
	Width, Height float64
}

// HLine is a labelled horizontal line.
type HLine struct {
	Name string
	Y    float64
}

func size(w, h float64) (vg.Length, vg.Length) {
	if w <= 0 {
		w = 16
	}
	if h <= 0 {
		h = 9
	}
	return vg.Length(w) * vg.Centimeter, vg.Length(h) * vg.Centimeter
}

func checkPath(path string) error {
	if !strings.EqualFold(filepath.Ext(path), ".png") {
		return fmt.Errorf("plot: %s: only .png output is supported", path)
	}
	return nil
}

// Lines writes c as a PNG to path.
func Lines(path string, c Chart) error {
	if err := checkPath(path); err != nil {
		return err
	}
	p := gplot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.Title, c.XLabel, c.YLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	xmin, xmax := math.Inf(1), math.Inf(-1)
	n := 0
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: %s: series %q has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if finite(s.X[j]) && finite(s.Y[j]) {
				pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
				xmin, xmax = math.Min(xmin, s.X[j]), math.Max(xmax, s.X[j])
			}
		}
		if len(pts) == 0 {
			continue
		}
		n++
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot: %s: series %q: %w", path, s.Name, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(0)
		l.Width = vg.Points(1.5)
		if s.Step {
			l.StepStyle = plotter.PreStep
		}
		p.Add(l)
		if s.Name != "" {
			p.Legend.Add(s.Name, l)
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNoData, path)
	}
	for i, h := range c.HLines {
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: h.Y}, {X: xmax, Y: h.Y}})
		if err != nil {
			return fmt.Errorf("plot: %s: line %q: %w", path, h.Name, err)
		}
		l.Color = plotutil.Color(len(c.Series) + i)
		l.Dashes = plotutil.Dashes(1)
		p.Add(l)
		if h.Name != "" {
			p.Legend.Add(h.Name, l)
		}
	}
	w, h := size(c.Width, c.Height)
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("plot: saving %s: %w", path, err)
	}
	return nil
}

// BarChart is a grouped bar chart: one bar per group and category.
type BarChart struct {
	Title, YLabel string
	Categories    []string // x-axis labels
	Groups        []BarGroup
	Width, Height float64 // centimetres (default 16 x 9)
}

// BarGroup is one coloured set of bars, one value per category.
type BarGroup struct {
	Name   string
	Values []float64
}

// Bars writes c as a PNG to path.
func Bars(path string, c BarChart) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if len(c.Categories) == 0 || len(c.Groups) == 0 {
		return fmt.Errorf("%w: %s", ErrNoData, path)
	}
	p := gplot.New()
	p.Title.Text, p.Y.Label.Text = c.Title, c.YLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	bw := vg.Points(60 / float64(len(c.Groups)))
	for i, g := range c.Groups {
		if len(g.Values) != len(c.Categories) {
			return fmt.Errorf("plot: %s: group %q has %d values for %d categories", path, g.Name, len(g.Values), len(c.Categories))
		}
		vals := make(plotter.Values, len(g.Values))
		for j, v := range g.Values {
			if !finite(v) {
				v = 0
			}
			vals[j] = v
		}
		b, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return fmt.Errorf("plot: %s: group %q: %w", path, g.Name, err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = bw * vg.Length(float64(i)-float64(len(c.Groups)-1)/2)
		p.Add(b)
		if g.Name != "" {
			p.Legend.Add(g.Name, b)
		}
	}
	p.NominalX(c.Categories...)
	p.Y.Min = 0
	w, h := size(c.Width, c.Height)
	if err := p.Save(w, h, path); err != nil {
		return fmt.Errorf("plot: saving %s: %w", path, err)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
