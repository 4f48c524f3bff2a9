package daxfs

import (
	"strings"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
)

func openRO(t testing.TB, path string) *FS {
	t.Helper()
	r, err := cxl.Open(path, cxl.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(r, Options{ReadOnly: true})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close(); r.Close() })
	return fs
}

func hasProblem(rep *CheckReport, sub string) bool {
	for _, p := range rep.Problems {
		if strings.Contains(p.What, sub) {
			return true
		}
	}
	return false
}

// A healthy region, after a workload and a clean close, checks clean.
func TestCheckCleanAfterClose(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 16<<20, time.Second)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.MkdirAll("/a/b", 0o755))
	must(t, p.WriteFile("/a/f", make([]byte, 3*BlockSize), 0o644))
	must(t, p.Symlink("/a/f", "/s"))
	must(t, p.Remove("/a/f"))
	fs.Close()
	if rep := openRO(t, path).Check(); len(rep.Problems) != 0 {
		t.Fatalf("healthy region: %v", rep.Problems)
	}
}

// fsck detects and repairs injected damage: a dangling dirent, a leaked
// pool object and the stale records of a dead host.
func TestRepairInjectedDamage(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 16<<20, 200*time.Millisecond)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.MkdirAll("/a", 0o755))
	must(t, p.WriteFile("/a/keep", []byte("keep"), 0o644))
	must(t, p.WriteFile("/a/victim", []byte("victim"), 0o644))
	// Dangling dirent: the inode entry vanishes from its chain, the name
	// stays.
	a, _ := p.Stat("/a/victim")
	in, err := fs.inode(a.Ino)
	must(t, err)
	fs.r.Store(in+inState, 1)
	fs.mark(in, inNext)
	fs.find(fs.bucketFor(a.Ino), inNext, false, func(uint64) (bool, error) { return false, nil })
	// Leaked pool object: allocated, never published.
	if _, err := fs.alloc(inodeClass); err != nil {
		t.Fatal(err)
	}
	// Stale records of a dead host: an intent in flight and an epoch
	// announcement, then the host dies.
	g := fs.enter()
	d, err := fs.newDirent(RootIno, "ghost", childWord(999999, modeReg))
	must(t, err)
	g.setIntent(intentCreate, d, 0, 0, 0)
	fs.Abandon()
	time.Sleep(300 * time.Millisecond)

	before := openRO(t, path).Check()
	for _, want := range []string{"points at missing inode", "leaked", "left intent"} {
		if !hasProblem(before, want) {
			t.Errorf("check does not report %q: %v", want, before.Problems)
		}
	}
	fs2 := openFS(t, path)
	rr, err := fs2.Repair()
	must(t, err)
	t.Logf("fixed: %q", rr.Fixed)
	if len(rr.After.Problems) != 0 {
		t.Fatalf("after repair: %v", rr.After.Problems)
	}
	p2 := fs2.Paths(0, 0)
	if b, err := p2.ReadFile("/a/keep"); err != nil || string(b) != "keep" {
		t.Fatalf("/a/keep after repair: %q %v", b, err)
	}
	if _, err := p2.Stat("/a/victim"); err == nil {
		t.Fatal("dangling name still resolves")
	}
	// The repaired region works and stays clean.
	must(t, p2.WriteFile("/a/victim", []byte("again"), 0o644))
	fs2.Close()
	if rep := openRO(t, path).Check(); len(rep.Problems) != 0 {
		t.Fatalf("after repair and use: %v", rep.Problems)
	}
}

// Repair on a split region with overlay changes leaves it clean.
func TestRepairBaseRegion(t *testing.T) {
	src := smallTree(t)
	path, _, _ := mkfsTree(t, src, ModeSplit)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.Remove("/a/b/c"))
	must(t, p.WriteFile("/a/small", []byte("x"), 0o644))
	must(t, p.WriteFile("/a/new", []byte("y"), 0o644))
	rr, err := fs.Repair()
	must(t, err)
	if len(rr.Before.Problems) != 0 || len(rr.After.Problems) != 0 {
		t.Fatalf("before %v after %v", rr.Before.Problems, rr.After.Problems)
	}
	if b, _ := p.ReadFile("/a/small"); string(b) != "x" {
		t.Fatalf("after repair /a/small = %q", b)
	}
}
