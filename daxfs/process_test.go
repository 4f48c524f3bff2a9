package daxfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

// Multi-process tests: each child is a separate OS process (a host) mapping
// the same region file. The race detector cannot see across processes, so
// these tests check outcomes exactly instead.

func childFS(path string) (*FS, func(), error) {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return nil, nil, err
	}
	fs, err := Open(r, Options{Name: fmt.Sprintf("child-%d", os.Getpid())})
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return fs, func() { fs.Close(); r.Close() }, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func init() {
	// create-same: every goroutine creates the same names in shuffled
	// order and prints the ones it won.
	proctest.Register("create-same", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		goroutines, names := atoi(args[1]), atoi(args[2])
		var mu sync.Mutex
		var out strings.Builder
		var wg sync.WaitGroup
		errc := make(chan error, goroutines)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				order := rand.Perm(names)
				for _, i := range order {
					name := fmt.Sprintf("n%04d", i)
					_, err := fs.Create(RootIno, name, 0o644, 0, 0)
					switch {
					case err == nil:
						mu.Lock()
						fmt.Fprintf(&out, "won %s %d\n", name, g)
						mu.Unlock()
					case errors.Is(err, ErrExist):
						mu.Lock()
						fmt.Fprintf(&out, "lost %s\n", name)
						mu.Unlock()
					default:
						errc <- fmt.Errorf("create %s: %w", name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
		fmt.Print(out.String())
		return nil
	})

	// append: goroutines append fixed-size checksummed records to /log.
	proctest.Register("append", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		id, goroutines, n := atoi(args[1]), atoi(args[2]), atoi(args[3])
		f, err := fs.Paths(0, 0).OpenFile("/log", os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		var wg sync.WaitGroup
		errc := make(chan error, goroutines)
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := range n {
					if _, err := f.Append(makeRecord(id, g, seq)); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		return <-errc
	})

	// rename-storm: move files between /A and /B at random.
	proctest.Register("rename-storm", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		goroutines, files, iters := atoi(args[1]), atoi(args[2]), atoi(args[3])
		a, err := fs.Lookup(RootIno, "A")
		if err != nil {
			return err
		}
		b, err := fs.Lookup(RootIno, "B")
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		errc := make(chan error, goroutines)
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range iters {
					name := fmt.Sprintf("f%03d", rand.IntN(files))
					from, to := a.Ino, b.Ino
					if rand.IntN(2) == 0 {
						from, to = to, from
					}
					err := fs.Rename(from, name, to, name, RenameNoReplace)
					switch {
					case err == nil, errors.Is(err, ErrNotExist):
					case errors.Is(err, ErrExist):
						errc <- fmt.Errorf("%s exists in both directories", name)
						return
					default:
						errc <- fmt.Errorf("rename %s: %w", name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		return <-errc
	})
}

const recordSize = 128

// A record: magic u32, proc u16, goroutine u16, seq u32, payload, crc32c of
// everything before the last 4 bytes.
func makeRecord(proc, g, seq int) []byte {
	b := make([]byte, recordSize)
	binary.LittleEndian.PutUint32(b, 0x7ec0cd01)
	binary.LittleEndian.PutUint16(b[4:], uint16(proc))
	binary.LittleEndian.PutUint16(b[6:], uint16(g))
	binary.LittleEndian.PutUint32(b[8:], uint32(seq))
	for i := 12; i < recordSize-4; i++ {
		b[i] = byte(proc*31 + g*7 + seq + i)
	}
	binary.LittleEndian.PutUint32(b[recordSize-4:], crc32.Checksum(b[:recordSize-4], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

type recordKey struct{ proc, g, seq int }

// parseRecords reads a log of fixed-size records; a slot that is all zeros
// is a claimed range whose writer died before writing it.
func parseRecords(b []byte) (recs map[recordKey]int, zero, bad int) {
	recs = map[recordKey]int{}
	tab := crc32.MakeTable(crc32.Castagnoli)
	for off := 0; off+recordSize <= len(b); off += recordSize {
		r := b[off : off+recordSize]
		if allZero(r) {
			zero++
			continue
		}
		if binary.LittleEndian.Uint32(r) != 0x7ec0cd01 || binary.LittleEndian.Uint32(r[recordSize-4:]) != crc32.Checksum(r[:recordSize-4], tab) {
			bad++
			continue
		}
		recs[recordKey{int(binary.LittleEndian.Uint16(r[4:])), int(binary.LittleEndian.Uint16(r[6:])), int(binary.LittleEndian.Uint32(r[8:]))}]++
	}
	return recs, zero, bad
}

const procs = 4

func TestProcessesCreateSameNames(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 64<<20, 2*time.Second)
	const goroutines, names = 3, 1000
	var cs []*proctest.Child
	for range procs {
		cs = append(cs, proctest.Start(t, "create-same", path, strconv.Itoa(goroutines), strconv.Itoa(names)))
	}
	proctest.WaitAll(t, cs...)
	won := map[string]int{}
	lost := 0
	for _, c := range cs {
		sc := bufio.NewScanner(strings.NewReader(c.Output()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "won":
				won[f[1]]++
			case len(f) == 2 && f[0] == "lost":
				lost++
			}
		}
	}
	for i := range names {
		if n := won[fmt.Sprintf("n%04d", i)]; n != 1 {
			t.Errorf("name n%04d created %d times", i, n)
		}
	}
	if want := procs*goroutines*names - names; lost != want {
		t.Errorf("%d attempts got EEXIST, want %d", lost, want)
	}
	fs := openFS(t, path)
	ents, err := fs.ReadDir(RootIno)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != names {
		t.Fatalf("readdir lists %d names, want %d", len(ents), names)
	}
	checkClean(t, fs)
}

func TestProcessesAppend(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 64<<20, 2*time.Second)
	fs := openFS(t, path)
	must(t, fs.Paths(0, 0).WriteFile("/log", nil, 0o644))
	const goroutines, n = 3, 500
	var cs []*proctest.Child
	for i := range procs {
		cs = append(cs, proctest.Start(t, "append", path, strconv.Itoa(i), strconv.Itoa(goroutines), strconv.Itoa(n)))
	}
	proctest.WaitAll(t, cs...)
	data, err := fs.Paths(0, 0).ReadFile("/log")
	if err != nil {
		t.Fatal(err)
	}
	if want := procs * goroutines * n * recordSize; len(data) != want {
		t.Fatalf("log is %d bytes, want %d", len(data), want)
	}
	recs, zero, bad := parseRecords(data)
	if zero != 0 || bad != 0 {
		t.Fatalf("%d empty and %d torn records", zero, bad)
	}
	for p := range procs {
		for g := range goroutines {
			for s := range n {
				if c := recs[recordKey{p, g, s}]; c != 1 {
					t.Fatalf("record %d/%d/%d appears %d times", p, g, s, c)
				}
			}
		}
	}
	checkClean(t, fs)
}

func TestProcessesRenameStorm(t *testing.T) {
	path := regionPath(t)
	mkfsAt(t, path, 64<<20, 2*time.Second)
	fs := openFS(t, path)
	p := fs.Paths(0, 0)
	must(t, p.Mkdir("/A", 0o755))
	must(t, p.Mkdir("/B", 0o755))
	const files = 64
	for i := range files {
		must(t, p.WriteFile(fmt.Sprintf("/A/f%03d", i), []byte(fmt.Sprint("content ", i)), 0o644))
	}
	var cs []*proctest.Child
	for range procs {
		cs = append(cs, proctest.Start(t, "rename-storm", path, "3", strconv.Itoa(files), "400"))
	}
	proctest.WaitAll(t, cs...)
	checkRenameStorm(t, fs, files)
	checkClean(t, fs)
}

// checkRenameStorm: every file is in exactly one of /A and /B, intact.
func checkRenameStorm(t *testing.T, fs *FS, files int) {
	t.Helper()
	p := fs.Paths(0, 0)
	a, err := p.ReadDir("/A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.ReadDir("/B")
	if err != nil {
		t.Fatal(err)
	}
	where := map[string][]string{}
	for _, e := range a {
		where[e.Name] = append(where[e.Name], "A")
	}
	for _, e := range b {
		where[e.Name] = append(where[e.Name], "B")
	}
	for i := range files {
		name := fmt.Sprintf("f%03d", i)
		if len(where[name]) != 1 {
			t.Errorf("%s is in %v", name, where[name])
			continue
		}
		data, err := p.ReadFile("/" + where[name][0] + "/" + name)
		if err != nil || string(data) != fmt.Sprint("content ", i) {
			t.Errorf("%s: %q %v", name, data, err)
		}
	}
	if len(where) != files {
		t.Errorf("%d names in A and B, want %d", len(where), files)
	}
}
