package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/qemu/internal/bootparam"
	"github.com/daxwio/daxwio/qemu/internal/castest"
	"github.com/daxwio/daxwio/qemu/internal/result"
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
