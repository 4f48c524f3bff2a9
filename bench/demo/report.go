package demo

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/daxwio/daxwio/bench/plot"
	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/cxl/sensor"
)

// Report is demo-report/report.json.
type Report struct {
	Note     string             `json:"note"`
	Started  time.Time          `json:"started"`
	Machine  Machine            `json:"machine"`
	Model    Model              `json:"model"`
	Policies map[string]Result  `json:"policies"`
	Order    []string           `json:"order"`
	Ratios   map[string]float64 `json:"ratios"`
	Plots    []string           `json:"plots"`
}

// Machine says where it ran.
type Machine struct {
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
}

// Model records every model parameter used.
type Model struct {
	Label          string         `json:"label"`
	Profile        device.Profile `json:"device_profile"`
	StartTempC     float64        `json:"device_start_temp_c"`
	Compression    float64        `json:"time_compression"`
	ModelDurationS float64        `json:"model_duration_s"`
	NominalIOBps   float64        `json:"device_nominal_io_bytes_per_s"`
	HostDemandW    float64        `json:"host_demand_w"`
	HostCores      int            `json:"host_cores"`
	HostCap        []capJSON      `json:"host_cap_trace"`
	Writers        int            `json:"writers"`
	BlockSize      int            `json:"block_size"`
	Scheduler      schedJSON      `json:"scheduler_model_time"`
	Executor       string         `json:"executor"`
	Processes      bool           `json:"processes"`
}

type capJSON struct {
	AtS  float64 `json:"t_model_s"`
	CapW float64 `json:"cap_w"`
}

type schedJSON struct {
	HotC, CoolC  float64
	LookAheadS   float64 `json:"LookAheadS"`
	TempTauS     float64 `json:"TempTauS"`
	SlopeWindowS float64 `json:"SlopeWindowS"`
	MinDwellS    float64 `json:"MinDwellS"`
	DwellFactor  float64
	WindowS      float64 `json:"WindowS"`
	MaxPerWindow int
	HostCapHigh  float64
	HostCapLow   float64
}

// BuildReport assembles the report from measured results.
func BuildReport(c Config, results []Result, nominal float64, started time.Time) Report {
	r := Report{
		Note: "All numbers are measured from this run. The device and host power models are MODELS " +
			"(docs/DEVICE.md), not measurements of real hardware.",
		Started: started,
		Machine: Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()},
		Model: Model{Label: "model, not measurement", Processes: c.Procs, Profile: c.Profile, StartTempC: c.StartTempC, Compression: c.Compression,
			ModelDurationS: c.Duration.Seconds(), NominalIOBps: nominal, HostDemandW: c.HostDemandW,
			HostCores: c.HostCores, Writers: c.Writers, BlockSize: c.BlockSize,
			Executor: "in-process (bench/demo.Local): native twins of the lz4 and crc32c actors; device execution dilated by device.Exec"},
		Policies: map[string]Result{},
		Ratios:   map[string]float64{},
	}
	if c.Procs {
		r.Model.Executor = fmt.Sprintf("processes over the actors runtime: wasm lz4 and crc32c actors deployed in a region at %s; "+
			"a device process (actors.Node, device side, Exec = device.Exec of the emulated device, telemetry words in the region), "+
			"a host process (actors.Node, host side, Exec dilated by the power-cap speed), %d writer processes (actors.Client); "+
			"moves by Arena.Migrate (drain-and-switch)", c.RegionPath, c.Writers)
	}
	for _, p := range c.HostCap {
		r.Model.HostCap = append(r.Model.HostCap, capJSON{AtS: p.At.Seconds(), CapW: p.CapW})
	}
	s := c.Scheduler
	r.Model.Scheduler = schedJSON{HotC: s.HotC, CoolC: s.CoolC, LookAheadS: s.LookAhead.Seconds(), TempTauS: s.TempTau.Seconds(),
		SlopeWindowS: s.SlopeWindow.Seconds(), MinDwellS: s.MinDwell.Seconds(), DwellFactor: s.DwellFactor,
		WindowS: s.Window.Seconds(), MaxPerWindow: s.MaxPerWindow, HostCapHigh: s.HostCapHigh, HostCapLow: s.HostCapLow}
	for _, res := range results {
		r.Policies[res.Policy] = res
		r.Order = append(r.Order, res.Policy)
	}
	ratio := func(name string, a, b float64) {
		if b > 0 && a > 0 {
			r.Ratios[name] = a / b
		}
	}
	ad, okA := r.Policies[Adaptive]
	dp, okD := r.Policies[DevicePinned]
	hp, okH := r.Policies[HostPinned]
	if okA && okD {
		ratio("adaptive_vs_device_pinned_throughput", ad.ThroughputMiBs, dp.ThroughputMiBs)
		ratio("device_pinned_vs_adaptive_p99_latency", dp.P99Ms, ad.P99Ms)
	}
	if okA && okH {
		ratio("adaptive_vs_host_pinned_throughput", ad.ThroughputMiBs, hp.ThroughputMiBs)
		ratio("host_pinned_vs_adaptive_p99_latency", hp.P99Ms, ad.P99Ms)
		ratio("host_pinned_vs_adaptive_host_busy", hp.HostBusyS, ad.HostBusyS)
	}
	return r
}

// WritePlots draws the PNGs into dir and returns their names.
func WritePlots(dir string, rep Report) ([]string, error) {
	var names []string
	series := func(f func(Point) float64, step bool) []plot.Series {
		var out []plot.Series
		for _, p := range rep.Order {
			res := rep.Policies[p]
			s := plot.Series{Name: p, Step: step}
			for _, pt := range res.Series {
				s.X = append(s.X, pt.T/60)
				s.Y = append(s.Y, f(pt))
			}
			out = append(out, s)
		}
		return out
	}
	// Rolling smoothing of noisy per-sample values over k samples.
	smooth := func(ss []plot.Series, k int) []plot.Series {
		for i := range ss {
			y := make([]float64, len(ss[i].Y))
			for j := range y {
				lo := max(0, j-k+1)
				sum := 0.0
				for _, v := range ss[i].Y[lo : j+1] {
					sum += v
				}
				y[j] = sum / float64(j+1-lo)
			}
			ss[i].Y = y
		}
		return ss
	}
	charts := []struct {
		file string
		c    plot.Chart
	}{
		{"throughput.png", plot.Chart{Title: "Write throughput (1 s moving average)", XLabel: "model time (min)", YLabel: "MiB/s",
			Series: smooth(series(func(p Point) float64 { return p.MiBs }, false), 10)}},
		{"p99_latency.png", plot.Chart{Title: "p99 write latency per 100 ms sample", XLabel: "model time (min)", YLabel: "ms",
			Series: series(func(p Point) float64 { return p.P99Ms }, false)}},
		{"device_temperature.png", plot.Chart{Title: "Device temperature (model)", XLabel: "model time (min)", YLabel: "°C",
			Series: series(func(p Point) float64 { return p.TempC }, false),
			HLines: []plot.HLine{{Name: "throttle on", Y: rep.Model.Profile.ThrottleOnC}, {Name: "HotC", Y: rep.Model.Scheduler.HotC},
				{Name: "CoolC", Y: rep.Model.Scheduler.CoolC}}}},
		{"placement.png", plot.Chart{Title: "Actors on the device (of 2)", XLabel: "model time (min)", YLabel: "actors",
			Series: series(func(p Point) float64 { return float64(p.OnDevice) }, true)}},
	}
	for _, ch := range charts {
		if err := plot.Lines(filepath.Join(dir, ch.file), ch.c); err != nil {
			return names, err
		}
		names = append(names, ch.file)
	}
	var tp, p99 []float64
	for _, p := range rep.Order {
		tp = append(tp, rep.Policies[p].ThroughputMiBs)
		p99 = append(p99, rep.Policies[p].P99Ms)
	}
	if err := plot.Bars(filepath.Join(dir, "summary_throughput.png"), plot.BarChart{Title: "Throughput by policy",
		YLabel: "MiB/s", Categories: rep.Order, Groups: []plot.BarGroup{{Values: tp}}}); err != nil {
		return names, err
	}
	if err := plot.Bars(filepath.Join(dir, "summary_p99.png"), plot.BarChart{Title: "p99 write latency by policy",
		YLabel: "ms", Categories: rep.Order, Groups: []plot.BarGroup{{Values: p99}}}); err != nil {
		return names, err
	}
	return append(names, "summary_throughput.png", "summary_p99.png"), nil
}

// Options are the command-line knobs of `wio demo`.
type Options struct {
	Out         string
	Profile     string
	Duration    time.Duration
	Compression float64
	Writers     int
	Block       int
	Policies    string
	CapTrace    string
	Region      string
	Verbose     bool
	Executor    string // "procs", "local" or "auto"
	WasmDir     string

	// Child-process flags (set by the orchestrator, not by people).
	Role       string
	LatFile    string
	NominalBps float64
	StartTemp  float64
	WriterID   int
	HostCores  int
	Cap        string
	HostDemand float64
	Cache      string
}

// Register declares the flags on fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Out, "out", "demo-report", "directory for report.json and the PNG plots")
	fs.StringVar(&o.Profile, "profile", "smartssd", "device profile: smartssd or scaleflux (models, not measurements)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Minute, "model time per policy")
	fs.Float64Var(&o.Compression, "compression", 30, "model seconds per wall second")
	fs.IntVar(&o.Writers, "writers", 2, "concurrent writers")
	fs.IntVar(&o.Block, "block", 256<<10, "bytes per write")
	fs.StringVar(&o.Policies, "policies", DevicePinned+","+HostPinned+","+Adaptive, "policies to run, comma-separated")
	fs.StringVar(&o.CapTrace, "cap-trace", "", "host power-cap trace CSV (time_s,cap_w); default: the embedded scenario")
	fs.StringVar(&o.Region, "region", "", "shared region file for the telemetry words (default /dev/shm/daxwio-demo-<pid>, removed at the end)")
	fs.BoolVar(&o.Verbose, "v", false, "log every scheduler decision on stderr")
	fs.StringVar(&o.Executor, "executor", "auto", "procs: device, host and writer processes over the actors runtime (wasm);\n"+
		"local: in-process native twins; auto: procs when the wasm actors are built")
	fs.StringVar(&o.WasmDir, "wasm-dir", "actors/examples/bin", "where make actors put lz4.wasm and crc32c.wasm")
	// Internal: how the orchestrator starts its child processes.
	fs.StringVar(&o.Role, "role", "", "internal: child role (device, host, writer)")
	fs.StringVar(&o.LatFile, "lat-file", "", "internal: writer latency file")
	fs.Float64Var(&o.NominalBps, "nominal-bps", 0, "internal: device nominal I/O rate")
	fs.Float64Var(&o.StartTemp, "start-temp", 60, "internal: device start temperature")
	fs.IntVar(&o.WriterID, "writer-id", 0, "internal: writer index")
	fs.IntVar(&o.HostCores, "host-cores", 2, "internal: host cores for actors")
	fs.StringVar(&o.Cap, "cap", "", "internal: host cap trace as t:w,t:w")
	fs.Float64Var(&o.HostDemand, "host-demand", 200, "internal: host demand W")
	fs.StringVar(&o.Cache, "cache", "", "internal: wazero compilation cache shared by the demo's processes")
}

// Main parses args as `wio demo` flags and runs Execute.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	o.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("demo: unexpected arguments %q", fs.Args())
	}
	return Execute(ctx, o, stdout, stderr)
}

// Execute runs the demo: every policy, then report.json and the plots in
// o.Out. Progress goes to stdout.
func Execute(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if o.Role != "" {
		return RunChild(ctx, o)
	}
	c := DefaultConfig()
	c.ProfileName = o.Profile
	c.WasmDir = o.WasmDir
	switch o.Executor {
	case "procs":
		c.Procs = true
	case "local":
	case "auto", "":
		c.Procs = WasmAvailable(o.WasmDir)
		if !c.Procs {
			fmt.Fprintf(stdout, "wio demo: no wasm actors in %s (make actors); using the in-process executor\n", o.WasmDir)
		}
	default:
		return fmt.Errorf("demo: -executor %q: want procs, local or auto", o.Executor)
	}
	p, err := device.ProfileByName(o.Profile)
	if err != nil {
		return err
	}
	p.Units = c.Profile.Units
	c.Profile, c.Scheduler = p, DefaultSchedulerConfig(p)
	c.Duration, c.Compression, c.Writers, c.BlockSize = o.Duration, o.Compression, o.Writers, o.Block
	c.Policies = strings.Split(o.Policies, ",")
	c.Progress = stdout
	c.RegionPath = o.Region
	if o.Verbose {
		c.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if o.CapTrace != "" {
		f, err := os.Open(o.CapTrace)
		if err != nil {
			return err
		}
		c.HostCap, err = sensor.ReadCapTrace(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.CapTrace, err)
		}
	}
	out := &o.Out
	policies := &o.Policies
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	started := time.Now()
	fmt.Fprintf(stdout, "wio demo: %s device (a model), %v of model time per policy at %gx = %v wall each, policies %s\n",
		c.Profile.Name, c.Duration, c.Compression, c.wall(c.Duration).Round(100*time.Millisecond), *policies)
	results, nominal, err := Run(ctx, c)
	if err != nil {
		return err
	}
	rep := BuildReport(c, results, nominal, started)
	names, err := WritePlots(*out, rep)
	if err != nil {
		return err
	}
	rep.Plots = names
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%-14s %12s %14s %10s %13s %10s %11s\n", "policy", "MiB/s", "p99 write ms", "migrations", "blackout ms", "max °C", "host busy s")
	for _, p := range rep.Order {
		r := rep.Policies[p]
		fmt.Fprintf(stdout, "%-14s %12.1f %14.1f %10d %13.2f %10.1f %11.1f\n", p, r.ThroughputMiBs, r.P99Ms, r.Migrations,
			r.BlackoutTotalMs, r.MaxTempC, r.HostBusyS)
	}
	for _, k := range []string{"adaptive_vs_device_pinned_throughput", "device_pinned_vs_adaptive_p99_latency",
		"adaptive_vs_host_pinned_throughput", "host_pinned_vs_adaptive_p99_latency", "host_pinned_vs_adaptive_host_busy"} {
		if v, ok := rep.Ratios[k]; ok {
			fmt.Fprintf(stdout, "%-40s %.2fx\n", k, v)
		}
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, "report.json"))
	return nil
}
