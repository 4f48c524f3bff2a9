package daxfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daxwio/daxwio/internal/proctest"
)

// Model-based simulation (in the spirit of bbolt's simulation test and
// pebble's metamorphic tests): random operation sequences run against daxfs
// and against a plain in-memory model of a POSIX tree; every result and
// every error class must agree.

type mInode struct {
	kind   byte // 'f' file, 'd' dir, 'l' symlink
	data   []byte
	target string
	nlink  int
}

type model struct {
	names  map[string]int // path -> inode id; "/" is the root
	inodes map[int]*mInode
	next   int
}

func newModel(root string) *model {
	m := &model{names: map[string]int{root: 0}, inodes: map[int]*mInode{0: {kind: 'd', nlink: 2}}, next: 1}
	return m
}

func (m *model) children(dir string) []string {
	var out []string
	for p := range m.names {
		if p != dir && path.Dir(p) == dir {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) get(p string) (*mInode, syscall.Errno) {
	if e := m.parentOK(p); e != 0 {
		return nil, e
	}
	id, ok := m.names[p]
	if !ok {
		return nil, syscall.ENOENT
	}
	return m.inodes[id], 0
}

// parentOK resolves the directory holding p component by component. The
// simulator's symlink targets never exist, so a symlink in the middle of a
// path is ENOENT.
func (m *model) parentOK(p string) syscall.Errno {
	dir := path.Dir(p)
	if dir == p {
		return 0
	}
	var prefix string
	for _, c := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		if c == "" {
			continue
		}
		prefix += "/" + c
		id, ok := m.names[prefix]
		if !ok {
			return syscall.ENOENT
		}
		switch m.inodes[id].kind {
		case 'l':
			return syscall.ENOENT
		case 'f':
			return syscall.ENOTDIR
		}
	}
	return 0
}

func (m *model) add(p string, in *mInode) syscall.Errno {
	if e := m.parentOK(p); e != 0 {
		return e
	}
	if _, ok := m.names[p]; ok {
		return syscall.EEXIST
	}
	m.names[p] = m.next
	m.inodes[m.next] = in
	m.next++
	if in.kind == 'd' {
		m.inodes[m.names[path.Dir(p)]].nlink++
	}
	return 0
}

func (m *model) remove(p string, dir bool) syscall.Errno {
	in, e := m.get(p)
	if e != 0 {
		return e
	}
	if dir {
		if in.kind != 'd' {
			return syscall.ENOTDIR
		}
		if len(m.children(p)) > 0 {
			return syscall.ENOTEMPTY
		}
		m.inodes[m.names[path.Dir(p)]].nlink--
	} else if in.kind == 'd' {
		return syscall.EISDIR
	}
	id := m.names[p]
	delete(m.names, p)
	in.nlink--
	if in.nlink <= 0 || in.kind == 'd' {
		delete(m.inodes, id)
	}
	return 0
}

func (m *model) rename(from, to string, noReplace bool) syscall.Errno {
	src, e := m.get(from)
	if e != 0 {
		return e
	}
	if e := m.parentOK(to); e != 0 {
		return e
	}
	if from == to {
		return 0
	}
	if src.kind == 'd' && strings.HasPrefix(to, from+"/") {
		return syscall.EINVAL
	}
	if dstID, ok := m.names[to]; ok {
		if noReplace {
			return syscall.EEXIST
		}
		if dstID == m.names[from] {
			return 0
		}
		dst := m.inodes[dstID]
		switch {
		case src.kind == 'd' && dst.kind != 'd':
			return syscall.ENOTDIR
		case src.kind != 'd' && dst.kind == 'd':
			return syscall.EISDIR
		case dst.kind == 'd' && len(m.children(to)) > 0:
			return syscall.ENOTEMPTY
		}
		if e := m.remove(to, dst.kind == 'd'); e != 0 {
			return e
		}
	}
	id := m.names[from]
	if src.kind == 'd' {
		m.inodes[m.names[path.Dir(from)]].nlink--
		m.inodes[m.names[path.Dir(to)]].nlink++
		// Move the whole subtree.
		for p, cid := range m.names {
			if strings.HasPrefix(p, from+"/") {
				delete(m.names, p)
				m.names[to+p[len(from):]] = cid
			}
		}
	}
	delete(m.names, from)
	m.names[to] = id
	return 0
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return Errno(err)
}

// simulator drives random operations inside root against daxfs hosts and
// the model.
type simulator struct {
	t     testing.TB
	rng   *rand.Rand
	hosts []*FS
	root  string
	m     *model
	ops   map[string]int
}

func (s *simulator) pick() string {
	var ps []string
	for p := range s.m.names {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps[s.rng.IntN(len(ps))]
}

func (s *simulator) newPath() string {
	parent := s.pick()
	if s.rng.IntN(8) == 0 {
		parent = path.Join(s.pick(), "nodir")
	}
	return path.Join(parent, []string{"a", "b", "c", "d", "e", "long-name-" + strconv.Itoa(s.rng.IntN(3))}[s.rng.IntN(6)])
}

func (s *simulator) fail(op string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s %v", op, fmt.Sprint(args...))
}

func (s *simulator) step() {
	fs := s.hosts[s.rng.IntN(len(s.hosts))]
	p := fs.Paths(0, 0)
	check := func(op string, got error, want syscall.Errno) {
		s.t.Helper()
		s.ops[op]++
		if g := errnoOf(got); g != want {
			s.fail(op, fmt.Sprintf(": daxfs says %v (%v), model says %v", g, got, want))
		}
	}
	switch op := s.rng.IntN(14); op {
	case 0, 1:
		np := s.newPath()
		want := s.m.add(np, &mInode{kind: 'f', nlink: 1})
		f, err := p.OpenFile(np, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err == nil {
			f.Close()
		}
		check("create "+np, err, want)
	case 2:
		np := s.newPath()
		check("mkdir "+np, p.Mkdir(np, 0o755), s.m.add(np, &mInode{kind: 'd', nlink: 2}))
	case 3:
		np := s.newPath()
		tgt := "t" + strconv.Itoa(s.rng.IntN(100))
		check("symlink "+np, p.Symlink(tgt, np), s.m.add(np, &mInode{kind: 'l', target: tgt, nlink: 1}))
	case 4, 5:
		// write at a random offset
		fp := s.pick()
		in, e := s.m.get(fp)
		if e != 0 || in.kind != 'f' {
			return
		}
		off := s.rng.IntN(3 * BlockSize)
		data := make([]byte, s.rng.IntN(2*BlockSize)+1)
		for i := range data {
			data[i] = byte(s.rng.IntN(256))
		}
		f, err := p.OpenFile(fp, os.O_RDWR, 0)
		if err != nil {
			s.fail("open "+fp, err)
		}
		_, err = f.WriteAt(data, int64(off))
		f.Close()
		check("write "+fp, err, 0)
		if end := off + len(data); end > len(in.data) {
			in.data = append(in.data, make([]byte, end-len(in.data))...)
		}
		copy(in.data[off:], data)
	case 6:
		fp := s.pick()
		in, e := s.m.get(fp)
		if e != 0 || in.kind != 'f' {
			return
		}
		size := s.rng.IntN(3 * BlockSize)
		f, err := p.OpenFile(fp, os.O_RDWR, 0)
		if err != nil {
			s.fail("open "+fp, err)
		}
		err = f.Truncate(int64(size))
		f.Close()
		check("truncate "+fp, err, 0)
		if size < len(in.data) {
			in.data = in.data[:size]
		} else {
			in.data = append(in.data, make([]byte, size-len(in.data))...)
		}
	case 7:
		fp := s.pick()
		if fp == s.root {
			return
		}
		check("unlink "+fp, p.Remove(fp), s.m.remove(fp, s.isDir(fp)))
	case 8, 9:
		from, to := s.pick(), s.newPath()
		if s.rng.IntN(3) == 0 {
			to = s.pick()
		}
		if from == s.root || to == s.root {
			return
		}
		noRep := s.rng.IntN(3) == 0
		od, on, err1 := p.parentOf(from)
		nd, nn, err2 := p.parentOf(to)
		var err error
		switch {
		case err1 != nil:
			err = err1
		case err2 != nil:
			err = err2
		default:
			flags := 0
			if noRep {
				flags = RenameNoReplace
			}
			err = fs.Rename(od, on, nd, nn, flags)
		}
		check("rename "+from+" "+to, err, s.m.rename(from, to, noRep))
	case 10:
		from, to := s.pick(), s.newPath()
		in, e := s.m.get(from)
		if e != 0 || in.kind != 'f' {
			return
		}
		want := s.m.parentOK(to)
		if want == 0 {
			if _, ok := s.m.names[to]; ok {
				want = syscall.EEXIST
			} else {
				s.m.names[to] = s.m.names[from]
				in.nlink++
			}
		}
		check("link "+from+" "+to, p.Link(from, to), want)
	default:
		s.verify(s.pick(), p)
	}
}

func (s *simulator) isDir(p string) bool {
	in, e := s.m.get(p)
	return e == 0 && in.kind == 'd'
}

// verify compares one path (and, for a directory, its listing).
func (s *simulator) verify(fp string, p *Paths) {
	s.t.Helper()
	s.ops["verify"]++
	in, e := s.m.get(fp)
	a, err := p.Lstat(fp)
	if errnoOf(err) != e {
		s.fail("lstat "+fp, err, " model ", e)
	}
	if e != 0 {
		return
	}
	switch in.kind {
	case 'd':
		if !a.IsDir() || int(a.Nlink) != in.nlink {
			s.fail("dir "+fp, fmt.Sprintf("attr %+v, model nlink %d", a, in.nlink))
		}
		ents, err := p.ReadDir(fp)
		if err != nil {
			s.fail("readdir "+fp, err)
		}
		if got, want := fmt.Sprint(entNames(ents)), fmt.Sprint(s.m.children(fp)); got != want {
			s.fail("readdir "+fp, " daxfs ", got, " model ", want)
		}
	case 'f':
		if !a.IsRegular() || a.Size != uint64(len(in.data)) || int(a.Nlink) != in.nlink {
			s.fail("file "+fp, fmt.Sprintf("size %d nlink %d, model %d %d", a.Size, a.Nlink, len(in.data), in.nlink))
		}
		got, err := p.ReadFile(fp)
		if err != nil || !bytes.Equal(got, in.data) {
			s.fail("read "+fp, err, " content differs")
		}
	case 'l':
		tgt, err := p.Readlink(fp)
		if err != nil || tgt != in.target {
			s.fail("readlink "+fp, tgt, err)
		}
	}
}

func (s *simulator) verifyAll() {
	p := s.hosts[0].Paths(0, 0)
	var ps []string
	for fp := range s.m.names {
		ps = append(ps, fp)
	}
	sort.Strings(ps)
	for _, fp := range ps {
		s.verify(fp, p)
	}
}

func simSeed(t testing.TB) uint64 {
	if v := os.Getenv("DAXFS_SIM_SEED"); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		return n
	}
	return uint64(time.Now().UnixNano())
}

// Several hosts (each its own slot and epoch records) in one process take
// turns at random: what one host did, the next sees.
func TestSimulateHosts(t *testing.T) {
	seed := simSeed(t)
	t.Logf("seed %d (DAXFS_SIM_SEED=%d reproduces)", seed, seed)
	path := regionPath(t)
	mkfsAt(t, path, 64<<20, 2*time.Second)
	s := &simulator{t: t, rng: rand.New(rand.NewPCG(seed, 1)), root: "/", m: newModel("/"), ops: map[string]int{}}
	for range 3 {
		s.hosts = append(s.hosts, openFS(t, path))
	}
	for i := range 4000 {
		s.step()
		if i%1000 == 999 {
			s.verifyAll()
			checkClean(t, s.hosts[i%3])
		}
	}
	s.verifyAll()
	checkClean(t, s.hosts[0])
	kinds := map[string]int{}
	for op, n := range s.ops {
		kinds[strings.Fields(op)[0]] += n
	}
	t.Logf("ops by kind: %v; %d names at the end", kinds, len(s.m.names))
}

func init() {
	// model-worker runs a simulation in its own subtree /p<id> and checks
	// it against its model as it goes.
	proctest.Register("model-worker", func(args []string) error {
		fs, done, err := childFS(args[0])
		if err != nil {
			return err
		}
		defer done()
		id, ops := args[1], atoi(args[2])
		seed, _ := strconv.ParseUint(args[3], 10, 64)
		root := "/p" + id
		if err := fs.Paths(0, 0).Mkdir(root, 0o755); err != nil {
			return err
		}
		ft := &childT{}
		s := &simulator{t: ft, rng: rand.New(rand.NewPCG(seed, 2)), hosts: []*FS{fs}, root: root, m: newModel(root), ops: map[string]int{}}
		defer func() {
			if r := recover(); r != nil && r != errChildFailed {
				panic(r)
			}
		}()
		for range ops {
			s.step()
			if ft.failed != "" {
				return errors.New(ft.failed)
			}
		}
		s.verifyAll()
		if ft.failed != "" {
			return errors.New(ft.failed)
		}
		return nil
	})
}

// Processes run simulations side by side in one region.
func TestSimulateProcesses(t *testing.T) {
	seed := simSeed(t)
	t.Logf("seed %d", seed)
	path := regionPath(t)
	mkfsAt(t, path, 128<<20, 2*time.Second)
	var cs []*proctest.Child
	for i := range 4 {
		cs = append(cs, proctest.Start(t, "model-worker", path, strconv.Itoa(i), "2500", strconv.FormatUint(seed+uint64(i), 10)))
	}
	proctest.WaitAll(t, cs...)
	fs := openFS(t, path)
	ents, err := fs.ReadDir(RootIno)
	if err != nil || len(ents) != 4 {
		t.Fatalf("root lists %v %v", entNames(ents), err)
	}
	checkClean(t, fs)
}

var errChildFailed = errors.New("child failed")

// childT lets the simulator report failures inside a child process.
type childT struct {
	testing.TB
	failed string
}

func (c *childT) Helper() {}
func (c *childT) Fatalf(format string, a ...any) {
	c.failed = fmt.Sprintf(format, a...)
	panic(errChildFailed)
}
