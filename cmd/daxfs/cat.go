package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func init() {
	var backing *string
	register(&command{
		Name:    "cat",
		Usage:   "REGION PATH",
		Summary: "Write a file of a daxfs region to stdout without mounting it.",
		Setup: func(f *flag.FlagSet) {
			backing = f.String("backing", "", "backing file of a split image (default: the path mkfs recorded)")
		},
		Run: func(f *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("want REGION PATH, got %d arguments", len(args))
			}
			return runCat(args[0], args[1], *backing)
		},
	})
}

func runCat(region, p, backing string) error {
	r, fsys, err := openRegion(region, false, backing)
	if err != nil {
		return err
	}
	defer r.Close()
	defer fsys.Close()
	a, err := fsys.Paths(0, 0).Stat(p)
	if err != nil {
		return err
	}
	if a.IsDir() {
		return fmt.Errorf("%s: is a directory", p)
	}
	f, err := fsys.Paths(0, 0).Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		if n > 0 {
			if _, werr := os.Stdout.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
}
