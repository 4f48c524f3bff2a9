// Command loopback mounts go-fuse's loopback file system over a directory:
// the user-space baseline of make bench-fuse. With -passthrough=false the
// kernel is not offered FUSE passthrough (CAP_PASSTHROUGH), so every read
// and write goes through this process, the classic FUSE data path.
//
//	loopback [-passthrough=false] MOUNTPOINT ORIGINAL
//
// It serves in the foreground and unmounts on SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	passthrough := flag.Bool("passthrough", true, "let the kernel pass reads and writes to the backing files (CAP_PASSTHROUGH)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: loopback [-passthrough=false] MOUNTPOINT ORIGINAL")
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(flag.Arg(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback:", err)
		os.Exit(1)
	}
	// As go-fuse's example/loopback comes: 1s entry and attr timeouts,
	// default MaxWrite (128 KiB), kernel caching as the backing files
	// allow.
	sec := time.Second
	opts := &fs.Options{AttrTimeout: &sec, EntryTimeout: &sec, NullPermissions: true}
	opts.DirectMount = os.Geteuid() == 0
	opts.FsName = "loopback:" + flag.Arg(1)
	opts.Name = "loopback"
	if !*passthrough {
		opts.DisabledCapabilities = fuse.CAP_PASSTHROUGH
	}
	srv, err := fs.Mount(flag.Arg(0), root, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback: mount:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		for i := 0; i < 50 && srv.Unmount() != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	srv.Wait()
}
