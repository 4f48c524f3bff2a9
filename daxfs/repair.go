package daxfs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs/pcache"
)

// RepairReport says what Repair did and what Check finds afterwards.
type RepairReport struct {
	Before *CheckReport
	Fixed  []string
	After  *CheckReport
}

func (rr *RepairReport) fixed(format string, a ...any) {
	rr.Fixed = append(rr.Fixed, fmt.Sprintf(format, a...))
}

// Repair fixes what Check finds and it can: records of dead hosts (their
// intents finished or undone, their limbo adopted), dangling dirents (a name
// whose inode or directory is gone), names missing from their directory
// list, wrong link and entry counts, deleted entries still on hash chains,
// unreachable inodes with no links and no opens, and, when no other host is
// alive, pool objects that are neither used nor free (back to the free
// lists). It needs a writable mount and a region no other host is changing.
func (fs *FS) Repair() (*RepairReport, error) {
	if err := fs.writable(); err != nil {
		return nil, fmt.Errorf("daxfs: repair: %w", err)
	}
	rr := &RepairReport{}
	r := fs.r
	deadBefore := 0
	for _, h := range fs.ht.Hosts() {
		if !h.Alive {
			deadBefore++
		}
	}
	recsBefore := fs.deadRecords()
	rr.Before = fs.Check()
	fs.ReapDead()
	if n := recsBefore - fs.deadRecords(); n > 0 {
		rr.fixed("took over %d record(s) of dead hosts (intents finished, limbo adopted)", n)
	}
	_, st := fs.check()
	g := fs.enter()
	defer g.exit()

	// Dangling dirents: parent or child gone.
	for _, d := range st.dirents {
		if d.off == 0 || d.marked || !childLive(d.child) {
			continue
		}
		p := st.inodes[d.parent]
		parentOK := p != nil && p.mode&modeType == modeDir && p.dcount&dcountDead == 0
		childOK := isWhiteout(d.child) || st.inodes[d.child&childIno] != nil
		if parentOK && childOK {
			continue
		}
		c := r.Load(d.off + deChild)
		if c != d.child || !r.CAS(d.off+deChild, c, c&^childMoving|childDead) {
			continue
		}
		if parentOK && p.off != 0 {
			fs.deleteDirent(d.off, p.off)
			if !isWhiteout(d.child) {
				fs.unreserve(p.off)
			}
		} else {
			fs.mark(d.off, deNext)
			fs.find(fs.bucketFor(d.key), deNext, false, func(uint64) (bool, error) { return false, nil })
			fs.mark(d.off, deDnext)
		}
		if !parentOK {
			rr.fixed("removed name %q of missing directory %d", d.name, d.parent)
		} else {
			rr.fixed("removed dangling name %q in %d (inode %d is missing)", d.name, d.parent, d.child&childIno)
		}
	}
	// Deleted entries left on hash chains: one walk of every chain unlinks
	// the marked ones; dead non-base inode entries are marked first.
	for b := range fs.sb.BucketCount {
		head := fs.sb.bucket(b)
		var dead []uint64
		for cur, steps := r.Load(head)&^markBit, 0; cur != 0 && steps <= fs.maxChain(); steps++ {
			if fs.chainNode(cur, false) != nil {
				break
			}
			if hdrType(r.Load(cur)) == typeInode && r.Load(cur+inState) != 0 && !fs.base.has(r.Load(cur+inIno)) {
				dead = append(dead, cur)
			}
			cur = r.Load(cur+inNext) &^ markBit
		}
		for _, n := range dead {
			fs.mark(n, inNext)
		}
		before := r.Load(head)
		fs.find(head, inNext, false, func(uint64) (bool, error) { return false, nil })
		if r.Load(head) != before || len(dead) > 0 {
			rr.fixed("unlinked deleted entries from hash bucket %d", b)
		}
	}

	// Counts, lists and orphans, from a fresh look.
	_, st = fs.check()
	for _, d := range st.dirents {
		if d.off == 0 || d.marked || !childLive(d.child) || isWhiteout(d.child) || d.listed {
			continue
		}
		if p := st.inodes[d.parent]; p != nil && p.off != 0 && p.mode&modeType == modeDir {
			fs.push(dirOffHead(p.off), deDnext, d.off, nil)
			rr.fixed("put name %q back on the list of directory %d", d.name, d.parent)
		}
	}
	_, st = fs.check()
	var inos []uint64
	for ino := range st.inodes {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		in := st.inodes[ino]
		if in.off == 0 {
			continue
		}
		refs := r.Load(in.off + inRefs)
		switch {
		case in.mode&modeType == modeDir:
			if want := 2 + in.subdirs; in.nlink != want && r.CAS(in.off+inRefs, refs, want<<32|refs&0xffffffff) {
				rr.fixed("directory %d: nlink %d -> %d", ino, in.nlink, want)
			}
			if in.dcount&dcountDead == 0 && in.dcount != in.entries && r.CAS(in.off+inDcount, in.dcount, in.entries) {
				rr.fixed("directory %d: entry count %d -> %d", ino, in.dcount, in.entries)
			}
		case !in.reached && in.names == 0 && in.opens == 0:
			if r.CAS(in.off+inRefs, refs, 0) {
				fs.reclaimInode(g, in.off)
				rr.fixed("freed unreachable inode %d (no names, not open)", ino)
			}
		case in.nlink != in.names && in.names > 0:
			if r.CAS(in.off+inRefs, refs, in.names<<32|refs&0xffffffff) {
				rr.fixed("inode %d: nlink %d -> %d", ino, in.nlink, in.names)
			}
		}
	}

	// Leaks: only when nobody else can be carving or holding objects.
	if fs.ht.LiveHosts() <= 1 {
		fs.reclaim()
		fs.carveMu.Lock()
		for c := range fs.carve {
			fs.carve[c].next, fs.carve[c].end = 0, 0 // our tail too
		}
		fs.carveMu.Unlock()
		_, st = fs.check()
		fs.claimListed(st)
		var leaked, bytes uint64
		for k := range st.bump {
			cw := r.Load(fs.sb.chunkWord(k))
			if cw == 0 || cw > numClasses {
				continue
			}
			c := int(cw - 1)
			base := fs.sb.PoolOff + k*ChunkSize
			for off := base; off < base+ChunkSize; off += classSize(c) {
				if _, ok := st.owner[off]; !ok {
					fs.free(off)
					leaked++
					bytes += classSize(c)
				}
			}
		}
		if leaked > 0 {
			rr.fixed("returned %d leaked pool objects (%d bytes) to the free lists", leaked, bytes)
		}
	} else {
		rr.fixed("skipped leak repair: %d other host(s) alive", fs.ht.LiveHosts()-1)
	}
	rr.After = fs.Check()
	return rr, nil
}

// claimListed claims every node on a directory list that is no longer on a
// hash chain (pending lazy unlink): such a node is in use, not leaked.
func (fs *FS) claimListed(st *checkState) {
	r := fs.r
	for _, in := range st.inodes {
		if in.off == 0 || in.mode&modeType != modeDir {
			continue
		}
		for cur, steps := r.Load(in.off+inData)&^markBit, 0; cur != 0 && steps <= fs.maxChain(); steps++ {
			if fs.chainNode(cur, true) != nil {
				break
			}
			if _, ok := st.owner[cur]; !ok {
				st.owner[cur] = "listed dirent"
			}
			cur = r.Load(cur+deDnext) &^ markBit
		}
	}
}

// deadRecords counts host records held by an incarnation that is not alive.
func (fs *FS) deadRecords() int {
	n := 0
	for s := range fs.sb.MaxHosts {
		inc := fs.r.Load(fs.sb.hostRec(s) + hrInc)
		if inc != 0 && !fs.ht.Alive(s, inc) {
			n++
		}
	}
	return n
}

// Inspection is what `daxfs inspect` shows.
type Inspection struct {
	Superblock   *Superblock
	Extents      []cxl.Extent
	Lease        string
	Base         *BaseInfo `json:",omitempty"`
	NextIno      uint64
	Epoch        uint64
	Buckets      uint64
	BucketsUsed  uint64
	LongestChain uint64
	Chunks       uint64
	ChunksUsed   uint64
	Classes      []ClassInfo
	Hosts        []cxl.HostInfo
	Statfs       Statfs
	PageCache    string
	Cache        *pcache.Report `json:",omitempty"`
}

// BaseInfo describes the base image.
type BaseInfo struct {
	Mode         string
	Inodes       uint64
	Dirents      uint64
	DirentStride int
	DataBytes    uint64
	BackingSize  uint64
	BackingPath  string
	Backing      bool // backing file open
}

// ClassInfo is the pool use of one size class.
type ClassInfo struct {
	Size        uint64
	Chunks      uint64
	FreeObjects uint64
}

// Inspect reads the region's bookkeeping (it does not walk files).
func (fs *FS) Inspect() *Inspection {
	r, sb := fs.r, fs.sb
	in := &Inspection{Superblock: sb, NextIno: r.Load(sb.sharedWord(swNextIno)), Epoch: r.Load(sb.sharedWord(swEpoch)),
		Buckets: sb.BucketCount, Chunks: sb.ChunkCount, Hosts: fs.ht.Hosts(), Statfs: fs.Statfs(), Lease: fs.ht.Lease().String(),
		PageCache: "none"}
	if h, err := cxl.ReadHeader(r); err == nil {
		in.Extents = h.Extents
		if e, err := h.Extent(pcache.ExtentName); err == nil {
			if rep, err := pcache.Inspect(r, e.Off, e.Len); err != nil {
				in.PageCache = err.Error()
			} else {
				in.PageCache = strings.TrimSpace(rep.String())
				in.Cache = rep
			}
		}
	}
	if b := fs.base; b != nil {
		in.Base = &BaseInfo{Mode: b.h.Mode.String(), Inodes: b.h.Inodes, Dirents: b.h.Dirents, DirentStride: DirentStride,
			DataBytes: b.h.DataLen, BackingSize: b.h.BackingSize, BackingPath: b.h.BackingPath, Backing: b.src != nil}
	}
	for i := range sb.BucketCount {
		n := uint64(0)
		for cur := r.Load(sb.bucket(i)) &^ markBit; cur != 0 && n <= uint64(fs.maxChain()); n++ {
			if fs.chainNode(cur, false) != nil {
				break
			}
			cur = r.Load(cur+inNext) &^ markBit
		}
		if n > 0 {
			in.BucketsUsed++
		}
		in.LongestChain = max(in.LongestChain, n)
	}
	in.ChunksUsed = min(r.Load(sb.sharedWord(swChunkBump)), sb.ChunkCount)
	in.Classes = make([]ClassInfo, numClasses)
	for c := range numClasses {
		in.Classes[c].Size = classSize(c)
	}
	for k := range in.ChunksUsed {
		if cw := r.Load(sb.chunkWord(k)); cw >= 1 && cw <= numClasses {
			in.Classes[cw-1].Chunks++
		}
	}
	maxIdx := sb.ChunkCount * ChunkSize / minObj
	for c := range numClasses {
		h := r.Load(sb.sharedWord(swFreeBase + c))
		for idx, steps := h&0xffffffff, uint64(0); idx != 0 && idx <= maxIdx && steps <= maxIdx; steps++ {
			in.Classes[c].FreeObjects++
			idx = r.Load(fs.objAt(idx)) & 0xffffffff
		}
	}
	return in
}
