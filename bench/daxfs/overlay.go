package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"time"
	"unsafe"

	"github.com/daxwio/daxwio/daxfs"
	"golang.org/x/sys/unix"
)

const (
	overlayRegion  = 128 << 20
	overlayCreates = 100_000 // names created per rep, over all processes
	overlayNames   = 50_000  // names that lookups choose from
	overlayLookups = 500_000 // lookups per rep, over all processes
)

// name is the directory entry name of global name index i: short (at most
// 4 bytes for 1.6M names) so every dirent is one 64-byte object.
func name(i int) string { return strconv.FormatUint(uint64(i), 36) }

// childArgs is what the parent passes to an overlay child (as JSON, one
// argument).
type childArgs struct {
	Region  string `json:"region"`
	Op      string `json:"op"` // create | lookup
	Dir     string `json:"dir"`
	Proc    int    `json:"proc"`
	Procs   int    `json:"procs"`
	Total   int    `json:"total"` // operations over all processes
	Names   int    `json:"names"` // lookup: names to choose from
	Seed    uint64 `json:"seed"`
	Profile string `json:"profile,omitempty"`
}

// childResult is what a child prints when done.
type childResult struct {
	Start, End int64 // unix ns (CLOCK_REALTIME: comparable across processes)
	Ops        int
	InoSum     uint64 // lookups: sum of the inode numbers found
	CASRetries uint64
	CPUNs      int64 // user+system CPU time of the process during the loop
	Nivcsw     int64 // involuntary context switches during the loop
}

// lookupSeq is the global sequence of name indices that the lookups of one
// rep visit; process p of n takes the p-th n-th.
func lookupSeq(a childArgs) []int {
	rng := rand.New(rand.NewPCG(a.Seed, 7))
	seq := make([]int, a.Total)
	for i := range seq {
		seq[i] = rng.IntN(a.Names)
	}
	return seq[a.Proc*a.Total/a.Procs : (a.Proc+1)*a.Total/a.Procs]
}

func childMain(kind string, args []string) error {
	if kind != "overlay" || len(args) != 1 {
		return fmt.Errorf("bad child invocation %q %q", kind, args)
	}
	var a childArgs
	if err := json.Unmarshal([]byte(args[0]), &a); err != nil {
		return err
	}
	fs, closeFS, err := mount(a.Region, fmt.Sprintf("bench-%s-%d", a.Op, a.Proc))
	if err != nil {
		return err
	}
	defer closeFS()
	prefault(fs.Region())
	dir, err := fs.Paths(0, 0).Stat(a.Dir)
	if err != nil {
		return err
	}
	// Build every name before the clock starts.
	var names []string
	var seq []int
	var private []uint64
	switch a.Op {
	case "create":
		for i := a.Proc * a.Total / a.Procs; i < (a.Proc+1)*a.Total/a.Procs; i++ {
			names = append(names, name(i))
		}
	case "lookup":
		seq = lookupSeq(a)
		all := make([]string, a.Names)
		for i := range all {
			all[i] = name(i)
		}
		for _, i := range seq {
			names = append(names, all[i])
		}
	case "control":
		seq = lookupSeq(a)
		if private, err = controlMemory(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown op %q", a.Op)
	}
	fmt.Println("ready")
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil {
		return fmt.Errorf("waiting for start: %w", err)
	}
	stop := func() {}
	if a.Profile != "" {
		stop = profileTo(a.Profile)
	}
	res := childResult{Ops: len(names)}
	if a.Op == "control" {
		res.Ops = len(seq)
	}
	cas0 := fs.Stats().CASRetries.Load()
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	res.Start = time.Now().UnixNano()
	switch a.Op {
	case "create":
		for _, n := range names {
			if _, err := fs.Create(dir.Ino, n, 0o644, 0, 0); err != nil {
				return fmt.Errorf("create %s/%s: %w", a.Dir, n, err)
			}
		}
	case "lookup":
		for _, n := range names {
			at, err := fs.Lookup(dir.Ino, n)
			if err != nil {
				return fmt.Errorf("lookup %s/%s: %w", a.Dir, n, err)
			}
			res.InoSum += at.Ino
		}
	case "control":
		// Six dependent random loads from private memory per op: about
		// the cache misses of one Lookup, with nothing shared.
		n := uint64(len(private))
		for _, k := range seq {
			x := uint64(k)
			for range 6 {
				x = private[x%n]
			}
			res.InoSum += x
		}
	}
	res.End = time.Now().UnixNano()
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	stop()
	res.CPUNs = ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	res.Nivcsw = ru1.Nivcsw - ru0.Nivcsw
	res.CASRetries = fs.Stats().CASRetries.Load() - cas0
	return json.NewEncoder(os.Stdout).Encode(res)
}

// controlMemory is 128 MiB of private anonymous memory (huge pages where
// the kernel gives them, populated up front) holding random words.
func controlMemory() ([]uint64, error) {
	const size = 128 << 20
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	unix.Madvise(b, unix.MADV_HUGEPAGE)
	unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	m := unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), size/8)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range m {
		m[i] = rng.Uint64()
	}
	return m, nil
}

// copyFile copies a region file inside the kernel (copy_file_range).
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func profileTo(path string) func() {
	old := *flagProfile
	*flagProfile = path
	defer func() { *flagProfile = old }()
	return profile("child")
}

// runChildren starts one child per args, waits until all are ready (region
// mapped and pre-faulted, names built), releases them at once and returns
// the aggregate time: from the first start to the last end.
func runChildren(as []childArgs) (time.Duration, []childResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	type proc struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	ps := make([]*proc, len(as))
	kill := func() {
		for _, p := range ps {
			if p != nil && p.cmd.Process != nil {
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		}
	}
	for i, a := range as {
		j, _ := json.Marshal(a)
		cmd := exec.Command(exe, "-child", "overlay", "-dir", *flagShm, string(j))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			kill()
			return 0, nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			kill()
			return 0, nil, err
		}
		if err := cmd.Start(); err != nil {
			kill()
			return 0, nil, err
		}
		ps[i] = &proc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	}
	tStart := time.Now()
	for i, p := range ps {
		l, err := p.out.ReadString('\n')
		if err != nil || l != "ready\n" {
			kill()
			return 0, nil, fmt.Errorf("child %d: not ready: %q %v", i, l, err)
		}
	}
	if *flagVerbose {
		fmt.Fprintf(os.Stderr, "children ready after %v\n", time.Since(tStart))
	}
	for _, p := range ps {
		p.in.Write([]byte{1})
	}
	res := make([]childResult, len(ps))
	var errs []error
	for i, p := range ps {
		if err := json.NewDecoder(p.out).Decode(&res[i]); err != nil {
			errs = append(errs, fmt.Errorf("child %d: result: %w", i, err))
		}
		p.in.Close()
		if err := p.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("child %d: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, nil, err
	}
	first, last := res[0].Start, res[0].End
	for _, r := range res {
		first, last = min(first, r.Start), max(last, r.End)
	}
	return time.Duration(last - first), res, nil
}

// benchOverlay measures Create and Lookup on one region with the work of a
// rep done by 1 process or split between 2 processes started together.
// Creates go into per-process directories or one shared directory; either
// way the same names are created in total, so 1 and 2 processes end in the
// same state and their aggregate rates compare directly.
func benchOverlay(rep *Report) error {
	defer cleanup()
	creates, lookups := scaled(overlayCreates), scaled(overlayLookups)
	names := min(scaled(overlayNames), overlayNames)
	var vs []*variant
	results := map[string]*variant{}
	add := func(key, label, op string, procs, ops int, run func(int) (time.Duration, []childResult, error)) {
		res := &Result{Group: "overlay", Name: label, Unit: "ops/s", OpsPerRep: ops, Procs: procs, Threads: 1,
			Extra: map[string]float64{}}
		var sums [4]float64
		vs = append(vs, &variant{res: res, run: func(r int) (timing, error) {
			d, cr, err := run(r)
			if err != nil || r < 0 {
				return timing{wall: d}, err
			}
			var retries, ivcs, wall, cpuNs float64
			var cpu time.Duration
			for _, c := range cr {
				retries += float64(c.CASRetries)
				ivcs += float64(c.Nivcsw)
				wall += float64(c.End-c.Start) / float64(c.Ops)
				cpuNs += float64(c.CPUNs) / float64(c.Ops)
				cpu += time.Duration(c.CPUNs)
			}
			for i, v := range []float64{retries / float64(ops), ivcs, wall / float64(len(cr)), cpuNs / float64(len(cr))} {
				sums[i] += v
			}
			n := float64(r + 1)
			res.Extra["cas_retries_per_op"] = sums[0] / n
			res.Extra["involuntary_ctx_switches_per_run"] = sums[1] / n
			res.Extra["wall_ns_per_op_per_process"] = sums[2] / n
			res.Extra["cpu_ns_per_op_per_process"] = sums[3] / n
			// CPU time per process: how long the run would take if every
			// process had a core to itself.
			return timing{wall: d, cpu: cpu / time.Duration(len(cr))}, nil
		}})
		results[key] = vs[len(vs)-1]
	}

	// Creates: every run starts from a fresh copy of one empty template
	// region (a kernel-side copy: formatting afresh would first-touch every
	// page through a new mapping, which costs seconds on this kind of VM).
	tmpl := tmpPath("create-template")
	if err := newRegion(tmpl, overlayRegion); err != nil {
		return err
	}
	{
		fs, closeFS, err := mount(tmpl, "bench-setup")
		if err != nil {
			return err
		}
		for _, d := range []string{"/p0", "/p1", "/shared"} {
			if err := fs.Paths(0, 0).Mkdir(d, 0o755); err != nil {
				closeFS()
				return err
			}
		}
		closeFS()
	}
	for _, shared := range []bool{false, true} {
		for _, procs := range []int{1, 2} {
			where := "per-process dirs"
			if shared {
				where = "one shared dir"
			}
			key := fmt.Sprintf("create-%v-%d", shared, procs)
			label := fmt.Sprintf("Create, %s, %d proc", where, procs)
			add(key, label, "create", procs, creates, func(r int) (time.Duration, []childResult, error) {
				path := tmpPath(key)
				defer os.Remove(path)
				t0 := time.Now()
				if err := copyFile(tmpl, path); err != nil {
					return 0, nil, err
				}
				if *flagVerbose {
					fmt.Fprintf(os.Stderr, "copy %v\n", time.Since(t0))
				}
				var as []childArgs
				for i := range procs {
					dir := "/shared"
					if !shared {
						dir = fmt.Sprintf("/p%d", i)
					}
					as = append(as, childArgs{Region: path, Op: "create", Dir: dir, Proc: i, Procs: procs, Total: creates,
						Profile: childProfile(r, key, i)})
				}
				d, cr, err := runChildren(as)
				if err != nil {
					return 0, nil, err
				}
				t0 = time.Now()
				defer func() {
					if *flagVerbose {
						fmt.Fprintf(os.Stderr, "verify %v\n", time.Since(t0))
					}
				}()
				// Every name exists once.
				fs, closeFS, err := mount(path, "bench-verify")
				if err != nil {
					return 0, nil, err
				}
				defer closeFS()
				n := 0
				for _, a := range as {
					if a.Proc > 0 && shared {
						break
					}
					ents, err := fs.Paths(0, 0).ReadDir(a.Dir)
					if err != nil {
						return 0, nil, err
					}
					n += len(ents)
				}
				if n != creates {
					return 0, nil, fmt.Errorf("%d names after creating %d", n, creates)
				}
				return d, cr, nil
			})
		}
	}

	// Lookups: one populated region for every run; lookups do not change it.
	lpath := tmpPath("lookup")
	if err := newRegion(lpath, overlayRegion); err != nil {
		return err
	}
	fs, closeFS, err := mount(lpath, "bench-setup")
	if err != nil {
		return err
	}
	dir, err := fs.Mkdir(daxfs.RootIno, "shared", 0o755, 0, 0)
	if err != nil {
		closeFS()
		return err
	}
	inos := make([]uint64, names)
	for i := range names {
		a, err := fs.Create(dir.Ino, name(i), 0o644, 0, 0)
		if err != nil {
			closeFS()
			return err
		}
		inos[i] = a.Ino
	}
	closeFS()
	for _, procs := range []int{1, 2} {
		key := fmt.Sprintf("lookup-%d", procs)
		add(key, fmt.Sprintf("Lookup, one shared dir, %d proc", procs), "lookup", procs, lookups,
			func(r int) (time.Duration, []childResult, error) {
				var as []childArgs
				for i := range procs {
					as = append(as, childArgs{Region: lpath, Op: "lookup", Dir: "/shared", Proc: i, Procs: procs,
						Total: lookups, Names: names, Seed: uint64(r + 10), Profile: childProfile(r, key, i)})
				}
				d, cr, err := runChildren(as)
				if err != nil {
					return 0, nil, err
				}
				for i, a := range as {
					var want uint64
					for _, k := range lookupSeq(a) {
						want += inos[k]
					}
					if cr[i].InoSum != want {
						return 0, nil, fmt.Errorf("lookups of child %d found inode sum %d, want %d", i, cr[i].InoSum, want)
					}
				}
				return d, cr, nil
			})
	}
	// Control: the same harness, 1 vs 2 processes, doing a Lookup's worth
	// of cache misses in private memory: what this machine allows for a
	// workload that shares nothing.
	for _, procs := range []int{1, 2} {
		key := fmt.Sprintf("control-%d", procs)
		add(key, fmt.Sprintf("control: private-memory loads, %d proc", procs), "control", procs, lookups,
			func(r int) (time.Duration, []childResult, error) {
				var as []childArgs
				for i := range procs {
					as = append(as, childArgs{Region: lpath, Op: "control", Dir: "/", Proc: i, Procs: procs,
						Total: lookups, Names: names, Seed: uint64(r + 10)})
				}
				return runChildren(as)
			})
	}
	if err := measure(vs, *flagReps); err != nil {
		return err
	}
	addResults(rep, vs)
	addRatio(rep, "overlay: Create per-process dirs, 2 procs vs 1", results["create-false-2"], results["create-false-1"], 1.7)
	addRatio(rep, "overlay: Create one shared dir, 2 procs vs 1", results["create-true-2"], results["create-true-1"], 1.7)
	addRatio(rep, "overlay: Lookup, 2 procs vs 1", results["lookup-2"], results["lookup-1"], 1.7)
	addRatio(rep, "overlay: control (private memory, no daxfs), 2 procs vs 1", results["control-2"], results["control-1"], 0)
	return nil
}

// childProfile names the CPU profile of child i in the first measured rep
// (children profile themselves; the overhead is the same for 1 and 2).
func childProfile(rep int, key string, i int) string {
	if *flagProfile == "" || rep != 0 {
		return ""
	}
	return fmt.Sprintf("%s-overlay-%s-p%d", *flagProfile, key, i)
}
