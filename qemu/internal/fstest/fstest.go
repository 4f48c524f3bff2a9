// Package fstest is the multi-VM daxfs check.
//
// The host formats the pool with daxfs (plus a small "testbed" extent for
// barriers and parameters) and makes the directory /shared. Then every VM,
// through the daxfs library, concurrently:
//
//	A. creates Own files of its own, /shared/vm<S>-<I>, timed (creates/s);
//	B. races the other VMs to create the same Common names /shared/common-<I>
//	   with O_EXCL: exactly one VM may win each, the others get EEXIST;
//	C. renames a quarter of its own files (-> .renamed) and races everyone
//	   to rename every third common file (-> .moved): one winner, the
//	   others get ENOENT;
//	D. deletes another quarter of its own files and races everyone to
//	   delete a second third of the common files: one winner;
//
// with a barrier between phases (so that every race really has every VM
// in it), and reports what it saw succeed. After power-off the host
// computes the tree that the union of the reports implies — names and
// every file's bytes — and compares it with what is actually in /shared.
package fstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
)

// Extent is the extra region extent the check keeps its words in.
const Extent = "testbed"

// Magic marks a pool prepared for the check ("DXWFST01").
const Magic = 0x3130545346_575844

const (
	offMagic    = 0
	offVMs      = 8
	offOwn      = 16
	offCommon   = 24
	offFileSize = 32
	offBarrier  = 4096 // + 8*MaxVMs*n + 8*slot
	nBarriers   = 5
	extentSize  = 16 << 10
	// MaxVMs bounds the participants.
	MaxVMs = 64
)

// Dir is the shared directory every VM works in.
const Dir = "/shared"

// Params size one run.
type Params struct {
	VMs      int
	Own      int // files each VM creates in phase A
	Common   int // names every VM races for in phase B
	FileSize int // bytes per file
}

// Lease is the host-table lease the check formats with. Guest clocks come
// from the emulated RTC and drift under TCG; the daxfs default (5s) could
// let one VM declare a busy peer dead.
const Lease = 60 * time.Second

// Format makes a fresh daxfs in r and prepares the check's words.
func Format(r *cxl.Region, p Params) error {
	if p.VMs < 1 || p.VMs > MaxVMs || p.Own < 0 || p.Common < 0 || p.FileSize < 64 {
		return fmt.Errorf("fstest: bad params %+v", p)
	}
	if err := daxfs.Mkfs(r, daxfs.MkfsOptions{Lease: Lease, Extra: []cxl.ExtentSpec{{Name: Extent, Size: extentSize}}}); err != nil {
		return fmt.Errorf("fstest: mkfs: %w", err)
	}
	off, err := extentOff(r)
	if err != nil {
		return err
	}
	r.Store(off+offVMs, uint64(p.VMs))
	r.Store(off+offOwn, uint64(p.Own))
	r.Store(off+offCommon, uint64(p.Common))
	r.Store(off+offFileSize, uint64(p.FileSize))
	fs, err := daxfs.Open(r, daxfs.Options{Name: "testbed-host"})
	if err != nil {
		return fmt.Errorf("fstest: open after mkfs: %w", err)
	}
	if err := fs.Paths(0, 0).Mkdir(Dir, 0o777); err != nil {
		fs.Close()
		return fmt.Errorf("fstest: mkdir %s: %w", Dir, err)
	}
	if err := fs.Close(); err != nil {
		return fmt.Errorf("fstest: close after mkfs: %w", err)
	}
	r.Store(off+offMagic, Magic)
	return r.Persist(0, r.Len())
}

func extentOff(r *cxl.Region) (uint64, error) {
	h, err := cxl.ReadHeader(r)
	if err != nil {
		return 0, fmt.Errorf("fstest: %w", err)
	}
	e, err := h.Extent(Extent)
	if err != nil {
		return 0, fmt.Errorf("fstest: %w", err)
	}
	return e.Off, nil
}

// Content is the exact bytes of file i written by VM slot; kind is "own" or
// "common". Every file differs, so a file that shows another's bytes is
// caught.
func Content(kind string, slot, i, size int) []byte {
	b := make([]byte, size)
	head := fmt.Sprintf("%s file %d by vm%d\n", kind, i, slot)
	n := copy(b, head)
	x := uint32(slot*1_000_003 + i*7919 + len(kind))
	for j := n; j < size; j++ {
		x = x*1664525 + 1013904223
		b[j] = 'a' + byte(x>>24)%26
	}
	return b
}

// Report is what one VM did.
type Report struct {
	Slot           int     `json:"slot"`
	OwnCreated     int     `json:"own_created"`
	CreateSeconds  float64 `json:"create_seconds"`
	CreatesPerSec  float64 `json:"creates_per_sec"`
	Renamed        []int   `json:"renamed"`     // own files renamed to .renamed
	Deleted        []int   `json:"deleted"`     // own files deleted
	CommonWon      []int   `json:"common_won"`  // common names this VM created
	CommonLost     int     `json:"common_lost"` // EEXIST seen
	MovedWon       []int   `json:"moved_won"`   // common renames this VM did
	RemovedWon     []int   `json:"removed_won"` // common deletes this VM did
	NotFound       int     `json:"not_found"`   // ENOENT seen in races
	CASRetries     uint64  `json:"cas_retries"` // daxfs's own counter
	PhaseBSeconds  float64 `json:"race_create_seconds"`
	TotalOpsPerSec float64 `json:"ops_per_sec"` // all namespace ops / all phases' time
}

// Own file fates: i%4==1 renamed, i%4==2 deleted. Common fates: i%3==0
// moved, i%3==1 removed, else kept.
func ownName(slot, i int) string { return fmt.Sprintf("%s/vm%d-%d", Dir, slot, i) }
func commonName(i int) string    { return fmt.Sprintf("%s/common-%d", Dir, i) }

// Ops are the namespace operations the check drives: through the library
// (LibraryOps) or through a mounted daxfs (OSOps, e.g. a FUSE mount).
// Paths are absolute inside the filesystem ("/shared/x").
type Ops interface {
	// Create makes a new file with O_EXCL and writes data; an existing name
	// is an error satisfying IsExist.
	Create(path string, data []byte) error
	Rename(oldPath, newPath string) error
	Remove(path string) error
}

// IsExist and IsNotExist classify errors from either kind of Ops.
func IsExist(err error) bool { return errors.Is(err, daxfs.ErrExist) || errors.Is(err, os.ErrExist) }

// IsNotExist: see IsExist.
func IsNotExist(err error) bool {
	return errors.Is(err, daxfs.ErrNotExist) || errors.Is(err, os.ErrNotExist)
}

type libOps struct{ p *daxfs.Paths }

// LibraryOps drives the check through the daxfs library.
func LibraryOps(p *daxfs.Paths) Ops { return libOps{p} }

func (l libOps) Create(path string, data []byte) error { return create(l.p, path, data) }
func (l libOps) Rename(a, b string) error              { return l.p.Rename(a, b) }
func (l libOps) Remove(path string) error              { return l.p.Remove(path) }

type osOps struct{ root string }

// OSOps drives the check through the kernel, on a daxfs mounted at root.
func OSOps(root string) Ops { return osOps{root} }

func (o osOps) Create(path string, data []byte) error {
	f, err := os.OpenFile(o.root+path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
func (o osOps) Rename(a, b string) error { return os.Rename(o.root+a, o.root+b) }
func (o osOps) Remove(path string) error { return os.Remove(o.root + path) }

// Run is the guest side through the library: it mounts r with daxfs.Open,
// runs Work and unmounts.
func Run(ctx context.Context, r *cxl.Region, slot int, progress func(string)) (Report, error) {
	fs, err := daxfs.Open(r, daxfs.Options{Name: fmt.Sprintf("vm%d", slot)})
	if err != nil {
		return Report{Slot: slot}, fmt.Errorf("fstest: mount: %w", err)
	}
	rep, err := Work(ctx, r, slot, LibraryOps(fs.Paths(0, 0)), fs, progress)
	if cerr := fs.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("fstest: unmount: %w", cerr)
	}
	return rep, err
}

// Work runs the four phases with ops. r carries the barriers; fs (may be
// nil) supplies daxfs's retry counter.
func Work(ctx context.Context, r *cxl.Region, slot int, ops Ops, fs *daxfs.FS, progress func(string)) (Report, error) {
	rep := Report{Slot: slot}
	off, err := extentOff(r)
	if err != nil {
		return rep, err
	}
	if m := r.Load(off + offMagic); m != Magic {
		return rep, fmt.Errorf("fstest: testbed extent magic %#x, want %#x: pool not prepared by the host", m, uint64(Magic))
	}
	vms := int(r.Load(off + offVMs))
	own := int(r.Load(off + offOwn))
	common := int(r.Load(off + offCommon))
	size := int(r.Load(off + offFileSize))
	if slot < 0 || slot >= vms || vms > MaxVMs {
		return rep, fmt.Errorf("fstest: slot %d but the pool says %d VMs", slot, vms)
	}
	bar := func(n int) error { return barrier(ctx, r, off, n, slot, vms) }
	var busy time.Duration
	nops := 0

	if err := bar(0); err != nil {
		return rep, err
	}
	progress("phase A: own creates")
	t0 := time.Now()
	for i := 0; i < own; i++ {
		if err := ops.Create(ownName(slot, i), Content("own", slot, i, size)); err != nil {
			return rep, fmt.Errorf("fstest: phase A: create %s: %w", ownName(slot, i), err)
		}
		rep.OwnCreated++
		if i%256 == 0 && ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	d := time.Since(t0)
	busy += d
	nops += own
	rep.CreateSeconds = d.Seconds()
	if d > 0 {
		rep.CreatesPerSec = float64(own) / d.Seconds()
	}

	if err := bar(1); err != nil {
		return rep, err
	}
	progress("phase B: racing creates")
	t0 = time.Now()
	for i := 0; i < common; i++ {
		err := ops.Create(commonName(i), Content("common", slot, i, size))
		switch {
		case err == nil:
			rep.CommonWon = append(rep.CommonWon, i)
		case IsExist(err):
			rep.CommonLost++
		default:
			return rep, fmt.Errorf("fstest: phase B: create %s: %w", commonName(i), err)
		}
	}
	rep.PhaseBSeconds = time.Since(t0).Seconds()
	busy += time.Since(t0)
	nops += common

	if err := bar(2); err != nil {
		return rep, err
	}
	progress("phase C: renames")
	t0 = time.Now()
	for i := 1; i < own; i += 4 {
		if err := ops.Rename(ownName(slot, i), ownName(slot, i)+".renamed"); err != nil {
			return rep, fmt.Errorf("fstest: phase C: rename own: %w", err)
		}
		rep.Renamed = append(rep.Renamed, i)
		nops++
	}
	for i := 0; i < common; i += 3 {
		err := ops.Rename(commonName(i), commonName(i)+".moved")
		switch {
		case err == nil:
			rep.MovedWon = append(rep.MovedWon, i)
		case IsNotExist(err):
			rep.NotFound++
		default:
			return rep, fmt.Errorf("fstest: phase C: rename %s: %w", commonName(i), err)
		}
		nops++
	}
	busy += time.Since(t0)

	if err := bar(3); err != nil {
		return rep, err
	}
	progress("phase D: deletes")
	t0 = time.Now()
	for i := 2; i < own; i += 4 {
		if err := ops.Remove(ownName(slot, i)); err != nil {
			return rep, fmt.Errorf("fstest: phase D: remove own: %w", err)
		}
		rep.Deleted = append(rep.Deleted, i)
		nops++
	}
	for i := 1; i < common; i += 3 {
		err := ops.Remove(commonName(i))
		switch {
		case err == nil:
			rep.RemovedWon = append(rep.RemovedWon, i)
		case IsNotExist(err):
			rep.NotFound++
		default:
			return rep, fmt.Errorf("fstest: phase D: remove %s: %w", commonName(i), err)
		}
		nops++
	}
	busy += time.Since(t0)
	if busy > 0 {
		rep.TotalOpsPerSec = float64(nops) / busy.Seconds()
	}
	if fs != nil {
		rep.CASRetries = fs.Stats().CASRetries.Load()
	}
	if err := bar(4); err != nil {
		return rep, err
	}
	return rep, nil
}

func create(p *daxfs.Paths, name string, data []byte) error {
	f, err := p.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

func barrier(ctx context.Context, r *cxl.Region, ext uint64, n, slot, vms int) error {
	base := ext + offBarrier + uint64(8*MaxVMs*n)
	r.Store(base+8*uint64(slot), 1)
	for i := 0; i < vms; i++ {
		for d := 50 * time.Microsecond; r.Load(base+8*uint64(i)) == 0; {
			select {
			case <-ctx.Done():
				return fmt.Errorf("fstest: barrier %d: waiting for VM %d of %d: %w", n, i, vms, ctx.Err())
			case <-time.After(d):
			}
			if d < 5*time.Millisecond {
				d *= 2
			}
		}
	}
	return nil
}

// Expected is the tree the reports imply: name (relative to Dir) -> bytes.
func Expected(p Params, reps []Report) (map[string][]byte, error) {
	if len(reps) != p.VMs {
		return nil, fmt.Errorf("fstest: %d reports for %d VMs", len(reps), p.VMs)
	}
	want := map[string][]byte{}
	var errs []error
	winners := func(get func(Report) []int, n int, what string) map[int]int {
		w := map[int]int{}
		for _, r := range reps {
			for _, i := range get(r) {
				if i < 0 || i >= n {
					errs = append(errs, fmt.Errorf("vm%d reports %s of common-%d, out of range", r.Slot, what, i))
					continue
				}
				if prev, dup := w[i]; dup {
					errs = append(errs, fmt.Errorf("common-%d: both vm%d and vm%d report winning the %s", i, prev, r.Slot, what))
				}
				w[i] = r.Slot
			}
		}
		return w
	}
	created := winners(func(r Report) []int { return r.CommonWon }, p.Common, "create")
	moved := winners(func(r Report) []int { return r.MovedWon }, p.Common, "rename")
	removed := winners(func(r Report) []int { return r.RemovedWon }, p.Common, "delete")
	for i := 0; i < p.Common; i++ {
		w, ok := created[i]
		if !ok {
			errs = append(errs, fmt.Errorf("common-%d: no VM reports creating it (every create must have exactly one winner)", i))
			continue
		}
		name := fmt.Sprintf("common-%d", i)
		data := Content("common", w, i, p.FileSize)
		switch i % 3 {
		case 0:
			if _, ok := moved[i]; !ok {
				errs = append(errs, fmt.Errorf("%s: no VM reports renaming it", name))
			}
			want[name+".moved"] = data
		case 1:
			if _, ok := removed[i]; !ok {
				errs = append(errs, fmt.Errorf("%s: no VM reports deleting it", name))
			}
		default:
			want[name] = data
		}
	}
	for _, r := range reps {
		if r.OwnCreated != p.Own {
			errs = append(errs, fmt.Errorf("vm%d created %d own files, want %d", r.Slot, r.OwnCreated, p.Own))
		}
		fate := map[int]string{}
		for _, i := range r.Renamed {
			fate[i] = "renamed"
		}
		for _, i := range r.Deleted {
			fate[i] = "deleted"
		}
		for i := 0; i < r.OwnCreated; i++ {
			name := fmt.Sprintf("vm%d-%d", r.Slot, i)
			switch fate[i] {
			case "renamed":
				want[name+".renamed"] = Content("own", r.Slot, i, p.FileSize)
			case "deleted":
			default:
				want[name] = Content("own", r.Slot, i, p.FileSize)
			}
		}
	}
	return want, errors.Join(errs...)
}

// Check compares the tree in r with the union of the reports. It mounts
// read-only.
func Check(r *cxl.Region, p Params, reps []Report) (Summary, error) {
	want, err := Expected(p, reps)
	if err != nil {
		return Summary{}, err
	}
	fs, err := daxfs.Open(r, daxfs.Options{ReadOnly: true})
	if err != nil {
		return Summary{}, fmt.Errorf("fstest: mount the pool after the run: %w", err)
	}
	defer fs.Close()
	pp := fs.Paths(0, 0)
	return compare(want, func() ([]string, error) {
		ents, err := pp.ReadDir(Dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name)
		}
		return names, err
	}, func(name string) ([]byte, error) { return pp.ReadFile(Dir + "/" + name) })
}

// CheckDir is Check for a tree in the host's own filesystem at root (tests).
func CheckDir(root string, p Params, reps []Report) (Summary, error) {
	want, err := Expected(p, reps)
	if err != nil {
		return Summary{}, err
	}
	return compare(want, func() ([]string, error) {
		ents, err := os.ReadDir(root + Dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names, err
	}, func(name string) ([]byte, error) { return os.ReadFile(root + Dir + "/" + name) })
}

func compare(want map[string][]byte, list func() ([]string, error), read func(string) ([]byte, error)) (Summary, error) {
	s := Summary{Expected: len(want)}
	names, err := list()
	if err != nil {
		return s, fmt.Errorf("fstest: read %s: %w", Dir, err)
	}
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			errs = append(errs, fmt.Errorf("%s listed twice", name))
		}
		seen[name] = true
		s.Found++
		data, ok := want[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s/%s is in the tree but no VM's report accounts for it", Dir, name))
			continue
		}
		got, err := read(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s/%s: %w", Dir, name, err))
			continue
		}
		if string(got) != string(data) {
			errs = append(errs, fmt.Errorf("%s/%s: %d bytes that differ from what its writer wrote (%d bytes; starts %q)", Dir, name, len(got), len(data), firstLine(got)))
		}
	}
	var missing []string
	for name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		errs = append(errs, fmt.Errorf("%s/%s: reported but missing from the tree", Dir, n))
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("... and %d more differences", len(errs)-10))
	}
	return s, errors.Join(errs...)
}

// Summary is the host's reading.
type Summary struct {
	Expected int `json:"expected_entries"`
	Found    int `json:"found_entries"`
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// FsckResult summarises daxfs's verifier on the pool after the run.
type FsckResult struct {
	Severe   int      `json:"severe"`
	Warnings int      `json:"warnings"`
	Problems []string `json:"problems,omitempty"` // the first 20
	Inodes   uint64   `json:"inodes"`
	Files    uint64   `json:"files"`
	Dirents  uint64   `json:"dirents"`
	Live     int      `json:"live_hosts"`
	Dead     int      `json:"dead_hosts"`
}

// Fsck runs daxfs's verifier (FS.Check) read-only on a quiescent pool and
// fails on any severe problem.
func Fsck(r *cxl.Region) (FsckResult, error) {
	var res FsckResult
	fs, err := daxfs.Open(r, daxfs.Options{ReadOnly: true})
	if err != nil {
		return res, fmt.Errorf("fstest: fsck: mount: %w", err)
	}
	defer fs.Close()
	c := fs.Check()
	res.Severe = c.Severe()
	res.Warnings = len(c.Problems) - res.Severe
	res.Inodes, res.Files, res.Dirents = c.Inodes, c.Files, c.Dirents
	res.Live, res.Dead = c.LiveHosts, c.DeadHosts
	for i, p := range c.Problems {
		if i == 20 {
			break
		}
		res.Problems = append(res.Problems, p.String())
	}
	if !c.OK() {
		return res, fmt.Errorf("fstest: fsck found %d severe problems:\n  %s", res.Severe, strings.Join(res.Problems, "\n  "))
	}
	return res, nil
}
