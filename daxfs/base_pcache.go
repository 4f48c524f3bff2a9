package daxfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/daxwio/daxwio/daxfs/pcache"
)

// Split-mode base reads through the shared page cache (package
// daxfs/pcache): mkfs formats a "pcache" extent beside the base image, and
// every writable mount attaches to it. Read-only mounts (no host slot) read
// the backing file directly.

// DefaultCacheSlots sizes the cache from the backing file: one slot per
// four backing pages, a power of two in [16, 16384] (64 MiB of pages).
func DefaultCacheSlots(backingSize uint64) int {
	pages := (backingSize + BlockSize - 1) / BlockSize / 4
	n := uint64(1) << max(bits.Len64(pages)-1, 0)
	return int(min(max(n, 16), 16384))
}

// cacheSource is the backing file as a pcache.Source.
type cacheSource struct {
	id   uint64
	f    pageSource
	size uint64
}

func (s *cacheSource) ID() uint64 { return s.id }

func (s *cacheSource) ReadPage(page uint64, dst []byte) error {
	off := page * pcache.PageSize
	clear(dst)
	if off >= s.size {
		return nil
	}
	n := min(uint64(len(dst)), s.size-off)
	k, err := s.f.ReadAt(dst[:n], int64(off))
	if uint64(k) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("daxfs: backing file page %d: %w", page, err)
	}
	return nil
}

// cachedSource reads backing-file bytes through the shared cache.
type cachedSource struct {
	c   *pcache.Cache
	src *cacheSource
}

func (s *cachedSource) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := uint64(off) + uint64(done)
		if pos >= s.src.size {
			return done, io.EOF
		}
		want := min(len(p)-done, int(min(uint64(pcache.PageSize-pos%pcache.PageSize), s.src.size-pos)))
		k, err := s.c.Read(s.src, pos/pcache.PageSize, int(pos%pcache.PageSize), p[done:done+want])
		done += k
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, io.ErrUnexpectedEOF
		}
	}
	return done, nil
}

// attachCache puts the shared cache between a split image and its backing
// file, when the region has a cache extent and this mount holds a host slot.
func (fs *FS) attachCache() error {
	b := fs.base
	if b == nil || b.src == nil || fs.host == nil {
		return nil
	}
	e, err := fs.header.Extent(pcache.ExtentName)
	if err != nil {
		return nil // formatted without a cache
	}
	c, err := pcache.Open(fs.r, e.Off, e.Len, fs.ht, fs.host)
	if err != nil {
		return fmt.Errorf("daxfs: page cache: %w", err)
	}
	id := binary.LittleEndian.Uint64(fs.sb.UUID[:8]) ^ binary.LittleEndian.Uint64(fs.sb.UUID[8:])
	b.cache = c
	b.src = &cachedSource{c: c, src: &cacheSource{id: id | 1, f: b.file, size: b.h.BackingSize}}
	return nil
}
