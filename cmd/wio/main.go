// Command wio runs WebAssembly storage actors on a shared (CXL) region:
// the host and device daemons, and the commands that deploy, call, move and
// inspect actors.
//
//	wio <command> [flags] [args]
//
// Run "wio help" for the list of commands and "wio <command> --help" for
// one command. Errors are printed as one line on stderr with a non-zero exit.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. Each lives in its own file and registers
// itself from init.
type command struct {
	name    string
	usage   string // argument synopsis after the flags
	summary string
	// setup declares flags; run does the work with the remaining args.
	setup func(fs *flag.FlagSet)
	run   func(fs *flag.FlagSet, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// exitError carries a specific exit status .
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				newFlags(c).Usage()
				return 0
			}
		}
		usage(os.Stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "wio: unknown command %q (run \"wio help\")\n", args[0])
		return 2
	}
	fs := newFlags(c)
	// Flags may come before, between or after the positional arguments.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if err := c.run(fs, pos); err != nil {
		fmt.Fprintf(os.Stderr, "wio %s: %s\n", c.name, oneLine(err))
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func newFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("wio "+c.name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: wio %s [flags] %s\n\n%s\n", c.name, c.usage, c.summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(fs.Output(), "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	if c.setup != nil {
		c.setup(fs)
	}
	return fs
}

func usage(w *os.File) {
	fmt.Fprintf(w, "usage: wio <command> [flags] [args]\n\n")
	fmt.Fprintf(w, "wio runs storage actors (WebAssembly) on the host or the device and moves them by drain-and-switch.\n\ncommands:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, firstLine(commands[n].summary))
	}
	fmt.Fprintf(w, "\nRun \"wio <command> --help\" for details.\n")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// usageError reports bad arguments (exit status 2).
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}
