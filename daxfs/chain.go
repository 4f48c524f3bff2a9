package daxfs

import (
	"fmt"
)

// Lock-free linked lists (Harris 2001, with Michael's 2002 unlinking), used
// for hash chains (every inode and dirent hangs off one bucket) and for
// directory lists (every dirent hangs off its directory's inode).
//
// A next word holds the offset of the following node with bit 0 as the
// deletion mark. New nodes are only ever pushed at the head, by one CAS of
// the head word after the node is written completely. A node is deleted by
// marking its next word (after which nothing can be linked behind it) and is
// physically unlinked by whoever walks past it, with one CAS of the
// predecessor's next word. Exactly one CAS unlinks a node from a list; the
// unlinker counts it in the node's unlink word and the last unlink retires
// the node to the epoch reclaimer.

const (
	markBit = 1
	// maxRetries bounds restarts of one walk. Contention resolves in a
	// handful; this many means a corrupt list that no CAS can fix.
	maxRetries = 1 << 14
)

// maxChain bounds a walk: a list longer than the pool has objects has a
// cycle (corruption), and the walk stops with ErrCorrupt instead of
// spinning.
func (fs *FS) maxChain() int { return int(fs.sb.ChunkCount * ChunkSize / minObj) }

// chainNode checks that off is an object that may sit in a list of nodes of
// the given types (one of them).
func (fs *FS) chainNode(off uint64, dirList bool) error {
	c := fs.objClass(off)
	if c < 0 {
		return fmt.Errorf("%w: list node %#x is not a pool object", ErrCorrupt, off)
	}
	h := fs.r.Load(off)
	if !hdrMagicOK(h) || hdrClass(h) != c {
		return fmt.Errorf("%w: list node %#x has a bad header %#x", ErrCorrupt, off, h)
	}
	switch t := hdrType(h); {
	case t == typeDirent:
	case t == typeInode && !dirList:
	default:
		return fmt.Errorf("%w: list node %#x has type %d", ErrCorrupt, off, t)
	}
	return nil
}

// find walks the list whose head word is at head, where nodes keep their
// next word at field nf. It unlinks marked nodes it passes and returns the
// first unmarked node for which match says true, or 0.
func (fs *FS) find(head, nf uint64, dirList bool, match func(n uint64) (bool, error)) (uint64, error) {
	r := fs.r
retry:
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			fs.stats.CASRetries.Add(1)
			if attempt > maxRetries {
				return 0, fmt.Errorf("%w: list at %#x keeps changing under %d walks", ErrBusy, head, maxRetries)
			}
			backoff(attempt)
		}
		pred := head
		cur := r.Load(pred)
		if cur&markBit != 0 {
			return 0, fmt.Errorf("%w: list head %#x holds a marked pointer %#x", ErrCorrupt, head, cur)
		}
		for steps := 0; cur != 0; steps++ {
			if steps > fs.maxChain() {
				return 0, fmt.Errorf("%w: list at %#x longer than the pool (cycle)", ErrCorrupt, head)
			}
			if cur&markBit != 0 {
				continue retry // pred was marked under us
			}
			if err := fs.chainNode(cur, dirList); err != nil {
				return 0, err
			}
			next := r.Load(cur + nf)
			if next&markBit != 0 && fs.ro {
				// A read-only mount cannot help unlink: step over it.
				cur = next &^ markBit
				continue
			}
			if next&markBit != 0 {
				if !r.CAS(pred, cur, next&^markBit) {
					continue retry
				}
				fs.unlinked(cur)
				cur = next &^ markBit
				continue
			}
			ok, err := match(cur)
			if err != nil {
				return 0, err
			}
			if ok {
				return cur, nil
			}
			pred = cur + nf
			cur = next
		}
		return 0, nil
	}
}

// push links the completely written node n at the head of the list, with
// check run against the head seen (inside the retry loop) to refuse the push
// (e.g. because an equal key is already there).
func (fs *FS) push(head, nf, n uint64, check func() error) error {
	r := fs.r
	for attempt := 0; ; attempt++ {
		h := r.Load(head)
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		r.Store(n+nf, h)
		if r.CAS(head, h, n) {
			return nil
		}
		fs.stats.CASRetries.Add(1)
		backoff(attempt)
	}
}

// mark sets the deletion mark of n in the list with next field nf and
// reports whether this call set it.
func (fs *FS) mark(n, nf uint64) bool {
	r := fs.r
	for {
		next := r.Load(n + nf)
		if next&markBit != 0 {
			return false
		}
		if r.CAS(n+nf, next, next|markBit) {
			return true
		}
		fs.stats.CASRetries.Add(1)
	}
}

// unlinked counts one physical unlink of n; the last one retires it.
func (fs *FS) unlinked(n uint64) {
	r := fs.r
	h := r.Load(n)
	switch hdrType(h) {
	case typeInode:
		if r.Add(n+inUnl, 1) == 1 {
			fs.retire(n)
		}
	case typeDirent:
		if r.Add(n+deUnl, 1) == 2 {
			fs.retire(n)
		}
	}
}

// bucketFor maps a mixed key to its bucket word.
func (fs *FS) bucketFor(key uint64) uint64 {
	return fs.sb.bucket(mix64(key) & (fs.sb.BucketCount - 1))
}

// mix64 is splitmix64's finaliser: keys that differ in any bit land in
// unrelated buckets.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
