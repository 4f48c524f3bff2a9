package daxfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

// genTree writes a deterministic tree of about n entries under dir: empty,
// small and multi-MiB files, deep directories, odd but legal names,
// symlinks (relative, absolute, dangling), hard links, varied modes,
// owners and times.
func genTree(t testing.TB, dir string, n int, bigFiles int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	// File contents are slices of one random pool (no per-byte loops:
	// they crawl under the race detector).
	pool := make([]byte, 8*BlockSize)
	rand.NewChaCha8([32]byte{1}).Read(pool)
	odd := []string{"sp ace", "tab\tname", "new\nline", "ünïcödé-ファイル", "-dash", "..dots", "...", ".hidden",
		"back\\slash", "q\"uote", "star*", "q?mark", "emoji-😀", strings.Repeat("L", 255), "#hash", "%pct", "~tilde", "a:b", "\x01ctl"}
	dirs := []string{dir}
	// A deep chain.
	deep := dir
	for i := range 40 {
		deep = filepath.Join(deep, fmt.Sprintf("d%02d", i))
		must(t, os.Mkdir(deep, 0o755))
		dirs = append(dirs, deep)
	}
	var files []string
	count := 41
	for count < n {
		parent := dirs[rng.IntN(len(dirs))]
		var name string
		if rng.IntN(20) == 0 {
			name = odd[rng.IntN(len(odd))] + fmt.Sprint(count)
			if len(name) > 255 {
				name = name[:255]
			}
		} else {
			name = fmt.Sprintf("e%05d", count)
		}
		p := filepath.Join(parent, name)
		switch k := rng.IntN(100); {
		case k < 10:
			if os.Mkdir(p, os.FileMode(0o700|rng.IntN(0o100))) != nil {
				continue
			}
			dirs = append(dirs, p)
		case k < 20:
			if os.WriteFile(p, nil, 0o644) != nil {
				continue
			}
			files = append(files, p)
		case k < 75:
			n := rng.IntN(3 * BlockSize)
			o := rng.IntN(len(pool) - n)
			b := pool[o : o+n]
			if os.WriteFile(p, b, os.FileMode(0o400|rng.IntN(0o400))) != nil {
				continue
			}
			files = append(files, p)
		case k < 85:
			var target string
			switch rng.IntN(3) {
			case 0:
				target = "../" + name
			case 1:
				target = "/abs/target/" + name
			default:
				target = "dangling-" + fmt.Sprint(count)
			}
			if os.Symlink(target, p) != nil {
				continue
			}
		case k < 92 && len(files) > 0:
			if os.Link(files[rng.IntN(len(files))], p) != nil {
				continue
			}
		default:
			if os.WriteFile(p, []byte(name), 0o644) != nil {
				continue
			}
			files = append(files, p)
		}
		if rng.IntN(10) == 0 {
			os.Lchown(p, rng.IntN(5000), rng.IntN(5000))
		}
		ts := time.Unix(int64(1e9+rng.IntN(1e8)), int64(rng.IntN(1e9)))
		os.Chtimes(p, ts, ts)
		count++
	}
	for i := range bigFiles {
		b := bytes.Repeat(pool[i*100:i*100+4093], ((2+i)<<20)/4093+1)
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("big%d", i)), b, 0o640))
	}
	must(t, os.Mkdir(filepath.Join(dir, "emptydir"), 0o755))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
}

// mkfsTree formats a region of mode from dir and returns its path (and the
// backing file's in split mode).
func mkfsTree(t testing.TB, dir string, mode Mode) (string, string, *BaseTree) {
	t.Helper()
	tree, err := ScanTree(dir, mode)
	if err != nil {
		t.Fatal(err)
	}
	path := regionPath(t)
	var backing string
	if mode == ModeSplit {
		backing = path + ".backing"
		t.Cleanup(func() { os.Remove(backing) })
	}
	size := int64(tree.ImageSize()) + 48<<20
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := Mkfs(r, MkfsOptions{MaxHosts: 8, Lease: 2 * time.Second, Tree: tree, Backing: backing}); err != nil {
		t.Fatal(err)
	}
	return path, backing, tree
}

// compareTree checks that every entry under dir reads back equal through p.
func compareTree(t testing.TB, p *Paths, dir string, times bool) int {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(path string, st os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = "/" + rel
		if rel == "/." {
			rel = "/"
		}
		n++
		a, err := p.Lstat(rel)
		if err != nil {
			t.Fatalf("lstat %q: %v", rel, err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if a.Mode != uint32(sys.Mode) || a.Uid != sys.Uid || a.Gid != sys.Gid {
			t.Fatalf("%q: mode %o uid %d gid %d, want %o %d %d", rel, a.Mode, a.Uid, a.Gid, sys.Mode, sys.Uid, sys.Gid)
		}
		if !st.IsDir() && a.Nlink != uint32(sys.Nlink) {
			t.Fatalf("%q: nlink %d, want %d", rel, a.Nlink, sys.Nlink)
		}
		if times && a.Mtime.UnixNano() != sys.Mtim.Nano() {
			t.Fatalf("%q: mtime %v, want %v", rel, a.Mtime, st.ModTime())
		}
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			want, _ := os.Readlink(path)
			got, err := p.Readlink(rel)
			if err != nil || got != want {
				t.Fatalf("readlink %q = %q %v, want %q", rel, got, err, want)
			}
		case st.Mode().IsRegular():
			want, _ := os.ReadFile(path)
			got, err := p.ReadFile(rel)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %q: %d bytes %v, want %d bytes", rel, len(got), err, len(want))
			}
		case st.IsDir():
			ents, err := p.ReadDir(rel)
			if err != nil {
				t.Fatalf("readdir %q: %v", rel, err)
			}
			want, _ := os.ReadDir(path)
			if len(ents) != len(want) {
				t.Fatalf("readdir %q: %d entries, want %d", rel, len(ents), len(want))
			}
			for i := range want {
				if ents[i].Name != want[i].Name() {
					t.Fatalf("readdir %q: entry %d is %q, want %q", rel, i, ents[i].Name, want[i].Name())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func treeSize() int {
	if os.Getenv("DAXFS_HEAVY") != "" {
		return 100000
	}
	return 10000
}

// shmDir is a temporary directory on tmpfs (like the regions), removed
// when the test ends.
func shmDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	d, err := os.MkdirTemp("/dev/shm", "daxfs-tree-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestBaseRoundTrip(t *testing.T) {
	src := shmDir(t)
	genTree(t, src, treeSize(), 2)
	for _, mode := range []Mode{ModeStatic, ModeSplit} {
		t.Run(mode.String(), func(t *testing.T) {
			path, _, tree := mkfsTree(t, src, mode)
			if tree.Entries() < 10000 {
				t.Fatalf("tree has %d entries, want >= 10000", tree.Entries())
			}
			fs := openFS(t, path)
			if got := fs.Superblock().Mode; got != mode {
				t.Fatalf("mode %v", got)
			}
			n := compareTree(t, fs.Paths(0, 0), src, true)
			t.Logf("%v: %d entries, %d inodes, %d hard links, %d MiB of files compared", mode, n, tree.Inodes(), tree.HardLinks, tree.FileBytes>>20)
			if mode == ModeStatic {
				if err := fs.Paths(0, 0).WriteFile("/new", []byte("x"), 0o644); !errors.Is(err, ErrReadOnly) {
					t.Fatalf("write to a static image: %v", err)
				}
				if err := fs.Paths(0, 0).Remove("/big0"); !errors.Is(err, ErrReadOnly) {
					t.Fatalf("remove in a static image: %v", err)
				}
			}
			rep := fs.Check()
			if !rep.OK() {
				t.Fatalf("check: %v", rep.Problems)
			}
			if mode == ModeSplit {
				modifyFromTwoProcesses(t, fs, path, src)
			}
		})
	}
}

// modifyFromTwoProcesses has two processes write into the same base files
// at once (both race to copy each one into the overlay), applies the same
// writes to the source tree, and compares again.
func modifyFromTwoProcesses(t *testing.T, fs *FS, region, src string) {
	var list []string
	filepath.Walk(src, func(path string, st os.FileInfo, err error) error {
		if err == nil && st.Mode().IsRegular() && st.Size() > 0 && len(list) < 200 {
			rel, _ := filepath.Rel(src, path)
			list = append(list, "/"+rel)
		}
		return nil
	})
	lf := filepath.Join(t.TempDir(), "list")
	must(t, os.WriteFile(lf, []byte(strings.Join(list, "\x00")), 0o644))
	c0 := proctest.Start(t, "base-writer", region, "0", lf)
	c1 := proctest.Start(t, "base-writer", region, "1", lf)
	must(t, c0.Wait())
	must(t, c1.Wait())
	for _, rel := range list {
		path := filepath.Join(src, rel)
		b, err := os.ReadFile(path)
		must(t, err)
		for id := range 2 {
			applyBaseWrite(b, id)
		}
		st, _ := os.Stat(path)
		must(t, os.WriteFile(path, b, st.Mode()))
	}
	n := compareTree(t, fs.Paths(0, 0), src, false)
	t.Logf("after two processes wrote %d base files: %d entries compared", len(list), n)
	rep := fs.Check()
	if !rep.OK() {
		t.Fatalf("check after writes: %v", rep.Problems)
	}
}

// applyBaseWrite is writer id's change to a file's bytes.
func applyBaseWrite(b []byte, id int) {
	off := len(b) * (id + 1) / 3
	for i := 0; i < min(10, len(b)/3); i++ { // the writers' ranges are disjoint
		b[off+i] = byte('a' + id)
	}
}

func init() {
	proctest.Register("base-writer", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		id := atoi(args[1])
		list, err := os.ReadFile(args[2])
		if err != nil {
			return err
		}
		p := fs.Paths(0, 0)
		for _, rel := range strings.Split(string(list), "\x00") {
			f, err := p.OpenFile(rel, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			size := int(f.Size())
			b := make([]byte, size)
			applyBaseWrite(b, id)
			off := size * (id + 1) / 3
			end := off + min(10, size/3)
			if _, err := f.WriteAt(b[off:end], int64(off)); err != nil {
				return err
			}
			f.Close()
		}
		return nil
	})
}

// smallTree is a tiny tree for the overlay tests.
func smallTree(t testing.TB) string {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "a/b"), 0o755))
	big := make([]byte, 5*BlockSize+100)
	for i := range big {
		big[i] = byte(i%251 + 1)
	}
	must(t, os.WriteFile(filepath.Join(src, "a/big"), big, 0o644))
	must(t, os.WriteFile(filepath.Join(src, "a/small"), []byte("hello base"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "a/b/c"), []byte("ccc"), 0o600))
	must(t, os.Link(filepath.Join(src, "a/small"), filepath.Join(src, "hard")))
	must(t, os.Symlink("a/small", filepath.Join(src, "link")))
	return src
}

func TestBaseCopyOnWrite(t *testing.T) {
	src := smallTree(t)
	path, _, _ := mkfsTree(t, src, ModeSplit)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	big, _ := os.ReadFile(filepath.Join(src, "a/big"))

	// Partial-page write in the middle: the rest of the page and the
	// other pages still come from the base.
	f, err := p.OpenFile("/a/big", os.O_RDWR, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("XYZ"), BlockSize+10)
	must(t, err)
	copy(big[BlockSize+10:], "XYZ")
	got, _ := p.ReadFile("/a/big")
	if !bytes.Equal(got, big) {
		t.Fatal("read after a partial write differs")
	}
	// Truncate into page 2 then re-extend: base bytes past the cut never
	// come back.
	must(t, f.Truncate(2*BlockSize+5))
	must(t, f.Truncate(5*BlockSize))
	want := append(append([]byte(nil), big[:2*BlockSize+5]...), make([]byte, 3*BlockSize-5)...)
	got, _ = p.ReadFile("/a/big")
	if !bytes.Equal(got, want) {
		t.Fatal("base bytes reappeared after truncate and re-extend")
	}
	f.Close()
	// Hard links share the materialised inode.
	must(t, p.WriteFile("/a/small", []byte("changed"), 0o644))
	if b, _ := p.ReadFile("/hard"); string(b) != "changed" {
		t.Fatalf("hard link reads %q", b)
	}
	if b, _ := p.ReadFile("/link"); string(b) != "changed" {
		t.Fatalf("symlink reads %q", b)
	}

	// Delete and re-create base names; readdir never lists one twice.
	must(t, p.Remove("/a/b/c"))
	if _, err := p.Stat("/a/b/c"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("stat removed base file: %v", err)
	}
	must(t, p.Remove("/a/b"))
	if err := p.Remove("/a/b"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
	must(t, p.Mkdir("/a/b", 0o700))
	must(t, p.WriteFile("/a/b/c", []byte("new c"), 0o644))
	if err := p.Mkdir("/a/b", 0o700); !errors.Is(err, ErrExist) {
		t.Fatalf("mkdir over a re-created base name: %v", err)
	}
	must(t, p.WriteFile("/a/new", []byte("n"), 0o644))
	if err := p.Mkdir("/a/small", 0o700); !errors.Is(err, ErrExist) {
		t.Fatalf("mkdir over a base name: %v", err)
	}
	ents, err := p.ReadDir("/a")
	must(t, err)
	names := entNames(ents)
	if fmt.Sprint(names) != "[b big new small]" {
		t.Fatalf("readdir /a: %v", names)
	}
	if b, _ := p.ReadFile("/a/b/c"); string(b) != "new c" {
		t.Fatalf("re-created file reads %q", b)
	}
	// Rename a base name away and back over a whiteout.
	must(t, p.Rename("/a/small", "/moved"))
	if _, err := p.Stat("/a/small"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("renamed base name still there: %v", err)
	}
	must(t, p.Rename("/moved", "/a/small"))
	if b, _ := p.ReadFile("/a/small"); string(b) != "changed" {
		t.Fatalf("renamed back reads %q", b)
	}
	// Move a base directory into another base directory whose ancestors
	// the overlay has never touched, and back; and not under itself.
	if err := p.Rename("/a", "/a/b/inside"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rename a directory under itself: %v", err)
	}
	// Rename over a base name replaces it.
	must(t, p.Rename("/a/new", "/hard"))
	a, _ := p.Stat("/a/small")
	if a.Nlink != 1 {
		t.Fatalf("nlink after replacing a hard link: %d", a.Nlink)
	}
	ents, _ = p.ReadDir("/")
	if fmt.Sprint(entNames(ents)) != "[a hard link]" {
		t.Fatalf("readdir /: %v", entNames(ents))
	}
	// New inode numbers follow the base's.
	st, _ := p.Stat("/a/b")
	if st.Ino <= fs.Superblock().BaseInodes {
		t.Fatalf("new directory has base inode number %d", st.Ino)
	}
	rep := fs.Check()
	if !rep.OK() {
		t.Fatalf("check: %v", rep.Problems)
	}
	// A second mount sees the same.
	fs2 := openFS(t, path)
	ents, _ = fs2.Paths(0, 0).ReadDir("/a")
	if fmt.Sprint(entNames(ents)) != "[b big small]" {
		t.Fatalf("second mount readdir /a: %v", entNames(ents))
	}
}

// TestGenTree writes the round-trip tree to $DAXFS_GENTREE for measuring
// mkfs against cp -a (docs: the base image numbers); skipped otherwise.
func TestGenTree(t *testing.T) {
	dir := os.Getenv("DAXFS_GENTREE")
	if dir == "" {
		t.Skip("set DAXFS_GENTREE=DIR to write the tree")
	}
	must(t, os.MkdirAll(dir, 0o755))
	genTree(t, dir, treeSize(), 2)
}

func init() {
	// base-churn: delete, re-create, rename and write base names at random
	// until killed.
	proctest.Register("base-churn", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		p := fs.Paths(0, 0)
		for g := range 2 {
			go func() {
				rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(g)))
				for {
					d, f := rng.IntN(4), rng.IntN(50)
					name := fmt.Sprintf("/d%d/f%02d", d, f)
					switch rng.IntN(4) {
					case 0:
						p.Remove(name)
					case 1:
						p.WriteFile(name, []byte(name), 0o644)
					case 2:
						p.Rename(name, fmt.Sprintf("/d%d/f%02d", rng.IntN(4), rng.IntN(50)))
					default:
						if fh, err := p.OpenFile(name, os.O_RDWR, 0); err == nil {
							fh.WriteAt([]byte("x"), int64(rng.IntN(3*BlockSize)))
							fh.Close()
						}
					}
				}
			}()
		}
		select {}
	})
}

// Processes changing base names are killed at random moments; the
// survivors reap them and the region stays consistent: no name twice,
// no severe problem.
func TestBaseKill9(t *testing.T) {
	src := shmDir(t)
	for d := range 4 {
		must(t, os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%d", d)), 0o755))
		for f := range 50 {
			must(t, os.WriteFile(filepath.Join(src, fmt.Sprintf("d%d/f%02d", d, f)), bytes.Repeat([]byte{byte(f)}, f*100), 0o644))
		}
	}
	tree, err := ScanTree(src, ModeSplit)
	must(t, err)
	path := regionPath(t)
	backing := path + ".backing"
	t.Cleanup(func() { os.Remove(backing) })
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: 64 << 20})
	must(t, err)
	must(t, Mkfs(r, MkfsOptions{MaxHosts: 16, Lease: 300 * time.Millisecond, Tree: tree, Backing: backing}))
	r.Close()
	for trial := range 6 {
		c := proctest.Start(t, "base-churn", path)
		time.Sleep(time.Duration(100+trial*50) * time.Millisecond)
		c.Kill()
		c.Wait()
	}
	time.Sleep(400 * time.Millisecond)
	fs := openFS(t, path)
	fs.ReapDead()
	for d := range 4 {
		ents, err := fs.Paths(0, 0).ReadDir(fmt.Sprintf("/d%d", d))
		must(t, err)
		seen := map[string]bool{}
		for _, e := range ents {
			if seen[e.Name] {
				t.Fatalf("/d%d lists %q twice", d, e.Name)
			}
			seen[e.Name] = true
			if _, err := fs.Paths(0, 0).ReadFile(fmt.Sprintf("/d%d/%s", d, e.Name)); err != nil {
				t.Fatalf("read /d%d/%s: %v", d, e.Name, err)
			}
		}
	}
	rep := fs.Check()
	if !rep.OK() {
		t.Fatalf("check after kills: %v", rep.Problems)
	}
	// What the killed hosts left (carve tails, at most) fsck gives back.
	rr, err := fs.Repair()
	must(t, err)
	if len(rr.After.Problems) != 0 {
		t.Fatalf("after repair: %v (fixed %q)", rr.After.Problems, rr.Fixed)
	}
}

// A base directory moves under base directories the overlay never touched.
func TestBaseRenameDirectory(t *testing.T) {
	src := shmDir(t)
	must(t, os.MkdirAll(filepath.Join(src, "p/q/r"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "s/t"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "s/t/f"), []byte("f"), 0o644))
	path, _, _ := mkfsTree(t, src, ModeSplit)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.Rename("/s", "/p/q/r/s"))
	if b, err := p.ReadFile("/p/q/r/s/t/f"); err != nil || string(b) != "f" {
		t.Fatalf("moved file reads %q %v", b, err)
	}
	if err := p.Rename("/p", "/p/q/r/s/t/p"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("move a directory under itself: %v", err)
	}
	if a, err := fs.Lookup(mustIno(t, p, "/p/q/r/s"), ".."); err != nil || a.Ino != mustIno(t, p, "/p/q/r") {
		t.Fatalf(".. of the moved directory: %+v %v", a, err)
	}
	ents, _ := p.ReadDir("/")
	if fmt.Sprint(entNames(ents)) != "[p]" {
		t.Fatalf("readdir / = %v", entNames(ents))
	}
	if rep := fs.Check(); !rep.OK() || len(rep.Problems) != 0 {
		t.Fatalf("check: %v", rep.Problems)
	}
}

func mustIno(t *testing.T, p *Paths, path string) Ino {
	t.Helper()
	a, err := p.Stat(path)
	must(t, err)
	return a.Ino
}
