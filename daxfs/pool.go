package daxfs

import (
	"fmt"
)

// The pool is an array of 64 KiB chunks. A chunk is carved into objects of
// one size class the first time a host needs it (chunk map word = class+1);
// carving happens in host memory, so a host that dies leaks at most the
// unused tail of one chunk per class (fsck gives it back).
//
// Freed objects go on one free list per class, a Treiber stack whose head
// word is [gen:32 | index:32]: index is (offset-pool)/64+1 (0 = empty) and
// gen grows by one on every push and pop, so a head seen twice with the same
// value really did not change (no ABA within 2^32 operations of one pop).
// The first word of a free object holds the index of the next.

// Object header word of typed objects: [magic:16 | unused:16 | aux:16 | class:8 | type:8].
const (
	objMagic = 0xDA5F

	typeInode   = 1
	typeDirent  = 2
	typeSymlink = 3
	typeLimbo   = 4
)

func hdrWord(typ, class int, aux uint16) uint64 {
	return objMagic<<48 | uint64(aux)<<16 | uint64(class)<<8 | uint64(typ)
}

func hdrType(h uint64) int     { return int(h & 0xff) }
func hdrClass(h uint64) int    { return int(h >> 8 & 0xff) }
func hdrAux(h uint64) uint16   { return uint16(h >> 16) }
func hdrMagicOK(h uint64) bool { return h>>48 == objMagic }

// validObj reports whether off is the start of an object of class c.
func (fs *FS) validObj(off uint64, c int) bool {
	sb := fs.sb
	if off < sb.PoolOff || off >= sb.PoolEnd() {
		return false
	}
	rel := off - sb.PoolOff
	if rel%classSize(c) != 0 {
		return false
	}
	return fs.r.Load(sb.chunkWord(rel/ChunkSize)) == uint64(c)+1
}

// objClass returns the class of the object at off, or -1.
func (fs *FS) objClass(off uint64) int {
	sb := fs.sb
	if off < sb.PoolOff || off >= sb.PoolEnd() || off%minObj != 0 {
		return -1
	}
	cw := fs.r.Load(sb.chunkWord((off - sb.PoolOff) / ChunkSize))
	if cw == 0 || cw > numClasses {
		return -1
	}
	c := int(cw - 1)
	if (off-sb.PoolOff)%classSize(c) != 0 {
		return -1
	}
	return c
}

func (fs *FS) objIndex(off uint64) uint64 { return (off-fs.sb.PoolOff)/minObj + 1 }
func (fs *FS) objAt(idx uint64) uint64    { return fs.sb.PoolOff + (idx-1)*minObj }

// alloc returns an object of class c. Its contents are garbage: callers
// write it completely before publishing it.
func (fs *FS) alloc(c int) (uint64, error) {
	r := fs.r
	head := fs.sb.sharedWord(swFreeBase + c)
	maxIdx := fs.sb.ChunkCount * ChunkSize / minObj
	for i := 0; ; i++ {
		h := r.Load(head)
		idx := h & 0xffffffff
		if idx == 0 {
			break
		}
		if idx > maxIdx {
			return 0, fmt.Errorf("%w: free list %d head index %d out of range", ErrCorrupt, c, idx)
		}
		off := fs.objAt(idx)
		next := r.Load(off) & 0xffffffff
		if r.CAS(head, h, (h>>32+1)<<32|next) {
			if !fs.validObj(off, c) {
				return 0, fmt.Errorf("%w: free list %d holds %#x, not an object of its class", ErrCorrupt, c, off)
			}
			fs.allocated(c, 1)
			return off, nil
		}
		fs.stats.CASRetries.Add(1)
		backoff(i)
	}
	fs.carveMu.Lock()
	defer fs.carveMu.Unlock()
	cv := &fs.carve[c]
	if cv.next == cv.end {
		k, err := fs.newChunk(c)
		if err != nil {
			return 0, err
		}
		cv.next = fs.sb.PoolOff + k*ChunkSize
		cv.end = cv.next + ChunkSize
	}
	off := cv.next
	cv.next += classSize(c)
	fs.allocated(c, 1)
	return off, nil
}

func (fs *FS) newChunk(c int) (uint64, error) {
	r := fs.r
	bump := fs.sb.sharedWord(swChunkBump)
	for i := 0; ; i++ {
		k := r.Load(bump)
		if k >= fs.sb.ChunkCount {
			return 0, fmt.Errorf("%w: all %d chunks in use and no free %d-byte object", ErrNoSpace, fs.sb.ChunkCount, classSize(c))
		}
		if r.CAS(bump, k, k+1) {
			r.Store(fs.sb.chunkWord(k), uint64(c)+1)
			return k, nil
		}
		fs.stats.CASRetries.Add(1)
	}
}

// free pushes an object on its class's free list at once. Only for objects
// no other host can reach (never published, or retired and aged).
func (fs *FS) free(off uint64) {
	c := fs.objClass(off)
	if c < 0 {
		return // corrupt reference: leak rather than damage the pool
	}
	r := fs.r
	head := fs.sb.sharedWord(swFreeBase + c)
	idx := fs.objIndex(off)
	for i := 0; ; i++ {
		h := r.Load(head)
		r.Store(off, h&0xffffffff)
		if r.CAS(head, h, (h>>32+1)<<32|idx) {
			break
		}
		fs.stats.CASRetries.Add(1)
		backoff(i)
	}
	fs.allocated(c, -1)
}

// returnCarve puts the uncarved tail of this host's chunks on the free
// lists, so that a host that closes cleanly leaks nothing. The tail was
// never counted as allocated, so it bypasses the accounting of free.
func (fs *FS) returnCarve() {
	fs.carveMu.Lock()
	defer fs.carveMu.Unlock()
	r := fs.r
	for c := range numClasses {
		cv := &fs.carve[c]
		head := fs.sb.sharedWord(swFreeBase + c)
		for off := cv.next; off < cv.end; off += classSize(c) {
			idx := fs.objIndex(off)
			for {
				h := r.Load(head)
				r.Store(off, h&0xffffffff)
				if r.CAS(head, h, (h>>32+1)<<32|idx) {
					break
				}
			}
		}
		cv.next, cv.end = 0, 0
	}
}

func (fs *FS) allocated(c int, n int64) {
	if n > 0 {
		fs.stats.Allocs.Add(1)
	} else {
		fs.stats.Frees.Add(1)
	}
	if fs.rec != 0 {
		fs.r.Add(fs.rec+hrAllocated, uint64(n*int64(classSize(c))))
	}
}

// Statfs describes the space of the whole region.
type Statfs struct {
	BlockSize   uint64
	TotalBytes  uint64
	FreeBytes   uint64
	UsedBytes   uint64
	TotalInodes uint64
	FreeInodes  uint64
	Hosts       int // live hosts
}

// inodeCost is what one file costs: an inode and a short-name dirent.
const inodeCost = 256 + 128

// Statfs sums the allocation counters of every host record: bytes in live
// objects, whoever allocated or freed them.
func (fs *FS) Statfs() Statfs {
	var used int64
	for s := range fs.sb.MaxHosts {
		used += int64(fs.r.Load(fs.sb.hostRec(s) + hrAllocated))
	}
	total := fs.sb.ChunkCount * ChunkSize
	if used < 0 {
		used = 0
	}
	u := min(uint64(used), total)
	st := Statfs{
		BlockSize:   BlockSize,
		TotalBytes:  total,
		UsedBytes:   u,
		FreeBytes:   total - u,
		TotalInodes: total / inodeCost,
		FreeInodes:  (total - u) / inodeCost,
		Hosts:       fs.ht.LiveHosts(),
	}
	return st
}
