package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/daxwio/daxwio/actors"
)

func newClient(s *session) *actors.Client { return actors.NewClient(s.a, s.host) }

func init() {
	var (
		region regionFlags
		tmo    time.Duration
	)
	register(&command{
		Name:  "migrate",
		Usage: "NAME host|device",
		Summary: "Move actor NAME to a side by drain-and-switch and wait for the outcome.\n\nExits non-zero if the target side has no daemon or the handoff was aborted (the actor\n" +
			"then stays where it was).",
		Setup: func(fs *flag.FlagSet) {
			region.add(fs)
			fs.DurationVar(&tmo, "timeout", 30*time.Second, "give up after this long")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("want NAME host|device, got %d arguments", len(args))
			}
			to, err := actors.ParseSide(args[1])
			if err != nil {
				return usageError("%v", err)
			}
			s, err := open(region.path, "wio-migrate", nil)
			if err != nil {
				return err
			}
			defer s.close()
			ctx, cancel := context.WithTimeout(context.Background(), tmo)
			defer cancel()
			start := time.Now()
			if err := s.a.Migrate(ctx, args[0], to); err != nil {
				return err
			}
			fmt.Printf("%s now on %v (%v)\n", args[0], to, time.Since(start).Round(time.Microsecond))
			return nil
		},
	})
}
