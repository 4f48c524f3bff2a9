// Package initramfs assembles the testbed's initramfs: busybox, the static
// daxwio init and test driver, optional extra static binaries, kernel modules
// (with their dependencies, in load order) and, for the CXL backend,
// dynamically linked tools together with their shared libraries.
package initramfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/daxwio/daxwio/qemu/internal/cpio"
)

// File maps a host file to a path inside the guest.
type File struct {
	Host  string
	Guest string
}

// Spec says what goes into the image.
type Spec struct {
	Init          string   // host path of the static init (becomes /init)
	Busybox       string   // host path of a static busybox; "" for none
	Static        []File   // further static binaries
	KernelVersion string   // e.g. "6.1.0-26-amd64"; needed when Modules is set
	ModulesDir    string   // default /lib/modules
	Modules       []string // module names, e.g. "cxl_pci"; dependencies are added
	Dynamic       []File   // dynamically linked programs; their libraries come along (found with ldd)
	Data          []File   // plain files (e.g. wasm modules), copied as they are, mode 0644
}

// ModuleList is where the guest finds the modules to load, one guest path a
// line, dependencies first.
const ModuleList = "/etc/daxwio/modules"

// Manifest tells what was written.
type Manifest struct {
	Files   []string // guest paths of regular files
	Modules []string // guest paths of modules, in load order
	Bytes   int64
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Build writes an uncompressed newc archive to w. (Uncompressed because
// decompressing under TCG costs more boot time than reading the bytes.)
func Build(w io.Writer, s Spec) (Manifest, error) {
	var m Manifest
	cw := &countWriter{w: w}
	a := cpio.NewWriter(cw)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc/daxwio", "proc", "sys", "dev", "tmp", "run", "mnt", "root", "lib", "lib64"} {
		if err := a.MkdirAll(d); err != nil {
			return m, err
		}
	}
	addFile := func(host, guest string, mode uint32) error {
		data, err := os.ReadFile(host)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		if err := a.MkdirAll(path.Dir(guest)); err != nil {
			return err
		}
		if err := a.WriteFile(guest, mode, data); err != nil {
			return fmt.Errorf("initramfs: %s -> %s: %w", host, guest, err)
		}
		m.Files = append(m.Files, guest)
		return nil
	}
	if s.Init == "" {
		return m, fmt.Errorf("initramfs: no init binary given")
	}
	if err := requireStatic(s.Init); err != nil {
		return m, err
	}
	if err := addFile(s.Init, "/init", 0o755); err != nil {
		return m, err
	}
	if s.Busybox != "" {
		if err := requireStatic(s.Busybox); err != nil {
			return m, fmt.Errorf("%w (install busybox-static)", err)
		}
		if err := addFile(s.Busybox, "/bin/busybox", 0o755); err != nil {
			return m, err
		}
		applets, err := busyboxApplets(s.Busybox)
		if err != nil {
			return m, err
		}
		for _, p := range applets {
			if a.Has(p) || p == "bin/busybox" {
				continue
			}
			if err := a.MkdirAll(path.Dir(p)); err != nil {
				return m, err
			}
			if err := a.Symlink("/bin/busybox", p); err != nil {
				return m, err
			}
		}
	}
	for _, f := range s.Static {
		if err := requireStatic(f.Host); err != nil {
			return m, fmt.Errorf("%w (build it with CGO_ENABLED=0)", err)
		}
		if err := addFile(f.Host, f.Guest, 0o755); err != nil {
			return m, err
		}
	}
	if len(s.Modules) > 0 {
		if s.KernelVersion == "" {
			return m, fmt.Errorf("initramfs: modules requested but no kernel version given")
		}
		dir := s.ModulesDir
		if dir == "" {
			dir = "/lib/modules"
		}
		root := filepath.Join(dir, s.KernelVersion)
		order, err := ResolveModules(root, s.Modules)
		if err != nil {
			return m, err
		}
		var list bytes.Buffer
		for _, rel := range order {
			guest := path.Join("/lib/modules", s.KernelVersion, rel)
			if err := addFile(filepath.Join(root, rel), guest, 0o644); err != nil {
				return m, err
			}
			m.Modules = append(m.Modules, guest)
			fmt.Fprintln(&list, guest)
		}
		if err := a.WriteFile(ModuleList, 0o644, list.Bytes()); err != nil {
			return m, err
		}
	}
	for _, f := range s.Dynamic {
		libs, err := SharedLibs(f.Host)
		if err != nil {
			return m, err
		}
		if err := addFile(f.Host, f.Guest, 0o755); err != nil {
			return m, err
		}
		for _, l := range libs {
			if a.Has(l) {
				continue
			}
			if err := addFile(l, l, 0o755); err != nil {
				return m, err
			}
		}
	}
	for _, f := range s.Data {
		if err := addFile(f.Host, f.Guest, 0o644); err != nil {
			return m, err
		}
	}
	if err := a.Close(); err != nil {
		return m, err
	}
	m.Bytes = cw.n
	return m, nil
}

// requireStatic fails unless the file is an ELF executable without an
// interpreter (a static binary runs in the initramfs without libraries).
func requireStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("initramfs: %s is not a readable ELF file: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("initramfs: %s is dynamically linked; the initramfs needs a static binary", p)
		}
	}
	return nil
}

func busyboxApplets(bb string) ([]string, error) {
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("initramfs: %s --list-full: %w", bb, err)
	}
	var ps []string
	for _, l := range strings.Fields(string(out)) {
		ps = append(ps, strings.TrimPrefix(l, "/"))
	}
	sort.Strings(ps)
	return ps, nil
}

// modName normalises a module name or file name: "cxl-pci.ko" -> "cxl_pci".
func modName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz", ".ko"} {
		s = strings.TrimSuffix(s, ext)
	}
	return strings.ReplaceAll(s, "-", "_")
}

// ParseModulesDep reads a modules.dep file: each line "path: dep dep...".
// It returns module name -> (path, deps' paths).
func ParseModulesDep(r io.Reader) (map[string]string, map[string][]string, error) {
	paths := map[string]string{}
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("modules.dep line %d: no ':' in %q", n, line)
		}
		paths[modName(p)] = p
		deps[p] = strings.Fields(rest)
	}
	return paths, deps, sc.Err()
}

// ResolveModules returns the module files (relative to root, the
// /lib/modules/VERSION directory) needed to load names, dependencies before
// the modules that use them. Names built into the kernel (modules.builtin)
// are skipped; unknown names are an error.
func ResolveModules(root string, names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(root, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("initramfs: kernel modules: %w (is the kernel package installed?)", err)
	}
	defer f.Close()
	paths, deps, err := ParseModulesDep(f)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %s: %w", f.Name(), err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(root, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}
	return orderModules(names, paths, deps, builtin)
}

func orderModules(names []string, paths map[string]string, deps map[string][]string, builtin map[string]bool) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string) error
	visit = func(p string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("initramfs: module dependency cycle at %s", p)
		case 2:
			return nil
		}
		state[p] = 1
		for _, d := range deps[p] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[p] = 2
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		n = modName(n)
		p, ok := paths[n]
		if !ok {
			if builtin[n] {
				continue
			}
			return nil, fmt.Errorf("initramfs: kernel module %q not found in modules.dep (nor built in)", n)
		}
		if err := visit(p); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// SharedLibs lists the absolute paths of the shared libraries (and the
// dynamic loader) that bin needs, as ldd reports them.
func SharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initramfs: ldd %s: %v: %s", bin, err, bytes.TrimSpace(out))
	}
	return ParseLdd(out)
}

// ParseLdd extracts library paths from ldd output. Virtual objects (vdso)
// are skipped; a library ldd could not find is an error.
func ParseLdd(out []byte) ([]string, error) {
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "statically linked") || strings.Contains(line, "not a dynamic executable") {
			continue
		}
		if name, rest, ok := strings.Cut(line, "=>"); ok {
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "not found") {
				return nil, fmt.Errorf("initramfs: shared library %s not found on this machine", strings.TrimSpace(name))
			}
			if f := strings.Fields(rest); len(f) > 0 && strings.HasPrefix(f[0], "/") {
				libs = append(libs, f[0])
			}
			continue
		}
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0]) // the dynamic loader
		}
	}
	return libs, nil
}
