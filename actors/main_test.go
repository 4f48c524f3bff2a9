package actors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/daxwio/daxwio/actors/examples"
)

// testCacheDir is the wazero compilation cache shared by this test binary
// and the child processes it re-executes: Go-toolchain wasm takes seconds
// to compile on 2 cores, so it is compiled once, here.
var testCacheDir string

// testWasm holds every example and hostile module, read once.
var testWasm = map[string][]byte{}

func TestMain(m *testing.M) {
	if role := os.Getenv("WIO_TEST_ROLE"); role != "" {
		os.Exit(childMain(role))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	testCacheDir = filepath.Join(dir, "daxwio", "wazero-test")
	if err := os.MkdirAll(testCacheDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "actors test:", err)
		return 1
	}
	if err := loadTestWasm(); err != nil {
		fmt.Fprintln(os.Stderr, "actors test:", err)
		return 1
	}
	ctx := context.Background()
	rt, err := NewRuntime(ctx, RuntimeConfig{CacheDir: testCacheDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "actors test:", err)
		return 1
	}
	for _, e := range examples.All() {
		if _, err := rt.Compile(ctx, testWasm[e.Name]); err != nil {
			fmt.Fprintln(os.Stderr, "actors test: compiling", e.Name, err)
			return 1
		}
	}
	rt.Close(ctx)
	return m.Run()
}

func loadTestWasm() error {
	names := []string{}
	for _, e := range examples.All() {
		names = append(names, e.Name)
	}
	hs, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*.wat"))
	if len(hs) == 0 {
		return fmt.Errorf("no testdata/hostile/*.wat (run from the actors package directory)")
	}
	for _, h := range hs {
		names = append(names, "hostile/"+filepath.Base(h[:len(h)-len(".wat")]))
	}
	ws, _ := filepath.Glob(filepath.Join("testdata", "wat", "*.wat"))
	for _, w := range ws {
		names = append(names, "test/"+filepath.Base(w[:len(w)-len(".wat")]))
	}
	for _, n := range names {
		b, err := examples.Wasm(n)
		if err != nil {
			return err
		}
		testWasm[n] = b
	}
	return nil
}
