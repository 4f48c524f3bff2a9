// Package cli is the subcommand runner shared by the daxfs and wio
// commands: one FlagSet per subcommand, --help everywhere, flags accepted
// before, between or after positional arguments, and errors printed as one
// line on stderr with a meaningful exit status.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Command is one subcommand. Each lives in its own file and registers
// itself from init.
type Command struct {
	Name    string
	Usage   string // argument synopsis after the flags
	Summary string // first line is shown by "help"
	// Setup declares flags; Run does the work with the positional args.
	Setup func(fs *flag.FlagSet)
	Run   func(fs *flag.FlagSet, args []string) error
}

// App is a set of subcommands under one program name.
type App struct {
	name, about string
	commands    map[string]*Command
}

// New makes an App; about is the one-paragraph description help prints.
func New(name, about string) *App {
	return &App{name: name, about: about, commands: map[string]*Command{}}
}

// Register adds a command.
func (a *App) Register(c *Command) { a.commands[c.Name] = c }

// ExitError carries a specific exit status (fsck uses e2fsck's codes).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err to make the program exit with code.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// UsageError reports bad arguments (exit status 2).
func UsageError(format string, a ...any) error { return Exit(2, fmt.Errorf(format, a...)) }

// Main runs the command named by args[0] and returns the exit status.
func (a *App) Main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := a.commands[args[1]]; ok {
				a.flags(c).Usage()
				return 0
			}
		}
		a.usage(os.Stdout)
		return 0
	}
	c, ok := a.commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: unknown command %q (run \"%s help\")\n", a.name, args[0], a.name)
		return 2
	}
	fs := a.flags(c)
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
	if err := c.Run(fs, pos); err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", a.name, c.Name, strings.ReplaceAll(err.Error(), "\n", "; "))
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		return 1
	}
	return 0
}

func (a *App) flags(c *Command) *flag.FlagSet {
	fs := flag.NewFlagSet(a.name+" "+c.Name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s %s [flags] %s\n\n%s\n", a.name, c.Name, c.Usage, c.Summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(fs.Output(), "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	if c.Setup != nil {
		c.Setup(fs)
	}
	return fs
}

func (a *App) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s <command> [flags] [args]\n\n%s\n\ncommands:\n", a.name, a.about)
	var names []string
	for n := range a.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := a.commands[n].Summary
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		}
		fmt.Fprintf(w, "  %-10s %s\n", n, s)
	}
	fmt.Fprintf(w, "\nRun \"%s <command> --help\" for details.\n", a.name)
}
