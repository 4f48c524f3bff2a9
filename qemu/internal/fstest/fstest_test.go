package fstest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
)

func pool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pool")
	r, err := cxl.Open(p, cxl.OpenOptions{Create: true, Size: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return p
}

// run does the whole check with goroutines standing in for VMs, each with
// its own mapping of the pool. It also returns an extra mount, made before
// the VMs started, for tests that change the tree afterwards.
func run(t *testing.T, p Params) (string, []Report, *daxfs.FS) {
	t.Helper()
	path := pool(t)
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := Format(r, p); err != nil {
		t.Fatal(err)
	}
	extra, err := daxfs.Open(r, daxfs.Options{Name: "extra"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { extra.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reps := make([]Report, p.VMs)
	errs := make([]error, p.VMs)
	var wg sync.WaitGroup
	for i := 0; i < p.VMs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := cxl.Open(path, cxl.OpenOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			reps[i], errs[i] = Run(ctx, r, i, func(string) {})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("vm%d: %v", i, err)
		}
	}
	return path, reps, extra
}

func TestConcurrentTreeMatchesReports(t *testing.T) {
	p := Params{VMs: 3, Own: 40, Common: 30, FileSize: 300}
	path, reps, fs := run(t, p)
	won := 0
	for _, r := range reps {
		won += len(r.CommonWon)
	}
	if won != p.Common {
		t.Fatalf("%d common creates won, want %d", won, p.Common)
	}
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := Check(r, p, reps)
	if err != nil {
		t.Fatal(err)
	}
	// 3 VMs x (40 - 10 deleted) own + 30 - 10 removed common.
	if s.Expected != 3*30+20 || s.Found != s.Expected {
		t.Fatalf("summary %+v", s)
	}

	fr, err := Fsck(r)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Files < uint64(s.Found) {
		t.Errorf("fsck counted %d files, the tree has %d entries", fr.Files, s.Found)
	}

	// A file nobody reports, a changed byte, a missing file: all caught.
	pp := fs.Paths(0, 0)
	if err := pp.WriteFile(Dir+"/stray", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pp.WriteFile(Dir+"/vm0-0", Content("own", 1, 0, p.FileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pp.Remove(Dir + "/vm1-0"); err != nil {
		t.Fatal(err)
	}
	_, err = Check(r, p, reps)
	for _, want := range []string{"stray", "vm0-0: ", "vm1-0: reported but missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("tampered tree: err = %v, want it to mention %q", err, want)
		}
	}
}

func TestExpectedRejectsDoubleWinners(t *testing.T) {
	p := Params{VMs: 2, Own: 0, Common: 3, FileSize: 64}
	reps := []Report{
		{Slot: 0, CommonWon: []int{0, 1, 2}, MovedWon: []int{0}, RemovedWon: []int{1}},
		{Slot: 1, CommonWon: []int{2}},
	}
	if _, err := Expected(p, reps); err == nil || !strings.Contains(err.Error(), "both vm0 and vm1") {
		t.Fatalf("err = %v", err)
	}
	reps[1].CommonWon = nil
	reps[0].MovedWon = nil
	if _, err := Expected(p, reps); err == nil || !strings.Contains(err.Error(), "no VM reports renaming") {
		t.Fatalf("err = %v", err)
	}
}

func TestContentDiffers(t *testing.T) {
	a, b := Content("own", 0, 1, 200), Content("own", 1, 0, 200)
	if string(a) == string(b) || len(a) != 200 {
		t.Fatal("contents collide")
	}
}

// TestOSOps drives the same phases through the kernel (here: a plain
// directory; in the VMs: a FUSE mount of daxfs).
func TestOSOps(t *testing.T) {
	p := Params{VMs: 2, Own: 20, Common: 15, FileSize: 100}
	path := pool(t)
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := Format(r, p); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Mkdir(root+Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	reps := make([]Report, p.VMs)
	errs := make([]error, p.VMs)
	var wg sync.WaitGroup
	for i := 0; i < p.VMs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			reps[i], errs[i] = Work(context.Background(), r, i, OSOps(root), nil, func(string) {})
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s, err := CheckDir(root, p, reps)
	if err != nil {
		t.Fatal(err)
	}
	if s.Found != 2*15+10 {
		t.Fatalf("summary %+v", s)
	}
}
