package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/daxwio/daxwio/daxfs"
)

func init() {
	var long *bool
	var backing *string
	register(&command{
		Name:    "ls",
		Usage:   "REGION [PATH]",
		Summary: "List a directory (or show one file) of a daxfs region without mounting it.",
		Setup: func(f *flag.FlagSet) {
			long = f.Bool("l", false, "long format: mode, links, owner, group, size, mtime")
			backing = f.String("backing", "", "backing file of a split image (default: the path mkfs recorded)")
		},
		Run: func(f *flag.FlagSet, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError("want REGION [PATH], got %d arguments", len(args))
			}
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			return runLs(args[0], p, *long, *backing)
		},
	})
}

func runLs(region, p string, long bool, backing string) error {
	r, fsys, err := openRegion(region, false, backing)
	if err != nil {
		return err
	}
	defer r.Close()
	defer fsys.Close()
	paths := fsys.Paths(0, 0)
	a, err := paths.Lstat(p)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	show := func(name string, a daxfs.Attr, full string) {
		if !long {
			fmt.Fprintln(w, name)
			return
		}
		link := ""
		if a.IsSymlink() {
			if t, err := paths.Readlink(full); err == nil {
				link = " -> " + t
			}
		}
		fmt.Fprintf(w, "%s %3d %5d %5d %10d %s %s%s\n", modeString(a.Mode), a.Nlink, a.Uid, a.Gid, a.Size,
			a.Mtime.UTC().Format(time.DateTime), name, link)
	}
	if !a.IsDir() {
		show(p, a, p)
		return nil
	}
	ents, err := paths.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		full := path.Join(p, e.Name)
		if !long {
			show(e.Name, daxfs.Attr{}, full)
			continue
		}
		ea, err := fsys.GetAttr(e.Ino)
		if err != nil {
			return fmt.Errorf("%s: %w", full, err)
		}
		show(e.Name, ea, full)
	}
	return nil
}

// modeString renders a mode as ls does (drwxr-xr-x).
func modeString(m uint32) string {
	t := map[uint32]byte{0o040000: 'd', 0o120000: 'l', 0o010000: 'p', 0o140000: 's', 0o020000: 'c', 0o060000: 'b'}[m&0o170000]
	if t == 0 {
		t = '-'
	}
	b := []byte(fs.FileMode(m & 0o777).String())
	b[0] = t
	if m&0o4000 != 0 {
		b[3] = "Ss"[m>>6&1]
	}
	if m&0o2000 != 0 {
		b[6] = "Ss"[m>>3&1]
	}
	if m&0o1000 != 0 {
		b[9] = "Tt"[m&1]
	}
	return string(b)
}
