package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where the numbers came from.
type Machine struct {
	Hostname   string `json:"hostname"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	GOARCH     string `json:"goarch"`
	MemTotal   string `json:"mem_total"`
	ShmemTHP   string `json:"shmem_thp"`
	PageSize   int    `json:"page_size"`
}

func machineInfo() Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		GOARCH:     runtime.GOARCH,
		PageSize:   os.Getpagesize(),
	}
	m.Hostname, _ = os.Hostname()
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &m.NumCPU)
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				m.MemTotal = strings.Join(strings.Fields(l)[1:], " ")
			}
		}
	}
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled"); err == nil {
		m.ShmemTHP = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// Result is one variant: the value of every measured rep and their summary.
type Result struct {
	Group     string    `json:"group"`
	Name      string    `json:"name"`
	Unit      string    `json:"unit"` // ns/op or ops/s
	OpsPerRep int       `json:"ops_per_rep"`
	Procs     int       `json:"procs,omitempty"`      // OS processes
	Threads   int       `json:"goroutines,omitempty"` // goroutines per process
	Reps      []float64 `json:"reps"`
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	// SpreadPct is (max-min)/median in percent.
	SpreadPct float64 `json:"spread_pct"`
	// Extra holds per-variant diagnostics (e.g. CAS retries per op).
	Extra map[string]float64 `json:"extra,omitempty"`
}

func (r *Result) summarise() {
	s := slices.Clone(r.Reps)
	slices.Sort(s)
	r.Min, r.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		r.Median = s[len(s)/2]
	} else {
		r.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if r.Median != 0 {
		r.SpreadPct = (r.Max - r.Min) / r.Median * 100
	}
}

// Ratio compares two variants of one run. Value is the ratio of their
// medians; PairedMin/Max bound the ratios of reps run back to back.
type Ratio struct {
	Name      string  `json:"name"`
	Num       string  `json:"numerator"`
	Den       string  `json:"denominator"`
	Value     float64 `json:"value"`
	PairedMin float64 `json:"paired_min"`
	PairedMax float64 `json:"paired_max"`
	Basis     string  `json:"basis"` // wall: wall-clock time; cpu: CPU time per worker
	Goal      float64 `json:"goal,omitempty"`
	Met       bool    `json:"met"`
}

// addResults appends the wall-clock and the CPU-time results of vs.
func addResults(rep *Report, vs []*variant) {
	for _, v := range vs {
		rep.Results = append(rep.Results, v.res)
	}
	for _, v := range vs {
		rep.Results = append(rep.Results, v.cpu)
	}
}

// addRatio compares lib with base twice: by wall-clock time (the number the
// goal is about) and by CPU time (the same runs with the machine's other
// load mostly taken out).
func addRatio(rep *Report, name string, lib, base *variant, goal float64) {
	w := speedup(name, lib.res, base.res, goal)
	w.Basis = "wall"
	c := speedup(name+" [CPU]", lib.cpu, base.cpu, 0)
	c.Basis = "cpu"
	rep.Ratios = append(rep.Ratios, w, c)
}

// speedup is baseline ns/op over library ns/op (or library ops/s over
// baseline ops/s): how many times faster the library is.
func speedup(name string, lib, base *Result, goal float64) *Ratio {
	f := func(l, b float64) float64 {
		if lib.Unit == "ns/op" {
			return b / l
		}
		return l / b
	}
	r := &Ratio{Name: name, Num: lib.Name, Den: base.Name, Value: f(lib.Median, base.Median), Goal: goal}
	for i := range min(len(lib.Reps), len(base.Reps)) {
		v := f(lib.Reps[i], base.Reps[i])
		if i == 0 || v < r.PairedMin {
			r.PairedMin = v
		}
		if i == 0 || v > r.PairedMax {
			r.PairedMax = v
		}
	}
	r.Met = goal == 0 || r.Value >= goal
	return r
}

// variant is one measured thing: run does ops operations and returns how
// long they took; it fails if its checksum does not match.
type variant struct {
	res  *Result
	cpu  *Result // the same runs counted in CPU time (filled by measure)
	run  func(rep int) (timing, error)
	prof string // CPU profile name under -cpuprofile ("" = none)
}

// timing is how long a measured loop took: wall-clock time and the CPU
// time (user+system) its process(es) spent in it. On a shared machine the
// wall time carries the neighbours' load; the CPU time mostly does not.
type timing struct{ wall, cpu time.Duration }

type clock struct {
	t0 time.Time
	c0 time.Duration
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startClock() clock { return clock{c0: cpuTime(), t0: time.Now()} }

func (c clock) stop() timing {
	w := time.Since(c.t0)
	return timing{wall: w, cpu: cpuTime() - c.c0}
}

// measure runs every variant once to warm up and then reps times,
// interleaved (rep by rep, starting from a different variant each rep, so
// slow drift of the machine hits them all alike).
func measure(vs []*variant, reps int) error {
	for _, v := range vs {
		if v.cpu == nil {
			c := *v.res
			c.Group += "-cpu"
			c.Name += ", CPU time"
			c.Extra = nil
			v.cpu = &c
		}
	}
	for _, v := range vs {
		if _, err := v.run(-1); err != nil {
			return fmt.Errorf("%s (warm-up): %w", v.res.Name, err)
		}
	}
	for rep := range reps {
		for k := range vs {
			v := vs[(k+rep)%len(vs)]
			t, err := v.run(rep)
			if err != nil {
				return fmt.Errorf("%s (rep %d): %w", v.res.Name, rep, err)
			}
			v.res.Reps = append(v.res.Reps, value(v.res, t.wall))
			v.cpu.Reps = append(v.cpu.Reps, value(v.cpu, t.cpu))
		}
	}
	for _, v := range vs {
		v.res.summarise()
		v.cpu.summarise()
	}
	// Profiles come from extra runs after the measured ones, so that
	// profiling never perturbs a reported number.
	for _, v := range vs {
		if *flagProfile == "" || v.prof == "" {
			continue
		}
		stop := profile(v.prof)
		for t0 := time.Now(); time.Since(t0) < 2*time.Second; {
			if _, err := v.run(-2); err != nil {
				stop()
				return fmt.Errorf("%s (profile): %w", v.res.Name, err)
			}
		}
		stop()
	}
	return nil
}

func value(r *Result, d time.Duration) float64 {
	if r.Unit == "ns/op" {
		return float64(d.Nanoseconds()) / float64(r.OpsPerRep)
	}
	return float64(r.OpsPerRep) / d.Seconds()
}
