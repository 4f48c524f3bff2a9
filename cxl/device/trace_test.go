package device

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func loadTrace(t testing.TB) *Trace {
	t.Helper()
	f, err := os.Open("testdata/smartssd_30min.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestReadTrace(t *testing.T) {
	tr := loadTrace(t)
	if tr.Len() != 181 || tr.Duration() != 30*time.Minute {
		t.Fatalf("len %d duration %v", tr.Len(), tr.Duration())
	}
	p := tr.At(15 * time.Minute)
	if p.Factor != 1 || p.TempC != 77 {
		t.Fatalf("at 15min: %+v", p)
	}
	p = tr.At(17*time.Minute + 30*time.Second)
	if math.Abs(p.Factor-0.75) > 1e-9 || math.Abs(p.Throughput-1500) > 1e-9 {
		t.Fatalf("at 17.5min: %+v", p)
	}
	if p := tr.At(time.Hour); p.Factor != 0.5 {
		t.Fatalf("past end: %+v", p)
	}
	var buf bytes.Buffer
	if err := WriteTrace(&buf, tr.Points()); err != nil {
		t.Fatal(err)
	}
	tr2, err := ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if tr2.Len() != tr.Len() || tr2.At(1000*time.Second) != tr.At(1000*time.Second) {
		t.Fatal("write/read round trip differs")
	}
}

func TestReadTraceErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"header only": "time_s,temp_c,throughput\n",
		"fields":      "0,1\n",
		"not number":  "0,1,2\nx,1,2\n",
		"two headers": "a,b,c\na,b,c\n0,1,2\n",
		"decreasing":  "1,50,1\n0,50,1\n",
		"negative":    "0,50,-1\n",
		"nan":         "0,NaN,1\n",
		"zero tput":   "0,50,0\n1,50,0\n",
		"too hot":     "0,5000,1\n",
	} {
		if _, err := ReadTrace(strings.NewReader(in)); !errors.Is(err, ErrBadTrace) {
			t.Errorf("%s: err %v, want ErrBadTrace", name, err)
		}
	}
}

// Time compression changes only the wall-clock rate: the curve sampled at
// wall time w with compression c equals the curve at model time w*c.
func TestReplayCompressionSameCurve(t *testing.T) {
	tr := loadTrace(t)
	slow := Replay{Trace: tr, Compression: 1}
	for _, c := range []float64{2, 30, 60, 1800} {
		fast := Replay{Trace: tr, Compression: c}
		for model := time.Duration(0); model <= 31*time.Minute; model += 7 * time.Second {
			a := slow.At(model)
			b := fast.At(time.Duration(float64(model) / c))
			if math.Abs(a.TempC-b.TempC) > 1e-6 || math.Abs(a.Factor-b.Factor) > 1e-6 {
				t.Fatalf("c=%g model %v: %+v vs %+v", c, model, a, b)
			}
		}
	}
}

// A device replaying the trace at 30x compression shows over 60 wall
// seconds what the 1x device shows over 30 minutes, and counts the same
// throttle events.
func TestDeviceTraceReplayCompression(t *testing.T) {
	tr := loadTrace(t)
	p := SmartSSD()
	p.ThrottleOnC, p.ThrottleOffC = 76, 72
	run := func(c float64, step time.Duration) []Snapshot {
		clk := newFakeClock()
		d, err := New(p, Options{Clock: clk, Compression: c, Trace: tr})
		if err != nil {
			t.Fatal(err)
		}
		var out []Snapshot
		for i := 0; i <= 60; i++ {
			out = append(out, d.Snapshot())
			clk.Advance(step)
		}
		return out
	}
	a := run(1, 30*time.Second)
	b := run(30, time.Second)
	for i := range a {
		if math.Abs(a[i].TempC-b[i].TempC) > 1e-6 || math.Abs(a[i].Factor-b[i].Factor) > 1e-6 ||
			a[i].Throttled != b[i].Throttled {
			t.Fatalf("sample %d: %+v vs %+v", i, a[i].State, b[i].State)
		}
	}
	if a[60].Events != 1 || b[60].Events != 1 {
		t.Fatalf("events %d/%d, want 1", a[60].Events, b[60].Events)
	}
}

// The RC-model device under compression follows the same curve as the
// uncompressed model over the same model time.
func TestDeviceModelCompression(t *testing.T) {
	p := SmartSSD()
	run := func(c float64, wall time.Duration, steps int) Snapshot {
		clk := newFakeClock()
		d, err := New(p, Options{Clock: clk, Compression: c, NominalIOBps: 1e6})
		if err != nil {
			t.Fatal(err)
		}
		step := wall / time.Duration(steps)
		var s Snapshot
		for i := 0; i < steps; i++ {
			// Full I/O utilisation: nominal rate times the step.
			d.AddIO(int64(1e6 * step.Seconds()))
			clk.Advance(step)
			s = d.Snapshot()
		}
		return s
	}
	a := run(1, 30*time.Minute, 600)
	b := run(30, time.Minute, 600)
	if a.At != b.At || math.Abs(a.TempC-b.TempC) > 1e-6 {
		t.Fatalf("1x: %+v\n30x: %+v", a.State, b.State)
	}
	if a.IO < 0.999 {
		t.Fatalf("io utilisation %.3f, want 1", a.IO)
	}
}

func TestExecDilation(t *testing.T) {
	clk := newFakeClock()
	p := SmartSSD()
	d, err := New(p, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	before := clk.Now()
	st, err := d.Exec(context.Background(), func() error { clk.Advance(10 * time.Millisecond); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Measured != 10*time.Millisecond || st.Dilated != 40*time.Millisecond || st.Factor != 1 {
		t.Fatalf("%+v", st)
	}
	if got := clk.Now().Sub(before); got != 40*time.Millisecond {
		t.Fatalf("unit held %v, want 40ms", got)
	}
	// fn errors are passed through.
	boom := errors.New("boom")
	if _, err := d.Exec(context.Background(), func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	// A cancelled context while all units are busy fails cleanly.
	for i := 0; i < p.Units; i++ {
		d.units <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Exec(ctx, func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}

func TestTransferBandwidthAndThrottle(t *testing.T) {
	clk := newFakeClock()
	p := SmartSSD()
	d, err := New(p, Options{Clock: clk, NominalIOBps: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	t0 := clk.Now()
	if err := d.Transfer(context.Background(), 500_000); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(t0); got != 500*time.Millisecond {
		t.Fatalf("500kB at 1MB/s took %v", got)
	}
	// Hot start: device is throttled; after the ramp the pipe runs at the floor.
	d, _ = New(p, Options{Clock: clk, NominalIOBps: 1e6, StartTempC: 95})
	clk.Advance(time.Second)
	d.Snapshot()
	clk.Advance(time.Duration(p.RampDownS) * time.Second)
	if f := d.Factor(); f != p.FloorFactor {
		t.Fatalf("factor %.3f, want floor", f)
	}
	t0 = clk.Now()
	if err := d.Transfer(context.Background(), 500_000); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(t0); got != time.Second {
		t.Fatalf("500kB at 0.5MB/s took %v", got)
	}
}

// A unit held across many snapshots counts as busy in every one of them,
// so the thermal model sees a steady load, not idle steps and a clamped burst.
func TestExecBusyIntegratedOverSnapshots(t *testing.T) {
	clk := newFakeClock()
	p := SmartSSD()
	p.Units = 1
	d, err := New(p, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var utils []float64
	_, err = d.Exec(context.Background(), func() error {
		for i := 0; i < 10; i++ {
			clk.Advance(10 * time.Millisecond)
			utils = append(utils, d.Snapshot().Util)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range utils {
		if u != 1 {
			t.Fatalf("snapshot %d during execution: util %.3f, want 1", i, u)
		}
	}
	// Dilation sleeps the rest (300ms): also busy.
	if s := d.Snapshot(); s.Util != 1 {
		t.Fatalf("after dilation: util %.3f", s.Util)
	}
	clk.Advance(time.Second)
	if s := d.Snapshot(); s.Util != 0 {
		t.Fatalf("idle: util %.3f", s.Util)
	}
	// A burst of I/O accounted at once is spread over the following steps.
	d.AddIO(int64(3 * p.BandwidthMBs * 1e6)) // three seconds' worth
	var ios []float64
	for i := 0; i < 4; i++ {
		clk.Advance(time.Second)
		ios = append(ios, d.Snapshot().IO)
	}
	if ios[0] != 1 || ios[1] != 1 || ios[2] != 1 || ios[3] != 0 {
		t.Fatalf("io after a 3 s burst: %v", ios)
	}
}
