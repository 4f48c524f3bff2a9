package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	readFileBytes = 256 << 20
	readRegion    = 320 << 20
	readOpsPerRep = 200_000
	pageBytes     = 4096
)

// touch reads one word of every 64-byte line of a 4 KiB page, so every
// line of what was read is really loaded, and folds them into a digest.
// Every variant calls it on the bytes it got, identically.
func touch(b []byte) uint64 {
	b = b[:pageBytes]
	var x uint64
	for i := 0; i < pageBytes; i += 64 {
		x = x*31 + binary.LittleEndian.Uint64(b[i:])
	}
	return x
}

// benchRead compares 4 KiB random reads of one 256 MiB file: daxfs
// zero-copy views, daxfs copying reads and pread of a tmpfs file holding
// the same bytes, at the same offsets, with 1 and 2 goroutines.
func benchRead(rep *Report) error {
	defer cleanup()
	nops := scaled(readOpsPerRep)
	pages := readFileBytes / pageBytes

	// The same content in both files; the digest of every page is what
	// a correct read must produce.
	fmt.Printf("read: writing %d MiB to a daxfs file and a tmpfs file\n", readFileBytes>>20)
	regionPath, tmpfsPath := tmpPath("read-region"), tmpPath("read-tmpfs")
	if err := newRegion(regionPath, readRegion); err != nil {
		return err
	}
	fs, closeFS, err := mount(regionPath, "bench-read")
	if err != nil {
		return err
	}
	defer closeFS()
	p := fs.Paths(0, 0)
	df, err := p.OpenFile("/data", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer df.Close()
	tf, err := os.OpenFile(tmpfsPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer tf.Close()
	digest := make([]uint64, pages)
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for off := 0; off < readFileBytes; off += len(chunk) {
		for i := 0; i < len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
		}
		for i := 0; i < len(chunk); i += pageBytes {
			digest[(off+i)/pageBytes] = touch(chunk[i:])
		}
		if _, err := df.WriteAt(chunk, int64(off)); err != nil {
			return err
		}
		if _, err := tf.WriteAt(chunk, int64(off)); err != nil {
			return err
		}
	}
	prefault(fs.Region())

	// One random page sequence for every variant; goroutine g of n reads
	// the g-th n-th of it.
	idx := make([]uint32, nops)
	for i := range idx {
		idx[i] = uint32(rng.IntN(pages))
	}
	var want uint64
	for _, i := range idx {
		want += digest[i]
	}

	fd := int(tf.Fd())
	h := df.Handle
	// Where every page of the file lies in the region, for the two
	// diagnostic variants below.
	mem := make([][]byte, pages)
	for i := range mem {
		v, err := h.View(int64(i) * pageBytes)
		if err != nil {
			return err
		}
		mem[i] = v.Bytes
		v.Release()
		if len(mem[i]) != pageBytes || touch(mem[i]) != digest[i] {
			return fmt.Errorf("page %d of the daxfs file does not hold what was written", i)
		}
	}
	type reader func(buf []byte, page uint32) (uint64, error)
	readers := []struct {
		name string
		fn   reader
		diag bool // diagnostic: 1 goroutine only, no ratio with a goal
	}{
		{"zero-copy View", func(_ []byte, pg uint32) (uint64, error) {
			v, err := h.View(int64(pg) * pageBytes)
			if err != nil {
				return 0, err
			}
			if len(v.Bytes) != pageBytes {
				v.Release()
				return 0, fmt.Errorf("view at page %d: %d bytes", pg, v.Len())
			}
			d := touch(v.Bytes)
			v.Release()
			return d, nil
		}, false},
		{"copy ReadAt", func(buf []byte, pg uint32) (uint64, error) {
			if n, err := h.ReadAt(buf, int64(pg)*pageBytes); n != pageBytes {
				return 0, fmt.Errorf("ReadAt page %d: %d bytes, %v", pg, n, err)
			}
			return touch(buf), nil
		}, false},
		{"pread tmpfs", func(buf []byte, pg uint32) (uint64, error) {
			if n, err := unix.Pread(fd, buf, int64(pg)*pageBytes); n != pageBytes {
				return 0, fmt.Errorf("pread page %d: %d bytes, %v", pg, n, err)
			}
			return touch(buf), nil
		}, false},
		{"os.File.ReadAt tmpfs", func(buf []byte, pg uint32) (uint64, error) {
			if n, err := tf.ReadAt(buf, int64(pg)*pageBytes); n != pageBytes {
				return 0, fmt.Errorf("ReadAt page %d: %d bytes, %v", pg, n, err)
			}
			return touch(buf), nil
		}, false},
		// The floor of any zero-copy read on this machine: the same touch
		// of the same region pages, with no library call at all.
		{"floor: touch region, no library", func(_ []byte, pg uint32) (uint64, error) {
			return touch(mem[pg]), nil
		}, true},
		// The library's own cost: View+Release, checked to alias the right
		// page, without touching its bytes.
		{"diag: View+Release, no touch", func(_ []byte, pg uint32) (uint64, error) {
			v, err := h.View(int64(pg) * pageBytes)
			if err != nil {
				return 0, err
			}
			if len(v.Bytes) != pageBytes || &v.Bytes[0] != &mem[pg][0] {
				v.Release()
				return 0, fmt.Errorf("view at page %d does not alias the page", pg)
			}
			v.Release()
			return digest[pg], nil
		}, true},
	}

	var vs []*variant
	byName := map[string]*variant{}
	for _, threads := range []int{1, 2} {
		for _, rd := range readers {
			if rd.diag && threads > 1 {
				continue
			}
			res := &Result{Group: "read", Name: fmt.Sprintf("%s, %d goroutine", rd.name, threads),
				Unit: "ns/op", OpsPerRep: nops, Procs: 1, Threads: threads}
			if threads > 1 {
				res.Name += "s"
			}
			fn := rd.fn
			bufs := make([][]byte, threads)
			for g := range bufs {
				bufs[g] = make([]byte, pageBytes)
			}
			vs = append(vs, &variant{res: res, prof: fmt.Sprintf("read-%s-%dg", shortName(rd.name), threads),
				run: func(int) (timing, error) { return runReaders(threads, idx, bufs, fn, want) }})
			byName[fmt.Sprint(rd.name, threads)] = vs[len(vs)-1]
		}
	}
	if err := measure(vs, *flagReps); err != nil {
		return err
	}
	addResults(rep, vs)
	for _, th := range []int{1, 2} {
		suf := fmt.Sprintf(" (%d goroutine", th)
		if th > 1 {
			suf += "s"
		}
		suf += ")"
		pread := byName[fmt.Sprint("pread tmpfs", th)]
		addRatio(rep, "read: zero-copy View vs pread"+suf, byName[fmt.Sprint("zero-copy View", th)], pread, 5)
		addRatio(rep, "read: copy ReadAt vs pread"+suf, byName[fmt.Sprint("copy ReadAt", th)], pread, 1.3)
	}
	addRatio(rep, "read: floor (touch region, no library) vs pread (1 goroutine)", byName["floor: touch region, no library1"], byName["pread tmpfs1"], 0)
	for _, v := range []string{"zero-copy View", "copy ReadAt", "pread tmpfs"} {
		addRatio(rep, "read: "+v+", 2 goroutines vs 1", byName[fmt.Sprint(v, 2)], byName[fmt.Sprint(v, 1)], 0)
	}
	return nil
}

func shortName(s string) string {
	switch s {
	case "zero-copy View":
		return "view"
	case "copy ReadAt":
		return "readat"
	case "pread tmpfs":
		return "pread"
	case "floor: touch region, no library":
		return "floor"
	case "diag: View+Release, no touch":
		return "viewonly"
	}
	return "osreadat"
}

// runReaders reads the pages of idx with n goroutines, each its own share
// of the sequence, and checks the sum of the digests.
func runReaders(n int, idx []uint32, bufs [][]byte, fn func([]byte, uint32) (uint64, error), want uint64) (timing, error) {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		sums  = make([]uint64, n)
		errs  = make([]error, n)
	)
	for g := range n {
		part := idx[g*len(idx)/n : (g+1)*len(idx)/n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bufs[g]
			var s uint64
			<-start
			for _, pg := range part {
				d, err := fn(buf, pg)
				if err != nil {
					errs[g] = err
					return
				}
				s += d
			}
			sums[g] = s
		}()
	}
	time.Sleep(time.Millisecond) // let the goroutines park on start
	c := startClock()
	close(start)
	wg.Wait()
	t := c.stop()
	t.cpu /= time.Duration(n) // per goroutine: the time with a core each
	var got uint64
	for g := range n {
		if errs[g] != nil {
			return timing{}, errs[g]
		}
		got += sums[g]
	}
	if got != want {
		return timing{}, fmt.Errorf("checksum of the bytes read is %#x, want %#x", got, want)
	}
	return t, nil
}
