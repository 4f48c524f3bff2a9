package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/cxl"
)

type daemonFlags struct {
	region  regionFlags
	create  bool
	size    string
	lease   time.Duration
	cache   string
	metrics string
	persist bool
	pages   uint
	timeout time.Duration
	slots   int
	maxReq  uint
	verbose bool
}

// deviceExec lets the device emulator (cxl/device) run every device-side
// actor call; nil runs calls directly. Set from another file's init.
var deviceExec func(ctx context.Context) (func(ctx context.Context, call func() error) error, error)

func init() {
	for _, side := range []actors.Side{actors.Host, actors.Device} {
		f := &daemonFlags{}
		register(&command{
			Name:  side.String(),
			Usage: "",
			Summary: fmt.Sprintf("Run the %v-side daemon.\n\nIt serves the actors this side owns, takes over actors of a dead owner and follows\n"+
				"migrations. It stops on SIGINT/SIGTERM, handing its actors to the other side.", side),
			Setup: func(fs *flag.FlagSet) {
				f.region.add(fs)
				fs.BoolVar(&f.create, "create", true, "create and format the region file (with only an actors extent) if it does not exist")
				fs.StringVar(&f.size, "size", "256M", "size of a region created with --create")
				fs.DurationVar(&f.lease, "lease", cxl.DefaultLease, "host heartbeat lease of a region created with --create")
				fs.StringVar(&f.cache, "cache", defaultCacheDir(), "wazero compilation cache directory (\"\" keeps it in memory)")
				fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. :9464)")
				fs.BoolVar(&f.persist, "persist", false, "persist (msync/flush) state, output and commit word of every request")
				fs.UintVar(&f.pages, "mem-pages", 2048, "linear memory limit per actor instance, in 64 KiB pages")
				fs.DurationVar(&f.timeout, "call-timeout", 2*time.Second, "deadline of one actor call")
				fs.IntVar(&f.slots, "slots", 64, "ring slots per actor when formatting a new arena")
				fs.UintVar(&f.maxReq, "max-request", 64<<10, "largest request in bytes when formatting a new arena")
				fs.BoolVar(&f.verbose, "v", false, "log ownership changes to stderr")
			},
			Run: func(fs *flag.FlagSet, args []string) error {
				if len(args) != 0 {
					return usageError("unexpected arguments %q", args)
				}
				return runDaemon(side, f)
			},
		})
	}
}

func runDaemon(side actors.Side, f *daemonFlags) error {
	if f.create {
		size, err := parseSize(f.size)
		if err != nil {
			return usageError("%v", err)
		}
		if err := create(f.region.path, size, f.lease); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logw io.Writer = io.Discard
	if f.verbose {
		logw = os.Stderr
	}
	rt, err := actors.NewRuntime(ctx, actors.RuntimeConfig{CacheDir: f.cache, MemoryLimitPages: uint32(f.pages), CallTimeout: f.timeout, Log: logw})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if f.metrics != "" {
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(os.Stderr, "wio %v: metrics on http://%s/metrics\n", side, ln.Addr())
	}
	var exec func(ctx context.Context, call func() error) error
	if side == actors.Device && deviceExec != nil {
		if exec, err = deviceExec(ctx); err != nil {
			return err
		}
	}
	ao := &actors.ArenaOptions{Slots: f.slots, MaxRequest: uint32(f.maxReq)}
	for ctx.Err() == nil {
		s, err := open(f.region.path, "wio-"+side.String(), ao)
		if err != nil {
			return err
		}
		opts := actors.NodeOptions{Persist: f.persist, Log: logw, Exec: exec, Registerer: reg}
		n, err := actors.NewNode(s.a, s.host, side, rt, opts)
		if err != nil {
			s.close()
			return err
		}
		fmt.Fprintf(os.Stderr, "wio %v: serving %s as host slot %d (pid %d)\n", side, f.region.path, s.host.Slot(), os.Getpid())
		err = n.Run(ctx)
		s.close()
		if err != nil && !errors.Is(err, cxl.ErrFenced) {
			return err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "wio %v: %v; re-joining\n", side, err)
		}
	}
	return nil
}
