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
	"os"

	"github.com/daxwio/daxwio/internal/cli"
)

var app = cli.New("wio", "wio runs storage actors (WebAssembly) on the host or the device and moves them by drain-and-switch.")

// command is one subcommand; each file registers its own from init.
type command = cli.Command

func register(c *command) { app.Register(c) }

func usageError(format string, a ...any) error { return cli.UsageError(format, a...) }

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int { return app.Main(args) }
