// Package daxfs is a filesystem that lives entirely inside a shared memory
// region. Every host (process) that maps the region mounts it at once and
// writes to it; hosts coordinate only by compare-and-swap on words of the
// region. docs/FORMAT.md describes the bytes, docs/PROTOCOLS.md every CAS
// protocol.
//
// Two APIs share one FS: inode operations (Lookup, Create, Unlink, Rename,
// OpenIno, ...) that the FUSE front end uses, and path operations (OpenFile,
// Mkdir, Remove, ReadFile, ...) for Go programs that link the library.
package daxfs

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs/pcache"
)

// ExtentName is the name of the region extent that holds the filesystem.
const ExtentName = "daxfs"

// MkfsOptions describe a new filesystem.
type MkfsOptions struct {
	// Buckets is the number of hash buckets (a power of two); 0 derives it
	// from the extent size.
	Buckets uint64
	// MaxHosts is the size of the host table (default 64).
	MaxHosts int
	// Lease is how long a host may miss heartbeats before it is declared
	// dead (default 5s).
	Lease time.Duration
	// Extra extents to create beside the filesystem (e.g. "actors").
	Extra []cxl.ExtentSpec
	// Size of the daxfs extent; 0 uses everything left in the region.
	Size uint64

	// Tree, when set, is written as the base image (static or split mode,
	// Tree.Mode); nil makes an empty-mode daxfs.
	Tree *BaseTree
	// Backing is the backing file a split image's file data is written
	// to (created or truncated).
	Backing string
	// Progress, if set, is called now and then while file data is copied.
	Progress Progress
	// CacheSlots is the number of shared page-cache slots of a split
	// image (4 KiB each); 0 derives it from the backing file, -1 makes none.
	CacheSlots int
}

// Mkfs formats region r with an empty daxfs and a root directory. It
// refuses nothing: callers check for live hosts first (see LiveHosts).
func Mkfs(r *cxl.Region, o MkfsOptions) error {
	if o.MaxHosts == 0 {
		o.MaxHosts = cxl.DefaultMaxHosts
	}
	size := o.Size
	if size == 0 {
		used := uint64(cxl.HeaderSize) + alignUp(64+uint64(o.MaxHosts)*64, cxl.ExtentAlign)
		if o.Tree != nil {
			used += o.Tree.ImageSize()
			if o.Tree.Mode == ModeSplit && o.CacheSlots >= 0 {
				slots := o.CacheSlots
				if slots == 0 {
					slots = DefaultCacheSlots(o.Tree.BackingSize())
				}
				used += alignUp(pcache.ExtentSize(slots, o.MaxHosts), cxl.ExtentAlign)
			}
		}
		for _, e := range o.Extra {
			used += alignUp(e.Size, cxl.ExtentAlign)
		}
		if used >= r.Len() {
			return fmt.Errorf("daxfs: mkfs: region of %d bytes has no room for a filesystem", r.Len())
		}
		size = (r.Len() - used) &^ (cxl.ExtentAlign - 1)
	}
	exts := []cxl.ExtentSpec{{Name: ExtentName, Size: size}}
	var backing *os.File
	if o.Tree != nil {
		if o.Tree.Mode != ModeStatic && o.Tree.Mode != ModeSplit {
			return fmt.Errorf("daxfs: mkfs: base tree of mode %v", o.Tree.Mode)
		}
		exts = append(exts, cxl.ExtentSpec{Name: BaseExtentName, Size: o.Tree.ImageSize()})
		if o.Tree.Mode == ModeSplit && o.CacheSlots >= 0 {
			if o.CacheSlots == 0 {
				o.CacheSlots = DefaultCacheSlots(o.Tree.BackingSize())
			}
			exts = append(exts, cxl.ExtentSpec{Name: pcache.ExtentName, Size: pcache.ExtentSize(o.CacheSlots, o.MaxHosts)})
		}
		if o.Tree.Mode == ModeSplit {
			if o.Backing == "" {
				return fmt.Errorf("daxfs: mkfs: split mode needs a backing file")
			}
			f, err := os.OpenFile(o.Backing, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return fmt.Errorf("daxfs: mkfs: backing file: %w", err)
			}
			defer f.Close()
			if err := f.Truncate(int64(o.Tree.BackingSize())); err != nil {
				return fmt.Errorf("daxfs: mkfs: backing file: %w", err)
			}
			backing = f
		}
	}
	exts = append(exts, o.Extra...)
	h, err := cxl.Format(r, cxl.FormatOptions{Extents: exts, MaxHosts: o.MaxHosts, Lease: o.Lease})
	if err != nil {
		return fmt.Errorf("daxfs: mkfs: %w", err)
	}
	e, _ := h.Extent(ExtentName)
	sb, err := Geometry(e.Off, e.Len, h.MaxHosts, o.Buckets)
	if err != nil {
		return fmt.Errorf("daxfs: mkfs: %w", err)
	}
	sb.Created = uint64(time.Now().UnixNano())
	if _, err := rand.Read(sb.UUID[:]); err != nil {
		return fmt.Errorf("daxfs: mkfs: uuid: %w", err)
	}
	r.Store(sb.sharedWord(swNextIno), RootIno+1)
	if o.Tree != nil {
		be, _ := h.Extent(BaseExtentName)
		abs := o.Backing
		if abs != "" {
			if a, err := filepath.Abs(abs); err == nil {
				abs = a
			}
		}
		var rf *os.File
		if st, err := os.Stat(r.Path()); err == nil && st.Mode().IsRegular() {
			if rf, err = os.OpenFile(r.Path(), os.O_RDWR, 0); err == nil {
				defer rf.Close()
			}
		}
		if err := o.Tree.writeBase(r.Bytes(be.Off, be.Len), rf, be.Off, backing, abs, sb.Created, o.Progress); err != nil {
			return err
		}
		if backing != nil {
			if err := backing.Sync(); err != nil {
				return fmt.Errorf("daxfs: mkfs: backing file: %w", err)
			}
		}
		if err := r.Persist(be.Off, be.Len); err != nil {
			return err
		}
		if ce, err := h.Extent(pcache.ExtentName); err == nil {
			if err := pcache.Format(r, ce.Off, ce.Len, o.CacheSlots); err != nil {
				return fmt.Errorf("daxfs: mkfs: %w", err)
			}
		}
		sb.Mode = o.Tree.Mode
		sb.BaseInodes = uint64(o.Tree.Inodes())
		sb.BaseOff, sb.BaseLen = be.Off, be.Len
		sb.BackingSize = o.Tree.BackingSize()
		// Overlay inode numbers follow the base's.
		r.Store(sb.sharedWord(swNextIno), sb.BaseInodes+1)
	}
	r.Store(sb.sharedWord(swEpoch), 2)
	copy(r.Bytes(sb.Extent, superSize), sb.Encode())
	if err := r.Persist(sb.Extent, superSize); err != nil {
		return err
	}
	if o.Tree != nil {
		// The root is base inode 1; the overlay materialises it on the
		// first change. Validate what we wrote, as a mount would.
		fs, err := Open(r, Options{ReadOnly: true, Backing: o.Backing})
		if err != nil {
			return fmt.Errorf("daxfs: mkfs: open new filesystem: %w", err)
		}
		fs.Close()
		return r.Persist(e.Off, e.Len)
	}
	fs, err := Open(r, Options{})
	if err != nil {
		return fmt.Errorf("daxfs: mkfs: open new filesystem: %w", err)
	}
	defer fs.Close()
	g := fs.enter()
	defer g.exit()
	if _, err := fs.newInode(g, RootIno, modeDir|0o755, 0, 0, RootIno); err != nil {
		return fmt.Errorf("daxfs: mkfs: root directory: %w", err)
	}
	return r.Persist(e.Off, e.Len)
}

// Options for Open.
type Options struct {
	// Name is shown in the host table.
	Name string
	// ReadOnly refuses every mutation (the region may be mapped read-only).
	ReadOnly bool
	// Backing is the backing file of a split image; empty uses the path
	// mkfs recorded.
	Backing string
	// NoBacking opens a split image even when its backing file cannot be
	// opened (inspect, fsck): reads of base file data then fail.
	NoBacking bool
}

// FS is one host's handle on a daxfs region. It is safe for concurrent use.
type FS struct {
	r      *cxl.Region
	sb     *Superblock
	ht     *cxl.HostTable
	host   *cxl.Host
	rec    uint64 // our host record
	ro     bool
	base   *base // nil in empty mode
	header *cxl.Header

	busy atomic.Uint64 // bit i set: epoch slot i of our record is in use

	carveMu sync.Mutex
	carve   [numClasses]struct{ next, end uint64 }

	limboMu sync.Mutex
	retires int

	stats Stats

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Stats are this host's counters (see also Statfs for region-wide numbers).
type Stats struct {
	CASRetries   atomic.Uint64 // failed CAS attempts on shared words
	Allocs       atomic.Uint64
	Frees        atomic.Uint64
	Retired      atomic.Uint64
	Reclaimed    atomic.Uint64 // objects freed after their grace period
	EpochAdvance atomic.Uint64
	Reaped       atomic.Uint64 // dead hosts' records taken over
}

// Open mounts the daxfs in region r. Unless ReadOnly, it joins the host
// table and keeps a heartbeat until Close.
func Open(r *cxl.Region, o Options) (*FS, error) {
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	e, err := h.Extent(ExtentName)
	if err != nil {
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	if e.Len < superSize {
		return nil, fmt.Errorf("daxfs: open %s: %w: extent of %d bytes", r.Path(), ErrBadFormat, e.Len)
	}
	img := make([]byte, superSize)
	copy(img, r.Bytes(e.Off, superSize))
	sb, err := DecodeSuperblock(img, e.Off, e.Len)
	if err != nil {
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	if sb.MaxHosts != h.MaxHosts {
		return nil, fmt.Errorf("daxfs: open %s: %w: superblock says %d hosts, region header %d", r.Path(), ErrBadFormat, sb.MaxHosts, h.MaxHosts)
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	fs := &FS{r: r, sb: sb, ht: ht, header: h, ro: o.ReadOnly || r.ReadOnly(), stop: make(chan struct{}), done: make(chan struct{})}
	if sb.Mode != ModeEmpty {
		be, err := h.Extent(BaseExtentName)
		if err != nil {
			return nil, fmt.Errorf("daxfs: open %s: %w: %v mode without a base extent: %v", r.Path(), ErrBadFormat, sb.Mode, err)
		}
		if fs.base, err = openBase(r, be, sb, o.Backing, o.NoBacking); err != nil {
			return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
		}
		if sb.Mode == ModeStatic {
			fs.ro = true // static images are read-only
		}
	}
	if fs.ro {
		// A read-only mount takes no slot: it cannot announce epochs, so
		// it reads optimistically and bounds every walk (see view rules).
		fs.rec = 0
		close(fs.done)
		return fs, nil
	}
	fs.host, err = ht.Join(cxl.JoinOptions{Name: o.Name})
	if err != nil {
		if fs.base != nil {
			fs.base.close()
		}
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	fs.rec = sb.hostRec(fs.host.Slot())
	if err := fs.attachCache(); err != nil {
		fs.host.Leave()
		fs.base.close()
		return nil, fmt.Errorf("daxfs: open %s: %w", r.Path(), err)
	}
	// A record left by an earlier holder of our slot belongs to a dead host
	// (we hold the slot now): finish what it left before taking it. If
	// another host is already reaping it, wait until it is done: the record
	// is ours only once its incarnation word is 0.
	for i := 0; ; i++ {
		old := r.Load(fs.rec + hrInc)
		if old == 0 {
			if r.CAS(fs.rec+hrInc, 0, fs.host.Incarnation()) {
				break
			}
			continue
		}
		fs.reap(fs.host.Slot(), old)
		if i > 0 {
			time.Sleep(time.Millisecond)
		}
		if time.Duration(i)*time.Millisecond > 10*ht.Lease() {
			fs.host.Leave()
			return nil, fmt.Errorf("daxfs: open %s: host record %d stays busy (reaped by another host)", r.Path(), fs.host.Slot())
		}
	}
	go fs.background()
	return fs, nil
}

// Close leaves the host table. Objects this host retired stay in its limbo
// list and are freed by whoever next holds the slot or reaps it.
func (fs *FS) Close() error {
	var err error
	fs.once.Do(func() {
		close(fs.stop)
		<-fs.done
		if fs.host != nil {
			fs.returnCarve()
			fs.reclaim()
			fs.returnCarved()
			// A clean record: the next holder of the slot inherits our
			// limbo chain as its own.
			for i := range epochSlots {
				fs.r.Store(fs.rec+hrEpochs+uint64(i)*8, 0)
				fs.r.Store(fs.rec+hrIntents+uint64(i)*intentSize, intentNone)
			}
			fs.r.Store(fs.rec+hrInc, 0)
			err = fs.host.Leave()
		}
		if fs.base != nil {
			fs.base.close()
		}
	})
	return err
}

// Abandon stops this host as a crash would: no cleanup, no leave. Tests use
// it to leave work for the survivors.
func (fs *FS) Abandon() {
	fs.once.Do(func() {
		close(fs.stop)
		<-fs.done
		if fs.host != nil {
			fs.host.Abandon()
		}
	})
}

// Err reports ErrFenced (wrapped) once this host has lost its slot in the
// host table: it missed its lease and others may have taken over what it
// held. A fenced FS refuses every mutation; the caller must Close it and
// Open the region again to rejoin as a new host.
func (fs *FS) Err() error {
	if fs.host == nil {
		return nil
	}
	if err := fs.host.Err(); err != nil {
		return fmt.Errorf("daxfs: %w", err)
	}
	return nil
}

// Region is the region this FS lives in.
func (fs *FS) Region() *cxl.Region { return fs.r }

// Superblock returns the decoded superblock.
func (fs *FS) Superblock() *Superblock { return fs.sb }

// HostTable is the region's host table.
func (fs *FS) HostTable() *cxl.HostTable { return fs.ht }

// Stats returns this host's counters.
func (fs *FS) Stats() *Stats { return &fs.stats }

// Changes is the namespace change counter: it moves on every create,
// unlink, rename and link by any host.
func (fs *FS) Changes() uint64 { return fs.r.Load(fs.sb.sharedWord(swChanges)) }

func (fs *FS) changed() { fs.r.Add(fs.sb.sharedWord(swChanges), 1) }

func (fs *FS) writable() error {
	if fs.ro {
		return ErrReadOnly
	}
	if err := fs.host.Err(); err != nil {
		return fmt.Errorf("daxfs: %w", err)
	}
	return nil
}

func (fs *FS) background() {
	defer close(fs.done)
	t := time.NewTicker(fs.ht.Lease() / 2)
	defer t.Stop()
	for {
		select {
		case <-fs.stop:
			return
		case <-t.C:
			if fs.host.Err() != nil {
				return
			}
			fs.reapDead()
			fs.reclaim()
		}
	}
}

// returnCarved gives the unused tails of the chunks this host was carving
// back to the free lists, so a clean shutdown leaks nothing.
func (fs *FS) returnCarved() {
	fs.carveMu.Lock()
	defer fs.carveMu.Unlock()
	for c := range fs.carve {
		cv := &fs.carve[c]
		for off := cv.next; off < cv.end; off += classSize(c) {
			fs.free(off)
			// free counts a handed-out object coming back; this one never
			// went out.
			fs.r.Add(fs.rec+hrAllocated, classSize(c))
		}
		cv.next, cv.end = 0, 0
	}
}
