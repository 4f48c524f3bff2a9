package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/daxwio/daxwio/actors"
)

func init() {
	var (
		region regionFlags
		side   string
		state  uint
		arg    string
		cache  string
		tmo    time.Duration
		trust  bool
	)
	register(&command{
		Name:  "deploy",
		Usage: "NAME FILE.wasm",
		Summary: "Validate a wasm actor and publish it in the region under NAME.\n\nImports, exports, the start function and wio_init are checked here; a malformed or\n" +
			"hostile module is rejected with a message and nothing is published.",
		Setup: func(fs *flag.FlagSet) {
			region.add(fs)
			fs.StringVar(&side, "side", "host", "side the actor starts on: host or device")
			fs.UintVar(&state, "state", 4096, "state arena size in bytes")
			fs.StringVar(&arg, "arg", "", "argument passed to wio_init (e.g. the filter predicate)")
			fs.StringVar(&cache, "cache", defaultCacheDir(), "wazero compilation cache directory")
			fs.DurationVar(&tmo, "timeout", time.Minute, "give up after this long")
			fs.BoolVar(&trust, "trusted", false, "run without a per-call deadline (faster; a runaway actor blocks itself)")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("want NAME FILE.wasm, got %d arguments", len(args))
			}
			sd, err := actors.ParseSide(side)
			if err != nil {
				return usageError("%v", err)
			}
			wasm, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), tmo)
			defer cancel()
			rt, err := actors.NewRuntime(ctx, actors.RuntimeConfig{CacheDir: cache})
			if err != nil {
				return err
			}
			defer rt.Close(context.Background())
			s, err := open(region.path, "wio-deploy", nil)
			if err != nil {
				return err
			}
			defer s.close()
			if err := s.a.Deploy(ctx, rt, args[0], wasm, actors.DeployOptions{Side: sd, StateSize: uint32(state), Arg: []byte(arg), Trusted: trust}); err != nil {
				return err
			}
			fmt.Printf("deployed %s (%d bytes) on %v\n", args[0], len(wasm), sd)
			return nil
		},
	})
}
