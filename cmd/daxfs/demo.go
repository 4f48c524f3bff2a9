package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
)

func init() {
	var region string
	var files int
	register(&command{
		Name:  "demo",
		Usage: "",
		Summary: "Format a region in /dev/shm and run two host processes on it at once.\n\n" +
			"Each host writes files into its own directory and reads the other's as they\n" +
			"appear (each file is written under a temporary name and renamed into place);\n" +
			"both race to create the same names in /claims (exactly one wins each).\n" +
			"It prints what each host saw and checks every byte.",
		Setup: func(fs *flag.FlagSet) {
			fs.StringVar(&region, "region", cxl.DefaultPath("demo"), "region file to create (removed at the end)")
			fs.IntVar(&files, "files", 200, "files each host writes and names each host races for")
		},
		Run: func(_ *flag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usageError("demo takes no arguments")
			}
			return runDemo(region, files)
		},
	})
	var id, peer string
	register(&command{
		Name:    "demo-host",
		Usage:   "",
		Summary: "One host of \"daxfs demo\" (started by it).",
		Setup: func(fs *flag.FlagSet) {
			fs.StringVar(&region, "region", "", "region")
			fs.StringVar(&id, "id", "", "this host's name")
			fs.StringVar(&peer, "peer", "", "the other host's name")
			fs.IntVar(&files, "files", 200, "files to write")
		},
		Run: func(_ *flag.FlagSet, _ []string) error { return demoHost(region, id, peer, files) },
	})
}

func runDemo(path string, files int) error {
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: 256 << 20})
	if err != nil {
		return err
	}
	defer os.Remove(path)
	if err := daxfs.Mkfs(r, daxfs.MkfsOptions{}); err != nil {
		r.Close()
		return err
	}
	r.Close()
	fmt.Printf("formatted %s (256 MiB); starting hosts A and B\n", path)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i, pair := range [][2]string{{"A", "B"}, {"B", "A"}} {
		cmd := exec.Command(self, "demo-host", "--region", path, "--id", pair[0], "--peer", pair[1], "--files", fmt.Sprint(files))
		cmd.Stdout = &outs[i]
		cmd.Stderr = &outs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cmd.Run()
		}()
	}
	wg.Wait()
	for i := range outs {
		fmt.Print(outs[i].String())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("a host failed: %w", err)
	}
	r, err = cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	fs, err := daxfs.Open(r, daxfs.Options{Name: "demo-check"})
	if err != nil {
		return err
	}
	defer fs.Close()
	rep := fs.Check()
	claims, _ := fs.Paths(0, 0).ReadDir("/claims")
	fmt.Printf("afterwards: %d inodes, %d names, /claims holds %d names (each won once), check: %d severe problems\n",
		rep.Inodes, rep.Dirents, len(claims), rep.Severe())
	if !rep.OK() || len(claims) != files {
		return fmt.Errorf("region inconsistent after the demo")
	}
	return nil
}

func demoContent(host string, i int) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("%s wrote file %d. ", host, i), 1+i%50))
}

func demoHost(path, id, peer string, files int) error {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	fs, err := daxfs.Open(r, daxfs.Options{Name: "demo-" + id})
	if err != nil {
		return err
	}
	defer fs.Close()
	p := fs.Paths(0, 0)
	for _, d := range []string{"/" + id, "/claims"} {
		if err := p.Mkdir(d, 0o755); err != nil && !errors.Is(err, daxfs.ErrExist) {
			return err
		}
	}
	start := time.Now()
	var won, lost, read int
	seen := map[string]bool{}
	for i := 0; i < files || read < files; i++ {
		if i < files {
			// Write under a temporary name, then rename into place: the
			// peer sees either no file or the whole file, never a partial one.
			tmp, name := fmt.Sprintf("/%s/.tmp-%03d", id, i), fmt.Sprintf("/%s/file-%03d", id, i)
			if err := p.WriteFile(tmp, demoContent(id, i), 0o644); err != nil {
				return err
			}
			if err := p.Rename(tmp, name); err != nil {
				return err
			}
			if _, err := fs.Create(claimsIno(fs), fmt.Sprintf("claim-%03d", i), 0o644, 0, 0); err == nil {
				won++
			} else if errors.Is(err, daxfs.ErrExist) {
				lost++
			} else {
				return err
			}
		}
		// Read whatever the peer has written so far.
		ents, err := p.ReadDir("/" + peer)
		if err != nil && !errors.Is(err, daxfs.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			if seen[e.Name] || strings.HasPrefix(e.Name, ".") {
				continue
			}
			var n int
			fmt.Sscanf(e.Name, "file-%d", &n)
			data, err := p.ReadFile("/" + peer + "/" + e.Name)
			if err != nil {
				return err
			}
			if !bytes.Equal(data, demoContent(peer, n)) {
				return fmt.Errorf("host %s: %s/%s has wrong bytes", id, peer, e.Name)
			}
			seen[e.Name] = true
			read++
		}
		if i >= files && read < files {
			if time.Since(start) > time.Minute {
				return fmt.Errorf("host %s: saw only %d of %s's files", id, read, peer)
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Printf("host %s (slot %d): wrote %d files, read all %d of %s's files with every byte right, won %d of %d claims (lost %d to %s) in %v\n",
		id, slotOf(fs), files, read, peer, won, files, lost, peer, time.Since(start).Round(time.Millisecond))
	return nil
}

func claimsIno(fs *daxfs.FS) daxfs.Ino {
	a, err := fs.Paths(0, 0).Stat("/claims")
	if err != nil {
		return 0
	}
	return a.Ino
}

func slotOf(fs *daxfs.FS) int {
	for _, h := range fs.HostTable().Hosts() {
		if h.PID == os.Getpid() {
			return h.Slot
		}
	}
	return -1
}
