package daxfs

// finishIntent completes or undoes what a dead host's intent names. It runs
// while the dead host's epoch words are still set, so every object the
// intent names is still allocated. It must be idempotent: a reaper can die
// in it too.
func (fs *FS) finishIntent(it uint64) {
	r := fs.r
	kind := r.Load(it)
	if kind == intentNone {
		return
	}
	var a [7]uint64
	for i := range a {
		a[i] = r.Load(it + 8 + uint64(i)*8)
	}
	switch kind {
	case intentCreate:
		fs.finishCreate(a[0], a[1], a[2], a[3])
	case intentRename:
		fs.finishRename(a[0], a[1], a[2], a[3], a[4])
	case intentRmdir:
		fs.finishRmdir(a[0], a[1], a[2])
	case intentWrite:
		fs.finishWrite(a[0])
	}
	r.Store(it, intentNone)
}

func (fs *FS) isDirent(d uint64) bool {
	return d != 0 && fs.objClass(d) >= 0 && hdrMagicOK(fs.r.Load(d)) && hdrType(fs.r.Load(d)) == typeDirent
}

func (fs *FS) isInodeEntry(in uint64) bool {
	return in != 0 && fs.objClass(in) == inodeClass && hdrMagicOK(fs.r.Load(in)) && hdrType(fs.r.Load(in)) == typeInode
}

// published reports whether dirent d is linked on its hash chain.
func (fs *FS) published(d uint64) bool {
	found, err := fs.find(fs.bucketFor(fs.r.Load(d+deKey)), deNext, false, func(n uint64) (bool, error) { return n == d, nil })
	return err == nil && found == d
}

// ensureListed puts a published dirent on its directory's list if a crash
// kept it off.
func (fs *FS) ensureListed(d uint64) {
	if fs.r.Load(d+deDnext)&markBit != 0 {
		return
	}
	dir, err := fs.inode(fs.r.Load(d + deParent))
	if err != nil {
		return
	}
	found, err := fs.find(dirOffHead(dir), deDnext, true, func(n uint64) (bool, error) { return n == d, nil })
	if err == nil && found == 0 {
		fs.push(dirOffHead(dir), deDnext, d, nil)
	}
}

func (fs *FS) finishCreate(d, parent, newInode, linked uint64) {
	if !fs.isDirent(d) {
		return
	}
	if fs.published(d) {
		fs.ensureListed(d)
		return
	}
	// The name never became visible: undo what was prepared for it.
	fs.free(d)
	g := guard{fs: fs}
	if fs.isInodeEntry(newInode) && fs.r.Load(newInode+inState) == 0 {
		fs.r.Store(newInode+inRefs, 0)
		fs.reclaimInode(g, newInode)
	}
	if fs.isInodeEntry(linked) {
		refs, _ := fs.addLinks(linked, -1)
		fs.dropped(g, linked, refs)
	}
	if dir, err := fs.inode(parent); err == nil {
		fs.unreserve(dir)
	}
}

func (fs *FS) finishRename(s, n, t, x, yOff uint64) {
	r := fs.r
	if !fs.isDirent(s) {
		return
	}
	c := r.Load(s + deChild)
	if c&childMoving == 0 || c&childDead != 0 || c&childIno != x {
		return // not started, or already finished or undone
	}
	boundTo := func(d uint64) bool {
		dc := r.Load(d + deChild)
		return childLive(dc) && dc&childIno == x
	}
	var bound uint64
	switch {
	case n != 0 && fs.isDirent(n) && fs.published(n) && boundTo(n):
		bound = n
		fs.ensureListed(n)
	case t != 0 && fs.isDirent(t) && boundTo(t):
		bound = t
	}
	g := guard{fs: fs}
	if bound == 0 {
		// The new name was never bound: put the old one back.
		if n != 0 && fs.isDirent(n) && !fs.published(n) {
			fs.free(n)
		}
		if fs.isInodeEntry(yOff) {
			r.CAS(yOff+inDcount, dcountDead, 0)
		}
		r.CAS(s+deChild, c, c&^childMoving)
		return
	}
	gone := fs.goneWord(s, c) // a base name stays hidden (whiteout)
	if !r.CAS(s+deChild, c, gone) {
		return
	}
	if src, err := fs.inode(r.Load(s + deParent)); err == nil {
		if gone&childDead != 0 {
			fs.deleteDirent(s, src)
		}
		fs.unreserve(src)
	}
	if xo, err := fs.inode(x); err == nil && uint32(r.Load(xo+inMode))&modeType == modeDir {
		r.Store(xo+inParent, r.Load(bound+deParent))
	}
	if fs.isInodeEntry(yOff) && r.Load(yOff+inDcount) == dcountDead {
		fs.dropped(g, yOff, fs.clearLinks(yOff))
	}
	fs.changed()
}

func (fs *FS) finishRmdir(d, xOff, parent uint64) {
	r := fs.r
	if !fs.isDirent(d) || !fs.isInodeEntry(xOff) {
		return
	}
	c := r.Load(d + deChild)
	if !childLive(c) || c&childIno != r.Load(xOff+inIno) || r.Load(xOff+inDcount) != dcountDead {
		return
	}
	gone := fs.goneWord(d, c)
	if !r.CAS(d+deChild, c, gone) {
		return
	}
	g := guard{fs: fs}
	if dir, err := fs.inode(parent); err == nil {
		if gone&childDead != 0 {
			fs.deleteDirent(d, dir)
		}
		fs.unreserve(dir)
		fs.addLinks(dir, -1)
	}
	fs.dropped(g, xOff, fs.clearLinks(xOff))
	fs.changed()
}

// finishWrite trims whatever a dead writer left past the end of file,
// under the truncate sequence so that live writers past EOF write again.
func (fs *FS) finishWrite(in uint64) {
	if !fs.isInodeEntry(in) || fs.r.Load(in+inState) != 0 || uint32(fs.r.Load(in+inMode))&modeType != modeReg {
		return
	}
	t := fs.beginTruncate(in)
	size := fs.r.Load(in + inSize)
	fs.trimFrom(in, (size+BlockSize-1)/BlockSize, size%BlockSize)
	fs.endTruncate(in, t)
}
