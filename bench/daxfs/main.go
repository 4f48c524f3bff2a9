// Command daxfs-bench measures the daxfs library side by side with the
// kernel paths it replaces (issue 2, "Measure"; DESIGN.md §10):
//
//  1. read:    zero-copy 4 KiB random reads (Handle.View) and copying reads
//     (Handle.ReadAt) vs pread of the same bytes from a tmpfs file;
//  2. overlay: Create and Lookup ns/op, 1 process vs 2 processes on one
//     region (real OS processes: the binary re-executes itself);
//  3. files:   create+write(4 KiB)+close of 10,000 files, library vs os on
//     tmpfs.
//
// Every variant of a group runs in the same process run, interleaved rep by
// rep, after a warm-up; the report gives the median and the spread of the
// reps and the ratios between variants. Every measured loop computes a
// checksum of what it read (or verifies what it wrote) against the expected
// value, so a broken path cannot look fast. Results go to a JSON file and
// PNG charts; a table goes to stdout.
//
//	go run ./bench/daxfs -out bench/results/daxfs.json -png bench/results
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

var (
	flagOut     = flag.String("out", "bench/results/daxfs.json", "JSON result file (empty: none)")
	flagPNG     = flag.String("png", "bench/results", "directory for PNG charts (empty: none)")
	flagOnly    = flag.String("only", "read,overlay,files", "comma-separated groups to run")
	flagReps    = flag.Int("reps", 5, "measured repetitions per variant (after one warm-up)")
	flagScale   = flag.Float64("scale", 1, "multiply every operation count by this (0.1 for a smoke run)")
	flagShm     = flag.String("dir", "/dev/shm", "tmpfs directory for regions and baseline files")
	flagProfile = flag.String("cpuprofile", "", "write CPU profiles to PREFIX-<group>[-<variant>].pprof")
	flagVerbose = flag.Bool("v", false, "print set-up timings")
	flagReplot  = flag.String("replot", "", "only redraw the charts of an existing JSON result file into -png")
	flagChild   = flag.String("child", "", "internal: run as a benchmark child process (overlay)")
)

func main() {
	flag.Parse()
	if *flagChild != "" {
		if err := childMain(*flagChild, flag.Args()); err != nil {
			fmt.Fprintf(os.Stderr, "daxfs-bench child: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *flagReplot != "" {
		if err := replot(*flagReplot, *flagPNG); err != nil {
			fmt.Fprintf(os.Stderr, "daxfs-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	// Interrupted: remove this run's region and baseline files.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cleanup()
		os.Exit(130)
	}()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "daxfs-bench: %v\n", err)
		os.Exit(1)
	}
}

// Report is the JSON result file.
type Report struct {
	Benchmark string    `json:"benchmark"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	// LoadAvg is /proc/loadavg before and after the run: other work on
	// the machine shows in the wall-clock numbers.
	LoadAvg [2]string `json:"loadavg_before_after"`
	Machine Machine   `json:"machine"`
	Config  Config    `json:"config"`
	Results []*Result `json:"results"`
	Ratios  []*Ratio  `json:"ratios"`
}

// Config records the sizes the run used.
type Config struct {
	Reps          int     `json:"reps"`
	Scale         float64 `json:"scale"`
	ReadFileBytes int64   `json:"read_file_bytes"`
	ReadOps       int     `json:"read_ops_per_rep"`
	OverlayCreate int     `json:"overlay_creates_per_rep"`
	OverlayLookup int     `json:"overlay_lookups_per_rep"`
	SmallFiles    int     `json:"small_files_per_rep"`
	SmallFileSize int     `json:"small_file_bytes"`
	Notes         string  `json:"notes"`
}

func run() error {
	start := time.Now()
	rep := &Report{Benchmark: "daxfs", Started: start.UTC(), Machine: machineInfo(), LoadAvg: [2]string{loadAvg()}}
	rep.Config = Config{
		Reps:          *flagReps,
		Scale:         *flagScale,
		ReadFileBytes: readFileBytes,
		ReadOps:       scaled(readOpsPerRep),
		OverlayCreate: scaled(overlayCreates),
		OverlayLookup: scaled(overlayLookups),
		SmallFiles:    scaled(smallFiles),
		SmallFileSize: smallFileSize,
		Notes: "Regions and baseline files live on tmpfs (" + *flagShm + "). Region files are fully " +
			"allocated (fallocate) and every process pre-faults its mapping (MADV_POPULATE_WRITE) before timing starts. " +
			"Ratios are baseline time / library time (higher is better for the library), " +
			"or aggregate ops/s with 2 processes / with 1 process. Each result has a -cpu twin: the same runs " +
			"timed by the CPU time (user+sys, getrusage) of the process(es), divided by the number of parallel " +
			"workers, i.e. the time the run would take with a core per worker; on a shared machine it removes most " +
			"of the other load that the wall-clock numbers carry. Goals are judged on wall-clock ratios.",
	}
	fmt.Printf("daxfs-bench: %d CPU, %s, %s, GOMAXPROCS=%d, reps=%d, scale=%g\n",
		rep.Machine.NumCPU, rep.Machine.Kernel, rep.Machine.GoVersion, runtime.GOMAXPROCS(0), *flagReps, *flagScale)
	groups := map[string]func(*Report) error{"read": benchRead, "overlay": benchOverlay, "files": benchFiles}
	for _, g := range strings.Split(*flagOnly, ",") {
		g = strings.TrimSpace(g)
		fn := groups[g]
		if fn == nil {
			return fmt.Errorf("unknown group %q (want read, overlay, files)", g)
		}
		t0 := time.Now()
		if err := fn(rep); err != nil {
			return fmt.Errorf("%s: %w", g, err)
		}
		fmt.Printf("  [%s done in %.1fs]\n", g, time.Since(t0).Seconds())
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.LoadAvg[1] = loadAvg()
	printTable(os.Stdout, rep)
	if *flagOut != "" {
		if err := os.MkdirAll(filepath.Dir(*flagOut), 0o755); err != nil {
			return err
		}
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*flagOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %s\n", *flagOut)
	}
	if *flagPNG != "" {
		files, err := writeCharts(rep, *flagPNG)
		if err != nil {
			return fmt.Errorf("charts: %w", err)
		}
		for _, f := range files {
			fmt.Printf("wrote %s\n", f)
		}
	}
	return nil
}

func replot(path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	files, err := writeCharts(&rep, dir)
	for _, f := range files {
		fmt.Printf("wrote %s\n", f)
	}
	return err
}

func scaled(n int) int { return max(1, int(float64(n)**flagScale)) }

// profile starts a CPU profile named after the group and variant when
// -cpuprofile is set; the returned function stops it.
func profile(name string) func() {
	if *flagProfile == "" {
		return func() {}
	}
	f, err := os.Create(*flagProfile + "-" + name + ".pprof")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func printTable(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "\n%-11s %-48s %12s %12s %12s %8s\n", "group", "variant", "median", "min", "max", "spread")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-11s %-48s %12s %12s %12s %7.1f%%\n", r.Group, r.Name,
			fmtVal(r.Median, r.Unit), fmtVal(r.Min, r.Unit), fmtVal(r.Max, r.Unit), r.SpreadPct)
	}
	fmt.Fprintf(w, "\n%-64s %8s %17s %6s %s\n", "ratio (wall clock; [CPU] = CPU time per worker)", "median", "paired min..max", "goal", "")
	for _, r := range rep.Ratios {
		goal, met := "-", ""
		if r.Goal > 0 {
			goal = fmt.Sprintf("%.2g", r.Goal)
			met = "MISSED"
			if r.Met {
				met = "met"
			}
		}
		fmt.Fprintf(w, "%-64s %7.2fx %7.2fx..%6.2fx %6s %s\n", r.Name, r.Value, r.PairedMin, r.PairedMax, goal, met)
	}
	fmt.Fprintln(w)
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "ns/op":
		return fmt.Sprintf("%.0f ns/op", v)
	case "ops/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM op/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk op/s", v/1e3)
		}
		return fmt.Sprintf("%.0f op/s", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}
