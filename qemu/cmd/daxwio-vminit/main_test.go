package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/actors/examples"
	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/qemu/internal/bootparam"
	"github.com/daxwio/daxwio/qemu/internal/castest"
	"github.com/daxwio/daxwio/qemu/internal/result"
	"github.com/daxwio/daxwio/qemu/internal/wiotest"
)

// TestCASRoleOnFile runs the cas role as two "VMs" (goroutines) against a
// region file, the way the guests run it against the ivshmem BAR.
func TestCASRoleOnFile(t *testing.T) {
	pool := filepath.Join(t.TempDir(), "pool")
	hdr, err := castest.Prepare(castest.Params{VMs: 2, Ops: 5000, AloneOps: 1000})
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 1<<20)
	copy(img, hdr)
	if err := os.WriteFile(pool, img, 0o600); err != nil {
		t.Fatal(err)
	}
	reps := make([]result.Report, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := bootparam.Config{Role: "cas", Slot: i, VMs: 2, Timeout: time.Minute}
			reps[i] = runRole(cfg, func() (string, error) { return pool, nil })
		}(i)
	}
	wg.Wait()
	for _, r := range reps {
		if !r.OK {
			t.Fatalf("slot %d: %s", r.Slot, r.Error)
		}
		var cr castest.Result
		if err := json.Unmarshal(r.Data, &cr); err != nil || cr.Ops != 5000 {
			t.Fatalf("slot %d data %s: %v", r.Slot, r.Data, err)
		}
	}
	b, err := os.ReadFile(pool)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := castest.Verify(b); err != nil || v.Shared != 10000 {
		t.Fatalf("verdict %+v: %v", v, err)
	}
}

func TestRoleErrors(t *testing.T) {
	r := runRole(bootparam.Config{Role: "nosuch", VMs: 1}, nil)
	if r.OK || !strings.Contains(r.Error, "unknown role") {
		t.Errorf("unknown role: %+v", r)
	}
	r = runRole(bootparam.Config{Role: "cas", VMs: 1}, func() (string, error) { return "/nonexistent/pool", nil })
	if r.OK || !strings.Contains(r.Error, "/nonexistent/pool") {
		t.Errorf("missing pool: %+v", r)
	}
	// A region that is not a prepared pool is refused, not counted on.
	pool := filepath.Join(t.TempDir(), "pool")
	if err := os.WriteFile(pool, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runRole(bootparam.Config{Role: "cas", VMs: 1}, func() (string, error) { return pool, nil })
	if r.OK || !strings.Contains(r.Error, "magic") {
		t.Errorf("unprepared pool: %+v", r)
	}
}

// TestWioRoleOnFile runs the wio role as three "VMs" (goroutines: host
// side, device side, a client) against a region file, then the host's
// check, the way the testbed runs it across VMs.
func TestWioRoleOnFile(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go wasm actor")
	}
	wasm, err := examples.Wasm("crc32c")
	if err != nil {
		t.Skipf("%v", err)
	}
	p := wiotest.Params{VMs: 3, Actor: "crc32c", Requests: 60, Depth: 4, Migrations: 6}
	pool := filepath.Join(t.TempDir(), "pool")
	r, err := cxl.Open(pool, cxl.OpenOptions{Create: true, Size: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = t.TempDir()
	}
	rtc := actors.RuntimeConfig{CacheDir: filepath.Join(cache, "daxwio-testbed", "wazero"), InitTimeout: 5 * time.Minute}
	if err := wiotest.Format(context.Background(), r, p, wasm, rtc); err != nil {
		t.Fatal(err)
	}
	reps := make([]result.Report, p.VMs)
	var wg sync.WaitGroup
	for i := range reps {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := bootparam.Config{Role: "wio", Slot: i, VMs: p.VMs, Timeout: 5 * time.Minute, Params: p.Boot()}
			reps[i] = runRole(cfg, func() (string, error) { return pool, nil })
		}(i)
	}
	wg.Wait()
	var wrs []wiotest.Report
	for _, rep := range reps {
		if !rep.OK {
			t.Fatalf("slot %d: %s", rep.Slot, rep.Error)
		}
		var wr wiotest.Report
		if err := json.Unmarshal(rep.Data, &wr); err != nil {
			t.Fatal(err)
		}
		wrs = append(wrs, wr)
	}
	ar, err := wiotest.ReadArena(r, p.Actor)
	if err != nil {
		t.Fatal(err)
	}
	v, err := wiotest.Check(p, wrs, ar)
	if err != nil {
		t.Fatalf("%+v: %v", v, err)
	}
	t.Logf("%d requests, %d migrations, served host %d device %d, exactly once %v", v.Requests, v.Migrations, v.ServedBySide["host"], v.ServedBySide["device"], v.ExactlyOnce)
}
