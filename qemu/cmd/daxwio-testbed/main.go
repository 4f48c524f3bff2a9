// Command daxwio-testbed boots several QEMU virtual machines that share one
// memory pool and runs daxwio's multi-host checks in them. See
// docs/TESTBED.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const usage = `daxwio-testbed: daxwio across QEMU virtual machines sharing one memory pool.

usage:
  daxwio-testbed test      [flags]   run the multi-VM checks (what 'make qemu-test' runs)
  daxwio-testbed run       [flags]   boot VMs with one role and print their reports
  daxwio-testbed initramfs [flags]   build the initramfs only
  daxwio-testbed shell     [flags]   boot one VM on the pool with a busybox shell on this terminal

Every command takes --help. Progress goes to stderr; results to stdout.
Needs: qemu-system-x86_64, a Debian kernel in /boot, busybox-static
(apt-get install qemu-system-x86 linux-image-amd64 busybox-static), and the
static in-VM driver daxwio-vminit (make qemu-test builds it).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "test":
		err = cmdTest(ctx, os.Args[2:])
	case "run":
		err = cmdRun(ctx, os.Args[2:])
	case "initramfs":
		err = cmdInitramfs(ctx, os.Args[2:])
	case "shell":
		err = cmdShell(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "daxwio-testbed: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "daxwio-testbed: FAIL:", err)
		os.Exit(1)
	}
}

var start = time.Now()

// progress prints a timestamped line on stderr.
func progress(s string) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), s)
}

func progressf(format string, a ...any) { progress(fmt.Sprintf(format, a...)) }

// paramFlag collects repeated --param key=value.
type paramFlag map[string]string

func (p paramFlag) String() string {
	var s []string
	for k, v := range p {
		s = append(s, k+"="+v)
	}
	return strings.Join(s, ",")
}

func (p paramFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	p[k] = val
	return nil
}
