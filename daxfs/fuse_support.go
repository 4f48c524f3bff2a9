package daxfs

import (
	"fmt"
	"io"
)

// Support for the FUSE front end (daxfs/fuse): zero-copy reads of a whole
// request range under one epoch announcement.

// zeroPage backs holes in a RangeView. Never written.
var zeroPage [BlockSize]byte

// Pin is an epoch announcement held by a RangeView. Its zero value holds
// nothing; Release ends it (idempotent). Unlike View it holds one epoch
// slot for a whole range, so a reader of N pages takes one slot, not N.
type Pin struct {
	g    guard
	held bool
}

// Release ends the pin; the bytes it covered may be reclaimed after it.
func (p *Pin) Release() {
	if p.held {
		p.held = false
		p.g.exit()
	}
}

// ViewRange appends to segs the file bytes [off, off+n) (clipped to EOF),
// without copying: region bytes for data pages, a shared zero page for
// holes (never write into segments). Physically adjacent pages are merged
// into one segment. The bytes stay allocated to this file, or at least
// unreused, until p.Release; the caller must not use the segments after
// it. At or past EOF it returns no segments and io.EOF (p not held). On
// success p is held even if n was clipped; the caller releases it.
func (h *Handle) ViewRange(p *Pin, off int64, n int, segs [][]byte) ([][]byte, int, error) {
	if p.held {
		return segs, 0, fmt.Errorf("daxfs: view range of inode %d: pin already held", h.ino)
	}
	if err := h.check(false); err != nil {
		return segs, 0, err
	}
	if off < 0 || n < 0 {
		return segs, 0, fmt.Errorf("daxfs: view %d+%d: %w", off, n, ErrInvalid)
	}
	fs := h.fs
	g := fs.enter()
	in := h.in
	if in == 0 {
		// A base file the overlay had not changed at open (base_overlay.go).
		if in, _ = fs.resolve(h.ino); in == 0 {
			segs, k, err := fs.viewRangeBase(h.ino, uint64(off), uint64(n), segs)
			if err != nil || k == 0 {
				g.exit()
				return segs, 0, err
			}
			p.g, p.held = g, true
			return segs, k, nil
		}
	}
	size := fs.r.Load(in + inSize)
	if uint64(off) >= size || n == 0 {
		g.exit()
		return segs, 0, io.EOF
	}
	end := min(uint64(off)+uint64(n), size)
	var lastEnd uint64 // region offset just past the previous data segment
	for pos := uint64(off); pos < end; {
		pi, po := pos/BlockSize, pos%BlockSize
		k := min(BlockSize-po, end-pos)
		pg, err := fs.pageAt(in, pi)
		if err != nil {
			g.exit()
			return segs, 0, err
		}
		switch {
		case pg == 0 && fs.r.Load(in+inBaseValid) > pos:
			buf := make([]byte, k)
			if _, err := fs.baseHole(in, pi, po, buf); err != nil {
				g.exit()
				return segs, 0, err
			}
			segs = append(segs, buf)
			lastEnd = 0
		case pg == 0:
			segs = append(segs, zeroPage[po:po+k])
			lastEnd = 0
		case lastEnd != 0 && pg+po == lastEnd && len(segs) > 0:
			last := segs[len(segs)-1]
			segs[len(segs)-1] = fs.r.Bytes(lastEnd-uint64(len(last)), uint64(len(last))+k)
			lastEnd += k
		default:
			segs = append(segs, fs.r.Bytes(pg+po, k))
			lastEnd = pg + po + k
		}
		pos += k
	}
	fs.touchAtime(in)
	p.g, p.held = g, true
	return segs, int(end - uint64(off)), nil
}
