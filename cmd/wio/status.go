package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

func init() {
	var (
		region regionFlags
		asJSON bool
	)
	register(&command{
		Name:    "status",
		Summary: "Show both sides' daemons and every actor (owner, epoch, queue, migrations, blackout).",
		Setup: func(fs *flag.FlagSet) {
			region.add(fs)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(fs *flag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usageError("unexpected arguments %q", args)
			}
			s, err := open(region.path, "wio-status", nil)
			if err != nil {
				return err
			}
			defer s.close()
			infos, sides := s.a.Status()
			if asJSON {
				e := json.NewEncoder(os.Stdout)
				e.SetIndent("", "  ")
				return e.Encode(map[string]any{"region": region.path, "sides": sides, "actors": infos})
			}
			w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(w, "SIDE\tPID\tHOST SLOT\tALIVE\n")
			for _, sd := range sides {
				fmt.Fprintf(w, "%s\t%d\t%d\t%v\n", sd.Side, sd.PID, sd.Slot, sd.Alive)
			}
			fmt.Fprintf(w, "\nACTOR\tOWNER\tSUBMITTED\tCOMPLETED\tQUEUE\tMIGRATIONS\tTAKEOVERS\tLAST BLACKOUT\n")
			for _, in := range infos {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%v\n", in.Name, in.Owner, in.Submitted, in.Completed,
					in.QueueDepth, in.Migrations, in.Takeovers, time.Duration(in.LastBlackNS))
			}
			return w.Flush()
		},
	})
}
