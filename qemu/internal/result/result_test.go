package result

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func frame(t *testing.T, r Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseAmidNoise(t *testing.T) {
	r0 := Report{Slot: 0, Role: "cas", OK: true, Seconds: 1.5, Data: json.RawMessage(`{"ops":10}`)}
	r1 := Report{Slot: 1, Role: "cas", OK: false, Error: "barrier: 1 of 2 arrived"}
	log := "[    0.000000] Linux version 6.1\r\n" + Ready(0) + "\r\n" +
		strings.ReplaceAll(frame(t, r0), "\n", "\r\n") +
		"[    3.1] reboot: Power down\n" + frame(t, r1)
	got, err := Parse([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d reports, want 2", len(got))
	}
	if got[0].Slot != 0 || !got[0].OK || string(got[0].Data) != `{"ops":10}` || got[0].Seconds != 1.5 {
		t.Errorf("report 0 = %+v", got[0])
	}
	if got[1].Slot != 1 || got[1].OK || got[1].Error != r1.Error {
		t.Errorf("report 1 = %+v", got[1])
	}
	if !Booted([]byte(log)) || Booted([]byte("no marker")) {
		t.Error("Booted is wrong")
	}
}

func TestParseCorrupt(t *testing.T) {
	good := frame(t, Report{Slot: 3, Role: "daxfs", OK: true})
	lines := strings.Split(good, "\n")
	// lines: "", begin, json, end, ""
	mixed := strings.Join([]string{lines[1], lines[2][:5] + "[ 9.9] kernel says hi" + lines[2][5:], lines[3]}, "\n")
	for name, tc := range map[string]struct{ log, want string }{
		"interleaved": {mixed, "checksum"},
		"no end":      {lines[1] + "\n" + lines[2] + "\n", "no end marker"},
		"end only":    {lines[3] + "\n", "without begin"},
		"double":      {lines[1] + "\n" + lines[1] + "\n", "begin marker inside"},
	} {
		_, err := Parse([]byte(tc.log))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
	if rs, err := Parse([]byte("nothing here\n")); err != nil || len(rs) != 0 {
		t.Errorf("empty log: %v %v", rs, err)
	}
}
