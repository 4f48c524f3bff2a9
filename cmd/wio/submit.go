package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"
)

func init() {
	var (
		region regionFlags
		tmo    time.Duration
	)
	register(&command{
		Name:    "submit",
		Usage:   "NAME",
		Summary: "Send standard input as one request to actor NAME and write its output to standard output.",
		Setup: func(fs *flag.FlagSet) {
			region.add(fs)
			fs.DurationVar(&tmo, "timeout", 30*time.Second, "give up after this long")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("want NAME, got %d arguments", len(args))
			}
			in, err := io.ReadAll(os.Stdin)
			if err != nil {
				return err
			}
			s, err := open(region.path, "wio-submit", nil)
			if err != nil {
				return err
			}
			defer s.close()
			ctx, cancel := context.WithTimeout(context.Background(), tmo)
			defer cancel()
			out, err := newClient(s).Call(ctx, args[0], in)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(out)
			return err
		},
	})
}
