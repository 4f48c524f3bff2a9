package fuse

import (
	"context"
	"errors"
	"log"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	fusefs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// node is one daxfs inode as go-fuse sees it. Everything it knows lives in
// the region: the node keeps only the shared mount state; its inode number
// is StableAttr().Ino.
type node struct {
	fusefs.Inode
	m *mount
}

var (
	_ fusefs.NodeLookuper       = (*node)(nil)
	_ fusefs.NodeGetattrer      = (*node)(nil)
	_ fusefs.NodeSetattrer      = (*node)(nil)
	_ fusefs.NodeOpener         = (*node)(nil)
	_ fusefs.NodeCreater        = (*node)(nil)
	_ fusefs.NodeMkdirer        = (*node)(nil)
	_ fusefs.NodeMknoder        = (*node)(nil)
	_ fusefs.NodeSymlinker      = (*node)(nil)
	_ fusefs.NodeLinker         = (*node)(nil)
	_ fusefs.NodeReadlinker     = (*node)(nil)
	_ fusefs.NodeUnlinker       = (*node)(nil)
	_ fusefs.NodeRmdirer        = (*node)(nil)
	_ fusefs.NodeRenamer        = (*node)(nil)
	_ fusefs.NodeStatfser       = (*node)(nil)
	_ fusefs.NodeOpendirHandler = (*node)(nil)
	_ fusefs.NodeFsyncer        = (*node)(nil)
)

func (n *node) ino() daxfs.Ino { return n.StableAttr().Ino }

// errno maps a library error to what the kernel expects.
// An EIO means the library failed in a way POSIX has no word for: the
// reason goes to the log, since the caller only sees "I/O error".
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	e := daxfs.Errno(err)
	if e == syscall.EIO {
		if errors.Is(err, cxl.ErrFenced) {
			// The heartbeat missed the lease (process stalled or
			// stopped): another host may have taken our records over, so
			// this mount must not write again. Only a new mount can.
			log.Printf("daxfs fuse: EIO: %v: this mount can no longer write; unmount and mount again", err)
		} else {
			log.Printf("daxfs fuse: EIO: %v", err)
		}
	}
	return e
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := gofuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// fillAttr converts library attributes to FUSE ones.
func fillAttr(a *daxfs.Attr, out *gofuse.Attr) {
	out.Ino = a.Ino
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid = a.Uid
	out.Gid = a.Gid
	out.Rdev = a.Rdev
	out.Blksize = daxfs.BlockSize
	setTime(a.Atime, &out.Atime, &out.Atimensec)
	setTime(a.Mtime, &out.Mtime, &out.Mtimensec)
	setTime(a.Ctime, &out.Ctime, &out.Ctimensec)
}

func setTime(t time.Time, sec *uint64, nsec *uint32) {
	ns := t.UnixNano()
	*sec = uint64(ns / 1e9)
	*nsec = uint32(ns % 1e9)
}

// child returns the go-fuse inode for a, creating it if the kernel does not
// know it yet. Stable inode numbers and generations come from the region.
func (n *node) child(ctx context.Context, a *daxfs.Attr, out *gofuse.EntryOut) *fusefs.Inode {
	fillAttr(a, &out.Attr)
	return n.NewInode(ctx, &node{m: n.m}, fusefs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino, Gen: a.Gen})
}

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	a, err := n.m.fs.Lookup(n.ino(), name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Getattr(ctx context.Context, f fusefs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	var a daxfs.Attr
	if fh, ok := f.(*file); ok && fh != nil {
		// Works for an open file whose last name is gone.
		a = fh.h.Stat()
	} else if dh, ok := f.(*dir); ok && dh != nil && dh.h != nil {
		// And for an open directory removed or renamed over.
		a = dh.h.Stat()
	} else {
		var err error
		if a, err = n.m.fs.GetAttr(n.ino()); err != nil {
			return errno(err)
		}
	}
	fillAttr(&a, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fusefs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	var s daxfs.SetAttr
	if m, ok := in.GetMode(); ok {
		m &= 0o7777
		s.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		s.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		s.Gid = &g
	}
	if sz, ok := in.GetSize(); ok {
		s.Size = &sz
	}
	if t, ok := in.GetATime(); ok {
		s.Atime = &t
	}
	if t, ok := in.GetMTime(); ok {
		s.Mtime = &t
	}
	a, err := n.m.fs.SetAttr(n.ino(), s)
	if err != nil {
		return errno(err)
	}
	fillAttr(&a, &out.Attr)
	return 0
}

// openFlags are the open(2) flags the library understands.
const openFlags = syscall.O_ACCMODE | syscall.O_TRUNC | syscall.O_APPEND

func (n *node) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	h, err := n.m.fs.OpenIno(n.ino(), int(flags)&openFlags)
	if err != nil {
		return nil, 0, errno(err)
	}
	return n.m.newFile(h, flags), n.m.fopenFlags, 0
}

// newOwner is the owner of a new node in directory n: the caller, with the
// directory's group when it is setgid (and setgid passed on to subdirs).
func (n *node) newOwner(ctx context.Context, mode uint32) (perm, uid, gid uint32, err error) {
	uid, gid = caller(ctx)
	perm = mode & 0o7777
	d, err := n.m.fs.GetAttr(n.ino())
	if err != nil {
		return 0, 0, 0, err
	}
	if d.Mode&syscall.S_ISGID != 0 {
		gid = d.Gid
		if mode&syscall.S_IFMT == syscall.S_IFDIR {
			perm |= syscall.S_ISGID
		}
	}
	return perm, uid, gid, nil
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *gofuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	perm, uid, gid, err := n.newOwner(ctx, syscall.S_IFREG|mode)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	a, err := n.m.fs.Create(n.ino(), name, perm, uid, gid)
	if err != nil {
		if errno(err) != syscall.EEXIST || flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, errno(err)
		}
		// Another host created the name after the kernel's lookup: open
		// what is there, as open(O_CREAT) without O_EXCL must.
		if a, err = n.m.fs.Lookup(n.ino(), name); err != nil {
			return nil, nil, 0, errno(err)
		}
		if a.IsDir() {
			return nil, nil, 0, syscall.EISDIR
		}
	}
	h, err := n.m.fs.OpenIno(a.Ino, int(flags)&openFlags)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	return n.child(ctx, &a, out), n.m.newFile(h, flags), n.m.fopenFlags, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	perm, uid, gid, err := n.newOwner(ctx, syscall.S_IFDIR|mode)
	if err != nil {
		return nil, errno(err)
	}
	a, err := n.m.fs.Mkdir(n.ino(), name, perm, uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *gofuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if dev != 0 {
		// The library keeps no device number (see docs/FUSE.md).
		return nil, syscall.EOPNOTSUPP
	}
	perm, uid, gid, err := n.newOwner(ctx, mode)
	if err != nil {
		return nil, errno(err)
	}
	a, err := n.m.fs.Mknod(n.ino(), name, mode&syscall.S_IFMT|perm, uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	_, uid, gid, err := n.newOwner(ctx, syscall.S_IFLNK)
	if err != nil {
		return nil, errno(err)
	}
	a, err := n.m.fs.Symlink(n.ino(), name, target, uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *gofuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	a, err := n.m.fs.Link(target.EmbeddedInode().StableAttr().Ino, n.ino(), name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.m.fs.Readlink(n.ino())
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.m.fs.Unlink(n.ino(), name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.m.fs.Rmdir(n.ino(), name))
}

// Linux renameat2 flags.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

func (n *node) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^renameNoReplace != 0 {
		// RENAME_EXCHANGE cannot be made atomic across hosts by the
		// library (it refuses it), RENAME_WHITEOUT is for overlayfs.
		return syscall.EINVAL
	}
	var f int
	if flags&renameNoReplace != 0 {
		f = daxfs.RenameNoReplace
	}
	return errno(n.m.fs.Rename(n.ino(), name, newParent.EmbeddedInode().StableAttr().Ino, newName, f))
}

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	st := n.m.fs.Statfs()
	bs := uint64(st.BlockSize)
	if bs == 0 {
		bs = daxfs.BlockSize
	}
	out.Bsize = uint32(bs)
	out.Frsize = uint32(bs)
	out.Blocks = st.TotalBytes / bs
	out.Bfree = st.FreeBytes / bs
	out.Bavail = st.FreeBytes / bs
	out.Files = st.TotalInodes
	out.Ffree = st.FreeInodes
	out.NameLen = daxfs.MaxNameLen
	return 0
}

// Fsync without a file handle (fsync of a directory): make the inode
// durable through a read-only handle.
func (n *node) Fsync(ctx context.Context, f fusefs.FileHandle, flags uint32) syscall.Errno {
	if fh, ok := f.(*file); ok && fh != nil {
		return errno(fh.h.Sync())
	}
	h, err := n.m.fs.OpenIno(n.ino(), syscall.O_RDONLY)
	if err != nil {
		return errno(err)
	}
	defer h.Close()
	return errno(h.Sync())
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	// The open reference keeps the directory inode alive while it is
	// open, as POSIX wants for fstat of a directory removed meanwhile.
	h, err := n.m.fs.OpenIno(n.ino(), syscall.O_RDONLY)
	if err != nil {
		return nil, 0, errno(err)
	}
	d := &dir{n: n, h: h}
	if err := d.load(); err != nil {
		h.Close()
		return nil, 0, errno(err)
	}
	return d, 0, 0
}
