package daxfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// regionPath returns a fresh region file under /dev/shm (tmpfs, like the
// real thing) that is removed when the test ends.
func regionPath(t testing.TB) string {
	t.Helper()
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "daxfs-test-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name()
}

func mkfsAt(t testing.TB, path string, size int64, lease time.Duration) {
	t.Helper()
	mkfsHosts(t, path, size, lease, 16)
}

func mkfsHosts(t testing.TB, path string, size int64, lease time.Duration, hosts int) {
	t.Helper()
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := Mkfs(r, MkfsOptions{MaxHosts: hosts, Lease: lease}); err != nil {
		t.Fatal(err)
	}
}

func openFS(t testing.TB, path string) *FS {
	t.Helper()
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Open(r, Options{Name: t.Name()})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close(); r.Close() })
	return fs
}

func newFS(t testing.TB, size int64) *FS {
	t.Helper()
	p := regionPath(t)
	mkfsAt(t, p, size, 2*time.Second)
	return openFS(t, p)
}

func TestCreateLookupReaddir(t *testing.T) {
	fs := newFS(t, 32<<20)
	a, err := fs.Create(RootIno, "hello", 0o644, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsRegular() || a.Nlink != 1 || a.Uid != 1000 || a.Mode&0o777 != 0o644 {
		t.Fatalf("attr %+v", a)
	}
	if _, err := fs.Create(RootIno, "hello", 0o644, 0, 0); !errors.Is(err, ErrExist) || !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("second create: %v", err)
	}
	b, err := fs.Lookup(RootIno, "hello")
	if err != nil || b.Ino != a.Ino {
		t.Fatalf("lookup %+v %v", b, err)
	}
	if _, err := fs.Lookup(RootIno, "nope"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("lookup missing: %v", err)
	}
	d, err := fs.Mkdir(RootIno, "dir", 0o755, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Symlink(d.Ino, "ln", "../hello", 0, 0); err != nil {
		t.Fatal(err)
	}
	ents, err := fs.ReadDir(RootIno)
	if err != nil {
		t.Fatal(err)
	}
	names := entNames(ents)
	if fmt.Sprint(names) != "[dir hello]" {
		t.Fatalf("readdir %v", names)
	}
	root, _ := fs.GetAttr(RootIno)
	if root.Nlink != 3 {
		t.Fatalf("root nlink %d, want 3", root.Nlink)
	}
	p := fs.Paths(0, 0)
	if tgt, err := p.Readlink("/dir/ln"); err != nil || tgt != "../hello" {
		t.Fatalf("readlink %q %v", tgt, err)
	}
	if st, err := p.Stat("/dir/ln"); err != nil || st.Ino != a.Ino {
		t.Fatalf("stat through symlink %+v %v", st, err)
	}
	if err := fs.Rmdir(RootIno, "dir"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("rmdir non-empty: %v", err)
	}
	if err := fs.Unlink(d.Ino, "ln"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rmdir(RootIno, "dir"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Unlink(RootIno, "hello"); err != nil {
		t.Fatal(err)
	}
	checkClean(t, fs)
	if ents, _ := fs.ReadDir(RootIno); len(ents) != 0 {
		t.Fatalf("root not empty: %v", ents)
	}
	if root, _ := fs.GetAttr(RootIno); root.Nlink != 2 {
		t.Fatalf("root nlink %d", root.Nlink)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "x\x00y", string(bytes.Repeat([]byte("n"), 256))} {
		if _, err := fs.Create(RootIno, bad, 0o644, 0, 0); err == nil {
			t.Errorf("created bad name %q", bad)
		}
	}
}

func entNames(ents []DirEntry) []string {
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

func TestReadWriteHolesTruncate(t *testing.T) {
	fs := newFS(t, 64<<20)
	p := fs.Paths(0, 0)
	f, err := p.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Write far out: everything before is a hole.
	data := bytes.Repeat([]byte("abcdefgh"), 1000)
	if _, err := f.WriteAt(data, 3<<20+100); err != nil {
		t.Fatal(err)
	}
	if f.Size() != 3<<20+100+8000 {
		t.Fatalf("size %d", f.Size())
	}
	buf := make([]byte, 1<<20)
	if n, err := f.ReadAt(buf, 1<<20); err != nil || n != len(buf) || !allZero(buf) {
		t.Fatalf("hole read n=%d err=%v zero=%v", n, err, allZero(buf))
	}
	got := make([]byte, 8000)
	if _, err := f.ReadAt(got, 3<<20+100); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data read back wrong: %v", err)
	}
	// Truncate into the data, then extend: no old byte comes back.
	if err := f.Truncate(3<<20 + 104); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 20); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 8000)
	if _, err := f.ReadAt(got, 3<<20+100); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:4], data[:4]) || !allZero(got[4:]) {
		t.Fatalf("truncate then extend re-exposed bytes: %q", got[:16])
	}
	// Read past EOF.
	if n, err := f.ReadAt(buf[:10], 4<<20); n != 0 || err != io.EOF {
		t.Fatalf("read at EOF: %d %v", n, err)
	}
	if n, err := f.ReadAt(buf[:10], 4<<20-4); n != 4 || err != io.EOF {
		t.Fatalf("short read at EOF: %d %v", n, err)
	}
	// Truncate to zero frees the pages.
	before := fs.Statfs().UsedBytes
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if f.Stat().Blocks != 0 {
		t.Fatalf("blocks after truncate 0: %d", f.Stat().Blocks)
	}
	for range 4 {
		fs.reclaim()
	}
	if after := fs.Statfs().UsedBytes; after >= before {
		t.Fatalf("truncate freed nothing: used %d -> %d", before, after)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestRenameReplaceAndNoReplace(t *testing.T) {
	fs := newFS(t, 32<<20)
	p := fs.Paths(0, 0)
	must(t, p.WriteFile("/a", []byte("A"), 0o644))
	must(t, p.WriteFile("/b", []byte("B"), 0o644))
	must(t, p.Mkdir("/d", 0o755))
	if err := fs.Rename(RootIno, "a", RootIno, "b", RenameNoReplace); !errors.Is(err, ErrExist) {
		t.Fatalf("noreplace: %v", err)
	}
	must(t, p.Rename("/a", "/b"))
	if b, err := p.ReadFile("/b"); err != nil || string(b) != "A" {
		t.Fatalf("after replace: %q %v", b, err)
	}
	if _, err := p.Stat("/a"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("source still there: %v", err)
	}
	must(t, p.Rename("/b", "/d/c"))
	if b, err := p.ReadFile("/d/c"); err != nil || string(b) != "A" {
		t.Fatalf("moved file: %q %v", b, err)
	}
	must(t, p.MkdirAll("/x/y/z", 0o755))
	if err := p.Rename("/x", "/x/y/z/w"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rename into own subtree: %v", err)
	}
	must(t, p.Rename("/x/y", "/d/y"))
	if a, err := p.Stat("/d/y/z"); err != nil || !a.IsDir() {
		t.Fatalf("moved dir: %v", err)
	}
	if a, _ := p.Lookup2("/d/y", ".."); a.Ino == 0 {
		t.Fatal("no parent")
	}
	d, _ := p.Stat("/d")
	if d.Nlink != 3 {
		t.Fatalf("/d nlink %d, want 3", d.Nlink)
	}
	x, _ := p.Stat("/x")
	if x.Nlink != 2 {
		t.Fatalf("/x nlink %d, want 2", x.Nlink)
	}
	// Replacing a non-empty directory fails; an empty one works.
	must(t, p.Mkdir("/e", 0o755))
	if err := p.Rename("/e", "/d"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("rename over non-empty dir: %v", err)
	}
	must(t, p.Rename("/d", "/x/dd"))
	must(t, p.Rename("/e", "/x/dd/y/z"))
	// Hard links: rename of one link onto the other is a no-op.
	must(t, p.WriteFile("/h", []byte("H"), 0o644))
	must(t, p.Link("/h", "/h2"))
	must(t, p.Rename("/h", "/h2"))
	if a, _ := p.Stat("/h"); a.Nlink != 2 {
		t.Fatalf("nlink after same-inode rename: %d", a.Nlink)
	}
	checkClean(t, fs)
}

// Lookup2 is a test helper resolving name inside path.
func (p *Paths) Lookup2(path, name string) (Attr, error) {
	a, err := p.Stat(path)
	if err != nil {
		return Attr{}, err
	}
	return p.fs.Lookup(a.Ino, name)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnlinkOpenFileKeepsData(t *testing.T) {
	fs := newFS(t, 32<<20)
	p := fs.Paths(0, 0)
	must(t, p.WriteFile("/f", bytes.Repeat([]byte("x"), 10000), 0o644))
	f, err := p.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	must(t, p.Remove("/f"))
	buf := make([]byte, 10000)
	if n, err := f.ReadAt(buf, 0); n != 10000 || (err != nil && err != io.EOF) || buf[9999] != 'x' {
		t.Fatalf("read unlinked open file: %d %v", n, err)
	}
	if f.Stat().Nlink != 0 {
		t.Fatal("nlink not 0")
	}
	used := fs.Statfs().UsedBytes
	must(t, f.Close())
	for range 4 {
		fs.reclaim()
	}
	if fs.Statfs().UsedBytes >= used {
		t.Fatalf("closing an unlinked file freed nothing (%d -> %d)", used, fs.Statfs().UsedBytes)
	}
}

func TestViewZeroCopy(t *testing.T) {
	fs := newFS(t, 32<<20)
	p := fs.Paths(0, 0)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	must(t, p.WriteFile("/v", data, 0o644))
	f, _ := p.Open("/v")
	defer f.Close()
	v, err := f.View(4090)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Bytes, data[4090:4096]) {
		t.Fatalf("view %q", v.Bytes)
	}
	v.Release()
	v, err = f.View(8192)
	if err != nil || v.Len() != len(data)-8192 {
		t.Fatalf("last view len %d err %v", v.Len(), err)
	}
	v.Release()
	if _, err := f.View(int64(len(data))); err != io.EOF {
		t.Fatalf("view at EOF: %v", err)
	}
}

func TestStatfsTracksUse(t *testing.T) {
	fs := newFS(t, 32<<20)
	s0 := fs.Statfs()
	for i := range 100 {
		if _, err := fs.Create(RootIno, fmt.Sprint("f", i), 0o644, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	s1 := fs.Statfs()
	if d := s0.FreeInodes - s1.FreeInodes; d < 90 || d > 110 {
		t.Fatalf("100 creates moved free inodes by %d", d)
	}
	if s1.FreeBytes >= s0.FreeBytes {
		t.Fatal("free bytes did not shrink")
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk")
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Open(r, Options{}); err == nil {
		t.Fatal("opened an unformatted region")
	}
}

func checkClean(t testing.TB, fs *FS) {
	t.Helper()
	rep := fs.Check()
	for _, p := range rep.Problems {
		t.Log(p)
	}
	if !rep.OK() {
		t.Fatalf("check found %d severe problems", rep.Severe())
	}
}

// A read-only mount of a read-only mapping reads everything and changes
// nothing (any store would fault).
func TestReadOnlyMount(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 32<<20, 2*time.Second)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.MkdirAll("/a/b", 0o755))
	must(t, p.WriteFile("/a/b/f", []byte("hello"), 0o644))
	must(t, p.WriteFile("/a/gone", []byte("x"), 0o644))
	must(t, p.Remove("/a/gone"))
	r, err := cxl.Open(path, cxl.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ro, err := Open(r, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rp := ro.Paths(0, 0)
	if b, err := rp.ReadFile("/a/b/f"); err != nil || string(b) != "hello" {
		t.Fatalf("read-only read: %q %v", b, err)
	}
	if ents, err := rp.ReadDir("/a"); err != nil || len(ents) != 1 {
		t.Fatalf("read-only readdir: %v %v", ents, err)
	}
	if err := rp.WriteFile("/x", nil, 0o644); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write on a read-only mount: %v", err)
	}
}
