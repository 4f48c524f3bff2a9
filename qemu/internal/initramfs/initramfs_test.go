package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/daxwio/daxwio/qemu/internal/cpio"
)

const dep = `kernel/drivers/cxl/cxl_pci.ko: kernel/drivers/cxl/core/cxl_core.ko
kernel/drivers/cxl/cxl_pmem.ko: kernel/drivers/nvdimm/libnvdimm.ko kernel/drivers/cxl/core/cxl_core.ko
kernel/drivers/cxl/core/cxl_core.ko:
kernel/drivers/nvdimm/libnvdimm.ko:
kernel/drivers/dax/device_dax.ko:
kernel/fs/fuse/fuse.ko:
`

func TestResolveModules(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "modules.builtin"), []byte("kernel/drivers/cxl/cxl_port.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ResolveModules(root, []string{"cxl-pci", "cxl_port", "cxl_pmem", "device_dax"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/cxl/core/cxl_core.ko",
		"kernel/drivers/cxl/cxl_pci.ko",
		"kernel/drivers/nvdimm/libnvdimm.ko",
		"kernel/drivers/cxl/cxl_pmem.ko",
		"kernel/drivers/dax/device_dax.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order\n got %q\nwant %q", got, want)
	}
	if _, err := ResolveModules(root, []string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("unknown module: err = %v", err)
	}
	if _, err := ResolveModules(t.TempDir(), []string{"x"}); err == nil || !strings.Contains(err.Error(), "modules.dep") {
		t.Fatalf("missing modules.dep: err = %v", err)
	}
}

func TestModuleCycle(t *testing.T) {
	paths := map[string]string{"a": "a.ko", "b": "b.ko"}
	deps := map[string][]string{"a.ko": {"b.ko"}, "b.ko": {"a.ko"}}
	if _, err := orderModules([]string{"a"}, paths, deps, nil); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: err = %v", err)
	}
}

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd)
	libcxl.so.1 => /lib/x86_64-linux-gnu/libcxl.so.1 (0x00007f14)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f14)
	/lib64/ld-linux-x86-64.so.2 (0x00007f14)
`
	got, err := ParseLdd([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libcxl.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	if _, err := ParseLdd([]byte("\tlibfoo.so => not found\n")); err == nil {
		t.Fatal("missing library not reported")
	}
	if got, err := ParseLdd([]byte("\tnot a dynamic executable\n")); err != nil || len(got) != 0 {
		t.Fatalf("static: %q %v", got, err)
	}
}

// TestBuild builds a small image with a static Go binary as init and reads
// it back.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go binary")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "init")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "actor.wasm")
	if err := os.WriteFile(data, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := Build(&buf, Spec{Init: bin, Static: []File{{Host: bin, Guest: "/usr/local/bin/tool"}},
		Data: []File{{Host: data, Guest: "/usr/share/daxwio/actors/actor.wasm"}}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != int64(buf.Len()) {
		t.Errorf("manifest says %d bytes, wrote %d", m.Bytes, buf.Len())
	}
	es, err := cpio.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]uint32{}
	for _, e := range es {
		found[e.Name] = e.Mode
	}
	for _, p := range []string{"init", "usr/local/bin/tool", "usr/share/daxwio/actors/actor.wasm", "proc", "sys", "dev"} {
		if _, ok := found[p]; !ok {
			t.Errorf("%s missing from the image", p)
		}
	}
	if found["init"] != cpio.TypeRegular|0o755 {
		t.Errorf("init mode %o", found["init"])
	}
	if found["usr/share/daxwio/actors/actor.wasm"] != cpio.TypeRegular|0o644 {
		t.Errorf("data file mode %o", found["usr/share/daxwio/actors/actor.wasm"])
	}

	// A dynamically linked program is refused as init.
	if _, err := exec.LookPath("ls"); err == nil {
		ls, _ := exec.LookPath("ls")
		if _, err := Build(&bytes.Buffer{}, Spec{Init: ls}); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("dynamic init: err = %v", err)
		}
	}
}
