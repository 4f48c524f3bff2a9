package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	daxfuse "github.com/daxwio/daxwio/daxfs/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func init() {
	var (
		metrics    *string
		allowOther *bool
		ro         *bool
		coherence  *string
		debug      *bool
	)
	register(&command{
		Name:  "mount",
		Usage: "REGION MOUNTPOINT",
		Summary: `Mount a daxfs region with FUSE and serve it in the foreground.
SIGINT or SIGTERM unmounts. As root it calls mount(2) itself; otherwise it
uses fusermount3 (Debian package fuse3). Every host may mount the same region
at once; a change through one mount is visible through the others as soon as
its call returns (see docs/FUSE.md).`,
		Setup: func(fs *flag.FlagSet) {
			metrics = fs.String("metrics", "", "serve Prometheus metrics on `ADDR` (host:port) at /metrics")
			allowOther = fs.Bool("allow-other", false, "let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root)")
			ro = fs.Bool("ro", false, "mount read-only")
			coherence = fs.String("coherence", string(daxfuse.CoherenceZero), "cache coherence across mounts: zero (no kernel caching) or counter (cache names, invalidate from the region's change counter)")
			debug = fs.Bool("debug", false, "log every FUSE request")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("mount: want REGION MOUNTPOINT, got %d arguments", len(args))
			}
			return runMount(args[0], args[1], mountFlags{
				metrics: *metrics, allowOther: *allowOther, ro: *ro,
				coherence: daxfuse.Coherence(*coherence), debug: *debug,
			})
		},
	})
}

type mountFlags struct {
	metrics    string
	allowOther bool
	ro         bool
	coherence  daxfuse.Coherence
	debug      bool
}

func runMount(regionPath, mnt string, f mountFlags) error {
	r, err := cxl.Open(regionPath, cxl.OpenOptions{ReadOnly: f.ro})
	if err != nil {
		return err
	}
	defer r.Close()
	fsys, err := daxfs.Open(r, daxfs.Options{Name: "fuse:" + mnt, ReadOnly: f.ro})
	if err != nil {
		return err
	}
	defer fsys.Close()

	var m *daxfuse.Metrics
	if f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m = daxfuse.NewMetrics(reg, fsys)
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer ln.Close()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		go http.Serve(ln, mux)
		log.Printf("daxfs mount: metrics on http://%s/metrics", ln.Addr())
	}

	abs, err := filepath.Abs(regionPath)
	if err != nil {
		abs = regionPath
	}
	srv, err := daxfuse.Mount(fsys, mnt, daxfuse.Options{
		Coherence:  f.coherence,
		AllowOther: f.allowOther,
		ReadOnly:   f.ro,
		FsName:     "daxfs:" + abs,
		Metrics:    m,
		Debug:      f.debug,
	})
	if err != nil {
		if !errors.Is(err, daxfuse.ErrStaleMount) && os.Geteuid() != 0 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
			return fmt.Errorf("%w (not root: is fusermount3 installed, Debian package fuse3?)", err)
		}
		return err
	}
	log.Printf("daxfs mount: %s on %s (coherence %s)", regionPath, mnt, f.coherence)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
		// Unmounted from outside (fusermount3 -u, umount).
		return nil
	case s := <-sig:
		log.Printf("daxfs mount: %v: unmounting %s", s, mnt)
	}
	// Files may still be open; retry for a while, then detach (umount -l)
	// so the process can exit and release its host slot cleanly.
	var uerr error
	for i := 0; i < 20; i++ {
		if uerr = srv.Unmount(i == 19); uerr == nil {
			break
		}
		select {
		case s := <-sig:
			log.Printf("daxfs mount: %v again: detaching", s)
			uerr = srv.Unmount(true)
			i = 20
		case <-time.After(100 * time.Millisecond):
		}
		if uerr == nil {
			break
		}
	}
	if uerr != nil {
		return uerr
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return nil
}
