// Package demo runs the thermal/power placement experiment behind `wio
// demo`: one write workload (compress with the lz4 actor, then checksum with
// the crc32c actor) over an emulated CSD whose 30-minute thermal profile is
// time-compressed, under three policies — device-pinned, host-pinned and
// adaptive (the scheduler) — and writes report.json and PNG plots. Every
// number in the report is measured from what ran.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/cxl/sensor"
	"github.com/daxwio/daxwio/scheduler"
)

// Policy names.
const (
	DevicePinned = "device-pinned"
	HostPinned   = "host-pinned"
	Adaptive     = "adaptive"
)

// Actor names in the demo pipeline.
const (
	CompressActor = "compress"
	ChecksumActor = "checksum"
)

// Config is one demo scenario. Durations marked "model" are on the
// device's model clock; wall time = model / Compression.
type Config struct {
	Profile     device.Profile
	StartTempC  float64       // device temperature at the start (default 60 °C: warm from earlier work)
	Duration    time.Duration // model time per policy (default 30 min)
	Compression float64       // model seconds per wall second (default 30)
	HostCap     []sensor.CapPoint
	HostDemandW float64       // uncapped host power (default 200 W)
	HostCores   int           // host cores for actors (default 2)
	Writers     int           // concurrent writers (default 2)
	BlockSize   int           // bytes per write (default 256 KiB)
	Sample      time.Duration // wall sampling period (default 100 ms)
	Policies    []string
	// Scheduler parameters on model time; scaled to wall time by the demo.
	Scheduler scheduler.Config
	// RegionPath is where the shared region with the telemetry words is
	// created (default /dev/shm/daxwio-demo-<pid>); it is removed at the end.
	RegionPath string
	Progress   io.Writer // live progress lines (nil: none)
	Log        *slog.Logger
	Seed       uint64

	// Procs runs the demo across processes over the actors runtime (wasm
	// actors from WasmDir, one device and one host daemon process, Writers
	// writer processes) instead of the in-process executor. Spawn builds
	// the command of a child from its `wio demo` flags.
	Procs       bool
	WasmDir     string
	CacheDir    string // wazero compilation cache shared by all processes and policies (default: a temp dir)
	Spawn       func(args []string) *exec.Cmd
	ProfileName string // profile name passed to children (default "smartssd")
}

// DefaultCapTrace is the host power-cap scenario (model time): capped at
// 60 W (of a 200 W demand, speed 0.67) for the first 5 minutes, uncapped
// until minute 18, capped again from minute 18 on.
func DefaultCapTrace() []sensor.CapPoint {
	return []sensor.CapPoint{{At: 0, CapW: 60}, {At: 5 * time.Minute, CapW: 0}, {At: 18 * time.Minute, CapW: 60}}
}

// DefaultSchedulerConfig is the adaptive policy on model time.
func DefaultSchedulerConfig(p device.Profile) scheduler.Config {
	c := scheduler.DefaultConfig(p.ThrottleOnC)
	c.LookAhead = 2 * time.Minute
	c.TempTau = 3 * time.Second
	c.SlopeWindow = time.Minute
	c.MinDwell = 30 * time.Second
	c.DwellFactor = 10
	c.Window = 5 * time.Minute
	c.MaxPerWindow = 4
	c.DefaultMigrationCost = 100 * time.Millisecond
	// The service time of the side an actor is not on is stale (and on a
	// shared machine, noisy): return for speed alone only when the device
	// was measured twice as fast.
	c.FasterMargin = 0.5
	return c
}

// DefaultConfig is the embedded default scenario: the SmartSSD-like
// profile with one compute unit (both actors share it when on the device,
// so a device-pinned pipeline keeps it busy), 30 model minutes at 30x.
func DefaultConfig() Config {
	p := device.SmartSSD()
	p.Units = 1
	return Config{Profile: p, StartTempC: 60, Duration: 30 * time.Minute, Compression: 30, HostCap: DefaultCapTrace(),
		HostDemandW: 200, HostCores: 2, Writers: 2, BlockSize: 256 << 10, Sample: 100 * time.Millisecond,
		Policies: []string{DevicePinned, HostPinned, Adaptive}, Scheduler: DefaultSchedulerConfig(p), Seed: 1}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	if c.Profile.Name == "" {
		c.Profile = d.Profile
	}
	if err := c.Profile.Validate(); err != nil {
		return err
	}
	if c.Duration <= 0 {
		c.Duration = d.Duration
	}
	if c.Compression <= 0 {
		c.Compression = d.Compression
	}
	if c.HostCap == nil {
		c.HostCap = d.HostCap
	}
	if c.HostDemandW <= 0 {
		c.HostDemandW = d.HostDemandW
	}
	if c.HostCores <= 0 {
		c.HostCores = d.HostCores
	}
	if c.Writers <= 0 {
		c.Writers = d.Writers
	}
	if c.BlockSize <= 0 {
		c.BlockSize = d.BlockSize
	}
	if c.Sample <= 0 {
		c.Sample = d.Sample
	}
	if len(c.Policies) == 0 {
		c.Policies = d.Policies
	}
	for _, p := range c.Policies {
		if p != DevicePinned && p != HostPinned && p != Adaptive {
			return fmt.Errorf("demo: unknown policy %q (want %s, %s or %s)", p, DevicePinned, HostPinned, Adaptive)
		}
	}
	if c.Scheduler.HotC == 0 {
		c.Scheduler = DefaultSchedulerConfig(c.Profile)
	}
	if err := c.Scheduler.Validate(); err != nil {
		return err
	}
	if c.RegionPath == "" {
		c.RegionPath = cxl.DefaultPath(fmt.Sprintf("demo-%d", os.Getpid()))
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.ProfileName == "" {
		c.ProfileName = "smartssd"
	}
	if c.Procs && c.Spawn == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("demo: finding this executable to start child processes: %w", err)
		}
		c.Spawn = func(args []string) *exec.Cmd {
			cmd := exec.Command(exe, append([]string{"demo"}, args...)...)
			dieWithParent(cmd)
			return cmd
		}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// wall converts model time to wall time.
func (c *Config) wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Compression)
}

// wallScheduler scales the model-time scheduler config to wall time.
func (c *Config) wallScheduler() scheduler.Config {
	s := c.Scheduler
	s.LookAhead = c.wall(s.LookAhead)
	s.TempTau = c.wall(s.TempTau)
	s.SlopeWindow = c.wall(s.SlopeWindow)
	s.MinDwell = c.wall(s.MinDwell)
	s.Window = c.wall(s.Window)
	// Migration cost is measured on the wall clock; the default stays wall.
	return s
}

// Point is one sample of a run's time series (model time in seconds).
type Point struct {
	T          float64 `json:"t_model_s"`
	TempC      float64 `json:"device_temp_c"`
	Factor     float64 `json:"device_factor"`
	PowerW     float64 `json:"device_power_w"`
	HostSpeed  float64 `json:"host_speed"`
	OnDevice   int     `json:"actors_on_device"`
	MiBs       float64 `json:"throughput_mib_s"`
	P99Ms      float64 `json:"p99_write_latency_ms"`
	Throttled  bool    `json:"throttled"`
	WritesDone int     `json:"writes"`
}

// Move is one migration the scheduler carried out.
type Move struct {
	T          float64 `json:"t_model_s"`
	Actor      string  `json:"actor"`
	To         string  `json:"to"`
	Reason     string  `json:"reason"`
	TempC      float64 `json:"temp_c"`
	BlackoutMs float64 `json:"blackout_ms"`
	Error      string  `json:"error,omitempty"`
}

// Result is what one policy's run measured.
type Result struct {
	Policy          string  `json:"policy"`
	WallS           float64 `json:"wall_s"`
	ModelS          float64 `json:"model_s"`
	Writes          int     `json:"writes"`
	Bytes           int64   `json:"bytes"`
	ThroughputMiBs  float64 `json:"throughput_mib_s"`
	P50Ms           float64 `json:"p50_write_latency_ms"`
	P99Ms           float64 `json:"p99_write_latency_ms"`
	MaxMs           float64 `json:"max_write_latency_ms"`
	Migrations      int     `json:"migrations"`
	BlackoutTotalMs float64 `json:"blackout_total_ms"`
	BlackoutMaxMs   float64 `json:"blackout_max_ms"`
	MaxTempC        float64 `json:"max_device_temp_c"`
	ThrottleEvents  uint64  `json:"throttle_events"`
	ThrottledS      float64 `json:"throttled_model_s"`
	HostBusyS       float64 `json:"host_busy_s"`
	DeviceBusyS     float64 `json:"device_busy_s"`
	Errors          int     `json:"errors"`
	Takeovers       int     `json:"takeovers"` // actors taken over from a daemon declared dead (should be 0)
	Moves           []Move  `json:"moves"`
	Series          []Point `json:"series"`
}

// Run runs every policy of the scenario in turn.
func Run(ctx context.Context, c Config) ([]Result, float64, error) {
	if err := c.fill(); err != nil {
		return nil, 0, err
	}
	nominal := calibrate(c)
	if c.Procs && c.CacheDir == "" {
		dir, err := os.MkdirTemp("", "wio-demo-cache-")
		if err != nil {
			return nil, 0, err
		}
		defer os.RemoveAll(dir)
		c.CacheDir = dir
	}
	var out []Result
	for _, p := range c.Policies {
		run := runPolicy
		if c.Procs {
			run = runPolicyProcs
		}
		r, err := run(ctx, c, p, nominal)
		if err != nil {
			return out, nominal, fmt.Errorf("demo: policy %s: %w", p, err)
		}
		out = append(out, r)
	}
	return out, nominal, nil
}

// calibrate measures the device's full-speed pipeline rate on this machine,
// in compressed bytes written per second: the host rate of compress+checksum
// of one block times the device speed factor. The emulated flash is sized to it (I/O utilisation 1 when a
// device-pinned pipeline runs flat out), so the thermal curve has the same
// shape on fast and slow machines.
func calibrate(c Config) float64 {
	lz, _ := examples.Get("lz4")
	cr, _ := examples.Get("crc32c")
	tl, _ := newTwin(lz)
	tc, _ := newTwin(cr)
	rng := rand.New(rand.NewPCG(c.Seed, 7))
	block := lz.Gen(rng, c.BlockSize)
	// The best of several short trials: other load on the machine only
	// ever makes a trial slower.
	best := 0.0
	for trial := 0; trial < 8; trial++ {
		var bytes int64
		t0 := time.Now()
		for n := 0; n < 2 || time.Since(t0) < 40*time.Millisecond; n++ {
			out, err := tl.Handle(block)
			if err == nil {
				_, _ = tc.Handle(out)
			}
			bytes += int64(len(out))
		}
		best = math.Max(best, float64(bytes)/time.Since(t0).Seconds())
	}
	return best * c.Profile.SpeedFactor
}

func runPolicy(ctx context.Context, c Config, policy string, nominalBps float64) (Result, error) {
	res := Result{Policy: policy}
	region, telOff, cleanup, err := openRegion(c.RegionPath)
	if err != nil {
		return res, err
	}
	defer cleanup()

	dev, err := device.New(c.Profile, device.Options{Compression: c.Compression, NominalIOBps: nominalBps,
		StartTempC: c.StartTempC})
	if err != nil {
		return res, err
	}
	tel, err := device.NewTelemetry(region, telOff)
	if err != nil {
		return res, err
	}
	tel.PublishSnapshot(dev.Snapshot())
	host, err := sensor.NewHostCap(c.HostCap, sensor.HostCapOptions{DemandW: c.HostDemandW, Compression: c.Compression})
	if err != nil {
		return res, err
	}
	start := scheduler.Device
	if policy == HostPinned {
		start = scheduler.Host
	}
	lz, _ := examples.Get("lz4")
	cr, _ := examples.Get("crc32c")
	ex, err := NewLocal(dev, host, c.HostCores, nil, []LocalActor{
		{Name: CompressActor, New: lz.New, StateSize: lz.StateSize, Arg: lz.Arg, Side: start},
		{Name: ChecksumActor, New: cr.New, StateSize: cr.StateSize, Arg: cr.Arg, Side: start},
	})
	if err != nil {
		return res, err
	}
	defer ex.Close()

	wallDur := c.wall(c.Duration)
	rctx, cancel := context.WithTimeout(ctx, wallDur)
	defer cancel()
	began := time.Now()

	// Writers: closed loop, compress then checksum, then the compressed
	// block is written to the device (I/O accounted to its power model).
	var mu sync.Mutex
	var lats []float64 // ms, all writes
	var win []float64  // ms, writes since the last sample
	var winBytes int64
	var errs int
	var wg sync.WaitGroup
	for w := 0; w < c.Writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Blocks are generated up front so the writers measure the
			// pipeline, not the data generator.
			rng := rand.New(rand.NewPCG(c.Seed, uint64(w)+100))
			blocks := make([][]byte, 16)
			for i := range blocks {
				blocks[i] = lz.Gen(rng, c.BlockSize)
			}
			for n := 0; rctx.Err() == nil; n++ {
				block := blocks[n%len(blocks)]
				t0 := time.Now()
				comp, err := ex.Do(rctx, CompressActor, block)
				if err == nil {
					_, err = ex.Do(rctx, ChecksumActor, comp)
				}
				if rctx.Err() != nil {
					return // the run ended mid-write: not counted
				}
				ms := float64(time.Since(t0)) / 1e6
				mu.Lock()
				if err != nil {
					errs++
				} else {
					dev.AddIO(int64(len(comp)))
					lats = append(lats, ms)
					win = append(win, ms)
					winBytes += int64(len(block))
					res.Bytes += int64(len(block))
				}
				mu.Unlock()
			}
		}(w)
	}

	// Scheduler (adaptive only): signals from the region's telemetry
	// words and the host cap, moves through the executor.
	var moves moveLog
	if policy == Adaptive {
		src := &signalSource{region: region, off: telOff, host: host, ex: ex}
		if err := startAdaptive(rctx, &wg, c, src, ex, began, &moves); err != nil {
			return res, err
		}
	}

	// Sampler: publish telemetry, record the series, print progress.
	tick := time.NewTicker(c.Sample)
	defer tick.Stop()
	lastPrint := time.Time{}
	lastSample := began
	var throttledS float64
	for done := false; !done; {
		select {
		case <-rctx.Done():
			done = true
		case <-tick.C:
		}
		if done {
			break
		}
		now := time.Now()
		snap := dev.Snapshot()
		tel.PublishSnapshot(snap)
		hs := host.State()
		mu.Lock()
		p99 := percentile(win, 0.99)
		dt := now.Sub(lastSample).Seconds()
		mibs := 0.0
		if dt > 0 {
			mibs = float64(winBytes) / dt / (1 << 20)
		}
		nWrites := len(lats)
		win, winBytes = win[:0], 0
		mu.Unlock()
		if snap.Throttled {
			throttledS += dt * c.Compression
		}
		lastSample = now
		onDev := 0
		for _, a := range ex.Actors() {
			if a.Side == scheduler.Device {
				onDev++
			}
		}
		pt := Point{T: modelSince(began, c), TempC: snap.TempC, Factor: snap.Factor, PowerW: snap.PowerW,
			HostSpeed: hs.Speed, OnDevice: onDev, MiBs: mibs, P99Ms: p99, Throttled: snap.Throttled, WritesDone: nWrites}
		res.Series = append(res.Series, pt)
		res.MaxTempC = math.Max(res.MaxTempC, snap.TempC)
		res.ThrottleEvents = snap.Events
		if now.Sub(lastPrint) >= time.Second {
			lastPrint = now
			fmt.Fprintf(c.Progress, "%-13s model %5.1f min  T %5.1f°C  factor %.2f  host speed %.2f  actors on device %d/2  %7.1f MiB/s  p99 %7.1f ms  writes %d\n",
				policy, pt.T/60, pt.TempC, pt.Factor, pt.HostSpeed, onDev, mibs, p99, nWrites)
		}
	}
	cancel()
	wg.Wait()
	wall := time.Since(began)
	hb, db := ex.Busy()

	fillResult(&res, lats, wall, c, hb, db, throttledS)
	res.Errors = errs
	res.Moves = moves.list()
	for _, m := range res.Moves {
		if m.Error == "" {
			res.Migrations++
			res.BlackoutTotalMs += m.BlackoutMs
			res.BlackoutMaxMs = math.Max(res.BlackoutMaxMs, m.BlackoutMs)
		}
	}
	if res.Writes == 0 {
		return res, errors.New("no write completed")
	}
	return res, nil
}

// fillResult computes the summary numbers of a run from its latencies (ms).
func fillResult(res *Result, lats []float64, wall time.Duration, c Config, hb, db time.Duration, throttledS float64) {
	sorted := slices.Clone(lats)
	slices.Sort(sorted)
	res.WallS = wall.Seconds()
	res.ModelS = wall.Seconds() * c.Compression
	res.Writes = len(lats)
	res.ThroughputMiBs = float64(res.Bytes) / wall.Seconds() / (1 << 20)
	res.P50Ms = percentileSorted(sorted, 0.50)
	res.P99Ms = percentileSorted(sorted, 0.99)
	if len(sorted) > 0 {
		res.MaxMs = sorted[len(sorted)-1]
	}
	res.HostBusyS, res.DeviceBusyS = hb.Seconds(), db.Seconds()
	res.ThrottledS = throttledS
}

func newTwin(e examples.Example) (*abi.Twin, error) { return abi.NewTwin(e.New(), e.StateSize, e.Arg) }

func modelSince(began time.Time, c Config) float64 {
	return time.Since(began).Seconds() * c.Compression
}

// openRegion creates the shared region with one extent for the telemetry.
func openRegion(path string) (*cxl.Region, uint64, func(), error) {
	_ = os.Remove(path)
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: 1 << 20})
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() { r.Close(); os.Remove(path) }
	h, err := cxl.Format(r, cxl.FormatOptions{Extents: []cxl.ExtentSpec{{Name: "wio-telemetry", Size: 4096}}})
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	ext, err := h.Extent("wio-telemetry")
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return r, ext.Off, cleanup, nil
}

// signalSource reads the device telemetry words from the region (as a
// scheduler in another process would) and the host cap.
type signalSource struct {
	region *cxl.Region
	off    uint64
	host   *sensor.HostCap
	ex     Executor
}

func (s *signalSource) Sample(context.Context) (scheduler.Signals, []scheduler.Actor, error) {
	t, err := device.ReadTelemetry(s.region, s.off)
	if err != nil {
		return scheduler.Signals{}, nil, err
	}
	h := s.host.State()
	return scheduler.Signals{At: time.Now(), DeviceTempC: t.TempC, DeviceFactor: t.Factor,
		HostPowerW: h.PowerW, HostCapW: h.CapW, HostSpeed: h.Speed}, s.ex.Actors(), nil
}

// moveLog collects the migrations the adaptive loop made.
type moveLog struct {
	mu    sync.Mutex
	moves []Move
}

func (l *moveLog) add(m Move) {
	l.mu.Lock()
	l.moves = append(l.moves, m)
	l.mu.Unlock()
}

func (l *moveLog) list() []Move {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.moves
}

// startAdaptive runs the adaptive policy's scheduler loop until rctx ends:
// signals from src, migrations through ex, each one recorded in log with
// its blackout.
func startAdaptive(rctx context.Context, wg *sync.WaitGroup, c Config, src scheduler.Source, ex Executor, began time.Time, log *moveLog) error {
	pol, err := scheduler.NewPolicy(c.wallScheduler())
	if err != nil {
		return err
	}
	var lastBlackout time.Duration // Tick calls Move, then OnDecision, on one goroutine
	mover := moverFunc(func(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error) {
		bo, err := ex.Move(ctx, actor, to)
		lastBlackout = bo
		return bo, err
	})
	loop := &scheduler.Loop{Policy: pol, Source: src, Mover: mover, Period: c.Sample, Log: c.Log,
		OnDecision: func(d scheduler.Decision, err error) {
			if d.Action != scheduler.Migrate {
				return
			}
			m := Move{T: modelSince(began, c), Actor: d.Actor, To: d.To.String(), Reason: string(d.Reason), TempC: d.TempC,
				BlackoutMs: float64(lastBlackout) / 1e6}
			if err != nil {
				m.Error = err.Error()
			}
			log.add(m)
		}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = loop.Run(rctx)
	}()
	return nil
}

type moverFunc func(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error)

func (f moverFunc) Move(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error) {
	return f(ctx, actor, to)
}

func percentile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return percentileSorted(s, q)
}

// percentileSorted is the nearest-rank percentile of sorted values.
func percentileSorted(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
