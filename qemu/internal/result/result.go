// Package result frames what a guest reports on its serial console so that
// the host can pick it out of kernel messages and boot noise.
//
// A report is one JSON object on one line between two marker lines:
//
//	@@DAXWIO-BEGIN slot=0 role=cas@@
//	{"slot":0,"role":"cas","ok":true,...}
//	@@DAXWIO-END slot=0 crc=1a2b3c4d@@
//
// The CRC-32 (IEEE) of the JSON line lets the host detect a report that a
// kernel message was printed into the middle of.
package result

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Marker prefixes, exported for humans grepping console logs.
const (
	BeginMarker = "@@DAXWIO-BEGIN"
	EndMarker   = "@@DAXWIO-END"
	ReadyMarker = "@@DAXWIO-READY"
)

// Report is what one guest says about its run.
type Report struct {
	Slot    int             `json:"slot"`
	Role    string          `json:"role"`
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Seconds float64         `json:"seconds"` // time spent in the role, as the guest measured it
	Data    json.RawMessage `json:"data,omitempty"`
}

// Write prints r framed by markers. It builds the whole frame first and
// writes it with one call so that it is not interleaved with other writers
// of the same process.
func Write(w io.Writer, r Report) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("result: encode report of slot %d: %w", r.Slot, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n%s slot=%d role=%s@@\n", BeginMarker, r.Slot, r.Role)
	b.Write(body)
	fmt.Fprintf(&b, "\n%s slot=%d crc=%08x@@\n", EndMarker, r.Slot, crc32.ChecksumIEEE(body))
	_, err = w.Write(b.Bytes())
	return err
}

// Ready is the line a guest prints once its init runs.
func Ready(slot int) string {
	return fmt.Sprintf("%s slot=%d@@", ReadyMarker, slot)
}

// Parse finds every report in a console log. Lines may end in "\r\n". A frame
// whose CRC does not match, whose JSON does not decode, or that has no end
// marker is an error naming the slot and the problem; text outside frames is
// ignored.
func Parse(log []byte) ([]Report, error) {
	var out []Report
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var (
		in    bool
		slot  string
		lines []string
	)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		// A marker may be preceded by console noise on the same line.
		if i := strings.Index(line, BeginMarker); i >= 0 {
			if in {
				return out, fmt.Errorf("result: report of slot %s: begin marker inside a report", slot)
			}
			in, lines = true, nil
			slot = field(line[i:], "slot")
			continue
		}
		if i := strings.Index(line, EndMarker); i >= 0 {
			if !in {
				return out, fmt.Errorf("result: end marker without begin: %q", line)
			}
			in = false
			body := strings.Join(lines, "")
			want := field(line[i:], "crc")
			got := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
			if want != got {
				return out, fmt.Errorf("result: report of slot %s: checksum %s, want %s (console output mixed into the report?): %q", slot, got, want, body)
			}
			var r Report
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				return out, fmt.Errorf("result: report of slot %s: %w", slot, err)
			}
			out = append(out, r)
			continue
		}
		if in {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("result: scan console log: %w", err)
	}
	if in {
		return out, fmt.Errorf("result: report of slot %s has no end marker (guest stopped mid-report?)", slot)
	}
	return out, nil
}

// field returns the value of "key=value" in a marker line, up to a space or "@@".
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return "?"
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexAny(v, " @"); j >= 0 {
		v = v[:j]
	}
	return v
}

// Boot reports whether the guest's init reached the point of printing its
// ready marker.
func Booted(log []byte) bool {
	return bytes.Contains(log, []byte(ReadyMarker))
}
