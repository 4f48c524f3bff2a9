package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func init() {
	var asJSON *bool
	register(&command{
		Name:  "inspect",
		Usage: "REGION",
		Summary: `Show a daxfs region's layout and state: superblock, extents, base image,
overlay fill and longest hash chain, pool use by size class, free lists and the
host table (alive or dead). Read-only; safe while hosts use the region.`,
		Setup: func(f *flag.FlagSet) {
			asJSON = f.Bool("json", false, "print JSON")
		},
		Run: func(f *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("want one REGION, got %d arguments", len(args))
			}
			return runInspect(args[0], *asJSON)
		},
	})
}

func runInspect(path string, asJSON bool) error {
	r, fsys, err := openRegion(path, false, "")
	if err != nil {
		return err
	}
	defer r.Close()
	defer fsys.Close()
	in := fsys.Inspect()
	if asJSON {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(in)
	}
	sb := in.Superblock
	fmt.Printf("region      %s (%d bytes)\n", path, r.Len())
	fmt.Printf("mode        %v\n", sb.Mode)
	fmt.Printf("uuid        %x  created %s\n", sb.UUID, time.Unix(0, int64(sb.Created)).UTC().Format(time.RFC3339))
	fmt.Printf("extents\n")
	for _, e := range in.Extents {
		fmt.Printf("  %-12s [%#x, %#x)  %d bytes\n", e.Name, e.Off, e.Off+e.Len, e.Len)
	}
	if b := in.Base; b != nil {
		fmt.Printf("base        %s: %d inodes, %d dirents (stride %d), %d data bytes\n", b.Mode, b.Inodes, b.Dirents, b.DirentStride, b.DataBytes)
		if b.Mode == "split" {
			open := "not found"
			if b.Backing {
				open = "open"
			}
			fmt.Printf("backing     %s (%d bytes, %s)\n", b.BackingPath, b.BackingSize, open)
		}
	}
	fmt.Printf("overlay     %d buckets, %d used (%.1f%%), longest chain %d; next inode %d; epoch %d\n",
		in.Buckets, in.BucketsUsed, 100*float64(in.BucketsUsed)/float64(in.Buckets), in.LongestChain, in.NextIno, in.Epoch)
	fmt.Printf("pool        %d chunks of 64 KiB, %d carved (%.1f%%); %d of %d bytes in use\n",
		in.Chunks, in.ChunksUsed, 100*float64(in.ChunksUsed)/float64(max(in.Chunks, 1)), in.Statfs.UsedBytes, in.Statfs.TotalBytes)
	for _, c := range in.Classes {
		fmt.Printf("  class %5d B: %5d chunks, %7d objects free\n", c.Size, c.Chunks, c.FreeObjects)
	}
	fmt.Printf("page cache  %s\n", in.PageCache)
	fmt.Printf("hosts       %d slots, lease %s\n", sb.MaxHosts, in.Lease)
	for _, h := range in.Hosts {
		state := "dead"
		if h.Alive {
			state = "alive"
		}
		fmt.Printf("  slot %3d  %-5s pid %-7d %-24q heartbeat %s\n", h.Slot, state, h.PID, h.Name, h.Heartbeat.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
