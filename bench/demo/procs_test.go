package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const childEnv = "WIO_DEMO_TEST_CHILD"

func TestMain(m *testing.M) {
	if a := os.Getenv(childEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := Main(context.Background(), args, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testSpawn re-executes the test binary as a demo child process.
func testSpawn(args []string) *exec.Cmd {
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	dieWithParent(cmd)
	return cmd
}

// The multi-process demo over the actors runtime: a device process, a host
// process and writer processes sharing a region; the adaptive policy moves
// actors by drain-and-switch; every policy completes writes and the report
// has its numbers.
func TestProcsShortRun(t *testing.T) {
	if raceEnabled {
		t.Skip("multi-process run skipped under -race (wasm compilation in every process takes minutes); TestLocal* cover the executor under -race")
	}
	wasm := filepath.Join("..", "..", "actors", "examples", "bin")
	if !WasmAvailable(wasm) {
		t.Skipf("no wasm actors in %s (make actors builds them)", wasm)
	}
	c := DefaultConfig()
	c.Procs, c.WasmDir, c.Spawn = true, wasm, testSpawn
	c.Duration, c.Compression, c.BlockSize = 2*60e9, 60, 16<<10
	c.RegionPath = filepath.Join(t.TempDir(), "region")
	c.Policies = []string{Adaptive}
	c.StartTempC = 74 // hot from the start: the adaptive run offloads at once
	results, nominal, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || nominal <= 0 {
		t.Fatalf("%d results, nominal %g", len(results), nominal)
	}
	for _, r := range results {
		if r.Writes == 0 || r.ThroughputMiBs <= 0 || r.P99Ms <= 0 || len(r.Series) == 0 {
			t.Fatalf("%s: %+v", r.Policy, r)
		}
		if r.Policy == Adaptive && (r.Migrations == 0 || r.Moves[0].To != "host") {
			t.Fatalf("adaptive on a hot device did not offload: %+v", r.Moves)
		}
		t.Logf("%s: %d writes, %.1f MiB/s, p99 %.1f ms, %d migrations", r.Policy, r.Writes, r.ThroughputMiBs, r.P99Ms, r.Migrations)
	}
	if _, err := os.Stat(c.RegionPath); !os.IsNotExist(err) {
		t.Fatalf("region left behind: %v", err)
	}
}
