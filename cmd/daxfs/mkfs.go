package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	"github.com/daxwio/daxwio/daxfs/pcache"
	"golang.org/x/sys/unix"
)

func init() {
	var (
		mode, from, backing, size *string
		hosts, cacheSlots         *int
		lease                     *time.Duration
		buckets                   *uint64
		force, progress           *bool
	)
	register(&command{
		Name:  "mkfs",
		Usage: "REGION",
		Summary: `Create or format REGION (a file, /dev/daxX.Y or a PCI resource file) as daxfs.
Modes: empty (no base image: everything is written through the overlay),
static (a read-only base image of --from with file data inline) and split (the
base image's metadata in the region, file data in --backing, a writable
overlay on top). The default is static with --from, empty without.
Sizes take K, M, G or T suffixes (powers of 1024). Refuses to format a region
that live hosts are using unless --force.`,
		Setup: func(fs *flag.FlagSet) {
			mode = fs.String("mode", "", "empty, static or split (default: static with --from, else empty)")
			from = fs.String("from", "", "build the base image from directory `DIR`")
			backing = fs.String("backing", "", "split mode: write file data to `FILE` (created or truncated)")
			size = fs.String("size", "", "region size in `BYTES` (default: the existing size, or derived from the tree)")
			hosts = fs.Int("hosts", cxl.DefaultMaxHosts, "host table slots (most hosts mounting at once)")
			cacheSlots = fs.Int("cache-slots", 0, "split mode: shared page-cache slots of 4 KiB (default: a quarter of the backing file's pages, 16..16384; -1: no cache)")
			lease = fs.Duration("lease", cxl.DefaultLease, "heartbeat lease: a host silent this long is dead")
			buckets = fs.Uint64("buckets", 0, "overlay hash buckets, a power of two (default: one per 2 KiB of the daxfs extent)")
			force = fs.Bool("force", false, "format even if live hosts use the region")
			progress = fs.Bool("progress", false, "report progress on stderr even when it is not a terminal")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("want one REGION, got %d arguments", len(args))
			}
			return runMkfs(args[0], mkfsFlags{mode: *mode, from: *from, backing: *backing, size: *size, hosts: *hosts,
				lease: *lease, buckets: *buckets, force: *force, progress: *progress, cacheSlots: *cacheSlots})
		},
	})
}

type mkfsFlags struct {
	mode, from, backing, size string
	hosts, cacheSlots         int
	lease                     time.Duration
	buckets                   uint64
	force, progress           bool
}

// parseSize parses 123, 64K, 1.5G (powers of 1024).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*mult >= 1<<63 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional K, M, G or T suffix", s)
	}
	return uint64(v * mult), nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func runMkfs(path string, f mkfsFlags) error {
	mode := daxfs.ModeEmpty
	switch {
	case f.mode != "":
		m, err := daxfs.ParseMode(f.mode)
		if err != nil {
			return usageError("--mode: %v", err)
		}
		mode = m
	case f.from != "":
		mode = daxfs.ModeStatic
	}
	switch {
	case mode == daxfs.ModeEmpty && f.from != "":
		return usageError("--from needs --mode static or split")
	case mode != daxfs.ModeEmpty && f.from == "":
		return usageError("--mode %v needs --from DIR", mode)
	case mode == daxfs.ModeSplit && f.backing == "":
		return usageError("--mode split needs --backing FILE")
	case mode != daxfs.ModeSplit && f.backing != "":
		return usageError("--backing is only for --mode split")
	}
	var want uint64
	if f.size != "" {
		v, err := parseSize(f.size)
		if err != nil {
			return usageError("--size: %v", err)
		}
		want = v
	}
	start := time.Now()
	var tree *daxfs.BaseTree
	if mode != daxfs.ModeEmpty {
		var err error
		if tree, err = daxfs.ScanTree(f.from, mode); err != nil {
			return err
		}
	}
	// The daxfs extent: a small one for a read-only static image, room to
	// write for the others.
	fixed := uint64(cxl.HeaderSize) + 64<<10 + uint64(f.hosts)*8192 + 8192
	ext := uint64(64 << 20)
	switch {
	case mode == daxfs.ModeStatic:
		ext = fixed + 1<<20
	case tree != nil:
		ext = max(ext, uint64(tree.Inodes())*1024+tree.BackingSize()/8)
	}
	need := fixed + ext
	if tree != nil {
		need += tree.ImageSize()
	}
	if mode == daxfs.ModeSplit && f.cacheSlots >= 0 {
		slots := f.cacheSlots
		if slots == 0 {
			slots = daxfs.DefaultCacheSlots(tree.BackingSize())
		}
		need += pcache.ExtentSize(slots, f.hosts) + cxl.ExtentAlign
	}
	need = (need + 1<<20 - 1) &^ (1<<20 - 1)
	st, statErr := os.Stat(path)
	exists := statErr == nil
	if want == 0 {
		want = need
		if exists && st.Mode().IsRegular() && uint64(st.Size()) >= need {
			want = uint64(st.Size())
		}
	}
	if want < need && tree != nil {
		return fmt.Errorf("region of %d bytes is too small: the tree needs at least %d (try --size %dM)", want, need, (need+1<<20-1)>>20)
	}
	if exists {
		if err := refuseInUse(path, f.force); err != nil {
			return err
		}
	}
	opts := cxl.OpenOptions{Create: true, Size: int64(want)}
	if exists && st.Mode().IsRegular() && uint64(st.Size()) > want {
		if err := os.Truncate(path, int64(want)); err != nil {
			return err
		}
	}
	r, err := cxl.Open(path, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	mo := daxfs.MkfsOptions{MaxHosts: f.hosts, Lease: f.lease, Buckets: f.buckets, Tree: tree, Backing: f.backing, CacheSlots: f.cacheSlots}
	if tree != nil && (f.progress || isTerminal(os.Stderr)) {
		total := uint64(tree.Inodes())
		mo.Progress = func(done, bytes uint64) {
			fmt.Fprintf(os.Stderr, "\rdaxfs mkfs: %d/%d inodes, %d MiB", done, total, bytes>>20)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	if err := daxfs.Mkfs(r, mo); err != nil {
		return err
	}
	el := time.Since(start)
	if tree == nil {
		fmt.Printf("daxfs mkfs: %s: empty, %d MiB, %d host slots, lease %v\n", path, r.Len()>>20, f.hosts, f.lease)
		return nil
	}
	mib := float64(tree.FileBytes) / (1 << 20)
	fmt.Printf("daxfs mkfs: %s: %v, %d entries (%d dirs, %d files, %d symlinks, %d hard links), %.1f MiB of files in %v (%.0f MiB/s, %.0f entries/s), region %d MiB\n",
		path, mode, tree.Entries(), tree.Dirs, tree.Files, tree.Symlinks, tree.HardLinks, mib, el.Round(time.Millisecond),
		mib/el.Seconds(), float64(tree.Entries())/el.Seconds(), r.Len()>>20)
	return nil
}

// refuseInUse fails when live hosts use the region at path.
func refuseInUse(path string, force bool) error {
	r, err := cxl.Open(path, cxl.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil // not a region yet (too small, empty): nothing to protect
	}
	defer r.Close()
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return nil
	}
	ht, err := cxl.OpenHostTable(r, h)
	if err != nil {
		return nil
	}
	if n := ht.LiveHosts(); n > 0 && !force {
		var who []string
		for _, hi := range ht.Hosts() {
			if hi.Alive {
				who = append(who, fmt.Sprintf("%s (pid %d)", hi.Name, hi.PID))
			}
		}
		return fmt.Errorf("%s is in use by %d live host(s): %s; stop them or use --force", path, n, strings.Join(who, ", "))
	}
	return nil
}

// openRegion opens a daxfs read-only (or writable) for the tools.
func openRegion(path string, write bool, backing string) (*cxl.Region, *daxfs.FS, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, err
	}
	r, err := cxl.Open(path, cxl.OpenOptions{ReadOnly: !write})
	if err != nil {
		return nil, nil, err
	}
	fs, err := daxfs.Open(r, daxfs.Options{Name: "daxfs-tool", ReadOnly: !write, Backing: backing, NoBacking: !write})
	if err != nil {
		r.Close()
		if errors.Is(err, daxfs.ErrBadFormat) {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, nil, err
	}
	return r, fs, nil
}
