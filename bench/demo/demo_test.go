package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/cxl/device"
	"github.com/daxwio/daxwio/cxl/sensor"
	"github.com/daxwio/daxwio/scheduler"
)

// Requests complete exactly once and in order, with the state carried
// across sides, however often the actor moves: the checksum actor's output
// includes a running CRC and a count of every earlier request, so a lost,
// repeated or reordered request changes every later output.
func TestLocalMovesKeepExactlyOnceOrder(t *testing.T) {
	p := device.SmartSSD()
	p.SpeedFactor = 1
	dev, err := device.New(p, device.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := sensor.NewHostCap([]sensor.CapPoint{{At: 0, CapW: 0}}, sensor.HostCapOptions{})
	cr, _ := examples.Get("crc32c")
	ex, err := NewLocal(dev, host, 1, nil, []LocalActor{{Name: "sum", New: cr.New, StateSize: cr.StateSize, Side: scheduler.Host}})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	twin, _ := newTwin(cr)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var moves atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		to := scheduler.Device
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ex.Move(ctx, "sum", to); err != nil {
				t.Error(err)
				return
			}
			moves.Add(1)
			to = to.Other()
			time.Sleep(50 * time.Microsecond)
		}
	}()
	n := 0
	for ; n < 400 || (moves.Load() < 50 && n < 100000); n++ {
		in := cr.Gen(rng, 1+rng.IntN(2048))
		got, err := ex.Do(ctx, "sum", in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := twin.Handle(in)
		if !bytes.Equal(got, want) {
			t.Fatalf("request %d: output %x, sequential twin %x", n, got, want)
		}
	}
	close(stop)
	wg.Wait()
	if moves.Load() < 10 {
		t.Fatalf("only %d moves", moves.Load())
	}
	if st := ex.State("sum"); !bytes.Equal(st, twin.State) {
		t.Fatal("state differs from the sequential twin")
	}
	hb, db := ex.Busy()
	if hb == 0 || db == 0 {
		t.Fatalf("busy host %v device %v: requests did not run on both sides", hb, db)
	}
	t.Logf("%d requests, %d moves", n, moves.Load())
}

// A short run of every policy writes a complete report and the plots.
func TestMainShortRun(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := Main(context.Background(), []string{"-out", out, "-duration", "2m", "-compression", "60", "-block", "8192",
		"-region", filepath.Join(t.TempDir(), "region")}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Model    map[string]any                        `json:"model"`
		Policies map[string]map[string]json.RawMessage `json:"policies"`
		Plots    []string                              `json:"plots"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{DevicePinned, HostPinned, Adaptive} {
		r, ok := rep.Policies[p]
		if !ok {
			t.Fatalf("no %s in report", p)
		}
		for _, k := range []string{"throughput_mib_s", "p99_write_latency_ms", "migrations", "blackout_total_ms", "writes"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("%s: no %s", p, k)
			}
		}
		var writes int
		json.Unmarshal(r["writes"], &writes)
		if writes == 0 {
			t.Fatalf("%s: no writes", p)
		}
	}
	if _, ok := rep.Model["device_profile"]; !ok {
		t.Fatal("no model parameters")
	}
	if len(rep.Plots) < 5 {
		t.Fatalf("plots %v", rep.Plots)
	}
	for _, p := range rep.Plots {
		if fi, err := os.Stat(filepath.Join(out, p)); err != nil || fi.Size() == 0 {
			t.Fatalf("plot %s: %v", p, err)
		}
	}
	if !bytes.Contains(stdout.Bytes(), []byte("adaptive")) {
		t.Fatalf("no progress output: %s", stdout.String())
	}
}

func TestConfigRejectsUnknownPolicy(t *testing.T) {
	c := DefaultConfig()
	c.Policies = []string{"random"}
	if _, _, err := Run(context.Background(), c); err == nil {
		t.Fatal("accepted an unknown policy")
	}
}
