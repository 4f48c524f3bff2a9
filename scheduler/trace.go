package scheduler

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadTrace is wrapped by every signal trace parsing error.
var ErrBadTrace = errors.New("scheduler: bad signal trace")

// SignalColumns is the header of a recorded signal trace.
const SignalColumns = "t_s,device_temp_c,device_factor,host_power_w,host_cap_w,host_speed"

const maxTraceRows = 1 << 20

// ReadSignals parses a recorded signal trace (CSV, columns SignalColumns;
// t_s in seconds from base). An optional header row, blank lines and '#'
// comments are skipped. Times must be non-decreasing.
func ReadSignals(r io.Reader, base time.Time) ([]Signals, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	var out []Signals
	line := 0
	seen := false
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		first := !seen
		seen = true
		f := strings.Split(s, ",")
		if len(f) != 6 {
			return nil, fmt.Errorf("%w: line %d: %d fields, want 6 (%s)", ErrBadTrace, line, len(f), SignalColumns)
		}
		var v [6]float64
		var err error
		for i := range f {
			if v[i], err = strconv.ParseFloat(strings.TrimSpace(f[i]), 64); err != nil {
				break
			}
			if math.IsNaN(v[i]) || math.IsInf(v[i], 0) {
				err = fmt.Errorf("field %d not finite", i+1)
				break
			}
		}
		if err != nil {
			if first {
				continue // header
			}
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadTrace, line, err)
		}
		if v[0] < 0 || v[0] > 1e9 {
			return nil, fmt.Errorf("%w: line %d: time %g out of [0,1e9] s", ErrBadTrace, line, v[0])
		}
		if v[2] < 0 || v[2] > 1 || v[5] < 0 || v[5] > 1 || v[3] < 0 || v[4] < 0 {
			return nil, fmt.Errorf("%w: line %d: factor/speed must be in [0,1] and powers >= 0", ErrBadTrace, line)
		}
		at := base.Add(time.Duration(v[0] * float64(time.Second)))
		if n := len(out); n > 0 && at.Before(out[n-1].At) {
			return nil, fmt.Errorf("%w: line %d: time %gs goes backwards", ErrBadTrace, line, v[0])
		}
		if len(out) >= maxTraceRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrBadTrace, maxTraceRows)
		}
		out = append(out, Signals{At: at, DeviceTempC: v[1], DeviceFactor: v[2], HostPowerW: v[3], HostCapW: v[4], HostSpeed: v[5]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrBadTrace, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrBadTrace)
	}
	return out, nil
}

// WriteSignals writes samples in the format ReadSignals reads.
func WriteSignals(w io.Writer, base time.Time, ss []Signals) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, SignalColumns)
	g := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, s := range ss {
		fmt.Fprintf(bw, "%s,%s,%s,%s,%s,%s\n", g(s.At.Sub(base).Seconds()), g(s.DeviceTempC), g(s.DeviceFactor),
			g(s.HostPowerW), g(s.HostCapW), g(s.HostSpeed))
	}
	return bw.Flush()
}
