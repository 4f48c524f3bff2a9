package daxfs

import (
	"errors"
	"fmt"
	"time"
)

// Rename flags (as renameat2).
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
)

// Rename moves oldName in oldParent to newName in newParent.
//
// Protocol (docs/PROTOCOLS.md, "Rename"): the source dirent's child word is
// CASed LIVE -> MOVING, which excludes every other unlink or rename of that
// name; the target is then bound, either by inserting a new dirent
// (exclusive, like create) or by one CAS of an existing target's child word
// from the old inode to the moved one (the atomic replace); finally the
// source goes MOVING -> DEAD. An intent in the host record names source,
// target and inode, so if the host dies in between, the reaper either
// completes the rename (target bound) or puts the source back (not bound).
// The only state a crash can leave is a second name for the moved file
// (crash after binding a new target, before the intent names it), which
// fsck repairs; a file is never lost.
//
// Directory renames between different parents take a lease-based lock word
// so that two of them can never build a cycle.
func (fs *FS) Rename(oldParent Ino, oldName string, newParent Ino, newName string, flags int) error {
	if err := fs.writable(); err != nil {
		return err
	}
	if flags&RenameExchange != 0 {
		return fmt.Errorf("daxfs: rename exchange: %w", ErrInvalid)
	}
	if err := checkName(oldName); err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	g := fs.enter()
	defer g.exit()
	r := fs.r
	srcDir, err := fs.dirInode(oldParent)
	if err != nil {
		return err
	}
	dstDir, err := fs.dirInode(newParent)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		s, err := fs.lookupDirent(oldParent, oldName)
		if err != nil {
			return err
		}
		if s == 0 {
			// A base name moves through an overlay dirent (base_overlay.go).
			if ok, err := fs.materialiseName(oldParent, srcDir, oldName); err != nil {
				return err
			} else if ok {
				continue
			}
			return fmt.Errorf("daxfs: rename %q in %d: %w", oldName, oldParent, ErrNotExist)
		}
		c := r.Load(s + deChild)
		if isWhiteout(c) {
			return fmt.Errorf("daxfs: rename %q in %d: %w", oldName, oldParent, ErrNotExist)
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
		if oldParent == newParent && oldName == newName {
			return nil
		}
		x := c & childIno
		xOff, err := fs.inodeW(g, x)
		if err != nil {
			continue
		}
		if _, err := fs.materialiseName(newParent, dstDir, newName); err != nil {
			return err
		}
		isDir := uint32(r.Load(xOff+inMode))&modeType == modeDir
		g.setIntent(intentRename, s, 0, 0, x, 0)
		if !r.CAS(s+deChild, c, c|childMoving) {
			g.clearIntent()
			continue
		}
		err = fs.renameMoving(g, s, c, xOff, isDir, srcDir, dstDir, oldParent, newParent, newName, flags)
		g.clearIntent()
		if errors.Is(err, errRetry) {
			if err := fs.waitMoving(i); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

var errRetry = errors.New("daxfs: retry")

// renameMoving runs with the source dirent s in MOVING state. On error it
// puts s back to LIVE.
func (fs *FS) renameMoving(g guard, s, c, xOff uint64, isDir bool, srcDir, dstDir uint64, oldParent, newParent Ino, newName string, flags int) error {
	r := fs.r
	x := c & childIno
	abort := func(err error) error {
		r.CAS(s+deChild, c|childMoving, c)
		return err
	}
	if isDir && oldParent != newParent {
		unlock, err := fs.lockRenames()
		if err != nil {
			return abort(err)
		}
		defer unlock()
		// Refuse to move a directory under itself.
		for p, steps := newParent, 0; ; steps++ {
			if p == x {
				return abort(fmt.Errorf("daxfs: rename directory %d under itself: %w", x, ErrInvalid))
			}
			if p == RootIno || steps > 1<<16 {
				break
			}
			pOff, err := fs.resolve(p) // base ancestors need no overlay entry
			if err != nil {
				return abort(err)
			}
			p = fs.parentIno(p, pOff)
		}
	}
	if err := fs.reserve(dstDir); err != nil {
		return abort(err)
	}
	n, err := fs.newDirent(newParent, newName, c)
	if err != nil {
		fs.unreserve(dstDir)
		return abort(err)
	}
	r.Store(n+deSrc, s)
	var (
		bound    uint64 // dirent now binding newName to x
		replaced uint64 // inode entry of a replaced target, 0 if none
	)
	g.setIntentArg(1, n) // before publishing: the reaper tells published from not
	existing, err := fs.insertDirent(n, newParent, newName)
	switch {
	case err == nil:
		bound = n
		fs.push(dirOffHead(dstDir), deDnext, n, nil)
	case errors.Is(err, ErrExist) && isWhiteout(r.Load(existing+deChild)):
		// A deleted base name: bind it (the directory count stays reserved).
		g.setIntentArg(1, 0)
		fs.free(n)
		g.setIntentArg(2, existing)
		if !fs.bindWhiteout(existing, c) {
			fs.unreserve(dstDir)
			return abort(errRetry)
		}
		bound = existing
	case errors.Is(err, ErrExist):
		g.setIntentArg(1, 0)
		fs.free(n)
		fs.unreserve(dstDir)
		tc := r.Load(existing + deChild)
		if tc&childMoving != 0 && r.Load(s+deSrc) == existing {
			// Our source was bound by the rename that is moving the
			// target name away: that rename has already bound its target
			// and only has to retire its source. Wait for it rather
			// than report a name it is about to give up. (Waiting only
			// in this case cannot deadlock: the other rename waits for
			// nothing.)
			time.Sleep(100 * time.Microsecond)
			return abort(errRetry)
		}
		if flags&RenameNoReplace != 0 {
			return abort(fmt.Errorf("daxfs: rename onto %q in %d: %w", newName, newParent, ErrExist))
		}
		if !childLive(tc) {
			return abort(errRetry)
		}
		if tc&childMoving != 0 {
			time.Sleep(time.Millisecond)
			return abort(errRetry)
		}
		y := tc & childIno
		if y == x {
			// Both names are links to one inode: POSIX says do nothing.
			r.CAS(s+deChild, c|childMoving, c)
			return nil
		}
		yOff, err := fs.inode(y)
		if err != nil {
			return abort(errRetry)
		}
		yDir := uint32(r.Load(yOff+inMode))&modeType == modeDir
		switch {
		case isDir && !yDir:
			return abort(fmt.Errorf("daxfs: rename directory onto %q: %w", newName, ErrNotDir))
		case !isDir && yDir:
			return abort(fmt.Errorf("daxfs: rename onto directory %q: %w", newName, ErrIsDir))
		case yDir:
			g.setIntentArg(4, yOff)
			if !r.CAS(yOff+inDcount, 0, dcountDead) {
				g.setIntentArg(4, 0)
				if r.Load(yOff+inDcount)&dcountDead != 0 {
					return abort(errRetry)
				}
				return abort(fmt.Errorf("daxfs: rename onto %q: %w", newName, ErrNotEmpty))
			}
		}
		// The atomic replace: one CAS binds the name to x.
		g.setIntentArg(2, existing)
		r.Store(existing+deSrc, s)
		if !r.CAS(existing+deChild, tc, c) {
			if yDir {
				r.CAS(yOff+inDcount, dcountDead, 0)
			}
			return abort(errRetry)
		}
		bound = existing
		replaced = yOff
	default:
		g.setIntentArg(1, 0)
		fs.free(n)
		fs.unreserve(dstDir)
		return abort(err)
	}
	_ = bound
	// The source goes away; nobody else can change a MOVING word. A base
	// name stays hidden by its dirent, now a whiteout.
	gone := c | childDead
	if nm, err := fs.direntName(s); err == nil {
		if _, _, ok := fs.baseName(oldParent, string(nm)); ok {
			gone = whiteoutWord(x)
		}
	}
	if !r.CAS(s+deChild, c|childMoving, gone) {
		panic(fmt.Sprintf("daxfs: rename: source dirent %#x changed while MOVING", s))
	}
	if gone&childDead != 0 {
		fs.deleteDirent(s, srcDir)
	}
	fs.unreserve(srcDir)
	if isDir {
		r.Store(xOff+inParent, newParent)
		if oldParent != newParent {
			fs.addLinks(srcDir, -1)
			if replaced == 0 {
				fs.addLinks(dstDir, 1)
			}
		}
	}
	if replaced != 0 {
		var refs uint64
		if isDir {
			refs = fs.clearLinks(replaced)
			if oldParent == newParent {
				fs.addLinks(dstDir, -1)
			}
		} else {
			refs, _ = fs.addLinks(replaced, -1)
			r.Store(replaced+inCtime, now())
		}
		fs.dropped(g, replaced, refs)
	}
	r.Store(xOff+inCtime, now())
	fs.touchDir(srcDir)
	fs.touchDir(dstDir)
	fs.changed()
	return nil
}

// lockRenames takes the directory-rename lock: a word holding the
// incarnation of its holder. A holder whose host died is replaced.
func (fs *FS) lockRenames() (func(), error) {
	r := fs.r
	w := fs.sb.sharedWord(swRenameLock)
	me := fs.host.Incarnation()
	for i := 0; ; i++ {
		cur := r.Load(w)
		if cur == 0 || fs.reaperDead(cur) {
			if r.CAS(w, cur, me) {
				return func() { r.CAS(w, me, 0) }, nil
			}
			continue
		}
		if time.Duration(i)*100*time.Microsecond > 8*fs.ht.Lease() {
			return nil, fmt.Errorf("daxfs: directory rename lock held too long: %w", ErrBusy)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
