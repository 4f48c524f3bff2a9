// Package proctest runs parts of a test in separate processes: the test
// binary re-executes itself with an environment variable naming a child
// function. Shared-memory code needs it because the race detector cannot see
// across processes and a SIGKILL must hit a real process.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const envChild = "DAXWIO_PROCTEST_CHILD"

var (
	mu       sync.Mutex
	children = map[string]func(args []string) error{}
)

// Register names a function that a child process can run. Call it from an
// init function or before Main.
func Register(name string, fn func(args []string) error) {
	mu.Lock()
	defer mu.Unlock()
	children[name] = fn
}

// Main must be called from TestMain. In a child it runs the named function
// and exits (0 on success, 1 with the error on stderr); in the parent it
// runs the tests.
func Main(m *testing.M) {
	if name := os.Getenv(envChild); name != "" {
		mu.Lock()
		fn := children[name]
		mu.Unlock()
		if fn == nil {
			fmt.Fprintf(os.Stderr, "proctest: no child function %q\n", name)
			os.Exit(2)
		}
		args := strings.Split(os.Getenv(envChild+"_ARGS"), "\x1f")
		if len(args) == 1 && args[0] == "" {
			args = nil
		}
		if err := fn(args); err != nil {
			fmt.Fprintf(os.Stderr, "proctest child %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Child is a running child process.
type Child struct {
	Name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	waited bool
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs the registered function name in a new process with args.
func Start(t testing.TB, name string, args ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+name, envChild+"_ARGS="+strings.Join(args, "\x1f"))
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: start child %s: %v", name, err)
	}
	c := &Child{Name: name, cmd: cmd, out: out}
	t.Cleanup(func() {
		if !c.waited {
			_ = cmd.Process.Kill()
			_ = c.Wait()
		}
	})
	return c
}

// Wait waits for the child and returns an error that includes its output
// when it failed.
func (c *Child) Wait() error {
	if c.waited {
		return c.err
	}
	c.waited = true
	if err := c.cmd.Wait(); err != nil {
		c.err = fmt.Errorf("child %s: %v\n%s", c.Name, err, c.out.String())
	}
	return c.err
}

// Kill sends SIGKILL.
func (c *Child) Kill() { _ = c.cmd.Process.Signal(syscall.SIGKILL) }

// Output is what the child printed so far.
func (c *Child) Output() string { return c.out.String() }

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// WaitAll waits for every child and fails the test for each that failed.
func WaitAll(t testing.TB, cs ...*Child) {
	t.Helper()
	for _, c := range cs {
		if err := c.Wait(); err != nil {
			t.Error(err)
		}
	}
}

// Exited reports whether the child has already exited (without reaping it).
func (c *Child) Exited() bool {
	if c.waited {
		return true
	}
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(c.cmd.Process.Pid, &ws, syscall.WNOHANG|syscall.WNOWAIT, nil)
	_ = ws
	return err == nil && pid == c.cmd.Process.Pid
}
