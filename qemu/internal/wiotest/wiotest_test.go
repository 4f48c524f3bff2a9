package wiotest

import (
	"errors"
	"strings"
	"testing"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/actors/examples/abi"
)

func TestParamsBoot(t *testing.T) {
	p := Params{VMs: 2, Actor: "crc32c", Requests: 300, Depth: 4, Migrations: 10, Trusted: true}
	m := p.Boot()
	got, err := ParseBoot(2, m)
	if err != nil || got != p {
		t.Fatalf("ParseBoot(Boot(%+v)) = %+v, %v", p, got, err)
	}
	for _, bad := range []map[string]string{
		{"actor": "crc32c", "requests": "x", "depth": "4", "migrations": "1"},
		{"actor": "nosuch", "requests": "3", "depth": "4", "migrations": "1"},
		{"actor": "crc32c", "requests": "0", "depth": "4", "migrations": "1"},
		{"actor": "crc32c", "requests": "3", "depth": "4"},
	} {
		if _, err := ParseBoot(2, bad); err == nil {
			t.Errorf("ParseBoot(%v) accepted", bad)
		}
	}
	if _, err := ParseBoot(1, m); err == nil || !strings.Contains(err.Error(), "2..") {
		t.Errorf("one VM accepted: %v", err)
	}
	for slot, want := range []string{"host", "device", "client", "client"} {
		if Role(slot) != want {
			t.Errorf("Role(%d) = %s, want %s", slot, Role(slot), want)
		}
	}
	if s, ok := side("device"); !ok || s != actors.Device {
		t.Errorf("side(device) = %v %v", s, ok)
	}
	if _, ok := side("client"); ok {
		t.Error("a client has a side")
	}
	if WasmPath("crc32c") != GuestDir+"/crc32c.wasm" {
		t.Error(WasmPath("crc32c"))
	}
}

// good builds the reports and arena of a correct run: the clients'
// requests interleaved in the ring as interleave says (client of each
// sequence number), outputs from the twin.
func good(t *testing.T, p Params, interleave []int) ([]Report, Arena) {
	t.Helper()
	e, _ := examples.Get(p.Actor)
	twin, err := abi.NewTwin(e.New(), e.StateSize, e.Arg)
	if err != nil {
		t.Fatal(err)
	}
	reps := make([]Report, p.VMs)
	for s := range reps {
		reps[s] = Report{Slot: s, Role: Role(s)}
	}
	for seq, c := range interleave {
		k := len(reps[c].Completions)
		out, err := twin.Handle(Request(e, c, k))
		if err != nil {
			t.Fatal(err)
		}
		reps[c].Completions = append(reps[c].Completions, Completion{K: k, Seq: uint64(seq), Out: Hash(out)})
		reps[seq%2].Served++
	}
	reps[0].Migrated, reps[1].Migrated = p.Migrations/2, p.Migrations-p.Migrations/2
	n := uint64(len(interleave))
	return reps, Arena{Info: actors.ActorInfo{Name: p.Actor, Completed: n, Submitted: n, Migrations: uint64(p.Migrations)},
		State: append([]byte(nil), twin.State...)}
}

func TestCheck(t *testing.T) {
	p := Params{VMs: 3, Actor: "crc32c", Requests: 20, Depth: 4, Migrations: 3}
	var inter []int // the clients' requests interleaved in the ring
	for k := 0; k < p.Requests; k++ {
		for c := 0; c < p.VMs; c++ {
			inter = append(inter, (c+k)%p.VMs)
		}
	}
	reps, ar := good(t, p, inter)
	v, err := Check(p, reps, ar)
	if err != nil || !v.ExactlyOnce || v.Requests != 60 || v.Migrations != 3 {
		t.Fatalf("good run: %+v, %v", v, err)
	}

	type mut struct {
		name  string
		f     func(reps []Report, ar *Arena)
		want  string
		isEO  bool // an exactly-once violation
		field func(Verdict) int
	}
	cases := []mut{
		{"lost", func(r []Report, ar *Arena) { r[1].Completions = r[1].Completions[:p.Requests-1] }, "completions, want", true,
			func(v Verdict) int { return v.Lost }},
		{"duplicated", func(r []Report, ar *Arena) { r[2].Completions[5].Seq = r[0].Completions[5].Seq }, "completed twice", true,
			func(v Verdict) int { return v.Duplicated }},
		{"out of order", func(r []Report, ar *Arena) {
			c := r[0].Completions
			c[3].Seq, c[4].Seq = c[4].Seq, c[3].Seq
			c[3].Out, c[4].Out = c[4].Out, c[3].Out
		}, "out of order", true, func(v Verdict) int { return v.OutOfOrder }},
		{"wrong output", func(r []Report, ar *Arena) { r[1].Completions[7].Out = Hash([]byte("x")) }, "the twin's", true,
			func(v Verdict) int { return v.Mismatched }},
		{"failed", func(r []Report, ar *Arena) { r[1].Completions[2].Out, r[1].Completions[2].Err = "", "trap" }, "failed: trap", true,
			func(v Verdict) int { return v.Failed }},
		{"state", func(r []Report, ar *Arena) { ar.State[0] ^= 1 }, "differs from the twin", true, nil},
		{"arena count", func(r []Report, ar *Arena) { ar.Info.Completed++ }, "arena counts 61 completions", true, nil},
		{"hole", func(r []Report, ar *Arena) { ar.Info.Submitted++ }, "sequence numbers", true, nil},
		{"missing vm", func(r []Report, ar *Arena) {}, "no report from vm2", true, nil},
		{"no migrations", func(r []Report, ar *Arena) { r[0].Migrated, r[1].Migrated = 0, 0 }, "0 migrations succeeded", false, nil},
		{"arena migrations", func(r []Report, ar *Arena) { ar.Info.Migrations = 1 }, "arena counts 1 migrations", false, nil},
		{"one side", func(r []Report, ar *Arena) { r[0].Served += r[1].Served; r[1].Served = 0 }, "one side served nothing", false, nil},
		{"takeover", func(r []Report, ar *Arena) { ar.Info.Takeovers = 1 }, "1 takeovers", false, nil},
		{"served", func(r []Report, ar *Arena) { r[1].Served-- }, "served 59", false, nil},
	}
	for _, c := range cases {
		reps, ar := good(t, p, inter)
		c.f(reps, &ar)
		if c.name == "missing vm" {
			reps = reps[:2]
		}
		v, err := Check(p, reps, ar)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to say %q", c.name, err, c.want)
			continue
		}
		if errors.Is(err, ErrExactlyOnce) != c.isEO || v.ExactlyOnce == c.isEO {
			t.Errorf("%s: exactly-once verdict %v, error %v", c.name, v.ExactlyOnce, err)
		}
		if c.field != nil && c.field(v) == 0 {
			t.Errorf("%s: not counted in %+v", c.name, v)
		}
	}
}

func TestRequestIsPure(t *testing.T) {
	e, _ := examples.Get("crc32c")
	a, b := Request(e, 1, 7), Request(e, 1, 7)
	if string(a) != string(b) || len(a) == 0 || len(a) > 300 {
		t.Fatalf("Request not a pure function of (slot, k): %d vs %d bytes", len(a), len(b))
	}
	if string(Request(e, 0, 7)) == string(a) {
		t.Fatal("two clients send the same request")
	}
}
