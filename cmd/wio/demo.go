package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/daxwio/daxwio/bench/demo"
)

func init() {
	var o demo.Options
	register(&command{
		Name: "demo",
		Summary: "Run the thermal/power placement experiment and write demo-report/ (report.json, PNG plots).\n" +
			"An emulated CSD (a model, not a measurement) with a 30-minute thermal profile compressed into a\n" +
			"minute runs a compress+checksum write workload under device-pinned, host-pinned and adaptive\n" +
			"placement; every number in the report is measured from what ran.",
		Setup: func(fs *flag.FlagSet) { o.Register(fs) },
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usageError("unexpected arguments %q", args)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo.Execute(ctx, o, os.Stdout, os.Stderr)
		},
	})
}
