package daxfs

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

// Crash test: worker processes run a mixed workload and journal every call
// that returned success; the test SIGKILLs them at random moments and
// starts replacements, then checks that the region is consistent and that
// nothing a finished call reported is lost.

func init() {
	proctest.Register("crash-worker", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		id := atoi(args[1])
		jf, err := os.OpenFile(args[2], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer jf.Close()
		var jmu sync.Mutex
		journal := func(format string, a ...any) {
			jmu.Lock()
			defer jmu.Unlock()
			fmt.Fprintf(jf, format+"\n", a...) // one write(2) per line
		}
		p := fs.Paths(0, 0)
		a, _ := fs.Lookup(RootIno, "A")
		b, _ := fs.Lookup(RootIno, "B")
		log, err := p.OpenFile("/log", os.O_RDWR, 0)
		if errors.Is(err, cxl.ErrFenced) {
			os.Exit(4)
		}
		if err != nil {
			return err
		}
		for g := range 2 {
			go func() {
				var n, seq int
				var mine []string
				var dirs []string
				for {
					var err error
					switch op := rand.IntN(10); {
					case op < 3:
						name := fmt.Sprintf("w%d-%d-%d", id, g, n)
						n++
						if err = p.WriteFile("/c/"+name, []byte("data of "+name), 0o644); err == nil {
							journal("C %s", name)
							mine = append(mine, name)
						}
					case op < 4 && len(mine) > 0:
						name := mine[0]
						journal("r %s", name) // in flight: may finish unjournaled
						if err = p.Remove("/c/" + name); err == nil {
							journal("R %s", name)
							mine = mine[1:]
						}
					case op < 6:
						if _, err = log.Append(makeRecord(id, g, seq)); err == nil {
							journal("A %d %d", g, seq)
							seq++
						}
					case op < 8:
						name := fmt.Sprintf("f%03d", rand.IntN(32))
						from, to := a.Ino, b.Ino
						if rand.IntN(2) == 0 {
							from, to = to, from
						}
						err = fs.Rename(from, name, to, name, RenameNoReplace)
						if errors.Is(err, ErrNotExist) {
							err = nil
						}
					case op < 9:
						name := fmt.Sprintf("m%d-%d-%d", id, g, n)
						n++
						if err = p.Mkdir("/d/"+name, 0o755); err == nil {
							journal("M %s", name)
							dirs = append(dirs, name)
						}
					default:
						if len(dirs) > 0 {
							journal("d %s", dirs[0])
							if err = p.Remove("/d/" + dirs[0]); err == nil {
								journal("D %s", dirs[0])
								dirs = dirs[1:]
							}
						}
					}
					if errors.Is(err, cxl.ErrFenced) {
						os.Exit(4) // declared dead while starved: stop, as a fenced host must
					}
					if err != nil {
						// Exit at once: unmapping under the other goroutine would fault.
						fmt.Fprintf(os.Stderr, "worker %d goroutine %d: %v\n", id, g, err)
						os.Exit(3)
					}
				}
			}()
		}
		select {}
	})
}

// fenced reports a worker that stopped because it was declared dead.
func fenced(err error) bool { return err != nil && strings.Contains(err.Error(), "exit status 4") }

func crashTrials() int {
	if s := os.Getenv("DAXFS_CRASH_TRIALS"); s != "" {
		return atoi(s)
	}
	return 100
}

func TestCrashKill9(t *testing.T) {
	path := regionPath(t)
	// Short enough to reap dead workers during the run, long enough that a
	// starved (not dead) worker on a loaded 2-core machine keeps its slot.
	const lease = 3 * time.Second
	// Kills come faster than leases expire: room for every dead worker's
	// slot, and pool for what the workers write (soaks run more trials).
	trials := crashTrials()
	mkfsHosts(t, path, int64(256+max(0, trials-100))<<20, lease, 256)
	{
		fs := openFS(t, path)
		p := fs.Paths(0, 0)
		for _, d := range []string{"/c", "/d", "/A", "/B"} {
			must(t, p.Mkdir(d, 0o755))
		}
		for i := range 32 {
			must(t, p.WriteFile(fmt.Sprintf("/A/f%03d", i), []byte(fmt.Sprint("content ", i)), 0o644))
		}
		must(t, p.WriteFile("/log", nil, 0o644))
		fs.Close()
	}
	jdir := t.TempDir()
	type worker struct {
		c  *proctest.Child
		id int
	}
	nextID := 0
	start := func() worker {
		w := worker{id: nextID}
		nextID++
		w.c = proctest.Start(t, "crash-worker", path, strconv.Itoa(w.id), filepath.Join(jdir, fmt.Sprint(w.id)))
		return w
	}
	live := []worker{start(), start()}
	for k := range trials {
		time.Sleep(time.Duration(5+rand.IntN(40)) * time.Millisecond)
		i := rand.IntN(len(live))
		live[i].c.Kill()
		if err := live[i].c.Wait(); err == nil || !(strings.Contains(err.Error(), "killed") || fenced(err)) {
			t.Fatalf("trial %d: worker %d ended on its own: %v", k, live[i].id, err)
		}
		live[i] = start()
		// The survivor must still be running (not wedged into an error).
		for j, w := range live {
			if w.c.Exited() {
				if err := w.c.Wait(); !fenced(err) {
					t.Fatalf("trial %d: worker %d stopped: %v", k, w.id, err)
				}
				live[j] = start()
			}
		}
	}
	for _, w := range live {
		w.c.Kill()
		w.c.Wait()
	}
	time.Sleep(lease + 100*time.Millisecond)
	fs := openFS(t, path)
	fs.ReapDead()
	for range 3 {
		fs.reclaim()
	}
	rep := fs.Check()
	severe := 0
	for _, p := range rep.Problems {
		if p.Severe {
			severe++
			t.Error(p)
		}
		// A dead writer's bytes past EOF are trimmed by its reaper.
		if strings.Contains(p.What, "past EOF") || strings.Contains(p.What, "past its size") {
			t.Error(p)
		}
	}
	t.Logf("after %d kills: %d inodes, %d names, %d warnings, %d severe", trials, rep.Inodes, rep.Dirents, len(rep.Problems)-severe, severe)

	// Nothing a finished call reported is lost.
	p := fs.Paths(0, 0)
	logData, err := p.ReadFile("/log")
	if err != nil {
		t.Fatal(err)
	}
	recs, zero, bad := parseRecords(logData)
	t.Logf("log: %d records, %d claimed-but-unwritten, %d torn", len(recs), zero, bad)
	if bad+zero > 2*(trials+2) {
		t.Errorf("%d unwritten or torn records from %d kills", bad+zero, trials+2)
	}
	for id := range nextID {
		f, err := os.Open(filepath.Join(jdir, fmt.Sprint(id)))
		if err != nil {
			continue // killed before its first journal line
		}
		files, dirs := map[string]bool{}, map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 2 {
				continue // a line cut by the kill
			}
			switch fl[0] {
			case "C":
				files[fl[1]] = true
			case "R", "r":
				delete(files, fl[1])
			case "M":
				dirs[fl[1]] = true
			case "D", "d":
				delete(dirs, fl[1])
			case "A":
				if len(fl) == 3 && recs[recordKey{id, atoi(fl[1]), atoi(fl[2])}] != 1 {
					t.Errorf("worker %d: journaled record %s/%s is not in the log once", id, fl[1], fl[2])
				}
			}
		}
		f.Close()
		for name := range files {
			data, err := p.ReadFile("/c/" + name)
			if err != nil || string(data) != "data of "+name {
				t.Errorf("worker %d: journaled file %s: %q %v", id, name, data, err)
			}
		}
		for name := range dirs {
			if a, err := p.Stat("/d/" + name); err != nil || !a.IsDir() {
				t.Errorf("worker %d: journaled directory %s: %v", id, name, err)
			}
		}
	}
	checkRenameStorm(t, fs, 32)
}
