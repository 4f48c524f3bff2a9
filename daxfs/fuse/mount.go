// Package fuse is the FUSE front end of daxfs: go-fuse node types over the
// inode API of package daxfs, so unmodified programs use a region that
// every host mounts at once.
//
// Coherence across mounts (docs/FUSE.md): every mount has its own kernel
// caches, so by default the kernel is told to cache nothing (zero entry and
// attribute timeouts, no negative entries, FOPEN_DIRECT_IO for data). The
// alternative, CoherenceCounter, caches entries and invalidates them from a
// watcher on the region's namespace change counter.
package fuse

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/daxfs"
	fusefs "github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// Coherence selects how a mount keeps its kernel caches in step with other
// hosts' changes.
type Coherence string

const (
	// CoherenceZero: zero entry and attribute timeouts. Every path walk
	// and stat asks the region; a change by any host is seen as soon as
	// its call returns. The default (see docs/FUSE.md for the numbers).
	CoherenceZero Coherence = "zero"
	// CoherenceCounter: entries are cached for EntryTimeout and a watcher
	// polls the region's namespace change counter every WatchInterval,
	// invalidating every cached name whose binding changed. Attributes
	// are still not cached (size, mode and times do not move the
	// counter). Another host's rename or unlink can be missed for up to
	// one watch interval.
	CoherenceCounter Coherence = "counter"
)

// Options configure a mount.
type Options struct {
	// Coherence mode; "" means CoherenceZero.
	Coherence Coherence
	// EntryTimeout is how long the kernel may cache names in counter
	// mode (default 1s).
	EntryTimeout time.Duration
	// WatchInterval is how often the counter watcher polls (default 1ms).
	WatchInterval time.Duration
	// AllowOther lets users other than the mounter use the mount
	// (needs user_allow_other in /etc/fuse.conf for non-root mounters).
	AllowOther bool
	// ReadOnly mounts read-only (the FS should be opened read-only too).
	ReadOnly bool
	// FsName is the source shown in /proc/mounts (default "daxfs").
	FsName string
	// NoZeroCopy makes reads copy into go-fuse's buffer instead of
	// handing it pinned region bytes.
	NoZeroCopy bool
	// Metrics, when non-nil, counts and times every request.
	Metrics *Metrics
	// Debug logs every FUSE request.
	Debug bool
	// Logger for go-fuse messages (default: log.Default()).
	Logger *log.Logger
}

// mount is the state shared by every node of one mount.
type mount struct {
	fs         *daxfs.FS
	fopenFlags uint32
	zeroCopy   bool
}

// Server is a running mount.
type Server struct {
	*gofuse.Server
	Mountpoint string
	m          *mount
	root       *node
	opts       Options

	stop     chan struct{}
	watching sync.WaitGroup
	once     sync.Once
}

// ErrStaleMount says the mountpoint is a dead FUSE mount (ENOTCONN).
var ErrStaleMount = errors.New("stale FUSE mount")

// CheckMountpoint returns nil when dir can be mounted on. A mountpoint
// left by a killed mount process answers ENOTCONN; as root it is detached
// (umount -l) and reused, otherwise the error says how to clear it.
func CheckMountpoint(dir string) error {
	_, err := os.Stat(dir)
	if err == nil {
		return nil
	}
	if (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) && fuseMounted(dir) {
		// The kernel answers other users EACCES on a FUSE mount, dead or
		// alive, so a stale mount of someone else looks like this.
		return fmt.Errorf("daxfs fuse: mountpoint %s: %w: a FUSE file system is mounted there that this user cannot use "+
			"(another user's, or a stale one left by a killed mount); its owner or root can clear it with `fusermount3 -u %s` or `umount -l %s`",
			dir, ErrStaleMount, dir, dir)
	}
	if !errors.Is(err, syscall.ENOTCONN) {
		return fmt.Errorf("daxfs fuse: mountpoint %s: %w", dir, err)
	}
	if os.Geteuid() == 0 {
		if uerr := syscall.Unmount(dir, syscall.MNT_DETACH); uerr == nil {
			if _, err = os.Stat(dir); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("daxfs fuse: mountpoint %s: %w left by a killed mount (%v); clear it with `fusermount3 -u %s` (or `umount -l %s` as root)",
		dir, ErrStaleMount, err, dir, dir)
}

// fuseMounted reports whether /proc/self/mounts lists a FUSE file system
// mounted at dir.
func fuseMounted(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		// Spaces in paths are written as \040; such a mountpoint is
		// simply not recognised.
		if len(f) > 2 && f[1] == abs && strings.HasPrefix(f[2], "fuse") {
			return true
		}
	}
	return false
}

// Mount serves fs at dir until Unmount. As root it calls mount(2)
// directly; otherwise it goes through fusermount3.
func Mount(fs *daxfs.FS, dir string, o Options) (*Server, error) {
	if o.Coherence == "" {
		o.Coherence = CoherenceZero
	}
	if o.Coherence != CoherenceZero && o.Coherence != CoherenceCounter {
		return nil, fmt.Errorf("daxfs fuse: unknown coherence mode %q (want zero or counter)", o.Coherence)
	}
	if o.EntryTimeout == 0 {
		o.EntryTimeout = time.Second
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = time.Millisecond
	}
	if o.FsName == "" {
		o.FsName = "daxfs"
	}
	if err := CheckMountpoint(dir); err != nil {
		return nil, err
	}
	m := &mount{
		fs: fs,
		// Data never enters the page cache: another host's write must
		// be visible to the next read. PARALLEL_DIRECT_WRITES: the
		// library takes no per-inode lock, neither need the kernel.
		fopenFlags: gofuse.FOPEN_DIRECT_IO | gofuse.FOPEN_PARALLEL_DIRECT_WRITES,
		zeroCopy:   !o.NoZeroCopy,
	}
	root := &node{m: m}
	zero := time.Duration(0)
	fo := &fusefs.Options{
		AttrTimeout:     &zero,
		EntryTimeout:    &zero,
		NegativeTimeout: nil, // never cache "no such name"
		NullPermissions: true,
		RootStableAttr:  &fusefs.StableAttr{Ino: daxfs.RootIno, Gen: 1, Mode: syscall.S_IFDIR},
		Logger:          o.Logger,
	}
	if o.Coherence == CoherenceCounter {
		fo.EntryTimeout = &o.EntryTimeout
	}
	mo := gofuse.MountOptions{
		FsName:     o.FsName,
		Name:       "daxfs",
		AllowOther: o.AllowOther,
		// The kernel checks permissions from the attributes we return;
		// the library checks none.
		Options:       []string{"default_permissions"},
		DirectMount:   os.Geteuid() == 0,
		MaxWrite:      1 << 20,
		MaxReadAhead:  128 << 10,
		MaxBackground: 64,
		DisableXAttrs: true,
		// mmap of a FOPEN_DIRECT_IO file (kernel >= 6.6).
		ExtraCapabilities: gofuse.CAP_DIRECT_IO_ALLOW_MMAP,
		Debug:             o.Debug,
		Logger:            o.Logger,
	}
	if o.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	fo.MountOptions = mo
	rawFS := fusefs.NewNodeFS(root, fo)
	if o.Metrics != nil {
		rawFS = o.Metrics.wrap(rawFS)
	}
	srv, err := gofuse.NewServer(rawFS, dir, &fo.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("daxfs fuse: mount %s: %w", dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return nil, fmt.Errorf("daxfs fuse: mount %s: %w", dir, err)
	}
	s := &Server{Server: srv, Mountpoint: dir, m: m, root: root, opts: o, stop: make(chan struct{})}
	if o.Coherence == CoherenceCounter {
		s.watching.Add(1)
		go s.watch()
	}
	return s, nil
}

// Unmount stops the watcher and unmounts. It fails with EBUSY while files
// are open; force detaches the mount instead (root only), as umount -l.
func (s *Server) Unmount(force bool) error {
	s.once.Do(func() { close(s.stop) })
	s.watching.Wait()
	err := s.Server.Unmount()
	if err != nil && force {
		if derr := syscall.Unmount(s.Mountpoint, syscall.MNT_DETACH); derr == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("daxfs fuse: unmount %s: %w", s.Mountpoint, err)
	}
	return nil
}

// watch is the counter-mode invalidator.
func (s *Server) watch() {
	defer s.watching.Done()
	t := time.NewTicker(s.opts.WatchInterval)
	defer t.Stop()
	last := s.m.fs.Changes()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		c := s.m.fs.Changes()
		if c == last {
			continue
		}
		last = c
		s.revalidate(&s.root.Inode)
	}
}

// revalidate checks every name the kernel may have cached under dir
// against the region and invalidates those bound to something else now.
func (s *Server) revalidate(dir *fusefs.Inode) {
	ino := dir.StableAttr().Ino
	for name, ch := range dir.Children() {
		a, err := s.m.fs.Lookup(ino, name)
		if err != nil || a.Ino != ch.StableAttr().Ino {
			dir.NotifyEntry(name)
			dir.RmChild(name)
			if s.opts.Metrics != nil {
				s.opts.Metrics.invalidations.Inc()
			}
			continue
		}
		if ch.IsDir() {
			s.revalidate(ch)
		}
	}
}
