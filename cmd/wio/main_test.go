package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/daxwio/daxwio/actors/examples"
)

func TestMain(m *testing.M) {
	if os.Getenv("WIO_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// wio runs the command in a child process (this test binary as main).
func wio(t *testing.T, region string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WIO_TEST_MAIN=1", "WIO_REGION="+region)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func daemon(t *testing.T, region, cache string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(args, "--cache", cache)...)
	cmd.Env = append(os.Environ(), "WIO_TEST_MAIN=1", "WIO_REGION="+region)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "serving") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nosuch"}, {"deploy"}, {"migrate", "x", "sideways"}, {"status", "extra"}, {"host", "--bogus"}} {
		_, errs, code := wio(t, "/nonexistent", "", args...)
		if code != 2 || strings.Count(strings.TrimSpace(errs), "\n") > 0 && args[0] != "host" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line", args, code, errs)
		}
	}
	for _, c := range []string{"host", "device", "deploy", "submit", "migrate", "status"} {
		out, errs, code := wio(t, "/nonexistent", "", c, "--help")
		if code != 0 || !strings.Contains(out+errs, "usage: wio "+c) {
			t.Errorf("%s --help: exit %d, %q", c, code, out+errs)
		}
	}
	_, errs, code := wio(t, "/nonexistent/region", "", "status")
	if code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("status on a missing region: exit %d, stderr %q; want exit 1 and one line", code, errs)
	}
}

func TestDaemonsEndToEnd(t *testing.T) {
	upper, err := examples.Wasm("upper")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	region, cache := filepath.Join(dir, "region"), filepath.Join(dir, "cache")
	mod := filepath.Join(dir, "upper.wasm")
	os.WriteFile(mod, upper, 0o644)
	bad, err := examples.Wasm("hostile/badimport")
	if err != nil {
		t.Fatal(err)
	}
	badPath := filepath.Join(dir, "bad.wasm")
	os.WriteFile(badPath, bad, 0o644)

	host := daemon(t, region, cache, "host", "--create", "--size", "16M", "--lease", "3s", "--slots", "8", "--max-request", "4096")
	daemon(t, region, cache, "device")

	if out, errs, code := wio(t, region, "", "deploy", "up", mod, "--cache", cache); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errs)
	}
	if _, errs, code := wio(t, region, "", "deploy", "evil", badPath, "--cache", cache); code != 1 || !strings.Contains(errs, "module rejected") {
		t.Fatalf("deploy of a bad module: exit %d, %q", code, errs)
	}
	call := func(want uint64) {
		t.Helper()
		out, errs, code := wio(t, region, "hello", "submit", "up")
		if code != 0 || len(out) != 13 || out[8:] != "HELLO" || out[0] != byte(want) {
			t.Fatalf("submit: exit %d, %q, %s", code, out, errs)
		}
	}
	call(1)
	if out, errs, code := wio(t, region, "", "migrate", "up", "device"); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errs)
	}
	call(2)
	out, _, code := wio(t, region, "", "status", "--json")
	var st struct {
		Actors []struct{ Name, Side string } `json:"actors"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Actors) != 1 || st.Actors[0].Side != "device" {
		t.Fatalf("status --json: %d %q", code, out)
	}
	// Migrate back, then stop the host daemon cleanly: it hands the actor
	// to the device.
	if _, errs, code := wio(t, region, "", "migrate", "up", "host"); code != 0 {
		t.Fatalf("migrate back: %s", errs)
	}
	host.Process.Signal(syscall.SIGTERM)
	host.Wait()
	call(3)
	if _, errs, code := wio(t, region, "", "migrate", "up", "host"); code != 1 || !strings.Contains(errs, "not running") {
		t.Fatalf("migrate to a stopped side: exit %d, %q", code, errs)
	}
}
