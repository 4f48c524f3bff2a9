package daxfs

import (
	"errors"
	"fmt"
	"io"
)

// How the overlay shadows the base image (docs/PROTOCOLS.md, "Base image"):
//
//   - Inodes. A base inode has no overlay entry until something changes it;
//     then it is materialised: an inode entry with the same number, copied
//     from the base, published exclusively on its hash chain (a host that
//     loses the race frees its copy and uses the winner's). From then on the
//     entry is authoritative. When it is deleted, its entry stays on the
//     chain with state 1 (a tombstone), so the base inode never comes back.
//   - File data. A materialised base file reads its base bytes for pages the
//     overlay does not have, below inBaseValid (the base size, lowered by
//     every truncate). A new overlay page is filled with the base bytes
//     before it is published (copy on write).
//   - Names. A base name is changed only through an overlay dirent for it:
//     a shadow (bound to the base inode) or a whiteout (child word with
//     dtype 0: the name does not exist). Inserting one is exclusive like a
//     create; afterwards delete and re-create are CASes of its child word,
//     never a second insert. Lookups ask the overlay first, then the base.
const (
	inBaseValid = 176 // base bytes still visible through the overlay entry
)

// whiteout is the child word of a dirent that hides a base name.
func whiteoutWord(ino Ino) uint64 { return ino & childIno }

func isWhiteout(c uint64) bool { return childLive(c) && c>>58&0xf == 0 }

// findInodeAny returns the overlay inode entry of ino in any state, or 0.
func (fs *FS) findInodeAny(ino Ino) (uint64, error) {
	r := fs.r
	return fs.find(fs.bucketFor(ino), inNext, false, func(n uint64) (bool, error) {
		return hdrType(r.Load(n)) == typeInode && r.Load(n+inIno) == ino, nil
	})
}

// resolve finds ino: a live overlay entry (off != 0), or the base inode
// (off == 0, nil error) when the overlay has never had an entry for it.
func (fs *FS) resolve(ino Ino) (uint64, error) {
	off, err := fs.findInodeAny(ino)
	if err != nil {
		return 0, err
	}
	if off != 0 {
		if fs.r.Load(off+inState) != 0 {
			return 0, fmt.Errorf("%w: inode %d", ErrNotExist, ino)
		}
		return off, nil
	}
	if fs.base.has(ino) {
		return 0, nil
	}
	return 0, fmt.Errorf("%w: inode %d", ErrNotExist, ino)
}

// attrOf returns the attributes of a resolved inode.
func (fs *FS) attrOf(ino Ino, off uint64) Attr {
	if off == 0 {
		return fs.base.attr(ino)
	}
	return fs.attr(off)
}

// modeOf returns the mode of a resolved inode.
func (fs *FS) modeOf(ino Ino, off uint64) uint32 {
	if off == 0 {
		return fs.base.inode(ino).mode
	}
	return uint32(fs.r.Load(off + inMode))
}

// inodeW returns the live overlay entry of ino, materialising a base inode.
func (fs *FS) inodeW(g guard, ino Ino) (uint64, error) {
	if !fs.base.has(ino) {
		return fs.inode(ino)
	}
	r := fs.r
	for i := 0; ; i++ {
		off, err := fs.resolve(ino)
		if err != nil || off != 0 {
			return off, err
		}
		bi := fs.base.inode(ino)
		var tgt uint64
		if bi.mode&modeType == modeLnk {
			if tgt, err = fs.newSymlinkTarget(fs.base.readlink(ino)); err != nil {
				return 0, err
			}
		}
		n, err := fs.alloc(inodeClass)
		if err != nil {
			if tgt != 0 {
				fs.free(tgt)
			}
			return 0, err
		}
		clear(r.Bytes(n, classSize(inodeClass)))
		r.Store(n, hdrWord(typeInode, inodeClass, 0))
		r.Store(n+inIno, ino)
		r.Store(n+inGen, 1)
		r.Store(n+inMode, uint64(bi.mode))
		r.Store(n+inOwner, uint64(bi.gid)<<32|uint64(bi.uid))
		r.Store(n+inRefs, uint64(bi.nlink)<<32)
		r.Store(n+inAtime, uint64(bi.atime))
		r.Store(n+inMtime, uint64(bi.mtime))
		r.Store(n+inCtime, uint64(bi.ctime))
		r.Store(n+inBtime, uint64(bi.ctime))
		r.Store(n+inRdev, uint64(bi.rdev))
		switch bi.mode & modeType {
		case modeReg:
			r.Store(n+inSize, bi.size)
			r.Store(n+inBaseValid, bi.size)
		case modeDir:
			r.Store(n+inDcount, bi.size)
			r.Store(n+inParent, uint64(bi.parent))
		case modeLnk:
			r.Store(n+inData, tgt)
			r.Store(n+inSize, bi.size)
		}
		err = fs.push(fs.bucketFor(ino), inNext, n, func() error {
			ex, err := fs.findInodeAny(ino)
			if err != nil {
				return err
			}
			if ex != 0 {
				return ErrExist
			}
			return nil
		})
		if err == nil {
			return n, nil
		}
		fs.free(n)
		if tgt != 0 {
			fs.free(tgt)
		}
		if !errors.Is(err, ErrExist) {
			return 0, err
		}
		// Another host materialised it first: use theirs.
	}
}

// dirInodeW resolves a directory that is about to change, materialising a
// base directory.
func (fs *FS) dirInodeW(g guard, ino Ino) (uint64, error) {
	off, err := fs.inodeW(g, ino)
	if err != nil {
		return 0, err
	}
	if uint32(fs.r.Load(off+inMode))&modeType != modeDir {
		return 0, fmt.Errorf("daxfs: inode %d: %w", ino, ErrNotDir)
	}
	return off, nil
}

// dirResolve resolves a directory for reading.
func (fs *FS) dirResolve(ino Ino) (uint64, error) {
	off, err := fs.resolve(ino)
	if err != nil {
		return 0, err
	}
	if fs.modeOf(ino, off)&modeType != modeDir {
		return 0, fmt.Errorf("daxfs: inode %d: %w", ino, ErrNotDir)
	}
	return off, nil
}

// baseName looks name up in base directory dir (if dir is one).
func (fs *FS) baseName(dir Ino, name string) (Ino, uint8, bool) {
	if !fs.base.has(dir) || fs.base.inode(dir).mode&modeType != modeDir || len(name) > MaxNameLen {
		return 0, 0, false
	}
	return fs.base.lookup(dir, name)
}

// lookupName resolves name in dir: the overlay's dirent first (a whiteout
// hides the name), then the base. It returns the child's number, its
// type, and the overlay dirent (0 when the answer came from the base).
func (fs *FS) lookupName(dir Ino, name string) (Ino, uint8, uint64, error) {
	d, err := fs.lookupDirent(dir, name)
	if err != nil {
		return 0, 0, 0, err
	}
	if d != 0 {
		c := fs.r.Load(d + deChild)
		if isWhiteout(c) {
			return 0, 0, d, fmt.Errorf("daxfs: lookup %q in %d: %w", name, dir, ErrNotExist)
		}
		return c & childIno, uint8(c >> 58 & 0xf), d, nil
	}
	if ino, dt, ok := fs.baseName(dir, name); ok {
		return ino, dt, 0, nil
	}
	return 0, 0, 0, fmt.Errorf("daxfs: lookup %q in %d: %w", name, dir, ErrNotExist)
}

// parentIno is the parent directory of a resolved directory.
func (fs *FS) parentIno(ino Ino, off uint64) Ino {
	if off == 0 {
		return Ino(fs.base.inode(ino).parent)
	}
	return fs.r.Load(off + inParent)
}

// materialiseName makes sure an overlay dirent exists for a base name of
// dir (materialised as dirOff): a shadow bound to the base inode. It
// returns false when the base has no such name.
func (fs *FS) materialiseName(dir Ino, dirOff uint64, name string) (bool, error) {
	ino, _, ok := fs.baseName(dir, name)
	if !ok {
		return false, nil
	}
	mode := fs.base.inode(ino).mode
	d, err := fs.newDirent(dir, name, childWord(ino, mode))
	if err != nil {
		return true, err
	}
	if _, err := fs.insertDirent(d, dir, name); err != nil {
		fs.free(d)
		if errors.Is(err, ErrExist) {
			return true, nil
		}
		return true, err
	}
	fs.push(dirOffHead(dirOff), deDnext, d, nil)
	return true, nil
}

// bindWhiteout binds a whiteout dirent d to a new child: the one CAS that
// re-creates a deleted base name.
func (fs *FS) bindWhiteout(d, child uint64) bool {
	c := fs.r.Load(d + deChild)
	return isWhiteout(c) && fs.r.CAS(d+deChild, c, child)
}

// baseHole fills dst (page p of the overlay entry in, from byte po) with
// the base bytes still visible there, zeros past them. It reports false
// when the entry shows no base bytes at that position (a plain hole).
func (fs *FS) baseHole(in, p, po uint64, dst []byte) (bool, error) {
	valid := fs.r.Load(in + inBaseValid)
	pos := p*BlockSize + po
	if valid == 0 || pos >= valid {
		return false, nil
	}
	ino := fs.r.Load(in + inIno)
	if !fs.base.has(ino) {
		return false, nil
	}
	n := min(uint64(len(dst)), valid-pos)
	if err := fs.base.readAt(ino, dst[:n], pos); err != nil {
		return true, err
	}
	clear(dst[n:])
	return true, nil
}

// cowFill returns the fill function of a new page p of in: base bytes
// first (copy on write), then more (may be nil).
func (fs *FS) cowFill(in, p uint64, more func([]byte)) func([]byte) {
	if fs.base == nil || fs.r.Load(in+inBaseValid) == 0 {
		return more
	}
	return func(b []byte) {
		fs.baseHole(in, p, 0, b) // an unreadable backing file leaves zeros
		if more != nil {
			more(b)
		}
	}
}

// trimBase lowers the base bytes visible through in to at most keep.
func (fs *FS) trimBase(in, keep uint64) {
	r := fs.r
	for {
		v := r.Load(in + inBaseValid)
		if v <= keep || r.CAS(in+inBaseValid, v, keep) {
			return
		}
	}
}

// readDirBase lists a base directory merged with its overlay: each base
// name once (as the overlay binds it, or not at all if whited out), then
// the overlay's own names.
func (fs *FS) readDirBase(ino Ino, dirOff uint64) ([]DirEntry, error) {
	var out []DirEntry
	r := fs.r
	err := fs.base.entries(ino, func(name []byte, child Ino, dt uint8) error {
		if dirOff != 0 {
			d, err := fs.lookupDirent(ino, string(name))
			if err != nil {
				return err
			}
			if d != 0 {
				c := r.Load(d + deChild)
				if !isWhiteout(c) {
					out = append(out, DirEntry{Name: string(name), Ino: c & childIno, Type: uint8(c >> 58 & 0xf)})
				}
				return nil
			}
		}
		out = append(out, DirEntry{Name: string(name), Ino: child, Type: dt})
		return nil
	})
	if err != nil || dirOff == 0 {
		return out, err
	}
	_, err = fs.find(dirOffHead(dirOff), deDnext, true, func(n uint64) (bool, error) {
		c := r.Load(n + deChild)
		if !childLive(c) || isWhiteout(c) || r.Load(n+deParent) != ino {
			return false, nil
		}
		nm, err := fs.direntName(n)
		if err != nil {
			return false, err
		}
		if _, _, ok := fs.base.lookup(ino, string(nm)); ok {
			return false, nil // listed with the base names
		}
		out = append(out, DirEntry{Name: string(nm), Ino: c & childIno, Type: uint8(c >> 58 & 0xf)})
		return false, nil
	})
	return out, err
}

// readBase reads a file opened while the overlay had no entry for it: from
// the overlay entry if one appeared since, else from the base.
func (fs *FS) readBase(ino Ino, p []byte, off uint64) (int, error) {
	in, err := fs.resolve(ino)
	if err != nil && !errors.Is(err, ErrNotExist) {
		return 0, err
	}
	if in != 0 {
		return fs.readAt(in, p, off)
	}
	size := fs.base.inode(ino).size
	if off >= size {
		return 0, io.EOF
	}
	n := min(uint64(len(p)), size-off)
	if err := fs.base.readAt(ino, p[:n], off); err != nil {
		return 0, err
	}
	if n < uint64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// viewBase is View of a base-only file: zero copy in static mode, a copy of
// the backing file's bytes in split mode (until the page cache exists).
func (fs *FS) viewBase(ino Ino, off uint64) (*View, error) {
	size := fs.base.inode(ino).size
	if off >= size {
		return nil, io.EOF
	}
	po := off % BlockSize
	n := min(BlockSize-po, size-off)
	if b := fs.base.inline(ino, off, n); b != nil {
		return &View{Bytes: b, done: true}, nil
	}
	buf := make([]byte, n)
	if err := fs.base.readAt(ino, buf, off); err != nil {
		return nil, err
	}
	return &View{Bytes: buf, done: true}, nil
}

// viewRangeBase is ViewRange of a base-only file: region bytes in static
// mode, copies of backing-file bytes in split mode. At or past EOF it
// returns io.EOF.
func (fs *FS) viewRangeBase(ino Ino, off, n uint64, segs [][]byte) ([][]byte, int, error) {
	size := fs.base.inode(ino).size
	if off >= size || n == 0 {
		return segs, 0, io.EOF
	}
	n = min(n, size-off)
	if b := fs.base.inline(ino, off, n); b != nil {
		return append(segs, b), int(n), nil
	}
	buf := make([]byte, n)
	if err := fs.base.readAt(ino, buf, off); err != nil {
		return segs, 0, err
	}
	return append(segs, buf), int(n), nil
}

// checkBase adds to Check's view the base inodes the overlay has not
// materialised and the base names no overlay dirent shadows.
func (fs *FS) checkBase(inodes map[uint64]*checkInode, tomb map[uint64]bool, dirents []*checkDirent) []*checkDirent {
	b := fs.base
	for ino := uint64(1); ino <= b.n(); ino++ {
		if inodes[ino] != nil || tomb[ino] {
			continue
		}
		bi := b.inode(ino)
		ci := &checkInode{ino: ino, mode: uint64(bi.mode), nlink: uint64(bi.nlink), size: bi.size}
		if bi.mode&modeType == modeDir {
			ci.dcount, ci.parent = bi.size, uint64(bi.parent)
		}
		inodes[ino] = ci
	}
	shadowed := map[string]bool{}
	for _, d := range dirents {
		if !d.marked && childLive(d.child) && b.has(d.parent) {
			shadowed[fmt.Sprintf("%d/%s", d.parent, d.name)] = true
		}
	}
	for ino := uint64(1); ino <= b.n(); ino++ {
		if in := inodes[ino]; in == nil || in.mode&modeType != modeDir {
			continue
		}
		b.entries(ino, func(name []byte, child Ino, dt uint8) error {
			if !shadowed[fmt.Sprintf("%d/%s", ino, name)] {
				dirents = append(dirents, &checkDirent{parent: ino, child: uint64(dt)<<58 | child,
					key: direntKey(ino, string(name)), name: string(name), listed: true})
			}
			return nil
		})
	}
	return dirents
}

// dropWhiteouts deletes the whiteouts of a directory being reclaimed: with
// the directory gone, the base names they hide are gone too.
func (fs *FS) dropWhiteouts(dirOff uint64) {
	r := fs.r
	fs.find(dirOffHead(dirOff), deDnext, true, func(n uint64) (bool, error) {
		if c := r.Load(n + deChild); isWhiteout(c) && r.CAS(n+deChild, c, c|childDead) {
			fs.mark(n, deNext)
			fs.find(fs.bucketFor(r.Load(n+deKey)), deNext, false, func(uint64) (bool, error) { return false, nil })
		}
		return false, nil
	})
}

// goneWord is the child word that removes the name of dirent d (child word
// c): a whiteout when the base has that name, so it stays hidden, else the
// dead word.
func (fs *FS) goneWord(d, c uint64) uint64 {
	if fs.base != nil {
		if nm, err := fs.direntName(d); err == nil {
			if _, _, ok := fs.baseName(fs.r.Load(d+deParent), string(nm)); ok {
				return whiteoutWord(c & childIno)
			}
		}
	}
	return c&^childMoving | childDead
}
