package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// twoMounts serves one region at two mountpoints from two processes.
func twoMounts(t *testing.T, coh Coherence) (a, b string) {
	t.Helper()
	requireFUSE(t)
	region := newRegion(t, 128<<20)
	a, b = mountDir(t), mountDir(t)
	serve(t, region, a, coh)
	serve(t, region, b, coh)
	return a, b
}

// TestTwoMountsCoherent: every change through A is seen through B as soon
// as the call through A returns: bytes, names, renames, attributes.
func TestTwoMountsCoherent(t *testing.T) {
	a, b := twoMounts(t, CoherenceZero)
	rng := rand.New(rand.NewPCG(1, 2))

	// Bytes written through A read back exactly through B, at once, for
	// sizes around page and request boundaries; an open descriptor on B
	// sees every rewrite.
	fb, err := os.Create(filepath.Join(a, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	rb, err := os.Open(filepath.Join(b, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	for _, n := range []int{1, 4095, 4096, 4097, 65536, 128<<10 + 1, 1 << 20, 3<<20 + 17} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := fb.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		if err := fb.Truncate(int64(n)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(b, "data"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, buf) {
			t.Fatalf("size %d: read through B differs from what A wrote (got %d bytes)", n, len(got))
		}
		got2 := make([]byte, n+10)
		k, _ := rb.ReadAt(got2, 0)
		if !bytes.Equal(got2[:k], buf) {
			t.Fatalf("size %d: open descriptor on B reads %d stale bytes", n, k)
		}
	}

	// Attributes: chmod, chown, utimes, truncate through A, stat through B.
	p := filepath.Join(a, "data")
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 777); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_000_000_000, 123456789) // after the truncate, which sets mtime
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(b, "data"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o640 || st.Uid != 1234 || st.Gid != 5678 || st.Size != 777 || st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != int64(mt.Nanosecond()) {
		t.Fatalf("stat through B: mode %o uid %d gid %d size %d mtime %d.%09d; want 640 1234 5678 777 %d.%09d",
			st.Mode&0o7777, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, mt.Unix(), mt.Nanosecond())
	}

	// Names: rename through A, stat through B sees the new name and not
	// the old; repeated so a cached name would be caught.
	for i := range 200 {
		from, to := filepath.Join(a, fmt.Sprintf("r%d", i)), filepath.Join(a, fmt.Sprintf("s%d", i))
		if err := os.WriteFile(from, []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		// B looks the old name up first, so its kernel has it cached
		// if it caches at all.
		if _, err := os.Stat(filepath.Join(b, fmt.Sprintf("r%d", i))); err != nil {
			t.Fatalf("B does not see %s created through A: %v", from, err)
		}
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(b, fmt.Sprintf("r%d", i))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rename %d: old name still visible through B: %v", i, err)
		}
		got, err := os.ReadFile(filepath.Join(b, fmt.Sprintf("s%d", i)))
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("rename %d: new name through B: %v %v", i, got, err)
		}
		// Rename over an existing name and unlink, both seen at once.
		if i%2 == 0 {
			if err := os.WriteFile(filepath.Join(a, "over"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Stat(filepath.Join(b, "over"))
			if err := os.Rename(to, filepath.Join(a, "over")); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(b, "over")); err != nil || len(got) != 1 || got[0] != byte(i) {
				t.Fatalf("rename over %d: through B: %q %v", i, got, err)
			}
		} else if err := os.Remove(to); err != nil {
			t.Fatal(err)
		} else if _, err := os.Stat(filepath.Join(b, fmt.Sprintf("s%d", i))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("unlink %d: still visible through B: %v", i, err)
		}
	}

	// Directories and symlinks: a directory replaced by a file of the same
	// name, seen through B at once.
	if err := os.Mkdir(filepath.Join(a, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(b, "d")); err != nil || !fi.IsDir() {
		t.Fatalf("mkdir through A, B: %v %v", fi, err)
	}
	if err := os.Remove(filepath.Join(a, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(a, "d")); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(b, "d")); err != nil || l != "target" {
		t.Fatalf("symlink through A replaced a directory; B reads %q %v", l, err)
	}

	// O_APPEND from both mounts: no append lands on another.
	fa, err := os.OpenFile(filepath.Join(a, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb2, err := os.OpenFile(filepath.Join(b, "log"), os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fb2.Close()
	for i := range 100 {
		f := fa
		if i%2 == 1 {
			f = fb2
		}
		if _, err := f.Write([]byte{byte('a' + i%26)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(a, "log")); len(got) != 100 {
		t.Fatalf("100 appends through two mounts left %d bytes", len(got))
	}
}

// TestMkdirRace: mkdir of one name raced through two mounts: exactly one
// succeeds, the other gets EEXIST.
func TestMkdirRace(t *testing.T) {
	a, b := twoMounts(t, CoherenceZero)
	const rounds = 300
	for i := range rounds {
		name := fmt.Sprintf("x%d", i)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, root := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[j] = syscall.Mkdir(filepath.Join(root, name), 0o755)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, syscall.EEXIST):
			default:
				t.Fatalf("round %d: mkdir: %v", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 racing mkdirs succeeded (%v)", i, ok, errs)
		}
	}
	ents, err := os.ReadDir(b)
	if err != nil || len(ents) != rounds {
		t.Fatalf("B lists %d entries, want %d: %v", len(ents), rounds, err)
	}
}

// TestCounterMode checks the alternative coherence mode: names are cached
// and invalidated from the region's change counter, so another mount's
// rename shows up within a few watch intervals (not necessarily at once).
func TestCounterMode(t *testing.T) {
	a, b := twoMounts(t, CoherenceCounter)
	for i := range 50 {
		from, to := filepath.Join(a, fmt.Sprintf("r%d", i)), filepath.Join(a, fmt.Sprintf("s%d", i))
		if err := os.WriteFile(from, []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(b, fmt.Sprintf("r%d", i))); err != nil {
			t.Fatalf("B does not see a new name (negative entries are never cached): %v", err)
		}
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := os.Stat(filepath.Join(b, fmt.Sprintf("r%d", i)))
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rename %d: B still sees the old name after 10s: %v", i, err)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}
