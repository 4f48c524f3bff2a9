package daxfs

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Inode entry (256-byte object), every field one word:
//
//	0   header  [magic|aux|class|type=inode]
//	8   next    hash chain next | mark
//	16  ino
//	24  gen     generation (inode numbers are never reused; gen is 1)
//	32  mode    [flags:32 | mode:32]          CAS
//	40  owner   [gid:32 | uid:32]             CAS
//	48  refs    [nlink:32 | opens:32]         CAS; (0,0) = reclaim
//	56  size                                  CAS-max to grow, CAS to shrink
//	64  atime   unix ns
//	72  mtime
//	80  ctime
//	88  btime   creation
//	96  data    file: page table root [height:8 | offset:56]
//	            dir: head of the directory list; symlink: target object
//	104 dcount  dir: [dead:1 | live entries:63]
//	112 parent  dir: inode number of the parent
//	120 tseq    file: truncate sequence (odd while a truncate runs)
//	128 rdev
//	136 unl     physical unlinks done (retire at 1)
//	144 state   0 live, 1 being reclaimed
//	152 blocks  data pages allocated
const (
	inNext   = 8
	inIno    = 16
	inGen    = 24
	inMode   = 32
	inOwner  = 40
	inRefs   = 48
	inSize   = 56
	inAtime  = 64
	inMtime  = 72
	inCtime  = 80
	inBtime  = 88
	inData   = 96
	inDcount = 104
	inParent = 112
	inTseq   = 120
	inRdev   = 128
	inUnl    = 136
	inState  = 144
	inBlocks = 152
	inodeLen = 160

	inodeClass = 2

	dcountDead = 1 << 63

	modeDir  = syscall.S_IFDIR
	modeReg  = syscall.S_IFREG
	modeLnk  = syscall.S_IFLNK
	modeType = syscall.S_IFMT
)

// Ino is an inode number. Inode numbers are unique across hosts and never
// reused.
type Ino = uint64

// Attr is what stat reports.
type Attr struct {
	Ino    Ino
	Gen    uint64
	Mode   uint32 // file type and permission bits (syscall.S_IF* | perm)
	Nlink  uint32
	Uid    uint32
	Gid    uint32
	Rdev   uint32
	Size   uint64
	Blocks uint64 // 512-byte units
	Atime  time.Time
	Mtime  time.Time
	Ctime  time.Time
	Btime  time.Time
}

// IsDir reports whether the inode is a directory.
func (a Attr) IsDir() bool { return a.Mode&modeType == modeDir }

// IsRegular reports whether the inode is a regular file.
func (a Attr) IsRegular() bool { return a.Mode&modeType == modeReg }

// IsSymlink reports whether the inode is a symbolic link.
func (a Attr) IsSymlink() bool { return a.Mode&modeType == modeLnk }

func now() uint64 { return uint64(time.Now().UnixNano()) }

// coarseNow is the time to within a second, without a clock read: for
// decisions (relatime) that need day resolution on every read.
func coarseNow() uint64 {
	clockOnce.Do(func() {
		coarse.Store(now())
		go func() {
			for range time.Tick(time.Second) {
				coarse.Store(now())
			}
		}()
	})
	return coarse.Load()
}

var (
	clockOnce sync.Once
	coarse    atomic.Uint64
)

// newInode writes and publishes a fresh inode entry.
func (fs *FS) newInode(g guard, ino Ino, mode, uid, gid uint32, parent Ino) (uint64, error) {
	off, err := fs.alloc(inodeClass)
	if err != nil {
		return 0, err
	}
	r := fs.r
	clear(r.Bytes(off, classSize(inodeClass)))
	t := now()
	nlink := uint64(1)
	if mode&modeType == modeDir {
		nlink = 2
	}
	r.Store(off, hdrWord(typeInode, inodeClass, 0))
	r.Store(off+inIno, ino)
	r.Store(off+inGen, 1)
	r.Store(off+inMode, uint64(mode))
	r.Store(off+inOwner, uint64(gid)<<32|uint64(uid))
	r.Store(off+inRefs, nlink<<32)
	r.Store(off+inAtime, t)
	r.Store(off+inMtime, t)
	r.Store(off+inCtime, t)
	r.Store(off+inBtime, t)
	r.Store(off+inParent, parent)
	if err := fs.push(fs.bucketFor(ino), inNext, off, nil); err != nil {
		fs.free(off)
		return 0, err
	}
	return off, nil
}

// inode finds the live inode entry of ino.
func (fs *FS) inode(ino Ino) (uint64, error) {
	r := fs.r
	off, err := fs.find(fs.bucketFor(ino), inNext, false, func(n uint64) (bool, error) {
		return hdrType(r.Load(n)) == typeInode && r.Load(n+inIno) == ino, nil
	})
	if err != nil {
		return 0, err
	}
	if off == 0 || r.Load(off+inState) != 0 {
		return 0, fmt.Errorf("%w: inode %d", ErrNotExist, ino)
	}
	return off, nil
}

func (fs *FS) attr(off uint64) Attr {
	r := fs.r
	mode := uint32(r.Load(off + inMode))
	owner := r.Load(off + inOwner)
	refs := r.Load(off + inRefs)
	a := Attr{
		Ino:    r.Load(off + inIno),
		Gen:    r.Load(off + inGen),
		Mode:   mode,
		Nlink:  uint32(refs >> 32),
		Uid:    uint32(owner),
		Gid:    uint32(owner >> 32),
		Rdev:   uint32(r.Load(off + inRdev)),
		Size:   r.Load(off + inSize),
		Blocks: r.Load(off+inBlocks) * (BlockSize / 512),
		Atime:  time.Unix(0, int64(r.Load(off+inAtime))),
		Mtime:  time.Unix(0, int64(r.Load(off+inMtime))),
		Ctime:  time.Unix(0, int64(r.Load(off+inCtime))),
		Btime:  time.Unix(0, int64(r.Load(off+inBtime))),
	}
	if mode&modeType == modeDir {
		a.Size = (r.Load(off+inDcount) &^ dcountDead) * 32
	}
	return a
}

// GetAttr returns the attributes of ino.
func (fs *FS) GetAttr(ino Ino) (Attr, error) {
	g := fs.enter()
	defer g.exit()
	off, err := fs.resolve(ino)
	if err != nil {
		return Attr{}, err
	}
	return fs.attrOf(ino, off), nil
}

// SetAttr says which attributes to change; nil fields stay.
type SetAttr struct {
	Mode  *uint32 // permission bits only (07777)
	Uid   *uint32
	Gid   *uint32
	Size  *uint64
	Atime *time.Time
	Mtime *time.Time
}

// SetAttr changes attributes of ino and returns the result.
func (fs *FS) SetAttr(ino Ino, s SetAttr) (Attr, error) {
	if err := fs.writable(); err != nil {
		return Attr{}, err
	}
	g := fs.enter()
	defer g.exit()
	off, err := fs.inodeW(g, ino)
	if err != nil {
		return Attr{}, err
	}
	r := fs.r
	if s.Size != nil {
		if m := uint32(r.Load(off + inMode)); m&modeType == modeDir {
			return Attr{}, fmt.Errorf("daxfs: truncate inode %d: %w", ino, ErrIsDir)
		} else if m&modeType != modeReg {
			return Attr{}, fmt.Errorf("daxfs: truncate inode %d: %w", ino, ErrInvalid)
		}
		if err := fs.truncate(g, off, *s.Size); err != nil {
			return Attr{}, err
		}
	}
	if s.Mode != nil {
		for {
			old := r.Load(off + inMode)
			nw := old&^0o7777 | uint64(*s.Mode&0o7777)
			if r.CAS(off+inMode, old, nw) {
				break
			}
		}
	}
	if s.Uid != nil || s.Gid != nil {
		for {
			old := r.Load(off + inOwner)
			uid, gid := uint32(old), uint32(old>>32)
			if s.Uid != nil {
				uid = *s.Uid
			}
			if s.Gid != nil {
				gid = *s.Gid
			}
			if r.CAS(off+inOwner, old, uint64(gid)<<32|uint64(uid)) {
				break
			}
		}
	}
	if s.Atime != nil {
		r.Store(off+inAtime, uint64(s.Atime.UnixNano()))
	}
	if s.Mtime != nil {
		r.Store(off+inMtime, uint64(s.Mtime.UnixNano()))
	}
	r.Store(off+inCtime, now())
	return fs.attr(off), nil
}

// addLinks changes nlink by delta (CAS on the refs word) and returns the
// new refs word. Adding to an inode whose refs are (0,0) fails: it is being
// reclaimed.
func (fs *FS) addLinks(off uint64, delta int) (uint64, error) {
	r := fs.r
	for i := 0; ; i++ {
		old := r.Load(off + inRefs)
		nl := int64(old >> 32)
		if old == 0 && delta > 0 {
			return 0, ErrNotExist
		}
		nl += int64(delta)
		if nl < 0 {
			nl = 0
		}
		if nl > 1<<31 {
			return 0, ErrTooManyLinks
		}
		nw := uint64(nl)<<32 | old&0xffffffff
		if r.CAS(off+inRefs, old, nw) {
			return nw, nil
		}
		fs.stats.CASRetries.Add(1)
		backoff(i)
	}
}

// clearLinks sets nlink to 0, keeping the open count, and returns the refs.
func (fs *FS) clearLinks(off uint64) uint64 {
	r := fs.r
	for {
		old := r.Load(off + inRefs)
		if r.CAS(off+inRefs, old, old&0xffffffff) {
			return old & 0xffffffff
		}
		fs.stats.CASRetries.Add(1)
	}
}

// addOpens changes the open count; opening an inode whose refs are (0,0)
// fails.
func (fs *FS) addOpens(off uint64, delta int) (uint64, error) {
	r := fs.r
	for i := 0; ; i++ {
		old := r.Load(off + inRefs)
		if old == 0 && delta > 0 {
			return 0, ErrNotExist
		}
		op := int64(old&0xffffffff) + int64(delta)
		if op < 0 {
			op = 0
		}
		nw := old&^0xffffffff | uint64(op)
		if r.CAS(off+inRefs, old, nw) {
			return nw, nil
		}
		fs.stats.CASRetries.Add(1)
		backoff(i)
	}
}

// dropRefs is called after a refs change: whoever moved refs to (0,0)
// reclaims the inode.
func (fs *FS) dropped(g guard, off, refs uint64) {
	if refs == 0 {
		fs.reclaimInode(g, off)
	}
}

// reclaimInode retires everything an inode owns and unlinks its entry.
func (fs *FS) reclaimInode(g guard, off uint64) {
	r := fs.r
	if !r.CAS(off+inState, 0, 1) {
		return
	}
	mode := uint32(r.Load(off + inMode))
	switch mode & modeType {
	case modeReg:
		root := r.Load(off + inData)
		if r.CAS(off+inData, root, 0) {
			fs.retireTree(root)
		}
	case modeLnk:
		if t := r.Load(off + inData); t != 0 && r.CAS(off+inData, t, 0) {
			fs.retire(t)
		}
	case modeDir:
		// No live entry can be added to a dead directory; unlink the
		// deleted ones still on its list.
		if fs.base != nil {
			fs.dropWhiteouts(off)
		}
		fs.sweepDir(off)
	}
	if fs.base.has(r.Load(off + inIno)) {
		// The entry of a base inode stays on its chain as a tombstone:
		// without it the base inode would come back.
		return
	}
	fs.mark(off, inNext)
	fs.find(fs.bucketFor(r.Load(off+inIno)), inNext, false, func(uint64) (bool, error) { return false, nil })
}
