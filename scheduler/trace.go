package scheduler

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/daxwio/daxwio/internal/csvrows"
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
	var out []Signals
	_, err := csvrows.Read(r, SignalColumns, maxTraceRows, func(_ int, v []float64) error {
		if v[0] < 0 || v[0] > 1e9 {
			return fmt.Errorf("time %g out of [0,1e9] s", v[0])
		}
		if v[2] < 0 || v[2] > 1 || v[5] < 0 || v[5] > 1 || v[3] < 0 || v[4] < 0 {
			return fmt.Errorf("factor/speed must be in [0,1] and powers >= 0")
		}
		at := base.Add(time.Duration(v[0] * float64(time.Second)))
		if n := len(out); n > 0 && at.Before(out[n-1].At) {
			return fmt.Errorf("time %gs goes backwards", v[0])
		}
		out = append(out, Signals{At: at, DeviceTempC: v[1], DeviceFactor: v[2], HostPowerW: v[3], HostCapW: v[4], HostSpeed: v[5]})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTrace, err)
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
