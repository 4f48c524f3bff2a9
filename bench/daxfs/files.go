package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
)

const (
	smallFiles    = 10_000
	smallFileSize = 4096
	filesRegion   = 256 << 20
)

// benchFiles creates, writes (4 KiB) and closes 10,000 files per rep in a
// fresh directory, through the daxfs path API and through package os on
// tmpfs. Each rep's files are read back and checked, then removed, outside
// the timing.
func benchFiles(rep *Report) error {
	defer cleanup()
	n := scaled(smallFiles)
	regionPath := tmpPath("files-region")
	osRoot := tmpPath("files-os")
	if err := os.Mkdir(osRoot, 0o755); err != nil {
		return err
	}
	if err := newRegion(regionPath, filesRegion); err != nil {
		return err
	}
	fs, closeFS, err := mount(regionPath, "bench-files")
	if err != nil {
		return err
	}
	defer closeFS()
	prefault(fs.Region())
	p := fs.Paths(0, 0)

	// Every file gets the same random page with its index in the first
	// word, so a file written to the wrong place or not at all shows.
	tmpl := make([]byte, smallFileSize)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(tmpl); i += 8 {
		binary.LittleEndian.PutUint64(tmpl[i:], rng.Uint64())
	}
	content := func(buf []byte, i int) []byte {
		copy(buf, tmpl)
		binary.LittleEndian.PutUint64(buf, uint64(i))
		return buf
	}
	seq := 0
	names := func(root string) (string, []string) {
		seq++
		dir := fmt.Sprintf("%s/d%d", root, seq)
		ns := make([]string, n)
		for i := range ns {
			ns[i] = fmt.Sprintf("%s/f%d", dir, i)
		}
		return dir, ns
	}
	check := func(i int, got []byte, err error) error {
		if err != nil {
			return err
		}
		want := content(make([]byte, smallFileSize), i)
		if !bytes.Equal(got, want) {
			return fmt.Errorf("file %d reads back wrong (%d bytes)", i, len(got))
		}
		return nil
	}
	buf := make([]byte, smallFileSize)

	type impl struct {
		mkdir  func(string) error
		write  func(path string, i int) error
		read   func(string) ([]byte, error)
		remove func(string) error
	}
	daxOpen := impl{
		mkdir: func(d string) error { return p.Mkdir(d, 0o755) },
		write: func(path string, i int) error {
			f, err := p.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(content(buf, i), 0); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
		read:   p.ReadFile,
		remove: p.Remove,
	}
	osOpen := impl{
		mkdir: func(d string) error { return os.Mkdir(d, 0o755) },
		write: func(path string, i int) error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.Write(content(buf, i)); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
		read:   os.ReadFile,
		remove: os.Remove,
	}
	daxWF := daxOpen
	daxWF.write = func(path string, i int) error { return p.WriteFile(path, content(buf, i), 0o644) }
	osWF := osOpen
	osWF.write = func(path string, i int) error { return os.WriteFile(path, content(buf, i), 0o644) }

	var vs []*variant
	results := map[string]*variant{}
	for _, v := range []struct {
		key, label, root, prof string
		im                     impl
	}{
		{"dax-open", "daxfs OpenFile+WriteAt+Close", "", "files-daxfs-openfile", daxOpen},
		{"os-open", "os OpenFile+Write+Close, tmpfs", osRoot, "files-os-openfile", osOpen},
		{"dax-wf", "daxfs Paths.WriteFile", "", "files-daxfs-writefile", daxWF},
		{"os-wf", "os.WriteFile, tmpfs", osRoot, "files-os-writefile", osWF},
	} {
		res := &Result{Group: "files", Name: v.label, Unit: "ops/s", OpsPerRep: n, Procs: 1, Threads: 1}
		vs = append(vs, &variant{res: res, prof: v.prof, run: func(int) (timing, error) {
			dir, ns := names(v.root)
			if err := v.im.mkdir(dir); err != nil {
				return timing{}, err
			}
			c := startClock()
			for i, path := range ns {
				if err := v.im.write(path, i); err != nil {
					return timing{}, err
				}
			}
			t := c.stop()
			for i, path := range ns {
				got, err := v.im.read(path)
				if err := check(i, got, err); err != nil {
					return timing{}, fmt.Errorf("%s: %w", path, err)
				}
			}
			for _, path := range ns {
				if err := v.im.remove(path); err != nil {
					return timing{}, err
				}
			}
			return t, v.im.remove(dir)
		}})
		results[v.key] = vs[len(vs)-1]
	}
	if err := measure(vs, *flagReps); err != nil {
		return err
	}
	addResults(rep, vs)
	st := fs.Statfs()
	results["dax-open"].res.Extra = map[string]float64{"region_used_bytes_after": float64(st.UsedBytes)}
	addRatio(rep, fmt.Sprintf("files: %d x create+write 4K+close, daxfs vs os", n), results["dax-open"], results["os-open"], 0)
	addRatio(rep, "files: WriteFile, daxfs vs os", results["dax-wf"], results["os-wf"], 0)
	return nil
}
