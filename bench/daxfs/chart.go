package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/daxwio/daxwio/bench/plot"
)

// writeCharts draws one PNG per group that ran, plus one of the ratios
// against their goals.
func writeCharts(rep *Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	find := func(group, prefix string) *Result {
		for _, r := range rep.Results {
			if r.Group == group && strings.HasPrefix(r.Name, prefix) {
				return r
			}
		}
		return nil
	}
	val := func(r *Result, scale float64) float64 {
		if r == nil {
			return 0
		}
		return r.Median * scale
	}
	var files []string
	draw := func(name string, c plot.BarChart) error {
		path := filepath.Join(dir, name)
		if err := plot.Bars(path, c); err != nil {
			return err
		}
		files = append(files, path)
		return nil
	}
	if find("read", "") != nil {
		c := plot.BarChart{Title: "4 KiB random reads of a 256 MiB file, per read (lower is better)", YLabel: "ns per read",
			Categories: []string{"1 goroutine\nwall clock", "1 goroutine\nCPU time", "2 goroutines\nwall clock", "2 goroutines\nCPU time"},
			Width:      22, Height: 11}
		for _, v := range []string{"zero-copy View", "copy ReadAt", "pread tmpfs", "os.File.ReadAt tmpfs", "floor: touch region, no library"} {
			g := plot.BarGroup{Name: v}
			for _, th := range []string{", 1 ", ", 2 "} {
				g.Values = append(g.Values, val(find("read", v+th), 1), val(find("read-cpu", v+th), 1))
			}
			c.Groups = append(c.Groups, g)
		}
		if err := draw("daxfs-read.png", c); err != nil {
			return files, err
		}
	}
	if find("overlay", "") != nil {
		c := plot.BarChart{Title: "Overlay operations, aggregate over processes (higher is better)", YLabel: "million ops/s",
			Width: 24, Height: 11}
		ops := []struct{ label, prefix string }{
			{"Create,\nown dirs", "Create, per-process dirs"},
			{"Create,\nshared dir", "Create, one shared dir"},
			{"Lookup", "Lookup, one shared dir"},
		}
		for _, o := range ops {
			c.Categories = append(c.Categories, o.label+"\nwall clock", o.label+"\nCPU time")
		}
		for _, procs := range []int{1, 2} {
			s := fmt.Sprintf(", %d proc", procs)
			g := plot.BarGroup{Name: fmt.Sprintf("%d process", procs) + map[bool]string{true: "es"}[procs > 1]}
			for _, o := range ops {
				g.Values = append(g.Values, val(find("overlay", o.prefix+s), 1e-6), val(find("overlay-cpu", o.prefix+s), 1e-6))
			}
			c.Groups = append(c.Groups, g)
		}
		if err := draw("daxfs-overlay.png", c); err != nil {
			return files, err
		}
	}
	if find("files", "") != nil {
		c := plot.BarChart{Title: "Small files: create + write 4 KiB + close (higher is better)", YLabel: "thousand files/s",
			Categories: []string{"OpenFile+Write+Close\nwall clock", "OpenFile+Write+Close\nCPU time", "WriteFile\nwall clock", "WriteFile\nCPU time"},
			Groups: []plot.BarGroup{
				{Name: "daxfs library", Values: []float64{val(find("files", "daxfs OpenFile"), 1e-3), val(find("files-cpu", "daxfs OpenFile"), 1e-3),
					val(find("files", "daxfs Paths.WriteFile"), 1e-3), val(find("files-cpu", "daxfs Paths.WriteFile"), 1e-3)}},
				{Name: "os on tmpfs", Values: []float64{val(find("files", "os OpenFile"), 1e-3), val(find("files-cpu", "os OpenFile"), 1e-3),
					val(find("files", "os.WriteFile"), 1e-3), val(find("files-cpu", "os.WriteFile"), 1e-3)}},
			}, Width: 20, Height: 11}
		if err := draw("daxfs-files.png", c); err != nil {
			return files, err
		}
	}
	if len(rep.Ratios) > 0 {
		c := plot.BarChart{Title: "daxfs ratios from one run (x times the baseline; higher is better)", YLabel: "ratio",
			Groups: []plot.BarGroup{{Name: "wall clock (median)"}, {Name: "CPU time (median)"}, {Name: "goal"}}, Width: 30, Height: 13}
		cpu := map[string]float64{}
		for _, r := range rep.Ratios {
			if r.Basis == "cpu" {
				cpu[strings.TrimSuffix(r.Name, " [CPU]")] = r.Value
			}
		}
		// The tall ones (files) first: the legend sits top right. The
		// 2-vs-1-goroutine read ratios stay in the JSON and the table.
		var order []*Ratio
		for _, pass := range []string{"files:", "read:", "overlay:"} {
			for _, r := range rep.Ratios {
				if r.Basis == "wall" && strings.HasPrefix(r.Name, pass) && !strings.Contains(r.Name, "goroutines vs 1") {
					order = append(order, r)
				}
			}
		}
		for _, r := range order {
			c.Categories = append(c.Categories, shortRatio(r.Name))
			c.Groups[0].Values = append(c.Groups[0].Values, r.Value)
			c.Groups[1].Values = append(c.Groups[1].Values, cpu[r.Name])
			c.Groups[2].Values = append(c.Groups[2].Values, r.Goal)
		}
		if err := draw("daxfs-ratios.png", c); err != nil {
			return files, err
		}
	}
	return files, nil
}

// shortRatio turns a ratio name into an axis label.
func shortRatio(s string) string {
	r := strings.NewReplacer(
		"read: ", "", "overlay: ", "", "files: ", "",
		"zero-copy View vs pread", "View/pread", "copy ReadAt vs pread", "ReadAt/pread",
		" (1 goroutine)", "\n1 gor.", " (2 goroutines)", "\n2 gor.",
		"Create per-process dirs, 2 procs vs 1", "Create, own dirs\n2 procs/1",
		"Create one shared dir, 2 procs vs 1", "Create, shared dir\n2 procs/1",
		"Lookup, 2 procs vs 1", "Lookup\n2 procs/1",
		"control (private memory, no daxfs), 2 procs vs 1", "control (no daxfs)\n2 procs/1",
		"WriteFile, daxfs vs os", "WriteFile\ndaxfs/os",
		"floor (touch region, no library) vs pread", "floor/pread",
		"zero-copy View, 2 goroutines vs 1", "View 2g/1g", "copy ReadAt, 2 goroutines vs 1", "ReadAt 2g/1g",
		"pread tmpfs, 2 goroutines vs 1", "pread 2g/1g",
	)
	s = r.Replace(s)
	if strings.Contains(s, "create+write") {
		s = "create+write+close\ndaxfs/os"
	}
	return s
}
