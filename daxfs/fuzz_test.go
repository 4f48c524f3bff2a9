package daxfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
)

func FuzzDecodeSuperblock(f *testing.F) {
	sb, err := Geometry(0x10000, 8<<20, 8, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sb.Encode(), uint64(0x10000), uint64(8<<20))
	f.Add(make([]byte, superSize), uint64(0), uint64(1<<20))
	f.Fuzz(func(t *testing.T, b []byte, off, n uint64) {
		sb, err := DecodeSuperblock(b, off, n)
		if err != nil {
			return
		}
		// Whatever decodes must describe areas inside the extent, in order.
		if !(sb.Extent <= sb.BucketOff && sb.BucketOff < sb.ChunkMapOff && sb.ChunkMapOff < sb.PoolOff &&
			sb.PoolEnd() <= sb.Extent+sb.ExtentLen) {
			t.Fatalf("accepted an inconsistent geometry %+v", sb)
		}
	})
}

// fuzzImage is a small populated filesystem, built once.
var fuzzImage = sync.OnceValues(func() ([]byte, error) {
	f, err := os.CreateTemp("", "daxfs-fuzz-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	f.Close()
	r, err := cxl.Open(f.Name(), cxl.OpenOptions{Create: true, Size: 1 << 20})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := Mkfs(r, MkfsOptions{MaxHosts: 2, Lease: time.Second, Buckets: 64}); err != nil {
		return nil, err
	}
	fs, err := Open(r, Options{})
	if err != nil {
		return nil, err
	}
	p := fs.Paths(0, 0)
	p.MkdirAll("/a/b", 0o755)
	p.WriteFile("/a/f", []byte("hello"), 0o644)
	p.WriteFile("/a/b/big", make([]byte, 3*BlockSize+7), 0o644)
	p.Symlink("/a/f", "/s")
	p.Link("/a/f", "/hard")
	p.WriteFile("/gone", []byte("x"), 0o644)
	p.Remove("/gone")
	fs.Close()
	return append([]byte(nil), r.Bytes(0, r.Len())...), nil
})

// FuzzRegion mutates a valid image and then mounts it and uses it: every
// decoder of region bytes (superblock, chains, dirents, inodes, page
// tables, symlink targets, free lists, limbo, intents) must reject or cope,
// never panic or hang. Each mutation is [offset u32][length u8][bytes].
func FuzzRegion(f *testing.F) {
	img, err := fuzzImage()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x20, 0x01, 0x00, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x00, 0x10, 0x00, 0x00, 1, 0xff})
	f.Fuzz(func(t *testing.T, muts []byte) {
		b := append([]byte(nil), img...)
		for len(muts) >= 5 {
			off := int(binary.LittleEndian.Uint32(muts)) % len(b)
			n := int(muts[4])
			muts = muts[5:]
			n = min(n, len(muts), len(b)-off)
			copy(b[off:], muts[:n])
			muts = muts[n:]
		}
		exerciseImage(t, b)
	})
}

func exerciseImage(t *testing.T, b []byte) {
	// A hang is a failure too: after 5 s, crash with every stack.
	watchdog := time.AfterFunc(5*time.Second, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("exerciseImage hangs:\n%s", buf))
	})
	defer watchdog.Stop()
	path := regionPath(t)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fs, err := Open(r, Options{})
	if err != nil {
		return
	}
	defer fs.Close()
	p := fs.Paths(0, 0)
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		if depth > 8 {
			return
		}
		ents, err := p.ReadDir(dir)
		if err != nil {
			return
		}
		for i, e := range ents {
			if i > 64 {
				break
			}
			child := dir + "/" + e.Name
			a, err := p.Lstat(child)
			if err != nil {
				continue
			}
			switch {
			case a.IsDir():
				walk(child, depth+1)
			case a.IsSymlink():
				p.Readlink(child)
			default:
				if f, err := p.Open(child); err == nil {
					buf := make([]byte, 2*BlockSize)
					f.ReadAt(buf, 0)
					if v, err := f.View(0); err == nil {
						v.Release()
					}
					f.Close()
				}
			}
		}
	}
	walk("", 0)
	// Mutations too must fail cleanly or work.
	for i := range 3 {
		name := fmt.Sprint("/new", i)
		if err := p.WriteFile(name, []byte("data"), 0o644); err == nil {
			p.Rename(name, "/a/renamed")
			p.Remove("/a/renamed")
		}
	}
	p.Mkdir("/a/b/c", 0o755)
	p.Remove("/a/b/c")
	if f, err := p.OpenFile("/a/b/big", os.O_RDWR, 0); err == nil {
		f.Truncate(5)
		f.WriteAt([]byte("x"), 3*BlockSize)
		f.Close()
	}
	fs.ReapDead()
	rep := fs.Check()
	_ = rep.OK()
}

// A region that is not daxfs, or whose header is damaged, is refused with
// a clear error.
func TestOpenCorruptHeaders(t *testing.T) {
	img, err := fuzzImage()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := cxl.DecodeHeader(img, uint64(len(img)))
	e, _ := h.Extent(ExtentName)
	for _, off := range []uint64{0, 8, 16, e.Off, e.Off + 8, e.Off + 48, e.Off + 72, e.Off + superCRC} {
		b := append([]byte(nil), img...)
		b[off] ^= 0xff
		path := regionPath(t)
		os.WriteFile(path, b, 0o644)
		r, err := cxl.Open(path, cxl.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(r, Options{})
		r.Close()
		if err == nil {
			t.Errorf("flipping byte %#x: opened", off)
		} else if !errors.Is(err, ErrBadFormat) && !errors.Is(err, cxl.ErrBadChecksum) && !errors.Is(err, cxl.ErrBadMagic) && !errors.Is(err, cxl.ErrBadVersion) && !errors.Is(err, cxl.ErrCorrupt) {
			t.Errorf("flipping byte %#x: unclear error %v", off, err)
		}
	}
}
