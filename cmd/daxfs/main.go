// Command daxfs formats, mounts, inspects and repairs daxfs regions.
//
//	daxfs <command> [flags] [args]
//
// Run "daxfs help" for the list of commands and "daxfs <command> --help" for
// one command. Errors are printed as one line on stderr with a non-zero exit.
package main

import (
	"os"

	"github.com/daxwio/daxwio/internal/cli"
)

var app = cli.New("daxfs", "daxfs is a filesystem in shared (CXL) memory that many hosts mount and write at once.")

// command is one subcommand; each file registers its own from init.
type command = cli.Command

func register(c *command) { app.Register(c) }

func usageError(format string, a ...any) error { return cli.UsageError(format, a...) }

func main() { os.Exit(app.Main(os.Args[1:])) }
