package fuse

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	"github.com/daxwio/daxwio/internal/proctest"
)

// Test clients never run in a FUSE server's process: every mount is served
// by a child process ("serve"), and the test process (or another child)
// uses it through the kernel. A server touching its own mount can deadlock.

func TestMain(m *testing.M) {
	proctest.Register("serve", serveChild)
	proctest.Main(m)
}

// serveChild mounts region args[0] at args[1] with coherence args[2]
// (options after: allow-other) and serves until SIGTERM.
func serveChild(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("serve: want REGION MOUNTPOINT COHERENCE")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// If the test process dies without stopping us (a fatal error skips
	// its cleanups), unmount and exit instead of serving forever.
	orphan := make(chan struct{})
	go func(ppid int) {
		for os.Getppid() == ppid {
			time.Sleep(200 * time.Millisecond)
		}
		close(orphan)
	}(os.Getppid())
	r, err := cxl.Open(args[0], cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	fs, err := daxfs.Open(r, daxfs.Options{Name: "fuse-test"})
	if err != nil {
		return err
	}
	defer fs.Close()
	o := Options{Coherence: Coherence(args[2]), FsName: "daxfs:" + args[0]}
	for _, a := range args[3:] {
		if a == "allow-other" {
			o.AllowOther = true
		}
	}
	srv, err := Mount(fs, args[1], o)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	select {
	case <-sig:
		return srv.Unmount(true)
	case <-orphan:
		err := srv.Unmount(true)
		os.Remove(args[0])
		os.Remove(args[1])
		return err
	}
}

// requireFUSE skips unless the test can mount FUSE file systems itself.
func requireFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("FUSE mount tests need root (go-fuse DirectMount); run as root, e.g. sudo go test ./daxfs/fuse")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("FUSE mount tests need /dev/fuse: %v", err)
	}
}

// testLease is the host lease of test regions. A host whose heartbeat is
// older than its lease is fenced for good (every write then fails with
// EIO), and a loaded 2-core machine running -race can stall a process for
// over a second, so it is generous; the SIGKILL test uses a shorter one
// so that the dead host is reaped quickly.
const testLease = 10 * time.Second

// newRegion makes a formatted region file in /dev/shm, removed at cleanup.
func newRegion(t testing.TB, size int64) string { return newRegionLease(t, size, testLease) }

func newRegionLease(t testing.TB, size int64, lease time.Duration) string {
	t.Helper()
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "daxfs-fuse-test-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	r, err := cxl.Open(f.Name(), cxl.OpenOptions{Create: true, Size: size})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := daxfs.Mkfs(r, daxfs.MkfsOptions{MaxHosts: 16, Lease: lease}); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// mountDir makes an empty world-traversable directory for a mountpoint;
// at cleanup anything still mounted there is detached and it is removed.
func mountDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "daxfs-mnt-*")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() {
		for i := 0; i < 10 && isMounted(d); i++ {
			syscall.Unmount(d, syscall.MNT_DETACH)
		}
		os.Remove(d)
	})
	return d
}

func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// server is a mount served by a child process.
type server struct {
	t   testing.TB
	c   *proctest.Child
	mnt string
}

// serve mounts region at mnt in a new process and waits until it serves.
func serve(t testing.TB, region, mnt string, coh Coherence) *server {
	t.Helper()
	if coh == "" {
		coh = CoherenceZero
	}
	c := proctest.Start(t, "serve", region, mnt, string(coh))
	s := &server{t: t, c: c, mnt: mnt}
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.Output(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("mount at %s did not come up: %s", mnt, c.Output())
		}
		if strings.Contains(c.Output(), "proctest child") {
			t.Fatalf("mount at %s failed: %s", mnt, c.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// stop unmounts (SIGTERM) and waits for the server; idempotent.
func (s *server) stop() {
	if s.c == nil {
		return
	}
	c := s.c
	s.c = nil
	syscall.Kill(c.Pid(), syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.t.Errorf("server %s: %v", s.mnt, err)
		}
	case <-time.After(20 * time.Second):
		c.Kill()
		<-done
		s.t.Errorf("server %s did not stop on SIGTERM: %s", s.mnt, c.Output())
	}
}

// kill SIGKILLs the server, leaving a stale mountpoint.
func (s *server) kill() {
	if s.c == nil {
		return
	}
	s.c.Kill()
	s.c.Wait()
	s.c = nil
}
