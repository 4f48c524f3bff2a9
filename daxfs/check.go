package daxfs

import (
	"bytes"
	"fmt"
	"sort"
)

// Problem is one finding of Check.
type Problem struct {
	// Severe problems break an invariant that operations rely on (a name
	// bound twice, a link count below the number of names, an object in
	// two places). The others are leaks or work a dead host left, which
	// cost space but not correctness.
	Severe bool
	What   string
}

func (p Problem) String() string {
	if p.Severe {
		return "ERROR: " + p.What
	}
	return "warning: " + p.What
}

// CheckReport is what Check found.
type CheckReport struct {
	Problems []Problem

	Inodes, Dirs, Files, Symlinks, Dirents uint64
	DataPages, TableNodes                  uint64
	FreeObjects, LimboObjects              uint64
	LeakedBytes                            uint64 // carved, unreferenced, not free (includes live hosts' carve tails)
	BucketsUsed, LongestChain              uint64
	LiveHosts, DeadHosts                   int
}

// Severe counts the severe problems.
func (c *CheckReport) Severe() int {
	n := 0
	for _, p := range c.Problems {
		if p.Severe {
			n++
		}
	}
	return n
}

// OK reports whether there is no severe problem.
func (c *CheckReport) OK() bool { return c.Severe() == 0 }

func (c *CheckReport) add(severe bool, format string, a ...any) {
	if len(c.Problems) < 10000 {
		c.Problems = append(c.Problems, Problem{Severe: severe, What: fmt.Sprintf(format, a...)})
	}
}

type checkInode struct {
	off, ino, mode, nlink, opens, dcount, parent, size uint64
	names                                              uint64 // live dirents naming it
	subdirs, entries                                   uint64 // for directories
	reached                                            bool
}

type checkDirent struct {
	off, parent, child, key uint64
	name                    string
	marked, listed          bool
}

// Check walks every structure of the filesystem and reports what is wrong.
// It is exact only while no host mutates the filesystem (run it on a
// quiescent region, e.g. after every writer stopped or died); on a live
// region it reports in-flight operations as problems.
func (fs *FS) Check() *CheckReport {
	rep, _ := fs.check()
	return rep
}

// checkState is what check saw, for repair (repair.go).
type checkState struct {
	owner   map[uint64]string
	inodes  map[uint64]*checkInode
	dirents []*checkDirent
	bump    uint64
}

func (fs *FS) check() (*CheckReport, *checkState) {
	rep := &CheckReport{}
	r := fs.r
	sb := fs.sb
	owner := map[uint64]string{} // object offset -> what uses it
	claim := func(off uint64, what string) bool {
		if prev, ok := owner[off]; ok {
			rep.add(true, "object %#x is both %s and %s", off, prev, what)
			return false
		}
		owner[off] = what
		return true
	}

	for _, h := range fs.ht.Hosts() {
		if h.Alive {
			rep.LiveHosts++
		} else {
			rep.DeadHosts++
		}
	}

	// Chunk map.
	bump := r.Load(sb.sharedWord(swChunkBump))
	if bump > sb.ChunkCount {
		rep.add(true, "chunk bump %d beyond %d chunks", bump, sb.ChunkCount)
		bump = sb.ChunkCount
	}
	for k := range sb.ChunkCount {
		cw := r.Load(sb.chunkWord(k))
		if k < bump && (cw == 0 || cw > numClasses) {
			rep.add(false, "chunk %d handed out but has class word %d", k, cw)
		}
		if k >= bump && cw != 0 {
			rep.add(true, "chunk %d beyond the bump has class word %d", k, cw)
		}
	}

	// Hash chains.
	inodes := map[uint64]*checkInode{}
	tomb := map[uint64]bool{} // base inodes whose overlay entry is a tombstone
	var dirents []*checkDirent
	for b := range sb.BucketCount {
		head := sb.bucket(b)
		cur := r.Load(head)
		if cur != 0 {
			rep.BucketsUsed++
		}
		seen := map[uint64]bool{}
		var n uint64
		for cur != 0 {
			n++
			if seen[cur] {
				rep.add(true, "bucket %d: chain has a cycle at %#x", b, cur)
				break
			}
			seen[cur] = true
			if err := fs.chainNode(cur, false); err != nil {
				rep.add(true, "bucket %d: %v", b, err)
				break
			}
			next := r.Load(cur + inNext) // inNext == deNext
			marked := next&markBit != 0
			switch hdrType(r.Load(cur)) {
			case typeInode:
				ino := r.Load(cur + inIno)
				if fs.bucketFor(ino) != head {
					rep.add(true, "inode %d at %#x sits in bucket %d, not its own", ino, cur, b)
				}
				if !claim(cur, fmt.Sprintf("inode %d", ino)) {
					break
				}
				if !marked && r.Load(cur+inState) != 0 && fs.base.has(ino) {
					tomb[ino] = true // a deleted base inode (base_overlay.go)
					break
				}
				if marked || r.Load(cur+inState) != 0 {
					rep.add(false, "inode %d at %#x is deleted but still on its hash chain", ino, cur)
					break
				}
				if _, dup := inodes[ino]; dup {
					rep.add(true, "inode %d has two live entries", ino)
					break
				}
				refs := r.Load(cur + inRefs)
				inodes[ino] = &checkInode{off: cur, ino: ino, mode: r.Load(cur+inMode) & 0xffffffff,
					nlink: refs >> 32, opens: refs & 0xffffffff, dcount: r.Load(cur + inDcount),
					parent: r.Load(cur + inParent), size: r.Load(cur + inSize)}
			case typeDirent:
				claim(cur, "dirent")
				nm, err := fs.direntName(cur)
				if err != nil {
					rep.add(true, "%v", err)
					break
				}
				d := &checkDirent{off: cur, parent: r.Load(cur + deParent), child: r.Load(cur + deChild),
					key: r.Load(cur + deKey), name: string(nm), marked: marked}
				if d.key != direntKey(d.parent, d.name) {
					rep.add(true, "dirent %q in %d at %#x has a wrong key", d.name, d.parent, cur)
				} else if fs.bucketFor(d.key) != head {
					rep.add(true, "dirent %q in %d sits in bucket %d, not its own", d.name, d.parent, b)
				}
				if err := checkName(d.name); err != nil {
					rep.add(true, "dirent at %#x: %v", cur, err)
				}
				if marked {
					rep.add(false, "dirent %q in %d is deleted but still on its hash chain", d.name, d.parent)
				}
				dirents = append(dirents, d)
			}
			cur = next &^ markBit
		}
		rep.LongestChain = max(rep.LongestChain, n)
	}

	if fs.base != nil {
		dirents = fs.checkBase(inodes, tomb, dirents)
	}

	// Names: each (parent, name) bound at most once; children exist.
	bound := map[string]*checkDirent{}
	for _, d := range dirents {
		if d.marked || !childLive(d.child) || isWhiteout(d.child) {
			continue
		}
		rep.Dirents++
		k := fmt.Sprintf("%d/%s", d.parent, d.name)
		if prev := bound[k]; prev != nil {
			rep.add(true, "name %q in directory %d is bound twice (inodes %d and %d)", d.name, d.parent, prev.child&childIno, d.child&childIno)
		}
		bound[k] = d
		if d.child&childMoving != 0 {
			rep.add(false, "name %q in %d is stuck in a rename (its host died; the reaper finishes it)", d.name, d.parent)
		}
		p := inodes[d.parent]
		if p == nil || p.mode&modeType != modeDir {
			rep.add(true, "name %q: parent %d is not a live directory", d.name, d.parent)
			continue
		}
		p.entries++
		c := inodes[d.child&childIno]
		if c == nil {
			rep.add(true, "name %q in %d points at missing inode %d", d.name, d.parent, d.child&childIno)
			continue
		}
		c.names++
		if dt := uint64(d.child >> 58 & 0xf); dt != dtypeOf(uint32(c.mode)) {
			rep.add(true, "name %q in %d has type %d but inode %d has mode %o", d.name, d.parent, dt, c.ino, c.mode)
		}
		if c.mode&modeType == modeDir {
			p.subdirs++
			if c.parent != d.parent && d.child&childMoving == 0 {
				rep.add(true, "directory %d is named in %d but its parent field says %d", c.ino, d.parent, c.parent)
			}
		}
	}

	// Directory lists.
	byOff := map[uint64]*checkDirent{}
	for _, d := range dirents {
		byOff[d.off] = d
	}
	for _, in := range inodes {
		if in.mode&modeType != modeDir || in.off == 0 {
			continue
		}
		seen := map[uint64]bool{}
		for cur := r.Load(in.off+inData) &^ markBit; cur != 0; {
			if seen[cur] {
				rep.add(true, "directory %d: list has a cycle", in.ino)
				break
			}
			seen[cur] = true
			d := byOff[cur]
			if d == nil {
				if err := fs.chainNode(cur, true); err != nil {
					rep.add(true, "directory %d: list: %v", in.ino, err)
					break
				}
				// Unlinked from the hash but still listed: pending lazy unlink.
				if next := r.Load(cur + deDnext); next&markBit == 0 && childLive(r.Load(cur+deChild)) {
					rep.add(true, "directory %d lists a bound dirent %#x that is not in the hash", in.ino, cur)
				}
				cur = r.Load(cur+deDnext) &^ markBit
				continue
			}
			if d.parent != in.ino {
				rep.add(true, "directory %d lists %q of directory %d", in.ino, d.name, d.parent)
			}
			d.listed = true
			cur = r.Load(cur+deDnext) &^ markBit
		}
	}
	for _, d := range dirents {
		if !d.marked && childLive(d.child) && !isWhiteout(d.child) && !d.listed {
			rep.add(false, "name %q in %d is missing from its directory list (readdir cannot see it)", d.name, d.parent)
		}
	}

	// Tree shape and link counts.
	root := inodes[RootIno]
	if root == nil || root.mode&modeType != modeDir {
		rep.add(true, "root directory missing")
	} else {
		root.reached = true
		queue := []uint64{RootIno}
		children := map[uint64][]uint64{}
		for _, d := range dirents {
			if !d.marked && childLive(d.child) && !isWhiteout(d.child) {
				children[d.parent] = append(children[d.parent], d.child&childIno)
			}
		}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, c := range children[p] {
				ci := inodes[c]
				if ci == nil {
					continue
				}
				if ci.mode&modeType == modeDir {
					if ci.reached {
						rep.add(true, "directory %d is reachable twice (hard-linked or cyclic)", c)
						continue
					}
					queue = append(queue, c)
				}
				ci.reached = true
			}
		}
	}
	var inos []uint64
	for ino := range inodes {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		in := inodes[ino]
		rep.Inodes++
		switch in.mode & modeType {
		case modeDir:
			rep.Dirs++
			if want := 2 + in.subdirs; in.nlink != want {
				rep.add(false, "directory %d has nlink %d, want %d", ino, in.nlink, want)
			}
			if in.dcount&dcountDead == 0 && in.dcount != in.entries {
				rep.add(false, "directory %d counts %d entries, has %d", ino, in.dcount, in.entries)
			}
			if in.dcount&dcountDead != 0 && in.entries != 0 {
				rep.add(true, "removed directory %d still has %d entries", ino, in.entries)
			}
		case modeLnk:
			rep.Symlinks++
			if in.off == 0 {
				break
			}
			t := r.Load(in.off + inData)
			if fs.objClass(t) < 0 || hdrType(r.Load(t)) != typeSymlink {
				rep.add(true, "symlink %d has no valid target object", ino)
			} else {
				claim(t, fmt.Sprintf("symlink target of %d", ino))
			}
		case modeReg:
			rep.Files++
			if in.off == 0 {
				break
			}
			fs.checkTree(rep, in, claim)
		}
		if in.mode&modeType != modeDir {
			if in.nlink < in.names {
				rep.add(true, "inode %d has nlink %d but %d names", ino, in.nlink, in.names)
			} else if in.nlink > in.names {
				rep.add(false, "inode %d has nlink %d but %d names", ino, in.nlink, in.names)
			}
		}
		if !in.reached && ino != RootIno {
			if in.nlink == 0 && in.opens > 0 {
				rep.add(false, "inode %d is unlinked but open %d times", ino, in.opens)
			} else {
				rep.add(false, "inode %d is not reachable from the root (orphan)", ino)
			}
		}
	}

	// Free lists, limbo, intents.
	maxIdx := sb.ChunkCount * ChunkSize / minObj
	for c := range numClasses {
		h := r.Load(sb.sharedWord(swFreeBase + c))
		steps := uint64(0)
		for idx := h & 0xffffffff; idx != 0; steps++ {
			if idx > maxIdx || steps > maxIdx {
				rep.add(true, "free list %d: bad index %d or cycle", c, idx)
				break
			}
			off := fs.objAt(idx)
			if !fs.validObj(off, c) {
				rep.add(true, "free list %d holds %#x, not a class-%d object", c, off, c)
				break
			}
			if !claim(off, fmt.Sprintf("free (class %d)", c)) {
				break
			}
			rep.FreeObjects++
			idx = r.Load(off) & 0xffffffff
		}
	}
	for s := range sb.MaxHosts {
		rec := sb.hostRec(s)
		inc := r.Load(rec + hrInc)
		for b, steps := r.Load(rec+hrLimbo), 0; b != 0; steps++ {
			if !fs.validObj(b, pageClass) || steps > 1<<20 {
				rep.add(true, "host record %d: bad limbo block %#x", s, b)
				break
			}
			if !claim(b, "limbo block") {
				break
			}
			n := min(r.Load(b+lbCount), limboCap)
			for i := range n {
				off := r.Load(b + lbEntries + 8*i)
				if fs.objClass(off) < 0 {
					rep.add(true, "limbo block %#x entry %d: %#x is not an object", b, i, off)
					continue
				}
				if claim(off, "in limbo") {
					rep.LimboObjects++
				}
			}
			b = r.Load(b + lbNext)
		}
		if inc == 0 {
			continue
		}
		for i := range epochSlots {
			if k := r.Load(rec + hrIntents + uint64(i)*intentSize); k != intentNone && !fs.ht.Alive(s, inc) {
				rep.add(false, "host record %d (dead) left intent %d in slot %d", s, k, i)
			}
		}
	}

	// This host's own carve tails are not leaked.
	fs.carveMu.Lock()
	for c := range fs.carve {
		for off := fs.carve[c].next; off < fs.carve[c].end; off += classSize(c) {
			claim(off, "carve tail of this host")
		}
	}
	fs.carveMu.Unlock()

	// Everything carved but unclaimed is leaked (or a live host's carve tail).
	for k := range bump {
		cw := r.Load(sb.chunkWord(k))
		if cw == 0 || cw > numClasses {
			continue
		}
		c := int(cw - 1)
		base := sb.PoolOff + k*ChunkSize
		for off := base; off < base+ChunkSize; off += classSize(c) {
			if _, ok := owner[off]; !ok {
				rep.LeakedBytes += classSize(c)
			}
		}
	}
	others := rep.LiveHosts
	if fs.host != nil && fs.host.Err() == nil {
		others-- // carve tails of the checking host are returned by repair
	}
	if rep.LeakedBytes > 0 && others <= 0 {
		rep.add(false, "%d bytes of the pool are neither used nor free (leaked)", rep.LeakedBytes)
	}
	return rep, &checkState{owner: owner, inodes: inodes, dirents: dirents, bump: bump}
}

// checkTree walks a file's page table.
func (fs *FS) checkTree(rep *CheckReport, in *checkInode, claim func(uint64, string) bool) {
	r := fs.r
	w := r.Load(in.off + inData)
	h, off := int(w>>56), w&rootOffMask
	if off == 0 {
		return
	}
	if h > maxHeight {
		rep.add(true, "file %d: page table height %d", in.ino, h)
		return
	}
	var pages uint64
	var walk func(off uint64, h int, base uint64)
	walk = func(off uint64, h int, base uint64) {
		if !fs.validObj(off, pageClass) {
			rep.add(true, "file %d: page table reference %#x is not a page", in.ino, off)
			return
		}
		if h == 0 {
			if !claim(off, fmt.Sprintf("page %d of file %d", base, in.ino)) {
				return
			}
			pages++
			rep.DataPages++
			if base*BlockSize >= in.size && in.size%BlockSize == 0 || base*BlockSize > in.size {
				rep.add(false, "file %d has page %d past its size %d", in.ino, base, in.size)
			} else if base == in.size/BlockSize && in.size%BlockSize != 0 {
				if !bytes.Equal(r.Bytes(off+in.size%BlockSize, BlockSize-in.size%BlockSize), make([]byte, BlockSize-in.size%BlockSize)) {
					rep.add(false, "file %d has bytes past EOF in its last page", in.ino)
				}
			}
			return
		}
		if !claim(off, fmt.Sprintf("page table node of file %d", in.ino)) {
			return
		}
		rep.TableNodes++
		span := pagesAt(h - 1)
		for i := range uint64(ptFanout) {
			if c := r.Load(off + i*8); c != 0 {
				walk(c, h-1, base+i*span)
			}
		}
	}
	walk(off, h, 0)
	if b := r.Load(in.off + inBlocks); b != pages {
		rep.add(false, "file %d counts %d blocks, has %d pages", in.ino, b, pages)
	}
}

// ReapDead takes over the records of every host whose lease expired, now
// rather than at the next background tick.
func (fs *FS) ReapDead() {
	if fs.host != nil {
		fs.reapDead()
		fs.reclaim()
	}
}
