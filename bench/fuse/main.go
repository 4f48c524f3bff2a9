// Command fuse is the make bench-fuse driver: fio side by side on daxfs
// FUSE, go-fuse's loopback over tmpfs (with and without FUSE passthrough)
// and kernel tmpfs, plus a create/stat/unlink metadata run, in one run.
// It writes results.json, results.md and results.png under -out.
//
// It mounts nothing itself (a process touching its own FUSE mount can
// deadlock): it starts `daxfs mount` and the loopback as child processes
// and drives them with fio and, for metadata, its own loop.
//
//	go run ./bench/fuse -daxfs bin/daxfs -loopback bin/fuse-loopback -out bench/fuse/results
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/bench/plot"
	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
)

var (
	daxfsBin    = flag.String("daxfs", "bin/daxfs", "daxfs command")
	loopbackBin = flag.String("loopback", "bin/fuse-loopback", "loopback command (bench/fuse/loopback)")
	outDir      = flag.String("out", "bench/fuse/results", "where to write results.{json,md,png}")
	fileSize    = flag.String("size", "256M", "fio file size per job")
	runtimeS    = flag.Int("runtime", 1, "seconds per fio round")
	reps        = flag.Int("reps", 3, "rounds per row and target (the median is reported)")
	metaFiles   = flag.Int("files", 10000, "files for the metadata rows")
	only        = flag.String("only", "", "comma-separated targets to run (default all)")
	replot      = flag.String("replot", "", "only rewrite results.md and results.png under -out from this results.json")
)

// target is one file system under test.
type target struct {
	Name string `json:"name"`
	Desc string `json:"desc"`
	dir  string
	stop func()
	// dataRows: run the fio rows (the counter-mode daxfs mount has the
	// same data path as the default one, so it runs metadata only).
	dataRows bool
}

// Row is one measurement.
type Row struct {
	Name    string               `json:"name"`
	Unit    string               `json:"unit"`
	Results map[string]float64   `json:"results"`                   // target -> value (higher is better)
	Lat     map[string]float64   `json:"mean_latency_us,omitempty"` // median over reps of fio's mean clat
	Reps    map[string][]float64 `json:"reps,omitempty"`            // every round, MiB/s
}

type Report struct {
	Date   string `json:"date"`
	Host   string `json:"host"`
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	Fio    string `json:"fio"`
	// Load averages before and after: the machine may be shared.
	LoadBefore string   `json:"loadavg_before"`
	LoadAfter  string   `json:"loadavg_after"`
	Targets    []target `json:"targets"`
	Rows       []Row    `json:"rows"`
	Notes      []string `json:"notes"`
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench-fuse: ")
	if *replot != "" {
		b, err := os.ReadFile(*replot)
		if err != nil {
			log.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			log.Fatalf("%s: %v", *replot, err)
		}
		if err := write(&rep, *outDir); err != nil {
			log.Fatal(err)
		}
		return
	}
	if os.Geteuid() != 0 {
		log.Fatal("needs root (mount(2) for daxfs and the loopback, FUSE passthrough)")
	}
	for _, b := range []string{*daxfsBin, *loopbackBin} {
		if _, err := os.Stat(b); err != nil {
			log.Fatalf("%v (build with make bench-fuse)", err)
		}
	}
	fioVer, err := exec.Command("fio", "--version").Output()
	if err != nil {
		log.Fatalf("fio: %v (Debian: apt-get install fio)", err)
	}
	work, err := os.MkdirTemp("/dev/shm", "daxfs-bench-fuse-*")
	if err != nil {
		log.Fatal(err)
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.stop != nil {
				t.stop()
			}
		}
		os.RemoveAll(work)
	}()
	sigs := make(chan os.Signal, 1)
	go func() {
		<-sigs
		for _, t := range targets {
			if t.stop != nil {
				t.stop()
			}
		}
		os.RemoveAll(work)
		os.Exit(1)
	}()
	signalNotify(sigs)

	want := func(n string) bool { return *only == "" || strings.Contains(","+*only+",", ","+n+",") }
	add := func(t *target, err error) {
		if err != nil {
			log.Fatal(err)
		}
		targets = append(targets, t)
	}
	if want("daxfs") {
		add(daxfsTarget(work, "daxfs", "zero"))
	}
	if want("loopback") {
		add(loopbackTarget(work, "loopback", true))
	}
	if want("loopback-nopt") {
		add(loopbackTarget(work, "loopback-nopt", false))
	}
	if want("tmpfs") {
		d := filepath.Join(work, "tmpfs")
		os.Mkdir(d, 0o755)
		targets = append(targets, &target{Name: "tmpfs", Desc: "kernel tmpfs (/dev/shm)", dir: d, dataRows: true})
	}
	if want("daxfs-counter") {
		add(daxfsTarget(work, "daxfs-counter", "counter"))
	}

	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Fio: strings.TrimSpace(string(fioVer))}
	rep.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadBefore = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rep.Kernel = strings.TrimSpace(string(b))
	}
	for _, t := range targets {
		rep.Targets = append(rep.Targets, *t)
	}

	type spec struct {
		rw, bs string
		jobs   int
		direct int
	}
	var specs []spec
	for _, direct := range []int{1, 0} {
		for _, jobs := range []int{1, 2} {
			for _, rwbs := range [][2]string{{"randread", "4k"}, {"randwrite", "4k"}, {"read", "1M"}, {"write", "1M"}} {
				specs = append(specs, spec{rwbs[0], rwbs[1], jobs, direct})
			}
		}
	}
	// The machine may be shared (other builds and tests): every row runs
	// -reps short rounds per target, rotating the order of targets each
	// round, and reports the median, so a burst of someone else's load
	// hits all targets alike instead of one.
	for _, s := range specs {
		mode := "buffered"
		if s.direct == 1 {
			mode = "direct"
		}
		row := Row{Name: fmt.Sprintf("%s %s %dj %s", s.rw, s.bs, s.jobs, mode), Unit: "MiB/s",
			Results: map[string]float64{}, Lat: map[string]float64{}, Reps: map[string][]float64{}}
		var data []*target
		for _, t := range targets {
			if t.dataRows {
				data = append(data, t)
			}
		}
		lats := map[string][]float64{}
		for rep := 0; rep < *reps; rep++ {
			for k := range data {
				t := data[(k+rep)%len(data)]
				bw, lat, err := runFio(t.dir, s.rw, s.bs, s.jobs, s.direct)
				if err != nil {
					log.Printf("%s on %s: %v", row.Name, t.Name, err)
					continue
				}
				row.Reps[t.Name] = append(row.Reps[t.Name], bw)
				lats[t.Name] = append(lats[t.Name], lat)
			}
		}
		for _, t := range data {
			if len(row.Reps[t.Name]) == 0 {
				continue
			}
			row.Results[t.Name] = median(row.Reps[t.Name])
			row.Lat[t.Name] = median(lats[t.Name])
			log.Printf("%-28s %-14s %10.1f MiB/s  %8.1f µs  %v", row.Name, t.Name, row.Results[t.Name], row.Lat[t.Name], row.Reps[t.Name])
		}
		rep.Rows = append(rep.Rows, row)
	}
	metaNames := []string{"create", "stat", "unlink", "stat 5-deep path"}
	first := len(rep.Rows)
	for _, op := range metaNames {
		rep.Rows = append(rep.Rows, Row{Name: fmt.Sprintf("%s %d files", op, *metaFiles), Unit: "ops/s",
			Results: map[string]float64{}, Reps: map[string][]float64{}})
	}
	for r := 0; r < *reps; r++ {
		for k := range targets {
			t := targets[(k+r)%len(targets)]
			res, err := metadata(t.dir, *metaFiles)
			if err != nil {
				log.Printf("metadata on %s: %v", t.Name, err)
				continue
			}
			for i := range metaNames {
				row := &rep.Rows[first+i]
				row.Reps[t.Name] = append(row.Reps[t.Name], res[i])
			}
		}
	}
	for i := range metaNames {
		row := &rep.Rows[first+i]
		for _, t := range targets {
			if v := row.Reps[t.Name]; len(v) > 0 {
				row.Results[t.Name] = median(v)
				log.Printf("%-28s %-14s %10.0f ops/s  %v", row.Name, t.Name, row.Results[t.Name], v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAfter = strings.TrimSpace(string(b))
	}
	rep.Notes = notes
	if err := write(rep, *outDir); err != nil {
		log.Fatal(err)
	}
}

var notes = []string{
	"fio psync, one process per job, time_based; MiB/s is the sum over jobs (group_reporting); each cell is the median of -reps rounds (all rounds in results.json), targets rotated every round.",
	"daxfs opens every file FOPEN_DIRECT_IO, so its buffered rows take the direct path too (no page cache: coherence across mounts).",
	"loopback = go-fuse v2.12.1 fs.NewLoopbackRoot over a tmpfs directory, example/loopback settings (1s timeouts, MaxWrite 128 KiB); with passthrough the kernel does reads and writes itself.",
	"metadata rows: one process, open(O_CREAT|O_EXCL)+close, stat, unlink of N files in one directory (fio's filecreate/filestat/filedelete engines spend more time in fio than in the file system at 10k files).",
}

func signalNotify(c chan os.Signal) {
	signalNotifyImpl(c, syscall.SIGINT, syscall.SIGTERM)
}

// waitMounted waits until dir is a mountpoint.
func waitMounted(dir string, proc *exec.Cmd, out *bytes.Buffer) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/self/mounts")
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] == dir {
				return nil
			}
		}
		if proc.ProcessState != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("mount at %s did not come up: %s", dir, out.String())
}

func startServer(dir string, name string, args ...string) (func(), error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := waitMounted(dir, cmd, &out); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	}
	return stop, nil
}

func daxfsTarget(work, name, coherence string) (*target, error) {
	region := filepath.Join(work, name+".region")
	r, err := cxl.Open(region, cxl.OpenOptions{Create: true, Size: 1536 << 20})
	if err != nil {
		return nil, err
	}
	err = daxfs.Mkfs(r, daxfs.MkfsOptions{})
	r.Close()
	if err != nil {
		return nil, err
	}
	mnt := filepath.Join(work, "mnt-"+name)
	os.Mkdir(mnt, 0o755)
	stop, err := startServer(mnt, *daxfsBin, "mount", "--coherence", coherence, region, mnt)
	if err != nil {
		return nil, err
	}
	return &target{Name: name, Desc: "daxfs FUSE, coherence " + coherence + ", region in /dev/shm", dir: mnt, stop: stop,
		dataRows: coherence == "zero"}, nil
}

func loopbackTarget(work, name string, passthrough bool) (*target, error) {
	orig := filepath.Join(work, name+"-orig")
	mnt := filepath.Join(work, "mnt-"+name)
	os.Mkdir(orig, 0o755)
	os.Mkdir(mnt, 0o755)
	stop, err := startServer(mnt, *loopbackBin, fmt.Sprintf("-passthrough=%v", passthrough), mnt, orig)
	if err != nil {
		return nil, err
	}
	d := "go-fuse loopback over tmpfs, FUSE passthrough as it comes"
	if !passthrough {
		d = "go-fuse loopback over tmpfs, CAP_PASSTHROUGH disabled"
	}
	return &target{Name: name, Desc: d, dir: mnt, stop: stop, dataRows: true}, nil
}

// runFio runs one fio row and returns MiB/s (all jobs) and mean
// completion latency in µs.
func runFio(dir, rw, bs string, jobs, direct int) (float64, float64, error) {
	args := []string{
		"--name=bench", "--directory=" + dir, "--rw=" + rw, "--bs=" + bs, "--size=" + *fileSize,
		fmt.Sprintf("--numjobs=%d", jobs), fmt.Sprintf("--direct=%d", direct),
		"--ioengine=psync", fmt.Sprintf("--runtime=%d", *runtimeS), "--time_based", "--ramp_time=500ms",
		"--group_reporting", "--output-format=json",
	}
	out, err := exec.Command("fio", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, 0, fmt.Errorf("fio %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return 0, 0, err
	}
	// fio may print warnings before the JSON.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var res struct {
		Jobs []struct {
			Read, Write struct {
				BwBytes float64 `json:"bw_bytes"`
				ClatNs  struct {
					Mean float64 `json:"mean"`
				} `json:"clat_ns"`
			}
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Jobs) == 0 {
		return 0, 0, fmt.Errorf("fio output: %v", err)
	}
	j := res.Jobs[0]
	st := j.Read
	if strings.Contains(rw, "write") {
		st = j.Write
	}
	return st.BwBytes / (1 << 20), st.ClatNs.Mean / 1000, nil
}

// metadata creates, stats and unlinks n files in a fresh directory, then
// stats a file 5 directories deep n times (the path walk that entry
// caching saves), and returns ops/s for each phase.
func metadata(root string, n int) ([4]float64, error) {
	var res [4]float64
	dir := filepath.Join(root, "meta")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return res, err
	}
	defer os.Remove(dir)
	names := make([]string, n)
	for i := range names {
		names[i] = filepath.Join(dir, fmt.Sprintf("file%06d", i))
	}
	t := time.Now()
	for _, p := range names {
		fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
		if err != nil {
			return res, fmt.Errorf("create %s: %w", p, err)
		}
		syscall.Close(fd)
	}
	res[0] = float64(n) / time.Since(t).Seconds()
	var st syscall.Stat_t
	t = time.Now()
	for _, p := range names {
		if err := syscall.Stat(p, &st); err != nil {
			return res, fmt.Errorf("stat %s: %w", p, err)
		}
	}
	res[1] = float64(n) / time.Since(t).Seconds()
	t = time.Now()
	for _, p := range names {
		if err := syscall.Unlink(p); err != nil {
			return res, fmt.Errorf("unlink %s: %w", p, err)
		}
	}
	res[2] = float64(n) / time.Since(t).Seconds()
	deep := filepath.Join(dir, "a", "b", "c", "d")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(filepath.Join(dir, "a"))
	f := filepath.Join(deep, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		return res, err
	}
	t = time.Now()
	for range n {
		if err := syscall.Stat(f, &st); err != nil {
			return res, fmt.Errorf("stat %s: %w", f, err)
		}
	}
	res[3] = float64(n) / time.Since(t).Seconds()
	return res, nil
}

func write(rep *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# make bench-fuse\n\n%s, %s, kernel %s, %d CPUs, %s; load average before %s, after %s\n\n",
		rep.Date, rep.Host, rep.Kernel, rep.CPUs, rep.Fio, rep.LoadBefore, rep.LoadAfter)
	names := make([]string, 0, len(rep.Targets))
	for _, t := range rep.Targets {
		names = append(names, t.Name)
		fmt.Fprintf(&md, "- **%s**: %s\n", t.Name, t.Desc)
	}
	base := "loopback-nopt"
	fmt.Fprintf(&md, "\n| row | unit |")
	for _, n := range names {
		fmt.Fprintf(&md, " %s |", n)
	}
	fmt.Fprintf(&md, " daxfs / %s | daxfs / tmpfs |\n|---|---|", base)
	for range names {
		fmt.Fprintf(&md, "---:|")
	}
	fmt.Fprintf(&md, "---:|---:|\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&md, "| %s | %s |", r.Name, r.Unit)
		for _, n := range names {
			if v, ok := r.Results[n]; ok {
				fmt.Fprintf(&md, " %.0f |", v)
			} else {
				fmt.Fprintf(&md, " – |")
			}
		}
		fmt.Fprintf(&md, " %s | %s |\n", ratio(r.Results["daxfs"], r.Results[base]), ratio(r.Results["daxfs"], r.Results["tmpfs"]))
	}
	fmt.Fprintf(&md, "\nNotes:\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&md, "- %s\n", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	// PNG: each FUSE target relative to the loopback without passthrough
	// (the goal line is 1.2x). Kernel tmpfs is left out and bars are
	// clipped at 10x: tmpfs runs 10-100x any FUSE file system on small
	// I/O and would flatten everything else; the table has its numbers.
	const clip = 10
	c := plot.BarChart{Title: "FUSE bench: throughput / go-fuse loopback without passthrough (goal 1.2x; clipped at 10x)",
		YLabel: "x loopback-nopt", Width: 30, Height: 12}
	for _, r := range rep.Rows {
		c.Categories = append(c.Categories, strings.ReplaceAll(r.Name, " ", "\n"))
	}
	for _, n := range names {
		if n == base || n == "tmpfs" {
			continue
		}
		g := plot.BarGroup{Name: n}
		for _, r := range rep.Rows {
			v := 0.0
			if b := r.Results[base]; b > 0 {
				v = min(r.Results[n]/b, clip)
			}
			g.Values = append(g.Values, v)
		}
		c.Groups = append(c.Groups, g)
	}
	if err := plot.Bars(filepath.Join(dir, "results.png"), c); err != nil {
		log.Printf("plot: %v", err)
	}
	fmt.Print(md.String())
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
