package daxfs

import (
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"
)

// File data hangs off the inode's data word, a page table root
// [height:8 | offset:56]: offset 0 is an empty file; height 0 means offset is
// the data page of page 0; height h >= 1 means offset is a node of 512
// words covering 512^h pages. Nodes and data pages are headerless 4 KiB pool
// pages. A missing page is a hole and reads as zeros.
//
// Publishing: a node or page is allocated, written completely (zeros, plus
// the bytes of the write for a new data page), then installed by one CAS of
// the empty slot (or of the root, to grow the tree). A host that loses the
// race frees its page and uses the winner's.
const (
	ptFanout    = 512
	ptShift     = 9
	rootOffMask = 1<<56 - 1
	// MaxFileSize is the largest file size (1 PiB: a 5-level page table).
	MaxFileSize = 1 << 50
	maxHeight   = 5
	inTholder   = 168 // truncate holder: host slot+1 while tseq is odd
)

func pagesAt(h int) uint64 { return uint64(1) << (ptShift * h) }

func (fs *FS) checkPage(off uint64) error {
	if !fs.validObj(off, pageClass) {
		return fmt.Errorf("%w: page table reference %#x is not a page", ErrCorrupt, off)
	}
	return nil
}

// pageAt returns the data page holding page index p, or 0 for a hole.
func (fs *FS) pageAt(in, p uint64) (uint64, error) {
	r := fs.r
	w := r.Load(in + inData)
	h, cur := int(w>>56), w&rootOffMask
	if cur == 0 || h > maxHeight || p >= pagesAt(h) {
		return 0, nil
	}
	for lvl := h; lvl > 0; lvl-- {
		if err := fs.checkPage(cur); err != nil {
			return 0, err
		}
		cur = r.Load(cur + (p>>(ptShift*(lvl-1))&(ptFanout-1))*8)
		if cur == 0 {
			return 0, nil
		}
	}
	return cur, fs.checkPage(cur)
}

// newPage allocates a zeroed page and lets fill write into it.
func (fs *FS) newPage(fill func([]byte)) (uint64, error) {
	off, err := fs.alloc(pageClass)
	if err != nil {
		return 0, err
	}
	b := fs.r.Bytes(off, BlockSize)
	clear(b)
	if fill != nil {
		fill(b)
	}
	return off, nil
}

// ensurePage returns the data page of index p, creating the path to it. A
// page it creates is filled by fill before it is published; created tells
// the caller that its bytes are already in.
func (fs *FS) ensurePage(in, p uint64, fill func([]byte)) (page uint64, created bool, err error) {
	r := fs.r
	root := in + inData
	// Grow the tree until it covers p.
	for i := 0; ; i++ {
		w := r.Load(root)
		h, off := int(w>>56), w&rootOffMask
		if off == 0 {
			need := 0
			for p >= pagesAt(need) {
				need++
			}
			var n uint64
			if need == 0 {
				n, err = fs.newPage(fill)
			} else {
				n, err = fs.newPage(nil)
			}
			if err != nil {
				return 0, false, err
			}
			if r.CAS(root, w, uint64(need)<<56|n) {
				if need == 0 {
					r.Add(in+inBlocks, 1)
					return n, true, nil
				}
				continue
			}
			fs.free(n)
			fs.stats.CASRetries.Add(1)
			continue
		}
		if p < pagesAt(h) {
			break
		}
		if h >= maxHeight {
			return 0, false, fmt.Errorf("daxfs: page %d: %w", p, syscall.EFBIG)
		}
		n, err := fs.newPage(nil)
		if err != nil {
			return 0, false, err
		}
		r.Store(n, off)
		if !r.CAS(root, w, uint64(h+1)<<56|n) {
			fs.free(n)
			fs.stats.CASRetries.Add(1)
			backoff(i)
		}
	}
	w := r.Load(root)
	h, cur := int(w>>56), w&rootOffMask
	if h == 0 {
		return cur, false, fs.checkPage(cur)
	}
	for lvl := h; lvl > 0; lvl-- {
		if err := fs.checkPage(cur); err != nil {
			return 0, false, err
		}
		slot := cur + (p>>(ptShift*(lvl-1))&(ptFanout-1))*8
		child := r.Load(slot)
		if child == 0 {
			var f func([]byte)
			if lvl == 1 {
				f = fill
			}
			n, err := fs.newPage(f)
			if err != nil {
				return 0, false, err
			}
			if r.CAS(slot, 0, n) {
				if lvl == 1 {
					r.Add(in+inBlocks, 1)
					return n, true, nil
				}
				child = n
			} else {
				fs.free(n)
				fs.stats.CASRetries.Add(1)
				child = r.Load(slot)
			}
		}
		cur = child
	}
	return cur, false, fs.checkPage(cur)
}

// retireTree retires every node and page under a root word.
func (fs *FS) retireTree(w uint64) {
	h, off := int(w>>56), w&rootOffMask
	if off == 0 || h > maxHeight {
		return
	}
	fs.retireSubtree(off, h)
}

func (fs *FS) retireSubtree(off uint64, h int) {
	if !fs.validObj(off, pageClass) {
		return
	}
	if h > 0 {
		for i := range uint64(ptFanout) {
			if c := fs.r.Load(off + i*8); c != 0 {
				fs.retireSubtree(c, h-1)
			}
		}
	}
	fs.retire(off)
}

// trimFrom removes every data page of index >= first and zeroes the bytes
// of page first-1 from tail on (tail == 0: nothing to zero).
func (fs *FS) trimFrom(in, first, tail uint64) {
	r := fs.r
	w := r.Load(in + inData)
	h, off := int(w>>56), w&rootOffMask
	if off == 0 || h > maxHeight {
		return
	}
	if tail != 0 && first > 0 {
		if pg, err := fs.pageAt(in, first-1); err == nil && pg != 0 {
			clear(r.Bytes(pg+tail, BlockSize-tail))
		}
	}
	if first == 0 {
		if r.CAS(in+inData, w, 0) {
			fs.retireTree(w)
			r.Store(in+inBlocks, 0)
		}
		return
	}
	if h == 0 {
		return // only page 0 exists and it stays
	}
	fs.trimNode(in, off, h, 0, first)
}

// trimNode clears slots of the node at off (height h, first page base)
// holding pages >= first.
func (fs *FS) trimNode(in, off uint64, h int, base, first uint64) {
	if !fs.validObj(off, pageClass) {
		return
	}
	span := pagesAt(h - 1)
	for i := range uint64(ptFanout) {
		lo := base + i*span
		if lo+span <= first {
			continue
		}
		slot := off + i*8
		c := fs.r.Load(slot)
		if c == 0 {
			continue
		}
		if lo >= first {
			if fs.r.CAS(slot, c, 0) {
				if h == 1 {
					fs.r.Add(in+inBlocks, ^uint64(0))
					fs.retire(c)
				} else {
					fs.retireSubtree(c, h-1)
					fs.countBlocksGone(in, c, h-1)
				}
			}
			continue
		}
		if h > 1 {
			fs.trimNode(in, c, h-1, lo, first)
		}
	}
}

// countBlocksGone is a no-op placeholder for subtree accounting: retired
// subtrees are counted by recounting (blocks are informational).
func (fs *FS) countBlocksGone(in, _ uint64, _ int) { fs.recountBlocks(in) }

func (fs *FS) recountBlocks(in uint64) {
	w := fs.r.Load(in + inData)
	h, off := int(w>>56), w&rootOffMask
	if off == 0 {
		fs.r.Store(in+inBlocks, 0)
		return
	}
	fs.r.Store(in+inBlocks, fs.countPages(off, h))
}

func (fs *FS) countPages(off uint64, h int) uint64 {
	if h == 0 {
		return 1
	}
	if !fs.validObj(off, pageClass) {
		return 0
	}
	var n uint64
	for i := range uint64(ptFanout) {
		if c := fs.r.Load(off + i*8); c != 0 {
			n += fs.countPages(c, h-1)
		}
	}
	return n
}

// beginTruncate takes the truncate sequence of an inode (odd while held).
// A holder whose host died is replaced.
func (fs *FS) beginTruncate(in uint64) uint64 {
	r := fs.r
	me := uint64(fs.slot() + 1)
	var since time.Time
	for i := 0; ; i++ {
		t := r.Load(in + inTseq)
		if t&1 == 0 {
			if r.CAS(in+inTseq, t, t+1) {
				r.Store(in+inTholder, me)
				return t + 1
			}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) > fs.ht.Lease() && fs.holderDead(r.Load(in+inTholder)) {
			if r.CAS(in+inTseq, t, t+2) {
				r.Store(in+inTholder, me)
				return t + 2
			}
		}
		backoff(i + 8)
	}
}

func (fs *FS) endTruncate(in, t uint64) { fs.r.Store(in+inTseq, t+1) }

func (fs *FS) slot() int {
	if fs.host == nil {
		return -1
	}
	return fs.host.Slot()
}

func (fs *FS) holderDead(h uint64) bool {
	if h == 0 || h > uint64(fs.sb.MaxHosts) {
		return true
	}
	s := int(h - 1)
	inc := fs.r.Load(fs.sb.hostRec(s) + hrInc)
	return inc == 0 || !fs.ht.Alive(s, inc)
}

// truncate sets the size of a regular file. Whatever lay past the smaller
// of the old and new size is gone before the new size is visible, so bytes
// past EOF never reappear.
func (fs *FS) truncate(g guard, in, size uint64) error {
	if size > MaxFileSize {
		return fmt.Errorf("daxfs: truncate to %d: %w", size, syscall.EFBIG)
	}
	r := fs.r
	t := fs.beginTruncate(in)
	keep := min(size, r.Load(in+inSize))
	fs.trimBase(in, keep)
	fs.trimFrom(in, (keep+BlockSize-1)/BlockSize, keep%BlockSize)
	r.Store(in+inSize, size)
	ts := now()
	r.Store(in+inMtime, ts)
	r.Store(in+inCtime, ts)
	fs.endTruncate(in, t)
	return nil
}

// waitTruncate waits while a truncate runs on the inode.
func (fs *FS) waitTruncate(in uint64, i int) {
	t := fs.r.Load(in + inTseq)
	if t&1 != 0 && i > 1000 && fs.holderDead(fs.r.Load(in+inTholder)) {
		// Finish the dead host's truncate for it.
		t2 := fs.beginTruncate(in)
		fs.trimFrom(in, (fs.r.Load(in+inSize)+BlockSize-1)/BlockSize, fs.r.Load(in+inSize)%BlockSize)
		fs.endTruncate(in, t2)
		return
	}
	backoff(i + 8)
}

func (fs *FS) writeAt(in uint64, p []byte, off uint64) (int, error) {
	if off > MaxFileSize || uint64(len(p)) > MaxFileSize-off {
		return 0, fmt.Errorf("daxfs: write at %d+%d: %w", off, len(p), syscall.EFBIG)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r := fs.r
	end := off + uint64(len(p))
	for i := 0; ; i++ {
		t := r.Load(in + inTseq)
		if t&1 != 0 {
			fs.waitTruncate(in, i)
			continue
		}
		for pos := off; pos < end; {
			pi, po := pos/BlockSize, pos%BlockSize
			n := min(BlockSize-po, end-pos)
			chunk := p[pos-off : pos-off+n]
			pg, err := fs.pageAt(in, pi)
			if err != nil {
				return int(pos - off), err
			}
			if pg == 0 {
				var created bool
				pg, created, err = fs.ensurePage(in, pi, fs.cowFill(in, pi, func(b []byte) { copy(b[po:], chunk) }))
				if err != nil {
					return int(pos - off), err
				}
				if created {
					pos += n
					continue
				}
			}
			copy(r.Bytes(pg+po, n), chunk)
			pos += n
		}
		// Size grows by CAS-max: concurrent appenders never lose size.
		for {
			s := r.Load(in + inSize)
			if s >= end || r.CAS(in+inSize, s, end) {
				break
			}
			fs.stats.CASRetries.Add(1)
		}
		if r.Load(in+inTseq) == t {
			break
		}
		// A truncate ran during the write: write again after it.
	}
	ts := now()
	r.Store(in+inMtime, ts)
	r.Store(in+inCtime, ts)
	return len(p), nil
}

func (fs *FS) readAt(in uint64, p []byte, off uint64) (int, error) {
	r := fs.r
	size := r.Load(in + inSize)
	if off >= size {
		return 0, io.EOF
	}
	n := min(uint64(len(p)), size-off)
	for pos := off; pos < off+n; {
		pi, po := pos/BlockSize, pos%BlockSize
		k := min(BlockSize-po, off+n-pos)
		dst := p[pos-off : pos-off+k]
		pg, err := fs.pageAt(in, pi)
		if err != nil {
			return int(pos - off), err
		}
		if pg == 0 {
			if ok, err := fs.baseHole(in, pi, po, dst); err != nil {
				return int(pos - off), err
			} else if !ok {
				clear(dst)
			}
		} else {
			copy(dst, r.Bytes(pg+po, k))
		}
		pos += k
	}
	fs.touchAtime(in)
	if n < uint64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// touchAtime follows relatime: atime moves when it is older than mtime or
// a day old, so reads do not write a shared line every time.
func (fs *FS) touchAtime(in uint64) {
	if fs.ro {
		return
	}
	r := fs.r
	a, m := r.Load(in+inAtime), r.Load(in+inMtime)
	if a <= m || coarseNow()-a > uint64(24*time.Hour) {
		r.Store(in+inAtime, now())
	}
}

// Handle is an open regular file. Its inode stays allocated (even after
// its last name is removed) until Close. Safe for concurrent use.
type Handle struct {
	fs     *FS
	ino    Ino
	in     uint64
	flags  int
	closed atomic.Bool
}

// OpenIno opens inode ino; flags are os.O_* (O_TRUNC truncates, the access
// mode is checked on each call).
func (fs *FS) OpenIno(ino Ino, flags int) (*Handle, error) {
	g := fs.enter()
	defer g.exit()
	in, err := fs.resolve(ino)
	if err != nil {
		return nil, err
	}
	mode := fs.modeOf(ino, in)
	if mode&modeType == modeDir && flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, fmt.Errorf("daxfs: open directory %d for writing: %w", ino, ErrIsDir)
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		if err := fs.writable(); err != nil {
			return nil, err
		}
		// Writing a base file copies it into the overlay first.
		if in, err = fs.inodeW(g, ino); err != nil {
			return nil, err
		}
	}
	// in == 0: a base inode the overlay has never changed; the handle
	// reads the base until an overlay entry appears (readBase).
	if !fs.ro && in != 0 {
		if _, err := fs.addOpens(in, 1); err != nil {
			return nil, fmt.Errorf("daxfs: open inode %d: %w", ino, err)
		}
	}
	h := &Handle{fs: fs, ino: ino, in: in, flags: flags}
	if flags&syscall.O_TRUNC != 0 && mode&modeType == modeReg {
		if err := fs.truncate(g, in, 0); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// Ino is the inode number of the open file.
func (h *Handle) Ino() Ino { return h.ino }

func (h *Handle) check(write bool) error {
	if h.closed.Load() {
		return fmt.Errorf("daxfs: inode %d: %w", h.ino, syscall.EBADF)
	}
	if write {
		if h.flags&(syscall.O_WRONLY|syscall.O_RDWR) == 0 {
			return fmt.Errorf("daxfs: write to inode %d opened read-only: %w", h.ino, syscall.EBADF)
		}
		if err := h.fs.writable(); err != nil {
			return err
		}
		if uint32(h.fs.r.Load(h.in+inMode))&modeType != modeReg {
			return fmt.Errorf("daxfs: write to inode %d: %w", h.ino, ErrInvalid)
		}
	} else if h.flags&syscall.O_WRONLY != 0 {
		return fmt.Errorf("daxfs: read from inode %d opened write-only: %w", h.ino, syscall.EBADF)
	}
	return nil
}

// ReadAt reads len(p) bytes at off; holes read as zeros. It returns io.EOF
// with a short count at end of file.
func (h *Handle) ReadAt(p []byte, off int64) (int, error) {
	if err := h.check(false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("daxfs: read at %d: %w", off, ErrInvalid)
	}
	g := h.fs.enter()
	defer g.exit()
	if h.in == 0 {
		return h.fs.readBase(h.ino, p, uint64(off))
	}
	return h.fs.readAt(h.in, p, uint64(off))
}

// WriteAt writes p at off, growing the file as needed.
func (h *Handle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.check(true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("daxfs: write at %d: %w", off, ErrInvalid)
	}
	g := h.fs.enter()
	defer g.exit()
	if uint64(off)+uint64(len(p)) > h.fs.r.Load(h.in+inSize) {
		// Bytes land past EOF before the size covers them: if this host
		// dies in between, the reaper trims them so they never reappear.
		g.setIntent(intentWrite, h.in)
		defer g.clearIntent()
	}
	return h.fs.writeAt(h.in, p, uint64(off))
}

// Append writes p at the current end of file and returns where it landed.
// Concurrent appenders, on any host, never overwrite each other: the range
// is claimed by CAS on the size before the bytes are written.
func (h *Handle) Append(p []byte) (int64, error) {
	if err := h.check(true); err != nil {
		return 0, err
	}
	g := h.fs.enter()
	defer g.exit()
	r := h.fs.r
	for i := 0; ; i++ {
		t := r.Load(h.in + inTseq)
		if t&1 != 0 {
			h.fs.waitTruncate(h.in, i)
			continue
		}
		s := r.Load(h.in + inSize)
		end := s + uint64(len(p))
		if end > MaxFileSize {
			return 0, fmt.Errorf("daxfs: append %d bytes at %d: %w", len(p), s, syscall.EFBIG)
		}
		if !r.CAS(h.in+inSize, s, end) {
			h.fs.stats.CASRetries.Add(1)
			backoff(i)
			continue
		}
		if _, err := h.fs.writeAt(h.in, p, s); err != nil {
			return int64(s), err
		}
		return int64(s), nil
	}
}

// Size is the current file size.
func (h *Handle) Size() uint64 {
	if h.in == 0 {
		return h.Stat().Size
	}
	return h.fs.r.Load(h.in + inSize)
}

// Stat returns the file's attributes.
func (h *Handle) Stat() Attr {
	if h.in == 0 {
		if a, err := h.fs.GetAttr(h.ino); err == nil {
			return a
		}
		return h.fs.base.attr(h.ino)
	}
	return h.fs.attr(h.in)
}

// Truncate sets the file size.
func (h *Handle) Truncate(size int64) error {
	if err := h.check(true); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("daxfs: truncate to %d: %w", size, ErrInvalid)
	}
	g := h.fs.enter()
	defer g.exit()
	return h.fs.truncate(g, h.in, uint64(size))
}

// Allocate makes sure [off, off+n) has pages (zeros where there were holes)
// and, unless keepSize, that the file is at least off+n bytes long.
func (h *Handle) Allocate(off, n int64, keepSize bool) error {
	if err := h.check(true); err != nil {
		return err
	}
	if off < 0 || n <= 0 || uint64(off)+uint64(n) > MaxFileSize {
		return fmt.Errorf("daxfs: allocate %d+%d: %w", off, n, ErrInvalid)
	}
	g := h.fs.enter()
	defer g.exit()
	for p := uint64(off) / BlockSize; p <= (uint64(off)+uint64(n)-1)/BlockSize; p++ {
		if _, _, err := h.fs.ensurePage(h.in, p, h.fs.cowFill(h.in, p, nil)); err != nil {
			return err
		}
	}
	if !keepSize {
		end := uint64(off + n)
		r := h.fs.r
		for {
			s := r.Load(h.in + inSize)
			if s >= end || r.CAS(h.in+inSize, s, end) {
				break
			}
		}
		r.Store(h.in+inCtime, now())
	}
	return nil
}

// Sync makes the file's data and inode durable (msync of their pages on a
// file-backed region, a cache flush on DAX).
func (h *Handle) Sync() error {
	if h.closed.Load() {
		return fmt.Errorf("daxfs: sync inode %d: %w", h.ino, syscall.EBADF)
	}
	g := h.fs.enter()
	defer g.exit()
	return h.fs.syncInode(h.in)
}

func (fs *FS) syncInode(in uint64) error {
	if fs.ro || in == 0 {
		return nil
	}
	w := fs.r.Load(in + inData)
	if h, off := int(w>>56), w&rootOffMask; off != 0 && uint32(fs.r.Load(in+inMode))&modeType == modeReg {
		if err := fs.syncTree(off, h); err != nil {
			return err
		}
	}
	return fs.r.Persist(in, classSize(inodeClass))
}

func (fs *FS) syncTree(off uint64, h int) error {
	if !fs.validObj(off, pageClass) {
		return nil
	}
	if err := fs.r.Persist(off, BlockSize); err != nil {
		return err
	}
	if h == 0 {
		return nil
	}
	for i := range uint64(ptFanout) {
		if c := fs.r.Load(off + i*8); c != 0 {
			if err := fs.syncTree(c, h-1); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases the open reference; the last close of an unlinked file
// frees it.
func (h *Handle) Close() error {
	if h.closed.Swap(true) {
		return nil
	}
	if h.fs.ro || h.in == 0 {
		return nil
	}
	g := h.fs.enter()
	defer g.exit()
	refs, err := h.fs.addOpens(h.in, -1)
	if err != nil {
		return err
	}
	h.fs.dropped(g, h.in, refs)
	return nil
}

// View is a zero-copy window on file data inside the region.
//
// The rule that makes it safe: until Release, the view holds an epoch
// announcement, so the page it shows is never freed or reused for other
// data, even if the file is truncated or removed meanwhile. Its bytes can
// still change under concurrent writes to the same range (as with mmap).
// Release promptly: a held view delays reclamation for every host.
type View struct {
	// Bytes aliases the region; nil means a hole (read as zeros) of
	// HoleLen bytes.
	Bytes   []byte
	HoleLen int
	g       guard
	done    bool
}

// Len is the number of file bytes the view covers.
func (v *View) Len() int {
	if v.Bytes != nil {
		return len(v.Bytes)
	}
	return v.HoleLen
}

// Release ends the view.
func (v *View) Release() {
	if !v.done {
		v.done = true
		v.g.exit()
	}
}

// View returns the file bytes from off to the end of off's page (or of the
// file, if sooner) without copying. At or past EOF it returns io.EOF.
func (h *Handle) View(off int64) (*View, error) {
	if err := h.check(false); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("daxfs: view at %d: %w", off, ErrInvalid)
	}
	g := h.fs.enter()
	in := h.in
	if in == 0 {
		if in, _ = h.fs.resolve(h.ino); in == 0 {
			defer g.exit()
			return h.fs.viewBase(h.ino, uint64(off))
		}
	}
	size := h.fs.r.Load(in + inSize)
	if uint64(off) >= size {
		g.exit()
		return nil, io.EOF
	}
	po := uint64(off) % BlockSize
	n := min(BlockSize-po, size-uint64(off))
	pg, err := h.fs.pageAt(in, uint64(off)/BlockSize)
	if err != nil {
		g.exit()
		return nil, err
	}
	v := &View{g: g}
	if pg == 0 {
		buf := make([]byte, n)
		if ok, err := h.fs.baseHole(in, uint64(off)/BlockSize, po, buf); err != nil {
			g.exit()
			return nil, err
		} else if ok {
			v.Bytes = buf
		} else {
			v.HoleLen = int(n)
		}
	} else {
		v.Bytes = h.fs.r.Bytes(pg+po, n)
	}
	return v, nil
}
