package fuse

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	"github.com/daxwio/daxwio/daxfs"
	fusefs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// file is an open regular file (or special file opened for stat).
type file struct {
	h      *daxfs.Handle
	m      *mount
	append bool
}

var (
	_ fusefs.FileReader    = (*file)(nil)
	_ fusefs.FileWriter    = (*file)(nil)
	_ fusefs.FileFlusher   = (*file)(nil)
	_ fusefs.FileFsyncer   = (*file)(nil)
	_ fusefs.FileReleaser  = (*file)(nil)
	_ fusefs.FileAllocater = (*file)(nil)
)

func (m *mount) newFile(h *daxfs.Handle, flags uint32) *file {
	return &file{h: h, m: m, append: flags&syscall.O_APPEND != 0}
}

// Read serves region bytes without copying when ZeroCopy is on: the
// segments point into the region and stay pinned (an epoch announcement,
// so the pages cannot be reclaimed and reused) until go-fuse calls Done,
// which it does after writev(2) to /dev/fuse has copied them to the
// kernel. go-fuse calls Done on every path that takes a ReadResult with an
// OK status (fuse/fusefd_linux.go write, protocol-server.go handleRequest);
// on error we return no ReadResult, so nothing is left pinned.
func (f *file) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if !f.m.zeroCopy {
		n, err := f.h.ReadAt(dest, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, errno(err)
		}
		return gofuse.ReadResultData(dest[:n]), 0
	}
	rr := readResults.Get().(*readResult)
	var err error
	rr.segs, rr.n, err = f.h.ViewRange(&rr.pin, off, len(dest), rr.segs[:0])
	if err != nil {
		rr.put()
		if errors.Is(err, io.EOF) {
			return gofuse.ReadResultData(nil), 0
		}
		return nil, errno(err)
	}
	return rr, 0
}

// readResult is a zero-copy ReadResult over pinned region bytes.
type readResult struct {
	pin  daxfs.Pin
	segs [][]byte
	n    int
}

var readResults = sync.Pool{New: func() any { return &readResult{segs: make([][]byte, 0, 16)} }}

func (r *readResult) put() {
	r.pin.Release()
	clear(r.segs)
	r.segs = r.segs[:0]
	r.n = 0
	readResults.Put(r)
}

func (r *readResult) Size() int { return r.n }

// Bytes copies into buf (used only when go-fuse cannot write a vector).
func (r *readResult) Bytes(buf []byte) ([]byte, gofuse.Status) {
	buf = buf[:0]
	for _, s := range r.segs {
		buf = append(buf, s...)
	}
	return buf, gofuse.OK
}

// Slices makes go-fuse write the segments with writev(2), no copy.
func (r *readResult) Slices() ([][]byte, gofuse.Status) { return r.segs, gofuse.OK }

// Done releases the pin once the kernel has the bytes.
func (r *readResult) Done() { r.put() }

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.append {
		// O_APPEND: the kernel's idea of EOF may be stale (another host
		// appended); the library claims the range at the real end.
		if _, err := f.h.Append(data); err != nil {
			return 0, errno(err)
		}
		return uint32(len(data)), 0
	}
	n, err := f.h.WriteAt(data, off)
	if err != nil && n == 0 {
		return 0, errno(err)
	}
	return uint32(n), 0
}

// Flush runs on every close(2) of a descriptor. Data is already in the
// shared region (visible to every host) when Write returns; durability is
// Fsync's job, so there is nothing to do.
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

// Fsync makes the file durable (msync on a file-backed region, cache-line
// flushes on DAX).
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return errno(f.h.Sync())
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	return errno(f.h.Close())
}

// Linux fallocate(2) modes.
const fallocKeepSize = 0x01

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if mode&^fallocKeepSize != 0 {
		// Punch hole, zero range, collapse, insert: not in the library.
		return syscall.EOPNOTSUPP
	}
	return errno(f.h.Allocate(int64(off), int64(size), mode&fallocKeepSize != 0))
}

// dir is an open directory: a snapshot of its listing taken at opendir and
// at every rewind, with "." and "..". Offsets are positions in the
// snapshot, so seekdir/telldir are stable.
type dir struct {
	n   *node
	h   *daxfs.Handle // open reference on the directory inode
	mu  sync.Mutex
	ent []gofuse.DirEntry
	pos int
}

var (
	_ fusefs.FileReaddirenter = (*dir)(nil)
	_ fusefs.FileSeekdirer    = (*dir)(nil)
	_ fusefs.FileFsyncdirer   = (*dir)(nil)
	_ fusefs.FileReleasedirer = (*dir)(nil)
)

func (d *dir) Releasedir(ctx context.Context, flags uint32) { d.h.Close() }

func (d *dir) load() error {
	fs := d.n.m.fs
	ino := d.n.ino()
	list, err := fs.ReadDir(ino)
	if err != nil {
		return err
	}
	parent, err := fs.Lookup(ino, "..")
	if err != nil {
		return err
	}
	ent := make([]gofuse.DirEntry, 0, len(list)+2)
	ent = append(ent,
		gofuse.DirEntry{Name: ".", Ino: ino, Mode: syscall.S_IFDIR},
		gofuse.DirEntry{Name: "..", Ino: parent.Ino, Mode: syscall.S_IFDIR})
	for _, e := range list {
		ent = append(ent, gofuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: uint32(e.Type) << 12})
	}
	for i := range ent {
		ent[i].Off = uint64(i + 1)
	}
	d.ent, d.pos = ent, 0
	return nil
}

func (d *dir) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pos >= len(d.ent) {
		return nil, 0
	}
	e := d.ent[d.pos]
	d.pos++
	return &e, 0
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		// rewinddir: a fresh listing, as POSIX asks.
		return errno(d.load())
	}
	if off > uint64(len(d.ent)) {
		off = uint64(len(d.ent))
	}
	d.pos = int(off)
	return 0
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return errno(d.h.Sync())
}

var _ fusefs.FileWritever = (*file)(nil)

// Writev writes a request that go-fuse received in several buffers.
func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if f.append {
		var all []byte
		for _, d := range data {
			all = append(all, d...)
		}
		return f.Write(ctx, all, off)
	}
	var total uint32
	for _, d := range data {
		n, err := f.h.WriteAt(d, off+int64(total))
		total += uint32(n)
		if err != nil {
			if total == 0 {
				return 0, errno(err)
			}
			break
		}
	}
	return total, 0
}
