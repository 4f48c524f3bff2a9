package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/cxl/sensor"
	"github.com/daxwio/daxwio/scheduler"
)

// The multi-process demo: the orchestrator (scheduler, sampler, report)
// formats a region in /dev/shm and deploys the wasm actors; a device
// process runs the device-side actors.Node with the emulated device's Exec
// (dilation, thermal model) and publishes its telemetry words; a host
// process runs the host-side actors.Node with the power-cap dilation; and
// Writers writer processes (the hosts' applications) submit the writes
// through actors.Client. They coordinate only through the region.

// Words of the "wio-demo" extent.
const (
	dwGo       = 0  // orchestrator: start time (Unix ns); 0 = not yet
	dwStop     = 8  // orchestrator: 1 = stop
	dwHostBusy = 16 // host process: busy ns
	dwDevBusy  = 24 // device process: busy ns
	dwWriters  = 64 // writer i: bytes in at +32i, bytes written (compressed) at +32i+8, writes at +32i+16
	demoExtent = "wio-demo"
	telExtent  = "wio-telemetry"
)

// Roles of the child processes.
const (
	RoleDevice = "device"
	RoleHost   = "host"
	RoleWriter = "writer"
)

// childArgs is what a child needs, passed as `wio demo` flags.
type childArgs struct {
	Role, Region, Profile, LatFile, Cache string
	Compression, NominalBps               float64
	StartTempC                            float64
	Writer, Block, HostCores              int
	CapTrace                              string // "t:w,t:w" model seconds : watts
	HostDemandW                           float64
}

func (a childArgs) flags() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return []string{"-role", a.Role, "-region", a.Region, "-profile", a.Profile, "-lat-file", a.LatFile,
		"-compression", f(a.Compression), "-nominal-bps", f(a.NominalBps), "-start-temp", f(a.StartTempC),
		"-writer-id", strconv.Itoa(a.Writer), "-block", strconv.Itoa(a.Block), "-host-cores", strconv.Itoa(a.HostCores),
		"-cap", a.CapTrace, "-host-demand", f(a.HostDemandW), "-cache", a.Cache}
}

func encodeCap(cs []sensor.CapPoint) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ","
		}
		s += strconv.FormatFloat(c.At.Seconds(), 'g', -1, 64) + ":" + strconv.FormatFloat(c.CapW, 'g', -1, 64)
	}
	return s
}

func decodeCap(s string) ([]sensor.CapPoint, error) {
	var b []byte
	b = append(b, "time_s,cap_w\n"...)
	for _, r := range []byte(s) {
		switch r {
		case ':':
			b = append(b, ',')
		case ',':
			b = append(b, '\n')
		default:
			b = append(b, r)
		}
	}
	return sensor.ReadCapTrace(bytesReader(b))
}

// procWorld is one policy's run across processes, seen from the orchestrator.
type procWorld struct {
	c        Config
	r        *cxl.Region
	hosts    *cxl.HostTable
	me       *cxl.Host
	a        *actors.Arena
	rt       *actors.Runtime
	telOff   uint64
	demoOff  uint64
	children []*exec.Cmd
	outs     []*syncBuf
	latFiles []string
	dir      string
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.b) < 1<<16 {
		s.b = append(s.b, p...)
	}
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// WasmAvailable reports whether the wasm builds of the demo's actors are in dir.
func WasmAvailable(dir string) bool {
	for _, n := range []string{"lz4.wasm", "crc32c.wasm"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

func startProcWorld(ctx context.Context, c Config, policy string, nominal float64) (*procWorld, error) {
	w := &procWorld{c: c}
	dir, err := os.MkdirTemp("", "wio-demo-")
	if err != nil {
		return nil, err
	}
	w.dir = dir
	_ = os.Remove(c.RegionPath)
	slotBytes := uint64(c.BlockSize)*2 + 8192
	arena := 4*16*slotBytes + 16<<20
	size := int64(arena + 8<<20)
	r, err := cxl.Open(c.RegionPath, cxl.OpenOptions{Create: true, Size: size})
	if err != nil {
		return w, err
	}
	w.r = r
	// A long lease: on a loaded machine a daemon whose heartbeat is late
	// must not be declared dead and have its actors taken over mid-run.
	h, err := cxl.Format(r, cxl.FormatOptions{MaxHosts: 16, Lease: 30 * time.Second, Extents: []cxl.ExtentSpec{
		{Name: actors.ExtentName, Size: arena}, {Name: telExtent, Size: 4096}, {Name: demoExtent, Size: 4096}}})
	if err != nil {
		return w, err
	}
	for name, off := range map[string]*uint64{telExtent: &w.telOff, demoExtent: &w.demoOff} {
		e, err := h.Extent(name)
		if err != nil {
			return w, err
		}
		*off = e.Off
	}
	if w.hosts, err = cxl.OpenHostTable(r, h); err != nil {
		return w, err
	}
	if w.me, err = w.hosts.Join(cxl.JoinOptions{Name: "wio-demo"}); err != nil {
		return w, err
	}
	ao := &actors.ArenaOptions{MaxActors: 4, Slots: 16, MaxRequest: uint32(c.BlockSize + 64), MaxState: 4096}
	if w.a, err = actors.OpenArena(r, h, w.hosts, ao); err != nil {
		return w, err
	}
	// One compilation cache for every process: the module is compiled
	// once here, at deploy, and loaded by the daemons.
	cache := c.CacheDir
	if w.rt, err = actors.NewRuntime(ctx, actors.RuntimeConfig{CacheDir: cache}); err != nil {
		return w, err
	}
	base := childArgs{Region: c.RegionPath, Profile: c.ProfileName, Compression: c.Compression, NominalBps: nominal,
		StartTempC: c.StartTempC, Block: c.BlockSize, HostCores: c.HostCores, CapTrace: encodeCap(c.HostCap),
		HostDemandW: c.HostDemandW, Cache: cache}
	spawn := func(a childArgs) error {
		cmd := c.Spawn(a.flags())
		out := &syncBuf{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("demo: starting %s process: %w", a.Role, err)
		}
		w.children = append(w.children, cmd)
		w.outs = append(w.outs, out)
		return nil
	}
	for _, role := range []string{RoleDevice, RoleHost} {
		a := base
		a.Role = role
		if err := spawn(a); err != nil {
			return w, err
		}
	}
	for i := 0; i < c.Writers; i++ {
		a := base
		a.Role, a.Writer = RoleWriter, i
		a.LatFile = filepath.Join(dir, fmt.Sprintf("writer%d.lat", i))
		w.latFiles = append(w.latFiles, a.LatFile)
		if err := spawn(a); err != nil {
			return w, err
		}
	}
	// Wait for both sides' daemons.
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, sides := w.a.Status()
		up := 0
		for _, s := range sides {
			if s.Alive {
				up++
			}
		}
		if up >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return w, fmt.Errorf("demo: the device and host processes did not start within 60s: %s", w.childOutput())
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return w, err
		}
	}
	// Deploy only now that both daemons serve: an actor deployed on a side
	// whose daemon is not up yet would be taken over by the other side.
	side := actors.Device
	if policy == HostPinned {
		side = actors.Host
	}
	lz, _ := examples.Get("lz4")
	cr, _ := examples.Get("crc32c")
	for _, d := range []struct {
		name, file string
		e          examples.Example
	}{{CompressActor, "lz4.wasm", lz}, {ChecksumActor, "crc32c.wasm", cr}} {
		wasm, err := os.ReadFile(filepath.Join(c.WasmDir, d.file))
		if err != nil {
			return w, fmt.Errorf("demo: actor %s: %w (run make actors)", d.name, err)
		}
		if err := w.a.Deploy(ctx, w.rt, d.name, wasm, actors.DeployOptions{Side: side, StateSize: uint32(d.e.StateSize),
			Arg: d.e.Arg, Trusted: true}); err != nil {
			return w, fmt.Errorf("demo: deploying %s: %w", d.name, err)
		}
	}
	// Warm up: one request per actor, so the owning side has instantiated
	// it before the clock starts.
	cl := actors.NewClient(w.a, w.me)
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := cl.Call(wctx, CompressActor, []byte("cwarm up")); err != nil {
		return w, fmt.Errorf("demo: warming up %s: %w: %s", CompressActor, err, w.childOutput())
	}
	if _, err := cl.Call(wctx, ChecksumActor, []byte("warm up")); err != nil {
		return w, fmt.Errorf("demo: warming up %s: %w: %s", ChecksumActor, err, w.childOutput())
	}
	for _, a := range (procExecutor{w: w}).Actors() {
		if actors.Side(a.Side) != side {
			return w, fmt.Errorf("demo: actor %s runs on the %v side after warm-up, want %v", a.ID, a.Side, side)
		}
	}
	return w, nil
}

func (w *procWorld) childOutput() string {
	s := ""
	for i, o := range w.outs {
		if out := o.String(); out != "" {
			s += fmt.Sprintf("[child %d] %s ", i, out)
		}
	}
	return s
}

func (w *procWorld) start() time.Time {
	now := time.Now()
	w.r.Store(w.demoOff+dwGo, uint64(now.UnixNano()))
	return now
}

// stop tells every child to finish and waits for them.
func (w *procWorld) stop() error {
	if w.r == nil {
		return nil
	}
	w.r.Store(w.demoOff+dwStop, 1)
	var errs []error
	done := make(chan error, len(w.children))
	for _, c := range w.children {
		go func() { done <- c.Wait() }()
	}
	timeout := time.After(30 * time.Second)
	for range w.children {
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-timeout:
			for _, c := range w.children {
				_ = c.Process.Kill()
			}
			errs = append(errs, errors.New("children did not stop within 30s; killed"))
			return fmt.Errorf("demo: %w: %s", errors.Join(errs...), w.childOutput())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo: child processes failed: %w: %s", errors.Join(errs...), w.childOutput())
	}
	return nil
}

func (w *procWorld) close() {
	for _, c := range w.children {
		if c.ProcessState == nil && c.Process != nil {
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
	}
	if w.rt != nil {
		w.rt.Close(context.Background())
	}
	if w.me != nil {
		w.me.Leave()
	}
	if w.r != nil {
		w.r.Close()
		os.Remove(w.c.RegionPath)
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
}

// counters sums the writers' counters.
func (w *procWorld) counters() (bytesIn, bytesOut, writes uint64) {
	for i := 0; i < w.c.Writers; i++ {
		o := w.demoOff + dwWriters + uint64(i)*32
		bytesIn += w.r.Load(o)
		bytesOut += w.r.Load(o + 8)
		writes += w.r.Load(o + 16)
	}
	return
}

// procExecutor moves actors with Arena.Migrate and reports them from
// Arena.Status; requests are submitted by the writer processes.
type procExecutor struct{ w *procWorld }

func (p procExecutor) Do(context.Context, string, []byte) ([]byte, error) {
	return nil, errors.New("demo: requests are submitted by the writer processes")
}

func (p procExecutor) Move(ctx context.Context, actor string, to scheduler.Side) (time.Duration, error) {
	before := p.info(actor)
	if err := p.w.a.Migrate(ctx, actor, actors.Side(to)); err != nil {
		return 0, err
	}
	// The new side records the blackout when it serves its first request
	// (or finds the ring empty).
	for i := 0; i < 200; i++ {
		if in := p.info(actor); in.LastBlackNS != before.LastBlackNS && in.LastBlackNS != 0 {
			return time.Duration(in.LastBlackNS), nil
		}
		time.Sleep(time.Millisecond)
	}
	return time.Duration(p.info(actor).LastBlackNS), nil
}

func (p procExecutor) info(actor string) actors.ActorInfo {
	infos, _ := p.w.a.Status()
	for _, in := range infos {
		if in.Name == actor {
			return in
		}
	}
	return actors.ActorInfo{}
}

func (p procExecutor) Actors() []scheduler.Actor {
	infos, _ := p.w.a.Status()
	var out []scheduler.Actor
	for _, in := range infos {
		side := scheduler.Host
		if in.Side == actors.Device.String() {
			side = scheduler.Device
		}
		out = append(out, scheduler.Actor{ID: in.Name, Side: side, QueueDepth: int(in.QueueDepth),
			MigrationCost: time.Duration(in.LastBlackNS)})
	}
	return out
}

func (p procExecutor) Busy() (time.Duration, time.Duration) {
	return time.Duration(p.w.r.Load(p.w.demoOff + dwHostBusy)), time.Duration(p.w.r.Load(p.w.demoOff + dwDevBusy))
}

func (p procExecutor) Close() error { return nil }

// ---- child processes ----

// RunChild runs one child role of the multi-process demo.
func RunChild(ctx context.Context, o Options) error {
	dbg := func(f string, a ...any) {
		if os.Getenv("WIO_DEMO_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, o.Role+": "+f+"\n", a...)
		}
	}
	dbg("start %v", os.Args)
	r, err := cxl.Open(o.Region, cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return err
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return err
	}
	me, err := ht.Join(cxl.JoinOptions{Name: "wio-demo-" + o.Role})
	if err != nil {
		return err
	}
	defer me.Leave()
	dbg("joined slot %d", me.Slot())
	a, err := actors.OpenArena(r, h, ht, nil)
	if err != nil {
		return err
	}
	dbg("arena open")
	de, err := h.Extent(demoExtent)
	if err != nil {
		return err
	}
	te, err := h.Extent(telExtent)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Stop when the orchestrator says so.
	go func() {
		for ctx.Err() == nil && r.Load(de.Off+dwStop) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	waitGo := func() (time.Time, error) {
		for {
			if v := r.Load(de.Off + dwGo); v != 0 {
				return time.Unix(0, int64(v)), nil
			}
			if err := sleepCtx(ctx, time.Millisecond); err != nil {
				return time.Time{}, err
			}
		}
	}
	capTrace, err := decodeCap(o.Cap)
	if err != nil {
		return err
	}
	switch o.Role {
	case RoleDevice:
		p, err := device.ProfileByName(o.Profile)
		if err != nil {
			return err
		}
		p.Units = 1
		rt, err := actors.NewRuntime(ctx, actors.RuntimeConfig{CacheDir: o.Cache})
		if err != nil {
			return err
		}
		defer rt.Close(context.Background())
		var devMu sync.Mutex
		var dev *device.Device
		getDev := func() *device.Device { devMu.Lock(); defer devMu.Unlock(); return dev }
		n, err := actors.NewNode(a, me, actors.Device, rt, actors.NodeOptions{Exec: func(ctx context.Context, call func() error) error {
			d := getDev()
			if d == nil {
				return call()
			}
			st, err := d.Exec(ctx, call)
			r.Add(de.Off+dwDevBusy, uint64(st.Dilated))
			return err
		}})
		if err != nil {
			return err
		}
		errc := make(chan error, 1)
		go func() { errc <- n.Run(ctx) }()
		start, err := waitGo()
		if err != nil {
			return <-errc
		}
		_ = start
		d, err := device.New(p, device.Options{Compression: o.Compression, NominalIOBps: o.NominalBps, StartTempC: o.StartTemp})
		if err != nil {
			return err
		}
		devMu.Lock()
		dev = d
		devMu.Unlock()
		tel, err := device.NewTelemetry(r, te.Off)
		if err != nil {
			return err
		}
		var lastOut uint64
		for ctx.Err() == nil {
			var out uint64
			for i := 0; i < 16; i++ {
				out += r.Load(de.Off + dwWriters + uint64(i)*32 + 8)
			}
			d.AddIO(int64(out - lastOut))
			lastOut = out
			tel.PublishSnapshot(d.Snapshot())
			_ = sleepCtx(ctx, 20*time.Millisecond)
		}
		return ignoreCancel(<-errc)
	case RoleHost:
		rt, err := actors.NewRuntime(ctx, actors.RuntimeConfig{CacheDir: o.Cache})
		if err != nil {
			return err
		}
		defer rt.Close(context.Background())
		var capMu sync.Mutex
		var hc *sensor.HostCap
		units := make(chan struct{}, max(1, o.HostCores))
		n, err := actors.NewNode(a, me, actors.Host, rt, actors.NodeOptions{Exec: func(ctx context.Context, call func() error) error {
			select {
			case units <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-units }()
			capMu.Lock()
			speed := 1.0
			if hc != nil {
				speed = hc.Speed()
			}
			capMu.Unlock()
			t0 := time.Now()
			err := call()
			m := time.Since(t0)
			_ = device.WallClock{}.Sleep(ctx, time.Duration(float64(m)/speed)-m)
			r.Add(de.Off+dwHostBusy, uint64(time.Since(t0)))
			return err
		}})
		if err != nil {
			return err
		}
		errc := make(chan error, 1)
		go func() { errc <- n.Run(ctx) }()
		start, err := waitGo()
		if err != nil {
			return ignoreCancel(<-errc)
		}
		h2, err := sensor.NewHostCap(capTrace, sensor.HostCapOptions{DemandW: o.HostDemand, Compression: o.Compression,
			Now: func() time.Time { return time.Now() }})
		if err != nil {
			return err
		}
		_ = start
		capMu.Lock()
		hc = h2
		capMu.Unlock()
		return ignoreCancel(<-errc)
	case RoleWriter:
		c := actors.NewClient(a, me)
		f, err := os.Create(o.LatFile)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		lz, _ := examples.Get("lz4")
		rng := rand.New(rand.NewPCG(1, uint64(o.WriterID)+100))
		blocks := make([][]byte, 16)
		for i := range blocks {
			blocks[i] = lz.Gen(rng, o.Block)
		}
		if _, err := waitGo(); err != nil {
			return nil
		}
		off := de.Off + dwWriters + uint64(o.WriterID)*32
		for n := 0; ctx.Err() == nil; n++ {
			block := blocks[n%len(blocks)]
			t0 := time.Now()
			comp, err := c.Call(ctx, CompressActor, block)
			if err == nil {
				_, err = c.Call(ctx, ChecksumActor, comp)
			}
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				fmt.Fprintf(bw, "E,%d,%q\n", time.Now().UnixNano(), err.Error())
				continue
			}
			fmt.Fprintf(bw, "%d,%d,%d\n", time.Now().UnixNano(), time.Since(t0).Nanoseconds(), len(block))
			r.Add(off, uint64(len(block)))
			r.Add(off+8, uint64(len(comp)))
			r.Add(off+16, 1)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return f.Close()
	}
	return fmt.Errorf("demo: unknown role %q", o.Role)
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// latency is one completed write read back from a writer's file.
type latency struct {
	at    time.Time
	ms    float64
	bytes int64
}

func readLatencies(path string) ([]latency, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var out []latency
	errs := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var at, ns, b int64
		line := sc.Text()
		if len(line) > 0 && line[0] == 'E' {
			errs++
			continue
		}
		if _, err := fmt.Sscanf(line, "%d,%d,%d", &at, &ns, &b); err != nil {
			return nil, errs, fmt.Errorf("demo: %s: bad line %q", path, line)
		}
		out = append(out, latency{at: time.Unix(0, at), ms: float64(ns) / 1e6, bytes: b})
	}
	return out, errs, sc.Err()
}

type bytesReaderT struct {
	b []byte
	i int
}

func (r *bytesReaderT) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &bytesReaderT{b: b} }

func sleepCtx(ctx context.Context, d time.Duration) error {
	return device.WallClock{}.Sleep(ctx, d)
}

// runPolicyProcs is runPolicy across processes.
func runPolicyProcs(ctx context.Context, c Config, policy string, nominal float64) (Result, error) {
	res := Result{Policy: policy}
	w, err := startProcWorld(ctx, c, policy, nominal)
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	if err != nil {
		return res, err
	}
	ex := procExecutor{w: w}
	host, err := sensor.NewHostCap(c.HostCap, sensor.HostCapOptions{DemandW: c.HostDemandW, Compression: c.Compression})
	if err != nil {
		return res, err
	}
	wallDur := c.wall(c.Duration)
	began := w.start()
	rctx, cancel := context.WithDeadline(ctx, began.Add(wallDur))
	defer cancel()

	var moves moveLog
	var wg sync.WaitGroup
	if policy == Adaptive {
		src := &signalSource{region: w.r, off: w.telOff, host: host, ex: ex}
		if err := startAdaptive(rctx, &wg, c, src, ex, began, &moves); err != nil {
			return res, err
		}
	}

	tick := time.NewTicker(c.Sample)
	defer tick.Stop()
	lastPrint := time.Time{}
	lastSample := began
	var lastIn uint64
	var throttledS float64
	var lastT device.Sample
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
		t, err := device.ReadTelemetry(w.r, w.telOff)
		if err != nil {
			t = lastT // not yet published, or a torn read: keep the last
		}
		lastT = t
		hs := host.State()
		in, _, writes := w.counters()
		dt := now.Sub(lastSample).Seconds()
		mibs := float64(in-lastIn) / dt / (1 << 20)
		lastIn, lastSample = in, now
		if t.Throttled {
			throttledS += dt * c.Compression
		}
		onDev := 0
		for _, a := range ex.Actors() {
			if a.Side == scheduler.Device {
				onDev++
			}
		}
		pt := Point{T: modelSince(began, c), TempC: t.TempC, Factor: t.Factor, PowerW: t.PowerW, HostSpeed: hs.Speed,
			OnDevice: onDev, MiBs: mibs, Throttled: t.Throttled, WritesDone: int(writes)}
		res.Series = append(res.Series, pt)
		res.MaxTempC = max(res.MaxTempC, t.TempC)
		res.ThrottleEvents = t.Events
		if os.Getenv("WIO_DEMO_DEBUG") != "" && now.Sub(lastPrint) >= time.Second {
			fmt.Fprintf(c.Progress, "children: %s\n", w.childOutput())
		}
		if now.Sub(lastPrint) >= time.Second {
			lastPrint = now
			fmt.Fprintf(c.Progress, "%-13s model %5.1f min  T %5.1f°C  factor %.2f  host speed %.2f  actors on device %d/2  %7.1f MiB/s  writes %d\n",
				policy, pt.T/60, pt.TempC, pt.Factor, pt.HostSpeed, onDev, mibs, writes)
		}
	}
	cancel()
	wg.Wait()
	wall := time.Since(began)
	hb, db := ex.Busy()
	if err := w.stop(); err != nil {
		return res, err
	}
	// Latencies from the writers' files: only writes completed inside the run.
	var all []latency
	for _, f := range w.latFiles {
		ls, errs, err := readLatencies(f)
		if err != nil {
			return res, err
		}
		res.Errors += errs
		for _, l := range ls {
			if !l.at.After(began.Add(wallDur)) {
				all = append(all, l)
			}
		}
	}
	// Per-sample p99 from completion times.
	for i := range res.Series {
		lo := began.Add(time.Duration((res.Series[i].T/c.Compression - c.Sample.Seconds()) * float64(time.Second)))
		hi := began.Add(time.Duration(res.Series[i].T / c.Compression * float64(time.Second)))
		var win []float64
		for _, l := range all {
			if l.at.After(lo) && !l.at.After(hi) {
				win = append(win, l.ms)
			}
		}
		res.Series[i].P99Ms = percentile(win, 0.99)
	}
	var ms []float64
	for _, l := range all {
		ms = append(ms, l.ms)
		res.Bytes += l.bytes
	}
	fillResult(&res, ms, wall, c, hb, db, throttledS)
	res.Moves = moves.list()
	for _, m := range res.Moves {
		if m.Error == "" {
			res.Migrations++
			res.BlackoutTotalMs += m.BlackoutMs
			res.BlackoutMaxMs = max(res.BlackoutMaxMs, m.BlackoutMs)
		}
	}
	infos, _ := w.a.Status()
	for _, in := range infos {
		res.Takeovers += int(in.Takeovers)
	}
	if res.Writes == 0 {
		return res, fmt.Errorf("no write completed: %s", w.childOutput())
	}
	return res, nil
}
