package daxfs

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// Dirent entry (64..512-byte object):
//
//	0   header  [magic|aux=name length|class|type=dirent]
//	8   next    hash chain next | mark
//	16  dnext   directory list next | mark
//	24  child   [dead:1 | moving:1 | dtype:4 | ino:58]   the one word that
//	            says whether and to what the name is bound
//	32  parent  inode number of the directory
//	40  key     FNV-1a-64 of parent (8 bytes LE) and name
//	48  unl     physical unlinks done (retire at 2: hash chain and dir list)
//	56  src     the source dirent of the rename that bound this name, else 0
//	            (compared, never followed)
//	64  name    name bytes, no NUL
const (
	deNext   = 8
	deDnext  = 16
	deChild  = 24
	deParent = 32
	deKey    = 40
	deUnl    = 48
	deSrc    = 56 // source dirent of the rename that bound this one, else 0
	deName   = 64

	childDead   = 1 << 63
	childMoving = 1 << 62
	childIno    = 1<<58 - 1

	// MaxNameLen is the longest name a directory entry holds.
	MaxNameLen = 255
)

// Directory entry types (as in dirent.d_type).
const (
	DTUnknown = 0
	DTFifo    = 1
	DTChr     = 2
	DTDir     = 4
	DTBlk     = 6
	DTReg     = 8
	DTLnk     = 10
	DTSock    = 12
)

func dtypeOf(mode uint32) uint64 { return uint64(mode&modeType) >> 12 }

func childWord(ino Ino, mode uint32) uint64 { return dtypeOf(mode)<<58 | ino }

func childLive(c uint64) bool { return c&childDead == 0 && c&childIno != 0 }

func direntKey(parent Ino, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range 8 {
		b[i] = byte(parent >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("daxfs: name %q: %w", name, ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("daxfs: name of %d bytes: %w", len(name), ErrNameTooLong)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("daxfs: name %q contains '/' or NUL: %w", name, ErrInvalid)
	}
	return nil
}

// newDirent writes (but does not publish) a dirent.
func (fs *FS) newDirent(parent Ino, name string, child uint64) (uint64, error) {
	c := classFor(deName + uint64(len(name)))
	off, err := fs.alloc(c)
	if err != nil {
		return 0, err
	}
	r := fs.r
	r.Store(off, hdrWord(typeDirent, c, uint16(len(name))))
	r.Store(off+deNext, 0)
	r.Store(off+deDnext, 0)
	r.Store(off+deChild, child)
	r.Store(off+deParent, parent)
	r.Store(off+deKey, direntKey(parent, name))
	r.Store(off+deUnl, 0)
	r.Store(off+deSrc, 0)
	copy(r.Bytes(off+deName, uint64(len(name))), name)
	return off, nil
}

// direntName returns the name of dirent d, bounds checked.
func (fs *FS) direntName(d uint64) ([]byte, error) {
	h := fs.r.Load(d)
	n := uint64(hdrAux(h))
	if n == 0 || n > MaxNameLen || deName+n > classSize(hdrClass(h)) {
		return nil, fmt.Errorf("%w: dirent %#x name length %d", ErrCorrupt, d, n)
	}
	return fs.r.Bytes(d+deName, n), nil
}

// lookupDirent finds the bound (live or moving) dirent of name in parent.
func (fs *FS) lookupDirent(parent Ino, name string) (uint64, error) {
	key := direntKey(parent, name)
	return fs.find(fs.bucketFor(key), deNext, false, fs.matchDirent(parent, name, key))
}

func (fs *FS) matchDirent(parent Ino, name string, key uint64) func(uint64) (bool, error) {
	r := fs.r
	return func(n uint64) (bool, error) {
		if hdrType(r.Load(n)) != typeDirent || r.Load(n+deKey) != key || r.Load(n+deParent) != parent {
			return false, nil
		}
		if !childLive(r.Load(n + deChild)) {
			return false, nil
		}
		nm, err := fs.direntName(n)
		if err != nil {
			return false, err
		}
		return bytes.Equal(nm, []byte(name)), nil
	}
}

// insertDirent publishes d in the hash unless a bound dirent with the same
// (parent, name) exists; then it returns that one and ErrExist. This is the
// one point where two hosts creating one name are told apart.
func (fs *FS) insertDirent(d uint64, parent Ino, name string) (uint64, error) {
	key := direntKey(parent, name)
	head := fs.bucketFor(key)
	var existing uint64
	err := fs.push(head, deNext, d, func() error {
		ex, err := fs.find(head, deNext, false, fs.matchDirent(parent, name, key))
		if err != nil {
			return err
		}
		if ex != 0 {
			existing = ex
			return ErrExist
		}
		return nil
	})
	return existing, err
}

// deleteDirent unlinks a dirent whose child word this host made dead.
func (fs *FS) deleteDirent(d uint64, dirOff uint64) {
	r := fs.r
	fs.mark(d, deNext)
	fs.find(fs.bucketFor(r.Load(d+deKey)), deNext, false, func(uint64) (bool, error) { return false, nil })
	fs.mark(d, deDnext)
	// Unlinking from a long directory list is left to the next walker
	// (readdir) when d is far from the head.
	steps := 0
	fs.find(dirOffHead(dirOff), deDnext, true, func(uint64) (bool, error) { steps++; return steps > 64, nil })
}

func dirOffHead(dirOff uint64) uint64 { return dirOff + inData }

// sweepDir unlinks every node left on a dead directory's list.
func (fs *FS) sweepDir(dirOff uint64) {
	fs.find(dirOffHead(dirOff), deDnext, true, func(n uint64) (bool, error) {
		fs.mark(n, deDnext)
		return false, nil
	})
	// The walk marks each node after passing it; one more pass unlinks them.
	fs.find(dirOffHead(dirOff), deDnext, true, func(uint64) (bool, error) { return false, nil })
}

// dirInode resolves a directory inode that may receive entries (a base
// directory is materialised).
func (fs *FS) dirInode(ino Ino) (uint64, error) {
	off, err := fs.inodeW(guard{fs: fs}, ino)
	if err != nil {
		return 0, err
	}
	if uint32(fs.r.Load(off+inMode))&modeType != modeDir {
		return 0, fmt.Errorf("daxfs: inode %d: %w", ino, ErrNotDir)
	}
	return off, nil
}

// reserve counts one more entry in a directory unless it is dead.
func (fs *FS) reserve(dirOff uint64) error {
	r := fs.r
	for i := 0; ; i++ {
		c := r.Load(dirOff + inDcount)
		if c&dcountDead != 0 {
			return fmt.Errorf("daxfs: directory %d was removed: %w", r.Load(dirOff+inIno), ErrNotExist)
		}
		if r.CAS(dirOff+inDcount, c, c+1) {
			return nil
		}
		fs.stats.CASRetries.Add(1)
		backoff(i)
	}
}

func (fs *FS) unreserve(dirOff uint64) { fs.r.Add(dirOff+inDcount, ^uint64(0)) }

func (fs *FS) touchDir(dirOff uint64) {
	t := now()
	fs.r.Store(dirOff+inMtime, t)
	fs.r.Store(dirOff+inCtime, t)
}

// Intents (one per epoch slot of a host record, 8 words) name the objects
// of a multi-step operation in flight, so that whoever reaps a host that
// died in the middle can finish or undo it (finishIntent in intent.go):
//
//	0   kind   0 none, 1 create, 2 rename, 3 rmdir, 4 write past EOF
//	8.. args   see the intent* constants
const (
	intentNone   = 0
	intentCreate = 1 // a: new dirent (maybe unpublished), b: parent ino, c: new inode entry or 0, d: linked inode entry or 0
	intentRename = 2 // a: source dirent, b: new dirent (maybe unpublished) or 0, c: replaced target dirent or 0, d: moved ino, e: replaced directory's inode entry (made dead) or 0
	intentRmdir  = 3 // a: dirent, b: directory inode entry (made dead), c: parent ino
	intentWrite  = 4 // a: inode entry of a file written past its end of file
)

func (g guard) intent() uint64 {
	if g.word == 0 {
		return 0
	}
	return g.fs.rec + hrIntents + uint64(g.slot)*intentSize
}

// setIntent records an operation's objects; the kind word goes last, so a
// reaper never sees a kind with stale arguments.
func (g guard) setIntent(kind uint64, args ...uint64) {
	it := g.intent()
	if it == 0 {
		return
	}
	r := g.fs.r
	for i := range 7 {
		var v uint64
		if i < len(args) {
			v = args[i]
		}
		r.Store(it+8+uint64(i)*8, v)
	}
	r.Store(it, kind)
}

// setIntentArg updates one argument of the current intent.
func (g guard) setIntentArg(i int, v uint64) {
	if it := g.intent(); it != 0 {
		g.fs.r.Store(it+8+uint64(i)*8, v)
	}
}

func (g guard) clearIntent() {
	if it := g.intent(); it != 0 {
		g.fs.r.Store(it, intentNone)
	}
}

// waitMoving backs off while a dirent is being renamed by another host. The
// mover either finishes quickly or dies and is reaped within the lease.
func (fs *FS) waitMoving(i int) error {
	if time.Duration(i)*time.Millisecond > 4*fs.ht.Lease() {
		return fmt.Errorf("daxfs: entry stuck in a rename: %w", ErrBusy)
	}
	time.Sleep(time.Millisecond)
	return nil
}

// mknode creates name in parent: exclusive across hosts.
func (fs *FS) mknode(parent Ino, name string, mode, uid, gid uint32, target string) (Attr, error) {
	if err := fs.writable(); err != nil {
		return Attr{}, err
	}
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	g := fs.enter()
	defer g.exit()
	r := fs.r
	dir, err := fs.dirInodeW(g, parent)
	if err != nil {
		return Attr{}, err
	}
	// Cheap early answer; the insert below is what decides.
	var white uint64 // a whiteout to bind instead of inserting
	if ex, err := fs.lookupDirent(parent, name); err != nil {
		return Attr{}, err
	} else if ex != 0 && !isWhiteout(r.Load(ex+deChild)) {
		return Attr{}, fmt.Errorf("daxfs: create %q in %d: %w", name, parent, ErrExist)
	} else if ex != 0 {
		white = ex
	} else if _, _, ok := fs.baseName(parent, name); ok {
		return Attr{}, fmt.Errorf("daxfs: create %q in %d: %w", name, parent, ErrExist)
	}
	var tgt uint64
	if mode&modeType == modeLnk {
		if tgt, err = fs.newSymlinkTarget(target); err != nil {
			return Attr{}, err
		}
	}
	if err := fs.reserve(dir); err != nil {
		if tgt != 0 {
			fs.free(tgt)
		}
		return Attr{}, err
	}
	ino := r.Add(fs.sb.sharedWord(swNextIno), 1) - 1
	if ino > childIno {
		fs.unreserve(dir)
		return Attr{}, fmt.Errorf("daxfs: inode numbers exhausted: %w", ErrNoSpace)
	}
	in, err := fs.newInodeWith(g, ino, mode, uid, gid, parent, tgt)
	if err != nil {
		fs.unreserve(dir)
		if tgt != 0 {
			fs.free(tgt)
		}
		return Attr{}, err
	}
	d, err := fs.newDirent(parent, name, childWord(ino, mode))
	if err != nil {
		fs.unreserve(dir)
		fs.reclaimInode(g, in)
		return Attr{}, err
	}
	if white != 0 {
		// A deleted base name: re-create it by one CAS of the whiteout.
		fs.free(d)
		if !fs.bindWhiteout(white, childWord(ino, mode)) {
			fs.unreserve(dir)
			r.Store(in+inRefs, 0)
			fs.reclaimInode(g, in)
			return Attr{}, fmt.Errorf("daxfs: create %q in %d: %w", name, parent, ErrExist)
		}
	} else {
		g.setIntent(intentCreate, d, parent, in, 0)
		defer g.clearIntent()
		if _, err := fs.insertDirent(d, parent, name); err != nil {
			g.clearIntent()
			fs.free(d)
			fs.unreserve(dir)
			r.Store(in+inRefs, 0)
			fs.reclaimInode(g, in)
			return Attr{}, fmt.Errorf("daxfs: create %q in %d: %w", name, parent, err)
		}
		fs.push(dirOffHead(dir), deDnext, d, nil)
	}
	if mode&modeType == modeDir {
		fs.addLinks(dir, 1)
	}
	fs.touchDir(dir)
	fs.changed()
	return fs.attr(in), nil
}

func (fs *FS) newInodeWith(g guard, ino Ino, mode, uid, gid uint32, parent Ino, data uint64) (uint64, error) {
	off, err := fs.newInode(g, ino, mode, uid, gid, parent)
	if err != nil {
		return 0, err
	}
	if data != 0 {
		// Published before anyone can reach the inode through a dirent.
		fs.r.Store(off+inData, data)
		fs.r.Store(off+inSize, uint64(hdrAux(fs.r.Load(data))))
	}
	return off, nil
}

// Symlink target object: header (aux = length), then the bytes from +8.
func (fs *FS) newSymlinkTarget(target string) (uint64, error) {
	if target == "" {
		return 0, fmt.Errorf("daxfs: empty symlink target: %w", ErrInvalid)
	}
	if len(target) > BlockSize-8 {
		return 0, fmt.Errorf("daxfs: symlink target of %d bytes: %w", len(target), ErrNameTooLong)
	}
	c := classFor(8 + uint64(len(target)))
	off, err := fs.alloc(c)
	if err != nil {
		return 0, err
	}
	fs.r.Store(off, hdrWord(typeSymlink, c, uint16(len(target))))
	copy(fs.r.Bytes(off+8, uint64(len(target))), target)
	return off, nil
}

// Create makes a regular file. It fails with ErrExist if the name is bound,
// whichever host bound it.
func (fs *FS) Create(parent Ino, name string, perm, uid, gid uint32) (Attr, error) {
	return fs.mknode(parent, name, modeReg|perm&0o7777, uid, gid, "")
}

// Mkdir makes a directory.
func (fs *FS) Mkdir(parent Ino, name string, perm, uid, gid uint32) (Attr, error) {
	return fs.mknode(parent, name, modeDir|perm&0o7777, uid, gid, "")
}

// Mknod makes a special file (fifo, socket, device) carrying only its mode.
func (fs *FS) Mknod(parent Ino, name string, mode, uid, gid uint32) (Attr, error) {
	switch mode & modeType {
	case modeReg, 0o010000, 0o140000, 0o020000, 0o060000:
	default:
		return Attr{}, fmt.Errorf("daxfs: mknod mode %o: %w", mode, ErrInvalid)
	}
	if mode&modeType == 0 {
		mode |= modeReg
	}
	return fs.mknode(parent, name, mode, uid, gid, "")
}

// Symlink makes a symbolic link to target.
func (fs *FS) Symlink(parent Ino, name, target string, uid, gid uint32) (Attr, error) {
	return fs.mknode(parent, name, modeLnk|0o777, uid, gid, target)
}

// Readlink returns the target of a symbolic link.
func (fs *FS) Readlink(ino Ino) (string, error) {
	g := fs.enter()
	defer g.exit()
	off, err := fs.resolve(ino)
	if err != nil {
		return "", err
	}
	r := fs.r
	if fs.modeOf(ino, off)&modeType != modeLnk {
		return "", fmt.Errorf("daxfs: readlink inode %d: %w", ino, ErrInvalid)
	}
	if off == 0 {
		return fs.base.readlink(ino), nil
	}
	if uint32(r.Load(off+inMode))&modeType != modeLnk {
		return "", fmt.Errorf("daxfs: readlink inode %d: %w", ino, ErrInvalid)
	}
	t := r.Load(off + inData)
	c := fs.objClass(t)
	if c < 0 || hdrType(r.Load(t)) != typeSymlink {
		return "", fmt.Errorf("%w: symlink %d target at %#x", ErrCorrupt, ino, t)
	}
	n := uint64(hdrAux(r.Load(t)))
	if n == 0 || 8+n > classSize(c) {
		return "", fmt.Errorf("%w: symlink %d target length %d", ErrCorrupt, ino, n)
	}
	return string(r.Bytes(t+8, n)), nil
}

// Lookup resolves name in directory parent.
func (fs *FS) Lookup(parent Ino, name string) (Attr, error) {
	g := fs.enter()
	defer g.exit()
	if name == "." {
		off, err := fs.dirResolve(parent)
		if err != nil {
			return Attr{}, err
		}
		return fs.attrOf(parent, off), nil
	}
	if name == ".." {
		off, err := fs.dirResolve(parent)
		if err != nil {
			return Attr{}, err
		}
		pp := fs.parentIno(parent, off)
		pOff, err := fs.resolve(pp)
		if err != nil {
			return Attr{}, err
		}
		return fs.attrOf(pp, pOff), nil
	}
	if len(name) > MaxNameLen {
		return Attr{}, ErrNameTooLong
	}
	if _, err := fs.dirResolve(parent); err != nil {
		return Attr{}, err
	}
	ino, _, _, err := fs.lookupName(parent, name)
	if err != nil {
		return Attr{}, err
	}
	off, err := fs.resolve(ino)
	if err != nil {
		// Unlinked between the two reads.
		return Attr{}, fmt.Errorf("daxfs: lookup %q in %d: %w", name, parent, ErrNotExist)
	}
	return fs.attrOf(ino, off), nil
}

// Link binds a new name to an existing non-directory inode.
func (fs *FS) Link(ino Ino, parent Ino, name string) (Attr, error) {
	if err := fs.writable(); err != nil {
		return Attr{}, err
	}
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	g := fs.enter()
	defer g.exit()
	in, err := fs.inodeW(g, ino)
	if err != nil {
		return Attr{}, err
	}
	mode := uint32(fs.r.Load(in + inMode))
	if mode&modeType == modeDir {
		return Attr{}, fmt.Errorf("daxfs: link to directory %d: %w", ino, ErrInvalid)
	}
	dir, err := fs.dirInodeW(g, parent)
	if err != nil {
		return Attr{}, err
	}
	var white uint64
	if ex, err := fs.lookupDirent(parent, name); err != nil {
		return Attr{}, err
	} else if ex != 0 && isWhiteout(fs.r.Load(ex+deChild)) {
		white = ex
	} else if ex == 0 {
		if _, _, ok := fs.baseName(parent, name); ok {
			return Attr{}, fmt.Errorf("daxfs: link %q in %d: %w", name, parent, ErrExist)
		}
	}
	if err := fs.reserve(dir); err != nil {
		return Attr{}, err
	}
	if _, err := fs.addLinks(in, 1); err != nil {
		fs.unreserve(dir)
		return Attr{}, err
	}
	undo := func() {
		fs.unreserve(dir)
		refs, _ := fs.addLinks(in, -1)
		fs.dropped(g, in, refs)
	}
	d, err := fs.newDirent(parent, name, childWord(ino, mode))
	if err != nil {
		undo()
		return Attr{}, err
	}
	if white != 0 {
		fs.free(d)
		if !fs.bindWhiteout(white, childWord(ino, mode)) {
			undo()
			return Attr{}, fmt.Errorf("daxfs: link %q in %d: %w", name, parent, ErrExist)
		}
	} else {
		g.setIntent(intentCreate, d, parent, 0, in)
		defer g.clearIntent()
		if _, err := fs.insertDirent(d, parent, name); err != nil {
			g.clearIntent()
			fs.free(d)
			undo()
			return Attr{}, fmt.Errorf("daxfs: link %q in %d: %w", name, parent, err)
		}
		fs.push(dirOffHead(dir), deDnext, d, nil)
	}
	fs.r.Store(in+inCtime, now())
	fs.touchDir(dir)
	fs.changed()
	return fs.attr(in), nil
}

// Unlink removes a non-directory name.
func (fs *FS) Unlink(parent Ino, name string) error { return fs.remove(parent, name, false) }

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(parent Ino, name string) error { return fs.remove(parent, name, true) }

func (fs *FS) remove(parent Ino, name string, wantDir bool) error {
	if err := fs.writable(); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("daxfs: remove %q: %w", name, ErrInvalid)
	}
	g := fs.enter()
	defer g.exit()
	r := fs.r
	dir, err := fs.dirInodeW(g, parent)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		d, err := fs.lookupDirent(parent, name)
		if err != nil {
			return err
		}
		inBase := false
		if _, _, ok := fs.baseName(parent, name); ok {
			inBase = true
			if d == 0 {
				// A base name is removed through an overlay dirent.
				if _, err := fs.materialiseName(parent, dir, name); err != nil {
					return err
				}
				continue
			}
		}
		if d == 0 {
			return fmt.Errorf("daxfs: remove %q in %d: %w", name, parent, ErrNotExist)
		}
		c := r.Load(d + deChild)
		if isWhiteout(c) {
			return fmt.Errorf("daxfs: remove %q in %d: %w", name, parent, ErrNotExist)
		}
		if !childLive(c) {
			continue
		}
		if c&childMoving != 0 {
			if err := fs.waitMoving(i); err != nil {
				return err
			}
			continue
		}
		ino := c & childIno
		in, err := fs.inodeW(g, ino)
		if err != nil {
			if i > 1000 {
				return err
			}
			continue // reclaimed under us: the dirent is going too
		}
		isDir := uint32(r.Load(in+inMode))&modeType == modeDir
		if isDir && !wantDir {
			return fmt.Errorf("daxfs: unlink %q in %d: %w", name, parent, ErrIsDir)
		}
		if !isDir && wantDir {
			return fmt.Errorf("daxfs: rmdir %q in %d: %w", name, parent, ErrNotDir)
		}
		if isDir {
			g.setIntent(intentRmdir, d, in, parent)
			// Empty and dead in one CAS: no entry can be added after it.
			if !r.CAS(in+inDcount, 0, dcountDead) {
				g.clearIntent()
				if r.Load(in+inDcount)&dcountDead != 0 {
					// Another rmdir or rename-over is removing it (or
					// died doing so and will be reaped).
					if err := fs.waitMoving(i); err != nil {
						return err
					}
					continue
				}
				return fmt.Errorf("daxfs: rmdir %q in %d: %w", name, parent, ErrNotEmpty)
			}
		}
		gone := c | childDead
		if inBase {
			gone = whiteoutWord(ino) // the dirent stays, hiding the base name
		}
		if !r.CAS(d+deChild, c, gone) {
			if isDir {
				r.CAS(in+inDcount, dcountDead, 0)
				g.clearIntent()
			}
			fs.stats.CASRetries.Add(1)
			continue
		}
		defer g.clearIntent()
		if !inBase {
			fs.deleteDirent(d, dir)
		}
		fs.unreserve(dir)
		fs.touchDir(dir)
		var refs uint64
		if isDir {
			fs.addLinks(dir, -1)
			refs = fs.clearLinks(in)
		} else {
			refs, _ = fs.addLinks(in, -1)
			r.Store(in+inCtime, now())
		}
		fs.changed()
		fs.dropped(g, in, refs)
		return nil
	}
}

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Ino  Ino
	Type uint8 // DT_* value
}

// ReadDir lists a directory in one pass over its list. A name bound for the
// whole call is listed exactly once; names created or removed during the
// call may or may not be.
func (fs *FS) ReadDir(ino Ino) ([]DirEntry, error) {
	g := fs.enter()
	defer g.exit()
	dir, err := fs.dirResolve(ino)
	if err != nil {
		return nil, err
	}
	if fs.base.has(ino) {
		return fs.readDirBase(ino, dir)
	}
	r := fs.r
	var out []DirEntry
	_, err = fs.find(dirOffHead(dir), deDnext, true, func(n uint64) (bool, error) {
		c := r.Load(n + deChild)
		if !childLive(c) || r.Load(n+deParent) != ino {
			return false, nil
		}
		nm, err := fs.direntName(n)
		if err != nil {
			return false, err
		}
		out = append(out, DirEntry{Name: string(nm), Ino: c & childIno, Type: uint8(c >> 58 & 0xf)})
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if r.Load(dir+inDcount)&dcountDead != 0 && len(out) == 0 {
		// Removed while we looked: an empty listing is right.
		return nil, nil
	}
	return out, nil
}
