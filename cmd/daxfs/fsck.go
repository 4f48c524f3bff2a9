package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/daxwio/daxwio/internal/cli"
)

// e2fsck's exit codes.
const (
	fsckClean    = 0
	fsckRepaired = 1
	fsckLeft     = 4
)

func init() {
	var repair *bool
	register(&command{
		Name:  "fsck",
		Usage: "REGION",
		Summary: `Check a daxfs region: hash chains, inodes, dirents, directory lists, page
tables, free lists, limbo lists, host records and the base image. Exit status
(as e2fsck): 0 clean, 1 errors were repaired, 4 errors are left. Without
--repair it only reads. Run it on a quiescent region: on a live one,
operations in flight show up as problems.`,
		Setup: func(f *flag.FlagSet) {
			repair = f.Bool("repair", false, "fix what can be fixed (joins the host table; leaked objects are only reclaimed when no other host is alive)")
		},
		Run: func(f *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("want one REGION, got %d arguments", len(args))
			}
			return runFsck(args[0], *repair)
		},
	})
}

func runFsck(path string, repair bool) error {
	r, fsys, err := openRegion(path, repair, "")
	if err != nil {
		return cli.Exit(8, err)
	}
	defer r.Close()
	defer fsys.Close()
	if !repair {
		rep := fsys.Check()
		printCheck(path, rep.Inodes, rep.Dirents, rep.Problems)
		if len(rep.Problems) > 0 {
			return cli.Exit(fsckLeft, fmt.Errorf("%s: %d problem(s) found (%d severe); run with --repair", path, len(rep.Problems), rep.Severe()))
		}
		return nil
	}
	rr, err := fsys.Repair()
	if err != nil {
		return cli.Exit(fsckLeft, err)
	}
	b := rr.Before
	fmt.Printf("%s: before repair:\n", path)
	printCheck(path, b.Inodes, b.Dirents, b.Problems)
	verb := "fixed"
	if len(b.Problems) == 0 {
		verb = "tidied" // housekeeping on a clean region (e.g. a carve tail of this host)
	}
	for _, f := range rr.Fixed {
		fmt.Printf("  %s: %s\n", verb, f)
	}
	a := rr.After
	if len(a.Problems) > 0 {
		fmt.Printf("%s: after repair:\n", path)
		printCheck(path, a.Inodes, a.Dirents, a.Problems)
		return cli.Exit(fsckLeft, fmt.Errorf("%s: %d problem(s) left after repair (%d severe)", path, len(a.Problems), a.Severe()))
	}
	if len(b.Problems) == 0 {
		fmt.Printf("%s: clean\n", path)
		return nil
	}
	fmt.Printf("%s: repaired, now clean\n", path)
	return cli.Exit(fsckRepaired, errors.New("errors were repaired"))
}

func printCheck[P fmt.Stringer](path string, inodes, names uint64, problems []P) {
	fmt.Printf("%s: %d inodes, %d names, %d problem(s)\n", path, inodes, names, len(problems))
	for _, p := range problems {
		fmt.Printf("  %s\n", p)
	}
}
