package actors

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/cxl"
)

var soak = flag.Bool("wio.soak", false, "run the 1,000,000-request / 10,000-migration exactly-once soak")

// Child roles, re-executed from this test binary (see TestMain).
func childMain(role string) int {
	var err error
	switch role {
	case "daemon":
		err = childDaemon()
	case "client":
		err = childClient()
	default:
		err = fmt.Errorf("unknown WIO_TEST_ROLE %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %d: %v\n", role, os.Getpid(), err)
		return 1
	}
	return 0
}

func openChild(name string) (*cxl.Region, *cxl.Host, *Arena, error) {
	r, err := cxl.Open(os.Getenv("WIO_REGION"), cxl.OpenOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return nil, nil, nil, err
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return nil, nil, nil, err
	}
	host, err := ht.Join(cxl.JoinOptions{Name: name})
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := OpenArena(r, h, ht, nil)
	return r, host, a, err
}

func childDaemon() error {
	side, err := ParseSide(os.Getenv("WIO_SIDE"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rt, err := NewRuntime(ctx, RuntimeConfig{CacheDir: os.Getenv("WIO_CACHE")})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		r, host, a, err := openChild(side.String())
		if err != nil {
			return err
		}
		n, err := NewNode(a, host, side, rt, NodeOptions{Log: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Printf("ready\n")
		err = n.Run(ctx)
		host.Leave()
		r.Close()
		if err != nil && !errors.Is(err, cxl.ErrFenced) {
			return err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "daemon %v fenced, rejoining\n", side)
		}
	}
	return nil
}

// Request k of client c: the actor and the input are a pure function of
// (c, k), so the parent can regenerate them for the twins.
func clientRequest(c, k int, names []string) (int, []byte) {
	r := rand.New(rand.NewPCG(uint64(c), uint64(k)))
	ai := r.IntN(len(names))
	e, _ := examples.Get(names[ai])
	return ai, e.Gen(r, 1+r.IntN(300))
}

type record struct {
	client, k, actor int
	seq              uint64
	hash             uint64
}

const recordLen = 1 + 4 + 4 + 8 + 8

func childClient() error {
	id, _ := strconv.Atoi(os.Getenv("WIO_CLIENT"))
	n, _ := strconv.Atoi(os.Getenv("WIO_N"))
	depth, _ := strconv.Atoi(os.Getenv("WIO_DEPTH"))
	names := strings.Split(os.Getenv("WIO_ACTORS"), ",")
	_, host, a, err := openChild(fmt.Sprintf("client%d", id))
	if err != nil {
		return err
	}
	defer host.Leave()
	f, err := os.Create(os.Getenv("WIO_OUT"))
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	c := NewClient(a, host)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type pending struct {
		k, actor int
		t        Ticket
	}
	var q []pending
	var out []byte
	recv := func() error {
		p := q[0]
		q = q[1:]
		out, err = c.RecvAppend(ctx, p.t, out[:0])
		if err != nil {
			return fmt.Errorf("client %d request %d: %w", id, p.k, err)
		}
		h := fnv.New64a()
		h.Write(out)
		var b [recordLen]byte
		b[0] = byte(p.actor)
		binary.LittleEndian.PutUint32(b[1:], uint32(id))
		binary.LittleEndian.PutUint32(b[5:], uint32(p.k))
		binary.LittleEndian.PutUint64(b[9:], p.t.Seq)
		binary.LittleEndian.PutUint64(b[17:], h.Sum64())
		_, err := bw.Write(b[:])
		return err
	}
	for k := 0; k < n; k++ {
		ai, in := clientRequest(id, k, names)
		t, err := c.Send(ctx, names[ai], in)
		if err != nil {
			return err
		}
		q = append(q, pending{k, ai, t})
		if len(q) >= depth {
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
	return bw.Flush()
}

type daemonProc struct {
	cmd  *exec.Cmd
	side Side
}

func spawn(t testing.TB, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &prefixWriter{t: t, prefix: strings.Join(env[:1], " ")}
	return cmd
}

type prefixWriter struct {
	t      testing.TB
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.Contains(l, "owner at") || strings.Contains(l, "drain to") {
			continue // too chatty with thousands of migrations
		}
		w.t.Logf("[%s] %s", w.prefix, l)
	}
	return len(p), nil
}

func startDaemon(t testing.TB, region string, side Side) *daemonProc {
	t.Helper()
	cmd := spawn(t, "WIO_TEST_ROLE=daemon", "WIO_REGION="+region, "WIO_SIDE="+side.String(), "WIO_CACHE="+testCacheDir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("daemon %v did not start: %q %v", side, line, err)
	}
	go io.Copy(io.Discard, stdout)
	d := &daemonProc{cmd: cmd, side: side}
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	return d
}

type mpConfig struct {
	clients, perClient, depth int
	kills                     []int // migration counts at which to SIGKILL an owning daemon
	maxMigrations             int
	names                     []string
}

type mpResult struct{ migrations, aborted int }

// runMultiProcess runs daemons and clients as processes, migrates actors
// at random until the clients finish, then checks exactly-once, per-client
// order, every output against the native twin, and the arena's final state.
func runMultiProcess(t *testing.T, cfg mpConfig) mpResult {
	dir := t.TempDir()
	region := filepath.Join(dir, "region")
	// A 3s lease: on a loaded 2-core machine under -race, heartbeat
	// goroutines can be starved for over a second.
	testRegion(t, region, 3*time.Second, ArenaOptions{Slots: 16, MaxRequest: 4096})
	p := openProc(t, region, "parent")
	deployed := []examples.Example{}
	rt := newTestRuntime(t, RuntimeConfig{})
	for i, name := range cfg.names {
		e, _ := examples.Get(name)
		deployed = append(deployed, e)
		// Odd actors are deployed trusted, so both execution modes migrate.
		o := DeployOptions{StateSize: uint32(e.StateSize), Arg: e.Arg, Trusted: i%2 == 1}
		if err := p.a.Deploy(context.Background(), rt, e.Name, testWasm[e.Name], o); err != nil {
			t.Fatal(err)
		}
	}
	daemons := map[Side]*daemonProc{Host: startDaemon(t, region, Host), Device: startDaemon(t, region, Device)}

	var clients []*exec.Cmd
	done := make(chan error, cfg.clients)
	for c := 0; c < cfg.clients; c++ {
		cmd := spawn(t, "WIO_TEST_ROLE=client", "WIO_REGION="+region, "WIO_CLIENT="+strconv.Itoa(c),
			"WIO_N="+strconv.Itoa(cfg.perClient), "WIO_DEPTH="+strconv.Itoa(cfg.depth),
			"WIO_ACTORS="+strings.Join(cfg.names, ","), "WIO_OUT="+filepath.Join(dir, fmt.Sprintf("client%d", c)))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cmd)
		go func() { done <- cmd.Wait() }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(11, 12))
	var res mpResult
	finished, killed := 0, 0
	for finished < cfg.clients {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("client failed: %v", err)
			}
			finished++
			continue
		default:
		}
		if cfg.maxMigrations > 0 {
			// Spread the migrations over the whole stream.
			infos, _ := p.a.Status()
			var completed uint64
			for _, in := range infos {
				completed += in.Completed
			}
			total := uint64(cfg.clients * cfg.perClient)
			if res.migrations >= cfg.maxMigrations || uint64(res.migrations)*total > completed*uint64(cfg.maxMigrations) {
				time.Sleep(200 * time.Microsecond)
				continue
			}
		}
		if killed < len(cfg.kills) && res.migrations >= cfg.kills[killed] {
			// SIGKILL the side that owns the most actors, mid-stream.
			infos, _ := p.a.Status()
			count := map[string]int{}
			for _, in := range infos {
				count[in.Side]++
			}
			victim := Host
			if count["device"] > count["host"] {
				victim = Device
			}
			t.Logf("SIGKILL %v daemon (pid %d) owning %d actors", victim, daemons[victim].cmd.Process.Pid, count[victim.String()])
			daemons[victim].cmd.Process.Kill()
			daemons[victim].cmd.Wait()
			killed++
			// Wait until the survivor took everything over, then restart
			// the victim's side so migrations continue.
			takeoverDeadline := time.Now().Add(2 * time.Minute)
			for {
				if time.Now().After(takeoverDeadline) {
					t.Fatalf("the surviving side did not take over the actors of the killed %v daemon", victim)
				}
				infos, _ := p.a.Status()
				all := true
				for _, in := range infos {
					all = all && in.Side != victim.String() && strings.HasPrefix(in.Owner, "running")
				}
				if all {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			daemons[victim] = startDaemon(t, region, victim)
		}
		// Move a random actor to the side it is not on.
		e := deployed[r.IntN(len(deployed))]
		to := Device
		if i, _ := p.a.Lookup(e.Name); decodeOwner(p.a.load(p.a.entryRel(i)+enOwner)).side == Device {
			to = Host
		}
		err := p.a.Migrate(ctx, e.Name, to)
		switch {
		case errors.Is(err, ErrAborted) || errors.Is(err, ErrTargetDown):
			res.aborted++
		case err != nil:
			t.Fatal(err)
		}
		res.migrations++
	}

	// Verify.
	var recs []record
	for c := range clients {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("client%d", c)))
		if err != nil {
			t.Fatal(err)
		}
		for ; len(b) >= recordLen; b = b[recordLen:] {
			recs = append(recs, record{actor: int(b[0]), client: int(binary.LittleEndian.Uint32(b[1:])),
				k: int(binary.LittleEndian.Uint32(b[5:])), seq: binary.LittleEndian.Uint64(b[9:]), hash: binary.LittleEndian.Uint64(b[17:])})
		}
	}
	if want := cfg.clients * cfg.perClient; len(recs) != want {
		t.Fatalf("%d completions recorded, want %d", len(recs), want)
	}
	lastSeq := map[[2]int]int64{}
	byActor := make([][]record, len(deployed))
	for _, rc := range recs {
		key := [2]int{rc.client, rc.actor}
		if last, ok := lastSeq[key]; ok && int64(rc.seq) <= last {
			t.Fatalf("client %d actor %s: request %d got seq %d after seq %d: out of order", rc.client, cfg.names[rc.actor], rc.k, rc.seq, last)
		}
		lastSeq[key] = int64(rc.seq)
		byActor[rc.actor] = append(byActor[rc.actor], rc)
	}
	for ai, rs := range byActor {
		e := deployed[ai]
		slices.SortFunc(rs, func(a, b record) int { return int(a.seq) - int(b.seq) })
		twin, _ := abi.NewTwin(e.New(), e.StateSize, e.Arg)
		for i, rc := range rs {
			if rc.seq != uint64(i) {
				t.Fatalf("%s: completions are not exactly 0..%d: position %d holds seq %d (lost or doubled)", e.Name, len(rs)-1, i, rc.seq)
			}
			_, in := clientRequest(rc.client, rc.k, cfg.names)
			want, err := twin.Handle(in)
			if err != nil {
				t.Fatal(err)
			}
			h := fnv.New64a()
			h.Write(want)
			if h.Sum64() != rc.hash {
				t.Fatalf("%s: seq %d (client %d request %d): output differs from the native twin", e.Name, rc.seq, rc.client, rc.k)
			}
		}
		st, err := p.a.State(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		if string(st) != string(twin.State) {
			t.Fatalf("%s: arena state %x differs from the twin's %x", e.Name, st, twin.State)
		}
	}
	infos, _ := p.a.Status()
	for _, in := range infos {
		t.Logf("%s: %s, %d completed, %d migrations, %d takeovers, last blackout %v", in.Name, in.Owner, in.Completed, in.Migrations, in.Takeovers, time.Duration(in.LastBlackNS))
	}
	t.Logf("%d requests, %d migrations (%d aborted), %d SIGKILLs", len(recs), res.migrations, res.aborted, killed)
	return res
}

// TestMultiProcessExactlyOnce: client processes, two daemon processes,
// random migrations.
func TestMultiProcessExactlyOnce(t *testing.T) {
	cfg := mpConfig{clients: 3, perClient: 1500, depth: 8, names: []string{"crc32c", "logfmt", "upper", "filter"}}
	if raceEnabled {
		cfg.perClient = 400
	}
	if *soak {
		cfg = mpConfig{clients: 4, perClient: 250000, depth: 8, maxMigrations: 10500, names: []string{"crc32c", "logfmt", "upper", "filter", "lz4"}}
	}
	runMultiProcess(t, cfg)
}

// TestKillOwnerMidStream: SIGKILL of the daemon owning most actors while
// clients stream; the other side takes over; nothing lost or doubled.
func TestKillOwnerMidStream(t *testing.T) {
	cfg := mpConfig{clients: 2, perClient: 1500, depth: 4, kills: []int{20}, names: []string{"crc32c", "logfmt", "upper"}}
	if raceEnabled {
		cfg.perClient = 400
	}
	if *soak {
		cfg = mpConfig{clients: 3, perClient: 30000, depth: 8, kills: []int{100, 400, 800, 1200, 1600}, maxMigrations: 2000,
			names: []string{"crc32c", "logfmt", "upper", "filter"}}
	}
	runMultiProcess(t, cfg)
}
