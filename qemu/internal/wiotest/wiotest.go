// Package wiotest is the testbed's wio check: a storage actor served by a
// host-side runtime in one VM and a device-side runtime in another, migrated
// between the VMs by drain-and-switch while clients in every VM stream
// requests to it, then checked for exactly-once completion in per-client
// order against the actor's native twin.
//
// The host formats the pool (a cxl header with an "actors" extent and a
// small "testbed" extent for barriers and the migration turn) and deploys
// the actor on the host side (Format). Every VM then runs Run: VM 0 the
// host-side runtime (actors.Node, side host), VM 1 the device-side runtime
// (side device), further VMs only a client. Each VM's client sends
// Params.Requests requests (Request(slot, k)) with up to Params.Depth in
// flight; meanwhile the two side VMs take turns pulling the actor to their
// own side (actors.Arena.Migrate from the VM that becomes the target), spread
// over the stream, Params.Migrations times in all. Each VM reports every
// completion: request number, ring sequence number and a hash of the output.
// After power-off the host checks the union of the reports and the arena
// (Check).
package wiotest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/cxl"
)

// GuestDir is where the initramfs carries the example actors' .wasm files.
const GuestDir = "/usr/share/daxwio/actors"

// Actors are the example actors the initramfs may carry: Go wasip1
// reactors, built by `make actors` with the Go toolchain alone (no wabt).
var Actors = []string{"crc32c", "lz4"}

// WasmPath is the guest path of actor name's module.
func WasmPath(name string) string { return path.Join(GuestDir, name+".wasm") }

// Extent is the region extent with the check's words.
const Extent = "testbed"

// Magic marks a pool prepared for the check ("DXWWIO01").
const Magic = 0x31304f4957_575844

const (
	offMagic   = 0
	offTurn    = 64   // migrations done so far; the side whose turn it is advances it
	offBarrier = 4096 // + 8*MaxVMs*n + 8*slot
	nBarriers  = 2
	extentSize = 16 << 10
	// MaxVMs bounds the participants.
	MaxVMs = 16
)

// Lease is the host-table lease: guest clocks come from the emulated RTC
// and drift under TCG, and a vCPU thread of a loaded host can be starved
// for seconds; a short lease would let one VM fence a busy peer.
const Lease = 60 * time.Second

// HoleTimeout is how long a side waits for a claimed ring slot to be
// written before abandoning it. An abandoned slot completes as a hole
// (ErrAbandoned), which this check would count as a lost request, so it is
// far longer than any stall of a client's vCPU.
const HoleTimeout = 60 * time.Second

// Params size one run.
type Params struct {
	VMs        int    `json:"vms"`
	Actor      string `json:"actor"`      // example actor name (crc32c: every output depends on every earlier request)
	Requests   int    `json:"requests"`   // per VM (one client per VM)
	Depth      int    `json:"depth"`      // requests in flight per client
	Migrations int    `json:"migrations"` // drain-and-switch migrations in all, alternating device/host
	Trusted    bool   `json:"trusted"`    // deploy without per-call deadlines
}

// Validate reports what is wrong with p.
func (p Params) Validate() error {
	switch {
	case p.VMs < 2 || p.VMs > MaxVMs:
		return fmt.Errorf("wiotest: %d VMs: want 2..%d (one host side, one device side, more VMs only submit)", p.VMs, MaxVMs)
	case p.Requests < 1 || p.Depth < 1 || p.Migrations < 0:
		return fmt.Errorf("wiotest: bad params %+v: want requests >= 1, depth >= 1, migrations >= 0", p)
	case p.Requests < 2*(p.Migrations+1):
		return fmt.Errorf("wiotest: %d requests per client for %d migrations: want at least 2*(migrations+1), so that every stretch between two migrations has requests in it", p.Requests, p.Migrations)
	}
	if _, ok := examples.Get(p.Actor); !ok {
		return fmt.Errorf("wiotest: %q is not an example actor", p.Actor)
	}
	return nil
}

// Due is the number of requests per client after which migration m is
// due: the migrations split each client's stream into Migrations+1
// stretches.
func (p Params) Due(m int) int { return (m + 1) * p.Requests / (p.Migrations + 1) }

// Boot renders p as role parameters for the kernel command line.
func (p Params) Boot() map[string]string {
	m := map[string]string{"actor": p.Actor, "requests": strconv.Itoa(p.Requests),
		"depth": strconv.Itoa(p.Depth), "migrations": strconv.Itoa(p.Migrations)}
	if p.Trusted {
		m["trusted"] = "1"
	}
	return m
}

// ParseBoot is the inverse of Boot.
func ParseBoot(vms int, m map[string]string) (Params, error) {
	p := Params{VMs: vms, Actor: m["actor"], Trusted: m["trusted"] == "1"}
	for _, f := range []struct {
		key string
		dst *int
	}{{"requests", &p.Requests}, {"depth", &p.Depth}, {"migrations", &p.Migrations}} {
		v, err := strconv.Atoi(m[f.key])
		if err != nil {
			return p, fmt.Errorf("wiotest: parameter %s=%q: %w", f.key, m[f.key], err)
		}
		*f.dst = v
	}
	return p, p.Validate()
}

// Role is what VM slot runs: the host-side runtime, the device-side
// runtime, or (slot 2 and up) only a client.
func Role(slot int) string {
	switch slot {
	case 0:
		return "host"
	case 1:
		return "device"
	}
	return "client"
}

// side returns the actors side of a role ("client": ok false).
func side(role string) (actors.Side, bool) {
	s, err := actors.ParseSide(role)
	return s, err == nil
}

// Request is request k of the client in VM slot: a pure function of
// (slot, k), so the host regenerates it for the twin.
func Request(e examples.Example, slot, k int) []byte {
	r := rand.New(rand.NewPCG(uint64(slot)+0x5eed, uint64(k)))
	return e.Gen(r, 1+r.IntN(300))
}

// Hash is how outputs travel in reports: FNV-64a, hex.
func Hash(out []byte) string {
	h := fnv.New64a()
	h.Write(out)
	return hex.EncodeToString(h.Sum(nil))
}

// ArenaOptions are what Format gives the actors extent: small requests,
// a short ring (so the ring wraps many times in a run).
var ArenaOptions = actors.ArenaOptions{MaxActors: 4, Slots: 16, MaxRequest: 4096, MaxState: 64 << 10}

// Format makes a fresh region in r (a host table with Lease, an actors
// extent and the testbed extent), deploys p.Actor from wasm on the host
// side with a runtime built from rtc, and writes the magic.
func Format(ctx context.Context, r *cxl.Region, p Params, wasm []byte, rtc actors.RuntimeConfig) error {
	if err := p.Validate(); err != nil {
		return err
	}
	e, _ := examples.Get(p.Actor)
	if r.Len() < 8<<20 {
		return fmt.Errorf("wiotest: region of %d bytes: want at least 8 MiB", r.Len())
	}
	h, err := cxl.Format(r, cxl.FormatOptions{Lease: Lease, Extents: []cxl.ExtentSpec{
		{Name: actors.ExtentName, Size: r.Len() - 2<<20},
		{Name: Extent, Size: extentSize},
	}})
	if err != nil {
		return fmt.Errorf("wiotest: format: %w", err)
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return fmt.Errorf("wiotest: %w", err)
	}
	ao := ArenaOptions
	a, err := actors.OpenArena(r, h, ht, &ao)
	if err != nil {
		return fmt.Errorf("wiotest: %w", err)
	}
	rt, err := actors.NewRuntime(ctx, rtc)
	if err != nil {
		return fmt.Errorf("wiotest: %w", err)
	}
	defer rt.Close(ctx)
	err = a.Deploy(ctx, rt, p.Actor, wasm, actors.DeployOptions{Side: actors.Host,
		StateSize: uint32(e.StateSize), Arg: e.Arg, Trusted: p.Trusted})
	if err != nil {
		return fmt.Errorf("wiotest: %w", err)
	}
	ext, err := h.Extent(Extent)
	if err != nil {
		return fmt.Errorf("wiotest: %w", err)
	}
	r.Store(ext.Off+offMagic, Magic)
	return r.Persist(0, r.Len())
}

// Completion is one request as its client saw it complete.
type Completion struct {
	K   int    `json:"k"`             // the client's request number
	Seq uint64 `json:"s"`             // the actor's ring sequence number
	Out string `json:"o,omitempty"`   // Hash of the output
	Err string `json:"err,omitempty"` // the request failed
}

// Report is what one VM did.
type Report struct {
	Slot        int          `json:"slot"`
	Role        string       `json:"role"`
	Engine      string       `json:"engine,omitempty"` // wazero's, as chosen for this (virtual) CPU
	Completions []Completion `json:"completions"`

	// Sides only.
	Served       uint64  `json:"served"`                   // requests this side completed (its wio_requests_total)
	FirstSeconds float64 `json:"first_completion_seconds"` // this VM's client: stream start to its first completion (includes the owner's compilation)
	Migrated     int     `json:"migrated"`                 // migrations this VM triggered (to its own side) that succeeded
	Aborted      int     `json:"aborted"`                  // ... that were rolled back (retried)
	MigrationsIn uint64  `json:"migrations_in"`            // handoffs that ended on this side (its wio_migrations_in_total)
	BlackoutsMS  float64 `json:"blackout_mean_ms"`         // mean migration blackout on this side
	BlackoutN    uint64  `json:"blackouts"`

	StreamSeconds float64 `json:"stream_seconds"` // this VM's client, first send to last receive
	PerSec        float64 `json:"requests_per_sec"`
}

// Engine names the engine wazero picks on this machine's CPU: the
// compiler needs SSE4.1 on amd64 (QEMU's default TCG model, qemu64, has
// none, so guests interpret).
func Engine() string {
	if runtime.GOARCH != "amd64" {
		return "auto (" + runtime.GOARCH + ")"
	}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	if strings.Contains(string(b), " sse4_1") {
		return "compiler"
	}
	return "interpreter"
}

// Run is one VM's part. r is the shared region, prepared by Format; rtc
// configures this VM's wasm runtime; log receives the node's ownership
// changes (nil: none).
func Run(ctx context.Context, r *cxl.Region, slot int, p Params, rtc actors.RuntimeConfig, log io.Writer, progress func(string)) (Report, error) {
	role := Role(slot)
	rep := Report{Slot: slot, Role: role, Engine: Engine()}
	if err := p.Validate(); err != nil {
		return rep, err
	}
	if slot < 0 || slot >= p.VMs {
		return rep, fmt.Errorf("wiotest: slot %d of %d VMs", slot, p.VMs)
	}
	e, _ := examples.Get(p.Actor)
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return rep, fmt.Errorf("wiotest: %w", err)
	}
	ext, err := h.Extent(Extent)
	if err != nil {
		return rep, fmt.Errorf("wiotest: %w (was the pool prepared by the testbed?)", err)
	}
	if m := r.Load(ext.Off + offMagic); m != Magic {
		return rep, fmt.Errorf("wiotest: magic %#x, want %#x: the pool was not prepared for the wio check", m, uint64(Magic))
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return rep, fmt.Errorf("wiotest: %w", err)
	}
	host, err := ht.Join(cxl.JoinOptions{Name: fmt.Sprintf("vm%d-%s", slot, role)})
	if err != nil {
		return rep, fmt.Errorf("wiotest: join: %w", err)
	}
	defer host.Leave()
	a, err := actors.OpenArena(r, h, ht, nil)
	if err != nil {
		return rep, fmt.Errorf("wiotest: %w", err)
	}
	if _, err := a.Lookup(p.Actor); err != nil {
		return rep, fmt.Errorf("wiotest: %w", err)
	}
	bar := func(n int) error { return barrier(ctx, r, ext.Off, n, slot, p.VMs) }

	// The side's runtime: serve, follow migrations.
	me, isSide := side(role)
	reg := prometheus.NewRegistry()
	stopNode := func() error { return nil }
	if isSide {
		rt, err := actors.NewRuntime(ctx, rtc)
		if err != nil {
			return rep, fmt.Errorf("wiotest: %w", err)
		}
		defer rt.Close(context.Background())
		n, err := actors.NewNode(a, host, me, rt, actors.NodeOptions{Registerer: reg, Log: log, HoleTimeout: HoleTimeout})
		if err != nil {
			return rep, fmt.Errorf("wiotest: %w", err)
		}
		// Both sides register (NewNode) before either serves: a side that
		// found the other unregistered would take the actor over as if
		// its owner had died.
		if err := bar(0); err != nil {
			return rep, err
		}
		nctx, cancel := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- n.Run(nctx) }()
		stopped := false
		stopNode = func() error {
			if stopped {
				return nil
			}
			stopped = true
			cancel()
			return <-ran
		}
		defer stopNode()
		// Both sides instantiate the actor in the background as soon as
		// they discover it (a migration then costs a switch, not a
		// compilation); a request or a handoff that comes first waits.
		// The actors package exports no readiness signal, so the stream
		// starts at once: the first requests and migrations include the
		// guest's compilation.
		progress(fmt.Sprintf("phase ready: %s side serving (wazero %s)", role, rep.Engine))
	} else if err := bar(0); err != nil {
		return rep, err
	}
	progress("phase stream: every VM arrived")

	// The stream, and (on the sides) the migrations, together.
	var wg sync.WaitGroup
	var merr error
	if isSide {
		wg.Add(1)
		go func() {
			defer wg.Done()
			merr = migrate(ctx, r, ext.Off, a, p, me, &rep, progress)
		}()
	}
	t0 := time.Now()
	cerr := stream(ctx, r, ext.Off, a, host, e, slot, p, &rep, t0)
	rep.StreamSeconds = time.Since(t0).Seconds()
	if rep.StreamSeconds > 0 {
		rep.PerSec = float64(len(rep.Completions)) / rep.StreamSeconds
	}
	wg.Wait()
	if err := errors.Join(cerr, merr); err != nil {
		return rep, err
	}
	progress(fmt.Sprintf("phase done: %d requests in %.1fs (%.0f/s), %d migrations triggered here (%d aborted and retried)",
		len(rep.Completions), rep.StreamSeconds, rep.PerSec, rep.Migrated, rep.Aborted))
	// No side stops before every client has everything.
	if err := bar(1); err != nil {
		return rep, err
	}
	if isSide {
		if err := stopNode(); err != nil {
			return rep, fmt.Errorf("wiotest: %s side: %w", role, err)
		}
		rep.Served = uint64(metricSum(reg, "wio_requests_total"))
		rep.MigrationsIn = uint64(metricSum(reg, "wio_migrations_in_total"))
		if n, sum := histogram(reg, "wio_migration_blackout_seconds"); n > 0 {
			rep.BlackoutN, rep.BlackoutsMS = n, sum/float64(n)*1e3
		}
	}
	return rep, nil
}

// stream sends p.Requests requests with up to p.Depth in flight and
// records every completion in order.
//
// The stream cannot outrun the migrations: before migration m has
// happened, a client sends only its requests 0..Due(m) (and first takes
// every output it is owed, so that it holds no ring slot while it waits).
// Migration m is triggered once VMs*Due(m) requests have completed, so it
// always comes, and every stretch between two migrations has requests in
// it, whatever the relative speed of the VMs.
func stream(ctx context.Context, r *cxl.Region, ext uint64, a *actors.Arena, host *cxl.Host, e examples.Example, slot int, p Params, rep *Report, t0 time.Time) error {
	c := actors.NewClient(a, host)
	type pending struct {
		k int
		t actors.Ticket
	}
	var q []pending
	var out []byte
	recv := func() error {
		pd := q[0]
		q = q[1:]
		var err error
		out, err = c.RecvAppend(ctx, pd.t, out[:0])
		cp := Completion{K: pd.k, Seq: pd.t.Seq}
		switch {
		case err == nil:
			cp.Out = Hash(out)
		case actors.IsRequestError(err):
			cp.Err = err.Error() // completed, with an error: the host fails it
		default:
			return fmt.Errorf("wiotest: client %d request %d: %w", slot, pd.k, err)
		}
		if len(rep.Completions) == 0 {
			rep.FirstSeconds = time.Since(t0).Seconds()
		}
		rep.Completions = append(rep.Completions, cp)
		return nil
	}
	for k := 0; k < p.Requests; k++ {
		for {
			m := r.Load(ext + offTurn)
			if m >= uint64(p.Migrations) || k <= p.Due(int(m)) {
				break
			}
			for len(q) > 0 {
				if err := recv(); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wiotest: client %d request %d: waiting for migration %d: %w", slot, k, m, ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
		t, err := c.Send(ctx, p.Actor, Request(e, slot, k))
		if err != nil {
			return fmt.Errorf("wiotest: client %d request %d: %w", slot, k, err)
		}
		q = append(q, pending{k, t})
		if len(q) >= p.Depth {
			if err := recv(); err != nil {
				return err
			}
		}
	}
	for len(q) > 0 {
		if err := recv(); err != nil {
			return err
		}
	}
	return nil
}

// migrate takes this side's turns: migration m (0-based) goes to the
// device side when m is even and to the host side when odd (the actor is
// deployed on the host), triggered by the VM that becomes the target once
// VMs*Due(m) requests have completed (the clients wait for it before going
// further: see stream). Every side VM follows the turn word, so exactly
// Migrations succeed (an aborted one is retried).
func migrate(ctx context.Context, r *cxl.Region, ext uint64, a *actors.Arena, p Params, me actors.Side, rep *Report, progress func(string)) error {
	total := uint64(p.VMs * p.Requests)
	for {
		t := r.Load(ext + offTurn)
		if t >= uint64(p.Migrations) {
			return nil
		}
		to := actors.Device
		if t%2 == 1 {
			to = actors.Host
		}
		threshold := uint64(p.VMs * p.Due(int(t)))
		if to != me || completed(a, p.Actor) < threshold {
			select {
			case <-ctx.Done():
				return fmt.Errorf("wiotest: %v side: waiting for migration turn %d (%d of %d requests completed): %w", me, t, completed(a, p.Actor), total, ctx.Err())
			case <-time.After(time.Millisecond):
			}
			continue
		}
		if in, ok := info(a, p.Actor); ok && in.Side == me.String() {
			// The turns alternate, so the actor must be on the other
			// side: only a takeover can have moved it here.
			return fmt.Errorf("wiotest: before migration %d the actor is already on the %v side (%s, %d takeovers)", t, me, in.Owner, in.Takeovers)
		}
		err := a.Migrate(ctx, p.Actor, me)
		switch {
		case errors.Is(err, actors.ErrAborted) || errors.Is(err, actors.ErrTargetDown):
			rep.Aborted++
			progress(fmt.Sprintf("migration %d to %v: %v (retrying)", t, me, err))
			continue
		case err != nil:
			return fmt.Errorf("wiotest: migration %d to %v: %w", t, me, err)
		}
		rep.Migrated++
		if !r.CAS(ext+offTurn, t, t+1) {
			return fmt.Errorf("wiotest: migration turn word moved under %v side at %d", me, t)
		}
	}
}

func completed(a *actors.Arena, name string) uint64 {
	in, _ := info(a, name)
	return in.Completed
}

func info(a *actors.Arena, name string) (actors.ActorInfo, bool) {
	infos, _ := a.Status()
	for _, in := range infos {
		if in.Name == name {
			return in, true
		}
	}
	return actors.ActorInfo{}, false
}

func barrier(ctx context.Context, r *cxl.Region, ext uint64, n, slot, vms int) error {
	base := ext + offBarrier + uint64(8*MaxVMs*n)
	r.Store(base+8*uint64(slot), 1)
	for i := 0; i < vms; i++ {
		for d := 50 * time.Microsecond; r.Load(base+8*uint64(i)) == 0; {
			select {
			case <-ctx.Done():
				return fmt.Errorf("wiotest: barrier %d: waiting for VM %d of %d: %w", n, i, vms, ctx.Err())
			case <-time.After(d):
			}
			if d < 5*time.Millisecond {
				d *= 2
			}
		}
	}
	return nil
}

// metricSum adds up every sample of a counter or gauge family.
func metricSum(g prometheus.Gatherer, name string) float64 {
	mfs, _ := g.Gather()
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s += m.GetCounter().GetValue() + m.GetGauge().GetValue() // nil-safe: one of them is set
		}
	}
	return s
}

// histogram returns the sample count and sum of a histogram family.
func histogram(g prometheus.Gatherer, name string) (uint64, float64) {
	mfs, _ := g.Gather()
	var n uint64
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				n += h.GetSampleCount()
				s += h.GetSampleSum()
			}
		}
	}
	return n, s
}

// Arena is what the host reads back from the pool after power-off.
type Arena struct {
	Info  actors.ActorInfo
	State []byte
}

// ReadArena opens the arena in r (read-only use) and returns actor name's
// status and published state.
func ReadArena(r *cxl.Region, name string) (Arena, error) {
	var out Arena
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return out, fmt.Errorf("wiotest: %w", err)
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return out, fmt.Errorf("wiotest: %w", err)
	}
	a, err := actors.OpenArena(r, h, ht, nil)
	if err != nil {
		return out, fmt.Errorf("wiotest: %w", err)
	}
	infos, _ := a.Status()
	found := false
	for _, in := range infos {
		if in.Name == name {
			out.Info, found = in, true
		}
	}
	if !found {
		return out, fmt.Errorf("wiotest: actor %s is not in the arena", name)
	}
	if out.State, err = a.State(name); err != nil {
		return out, fmt.Errorf("wiotest: %w", err)
	}
	return out, nil
}

// Verdict is what Check found.
type Verdict struct {
	Requests        int               `json:"requests"`          // every VM's, together
	Completed       uint64            `json:"completed"`         // the actor's completion count in the arena
	Lost            int               `json:"lost"`              // sequence numbers 0..Requests-1 that no client received
	Duplicated      int               `json:"duplicated"`        // sequence numbers received twice
	OutOfOrder      int               `json:"out_of_order"`      // completions whose sequence number is not above the same client's previous one
	Failed          int               `json:"failed"`            // completions with an error
	Mismatched      int               `json:"mismatched"`        // outputs that differ from the native twin replayed in sequence order
	StateEqual      bool              `json:"state_equals_twin"` // the arena's published state equals the twin's final state
	Migrations      int               `json:"migrations"`        // triggered by the VMs and succeeded
	Aborted         int               `json:"aborted"`
	ArenaMigrations uint64            `json:"arena_migrations"` // the actor's migration counter (includes handoffs at shutdown)
	Takeovers       uint64            `json:"takeovers"`        // must be 0: no side died
	ServedBySide    map[string]uint64 `json:"served_by_side"`
	ExactlyOnce     bool              `json:"exactly_once"`
	BlackoutMeanMS  float64           `json:"blackout_mean_ms"`
}

// ErrExactlyOnce marks a violation of exactly-once or order.
var ErrExactlyOnce = errors.New("wiotest: exactly-once violated")

// Check validates every VM's report against the arena read back after
// power-off: each request of each client completed exactly once, the
// sequence numbers are exactly 0..total-1, each client's in increasing
// order, each output equals the native twin's replayed in sequence order,
// the arena's state equals the twin's, both sides served and the planned
// migrations happened.
func Check(p Params, reps []Report, ar Arena) (Verdict, error) {
	v := Verdict{Requests: p.VMs * p.Requests, Completed: ar.Info.Completed, ArenaMigrations: ar.Info.Migrations, Takeovers: ar.Info.Takeovers,
		ServedBySide: map[string]uint64{}}
	if err := p.Validate(); err != nil {
		return v, err
	}
	e, _ := examples.Get(p.Actor)
	var errs []error
	bad := func(format string, a ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	type who struct{ slot, k int }
	bySeq := map[uint64]who{}
	outs := map[uint64]string{}
	seen := map[int]bool{}
	var blackN uint64
	var blackSum float64
	for _, rep := range reps {
		if rep.Slot < 0 || rep.Slot >= p.VMs || seen[rep.Slot] {
			bad("report of slot %d: unexpected or repeated", rep.Slot)
			continue
		}
		seen[rep.Slot] = true
		if rep.Role == "host" || rep.Role == "device" {
			v.ServedBySide[rep.Role] += rep.Served
		}
		v.Migrations += rep.Migrated
		v.Aborted += rep.Aborted
		blackN += rep.BlackoutN
		blackSum += rep.BlackoutsMS * float64(rep.BlackoutN)
		if len(rep.Completions) != p.Requests {
			bad("vm%d reported %d completions, want %d", rep.Slot, len(rep.Completions), p.Requests)
		}
		var last int64 = -1
		for i, c := range rep.Completions {
			if c.K != i {
				bad("vm%d: completion %d is of request %d (the client receives in request order)", rep.Slot, i, c.K)
			}
			if int64(c.Seq) <= last {
				v.OutOfOrder++
				bad("vm%d: request %d got sequence number %d after %d: out of order", rep.Slot, c.K, c.Seq, last)
			}
			last = int64(c.Seq)
			if c.Err != "" {
				v.Failed++
				bad("vm%d: request %d failed: %s", rep.Slot, c.K, c.Err)
			}
			if prev, dup := bySeq[c.Seq]; dup {
				v.Duplicated++
				bad("sequence number %d completed twice: vm%d request %d and vm%d request %d", c.Seq, prev.slot, prev.k, rep.Slot, c.K)
				continue
			}
			bySeq[c.Seq] = who{rep.Slot, c.K}
			outs[c.Seq] = c.Out
		}
	}
	for s := 0; s < p.VMs; s++ {
		if !seen[s] {
			bad("no report from vm%d", s)
		}
	}
	if blackN > 0 {
		v.BlackoutMeanMS = blackSum / float64(blackN)
	}
	total := uint64(v.Requests)
	if v.Completed != total {
		bad("the arena counts %d completions, want %d", v.Completed, total)
	}
	if ar.Info.Submitted != total {
		bad("the arena handed out %d sequence numbers, want %d (a hole or a resubmission)", ar.Info.Submitted, total)
	}
	// Replay the twin in sequence order: the actor's outputs depend on the
	// state every earlier request left, so a lost, doubled or reordered
	// request shows in the outputs too.
	twin, err := abi.NewTwin(e.New(), e.StateSize, e.Arg)
	if err != nil {
		return v, fmt.Errorf("wiotest: twin: %w", err)
	}
	seqs := make([]uint64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for s := uint64(0); s < total; s++ {
		w, ok := bySeq[s]
		if !ok {
			v.Lost++
			bad("sequence number %d: no client received it", s)
			continue
		}
		want, err := twin.Handle(Request(e, w.slot, w.k))
		if err != nil {
			return v, fmt.Errorf("wiotest: twin, request %d of vm%d: %w", w.k, w.slot, err)
		}
		if outs[s] != Hash(want) && outs[s] != "" {
			v.Mismatched++
			bad("sequence number %d (vm%d request %d): output %s, the twin's %s", s, w.slot, w.k, outs[s], Hash(want))
		}
	}
	if n := len(seqs); n > 0 && seqs[n-1] >= total {
		bad("sequence numbers up to %d handed out for %d requests", seqs[n-1], total)
	}
	v.StateEqual = string(ar.State) == string(twin.State)
	if !v.StateEqual {
		bad("the arena's state %x differs from the twin's %x", ar.State, []byte(twin.State))
	}
	v.ExactlyOnce = len(errs) == 0
	if !v.ExactlyOnce {
		return v, fmt.Errorf("%w:\n  %w", ErrExactlyOnce, errors.Join(errs...))
	}
	// Beyond exactly-once: the migrations must really have happened, and
	// both sides must have served.
	if v.Migrations != p.Migrations {
		return v, fmt.Errorf("wiotest: %d migrations succeeded, %d planned", v.Migrations, p.Migrations)
	}
	if v.ArenaMigrations < uint64(p.Migrations) {
		return v, fmt.Errorf("wiotest: the arena counts %d migrations, the VMs report %d", v.ArenaMigrations, p.Migrations)
	}
	if v.Takeovers != 0 {
		return v, fmt.Errorf("wiotest: %d takeovers: a side was declared dead (lease %v; guest clocks apart?)", v.Takeovers, Lease)
	}
	if got := v.ServedBySide["host"] + v.ServedBySide["device"]; got != total {
		return v, fmt.Errorf("wiotest: the sides served %d requests (host %d, device %d), want %d", got, v.ServedBySide["host"], v.ServedBySide["device"], total)
	}
	if p.Migrations > 0 && (v.ServedBySide["host"] == 0 || v.ServedBySide["device"] == 0) {
		return v, fmt.Errorf("wiotest: one side served nothing (host %d, device %d) although the actor migrated", v.ServedBySide["host"], v.ServedBySide["device"])
	}
	return v, nil
}
