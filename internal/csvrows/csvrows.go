// Package csvrows reads the small numeric CSV traces the device model,
// the sensors and the scheduler replay: blank lines and '#' comments are
// skipped, a first row that is not all numbers is a header, and every other
// row holds exactly the expected count of finite numbers.
package csvrows

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Read calls row for each data row with its 1-based line number and its
// values (the slice is reused between calls). It stops with an error at the
// first malformed row, at the first error row returns, or after maxRows
// rows. cols names the columns for messages ("time_s,cap_w"). Errors say
// which line; callers wrap them with their own sentinel. It returns the
// number of rows read.
func Read(r io.Reader, cols string, maxRows int, row func(line int, v []float64) error) (int, error) {
	want := len(strings.Split(cols, ","))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	v := make([]float64, want)
	line, rows := 0, 0
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
		if len(f) != want {
			return rows, fmt.Errorf("line %d: %d fields, want %d (%s)", line, len(f), want, cols)
		}
		var err error
		for i := range f {
			if v[i], err = strconv.ParseFloat(strings.TrimSpace(f[i]), 64); err != nil {
				break
			}
			if math.IsNaN(v[i]) || math.IsInf(v[i], 0) {
				err = fmt.Errorf("field %d is not finite", i+1)
				break
			}
		}
		if err != nil {
			if first {
				continue // header
			}
			return rows, fmt.Errorf("line %d: %v", line, err)
		}
		if rows >= maxRows {
			return rows, fmt.Errorf("line %d: more than %d rows", line, maxRows)
		}
		if err := row(line, v); err != nil {
			return rows, fmt.Errorf("line %d: %v", line, err)
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("line %d: %v", line+1, err)
	}
	if rows == 0 {
		return 0, fmt.Errorf("no rows")
	}
	return rows, nil
}
