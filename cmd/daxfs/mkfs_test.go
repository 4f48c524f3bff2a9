package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
)

// The CLI tests run the built binary: exit codes, --help, one-line errors.

var daxfsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "daxfs-cli-")
	if err != nil {
		panic(err)
	}
	daxfsBin = filepath.Join(dir, "daxfs")
	out, err := exec.Command("go", "build", "-o", daxfsBin, ".").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build daxfs: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func shmPath(t *testing.T, name string) string {
	t.Helper()
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "daxfs-cli-"+strings.ReplaceAll(t.Name(), "/", "_")+"-"+name)
	os.Remove(p)
	t.Cleanup(func() { os.Remove(p) })
	return p
}

func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(daxfsBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func wantCode(t *testing.T, code, want int, stderr string, args ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("daxfs %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, want, stderr)
	}
	if want != 0 && want != 1 && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
		t.Fatalf("daxfs %s: error is not one line: %q", strings.Join(args, " "), stderr)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, c := range []string{"mkfs", "inspect", "fsck", "ls", "cat"} {
		out, errOut, code := runBin(t, c, "--help")
		if code != 0 || !strings.Contains(out+errOut, "usage: daxfs "+c) {
			t.Fatalf("%s --help: exit %d, %q %q", c, code, out, errOut)
		}
	}
	out, _, code := runBin(t, "help")
	for _, c := range []string{"mkfs", "inspect", "fsck", "ls", "cat"} {
		if code != 0 || !strings.Contains(out, c) {
			t.Fatalf("help does not list %s: %q", c, out)
		}
	}
}

func TestCLIRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "dir/sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "dir/file"), []byte("file bytes\n"), 0o640))
	must(os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789"), 100000), 0o644))
	must(os.Symlink("dir/file", filepath.Join(src, "link")))
	must(os.Link(filepath.Join(src, "dir/file"), filepath.Join(src, "hard")))

	for _, mode := range []string{"static", "split"} {
		t.Run(mode, func(t *testing.T) {
			region := shmPath(t, "region")
			args := []string{"mkfs", "--mode", mode, "--from", src, "--size", "8M", "--hosts", "4"}
			if mode == "split" {
				args = append(args, "--backing", shmPath(t, "backing"), "--size", "80M")
			}
			args = append(args, region)
			out, e, code := runBin(t, args...)
			wantCode(t, code, 0, e, args...)
			if !strings.Contains(out, mode) {
				t.Fatalf("mkfs output %q", out)
			}
			out, e, code = runBin(t, "cat", region, "/link")
			wantCode(t, code, 0, e, "cat")
			if out != "file bytes\n" {
				t.Fatalf("cat /link = %q", out)
			}
			out, e, code = runBin(t, "cat", region, "/big")
			wantCode(t, code, 0, e, "cat")
			if out != strings.Repeat("0123456789", 100000) {
				t.Fatalf("cat /big: %d bytes", len(out))
			}
			out, e, code = runBin(t, "ls", region)
			wantCode(t, code, 0, e, "ls")
			if out != "big\ndir\nhard\nlink\n" {
				t.Fatalf("ls = %q", out)
			}
			out, e, code = runBin(t, "ls", "-l", region, "/dir")
			wantCode(t, code, 0, e, "ls -l")
			if !strings.Contains(out, "-rw-r-----   2") || !strings.Contains(out, "drwxr-xr-x") {
				t.Fatalf("ls -l = %q", out)
			}
			out, e, code = runBin(t, "inspect", region)
			wantCode(t, code, 0, e, "inspect")
			if !strings.Contains(out, "mode        "+mode) || !strings.Contains(out, "stride 272") {
				t.Fatalf("inspect = %q", out)
			}
			out, e, code = runBin(t, "inspect", "--json", region)
			wantCode(t, code, 0, e, "inspect --json")
			if !strings.Contains(out, `"DirentStride": 272`) {
				t.Fatalf("inspect --json = %q", out)
			}
			_, e, code = runBin(t, "fsck", region)
			wantCode(t, code, 0, e, "fsck")
			_, e, code = runBin(t, "cat", region, "/missing")
			wantCode(t, code, 1, e, "cat missing")
			if !strings.Contains(e, "no such file") {
				t.Fatalf("cat missing: %q", e)
			}
		})
	}
}

func TestCLIErrors(t *testing.T) {
	region := shmPath(t, "region")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mkfs"}, 2, "want one REGION"},
		{[]string{"mkfs", "--mode", "bogus", region}, 2, "mode"},
		{[]string{"mkfs", "--mode", "split", region}, 2, "needs --from"},
		{[]string{"mkfs", "--size", "12X", region}, 2, "--size"},
		{[]string{"mkfs", "--mode", "static", "--from", "/nonexistent", region}, 1, "no such file"},
		{[]string{"ls", "/nonexistent-region"}, 1, "no such file"},
		{[]string{"cat", region}, 2, "want REGION PATH"},
		{[]string{"fsck", "/nonexistent-region"}, 8, "no such file"},
		{[]string{"bogus"}, 2, "unknown command"},
	} {
		_, e, code := runBin(t, tc.args...)
		wantCode(t, code, tc.code, e, tc.args...)
		if !strings.Contains(e, tc.msg) {
			t.Fatalf("daxfs %v: stderr %q, want %q", tc.args, e, tc.msg)
		}
	}
	// Empty mode, then refuse to reformat while a host is alive? The host
	// table is empty after mkfs, so a second mkfs works.
	_, e, code := runBin(t, "mkfs", "--size", "16M", region)
	wantCode(t, code, 0, e, "mkfs empty")
	_, e, code = runBin(t, "mkfs", "--size", "16M", region)
	wantCode(t, code, 0, e, "mkfs again")
	_, e, code = runBin(t, "fsck", "--repair", region)
	wantCode(t, code, 0, e, "fsck --repair clean")
}

func TestCLIInUseAndFsckCodes(t *testing.T) {
	region := shmPath(t, "region")
	_, e, code := runBin(t, "mkfs", "--size", "16M", "--hosts", "4", "--lease", "300ms", region)
	wantCode(t, code, 0, e, "mkfs")
	r, err := cxl.Open(region, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fsys, err := daxfs.Open(r, daxfs.Options{Name: "cli-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Paths(0, 0).WriteFile("/f", []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A live host: mkfs refuses, naming it.
	_, e, code = runBin(t, "mkfs", "--size", "16M", region)
	wantCode(t, code, 1, e, "mkfs in use")
	if !strings.Contains(e, "in use") || !strings.Contains(e, "cli-test") {
		t.Fatalf("mkfs in use: %q", e)
	}
	// The host dies: its carve tail is leaked until fsck gives it back.
	fsys.Abandon()
	time.Sleep(400 * time.Millisecond)
	out, e, code := runBin(t, "fsck", region)
	wantCode(t, code, 4, e, "fsck damaged")
	if !strings.Contains(out, "leaked") {
		t.Fatalf("fsck output %q", out)
	}
	out, e, code = runBin(t, "fsck", "--repair", region)
	wantCode(t, code, 1, e, "fsck --repair")
	if !strings.Contains(out, "fixed:") {
		t.Fatalf("fsck --repair output %q", out)
	}
	_, e, code = runBin(t, "fsck", region)
	wantCode(t, code, 0, e, "fsck after repair")
	out, e, code = runBin(t, "cat", region, "/f")
	wantCode(t, code, 0, e, "cat")
	if out != "data" {
		t.Fatalf("cat after repair = %q", out)
	}
	// Forced format over a region with a live host works.
	r2, _ := cxl.Open(region, cxl.OpenOptions{})
	defer r2.Close()
	f2, err := daxfs.Open(r2, daxfs.Options{Name: "cli-test-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Abandon()
	_, e, code = runBin(t, "mkfs", "--size", "16M", "--force", region)
	wantCode(t, code, 0, e, "mkfs --force")
}
