package device

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/daxwio/daxwio/internal/csvrows"
)

// ErrBadTrace is wrapped by every trace parsing error.
var ErrBadTrace = errors.New("device: bad trace")

// MaxTraceRows bounds the rows read from one trace.
const MaxTraceRows = 1 << 20

// TracePoint is one sample of a thermal trace.
type TracePoint struct {
	At         time.Duration
	TempC      float64
	Throughput float64 // as recorded (e.g. MB/s)
	Factor     float64 // Throughput / max Throughput in the trace, in [0,1]
}

// Trace is a recorded thermal trace: time, temperature, throughput.
type Trace struct {
	pts  []TracePoint
	peak float64
}

// ReadTrace parses a CSV trace whose rows are "time_s,temp_c,throughput".
// A first row that does not start with a number is a header and skipped;
// blank lines and lines starting with '#' are ignored. Times must be finite,
// non-negative and strictly increasing; throughputs non-negative with at
// least one positive.
func ReadTrace(r io.Reader) (*Trace, error) {
	tr := &Trace{}
	_, err := csvrows.Read(r, "time_s,temp_c,throughput", MaxTraceRows, func(_ int, v []float64) error {
		if v[0] < 0 || v[0] > 1e9 {
			return fmt.Errorf("time %g out of range [0,1e9] s", v[0])
		}
		if v[1] < -273.15 || v[1] > 1000 {
			return fmt.Errorf("temperature %g°C out of range", v[1])
		}
		if v[2] < 0 {
			return fmt.Errorf("negative throughput %g", v[2])
		}
		at := time.Duration(v[0] * float64(time.Second))
		if n := len(tr.pts); n > 0 && at <= tr.pts[n-1].At {
			return fmt.Errorf("time %gs not after previous row", v[0])
		}
		tr.pts = append(tr.pts, TracePoint{At: at, TempC: v[1], Throughput: v[2]})
		tr.peak = math.Max(tr.peak, v[2])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTrace, err)
	}
	if tr.peak <= 0 {
		return nil, fmt.Errorf("%w: throughput is zero everywhere", ErrBadTrace)
	}
	for i := range tr.pts {
		tr.pts[i].Factor = tr.pts[i].Throughput / tr.peak
	}
	return tr, nil
}

// Len is the number of rows.
func (t *Trace) Len() int { return len(t.pts) }

// Points returns a copy of the rows.
func (t *Trace) Points() []TracePoint { return append([]TracePoint(nil), t.pts...) }

// Duration is the time of the last row.
func (t *Trace) Duration() time.Duration { return t.pts[len(t.pts)-1].At }

// At returns the trace linearly interpolated at model time at, clamped to
// the first and last rows.
func (t *Trace) At(at time.Duration) TracePoint {
	p := t.pts
	i := sort.Search(len(p), func(i int) bool { return p[i].At >= at })
	switch {
	case i == 0:
		q := p[0]
		q.At = at
		return q
	case i == len(p):
		q := p[len(p)-1]
		q.At = at
		return q
	}
	a, b := p[i-1], p[i]
	f := float64(at-a.At) / float64(b.At-a.At)
	lerp := func(x, y float64) float64 { return x + (y-x)*f }
	return TracePoint{At: at, TempC: lerp(a.TempC, b.TempC), Throughput: lerp(a.Throughput, b.Throughput),
		Factor: lerp(a.Factor, b.Factor)}
}

// Replay plays a trace back with time compression: Compression model
// seconds pass per wall second (30 plays a 30-minute trace in one minute).
type Replay struct {
	Trace       *Trace
	Compression float64
}

// At returns the trace point for wall time elapsed since the replay began.
// The returned point's At is model time.
func (r Replay) At(elapsed time.Duration) TracePoint {
	c := r.Compression
	if c <= 0 {
		c = 1
	}
	return r.Trace.At(time.Duration(float64(elapsed) * c))
}

// WriteTrace writes points in the format ReadTrace accepts.
func WriteTrace(w io.Writer, pts []TracePoint) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "time_s,temp_c,throughput")
	for _, p := range pts {
		fmt.Fprintf(bw, "%s,%s,%s\n", fmtF(p.At.Seconds()), fmtF(p.TempC), fmtF(p.Throughput))
	}
	return bw.Flush()
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
