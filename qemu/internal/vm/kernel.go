package vm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Under TCG a guest spends most of its boot decompressing its own kernel
// (Debian's bzImage is xz-compressed: 20-60 s of a loaded 2-core machine).
// QEMU can instead load an uncompressed vmlinux through its PVH entry
// point, so the testbed decompresses the kernel once on the host and caches
// the result.

var (
	xzMagic   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
)

// xenElfNotePhys32Entry is the ELF note (owner "Xen") that marks a PVH
// entry point; QEMU boots an ELF -kernel only if it has one.
const xenElfNotePhys32Entry = 18

// BootKernel returns the kernel to pass to -kernel: an uncompressed PVH
// vmlinux extracted from bzImage into cacheDir (made once, reused after),
// or bzImage itself when that is not possible, with a note saying why.
func BootKernel(bzImage, cacheDir string) (path, note string, err error) {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return "", "", fmt.Errorf("kernel: %w", err)
	}
	if isELF(data) {
		return bzImage, "already uncompressed", nil
	}
	sum := sha256.Sum256(data)
	out := filepath.Join(cacheDir, fmt.Sprintf("vmlinux-%s-%s", KernelVersion(bzImage), hex.EncodeToString(sum[:6])))
	if _, err := os.Stat(out); err == nil {
		return out, "cached PVH vmlinux", nil
	}
	vmlinux, err := decompress(data)
	if err != nil {
		return bzImage, "booting the compressed kernel (slow under TCG): " + err.Error(), nil
	}
	if ok, err := hasPVHNote(vmlinux); !ok {
		why := "no PVH entry note"
		if err != nil {
			why = err.Error()
		}
		return bzImage, "booting the compressed kernel (slow under TCG): " + why, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, ".vmlinux-*")
	if err != nil {
		return "", "", fmt.Errorf("kernel cache: %w", err)
	}
	if _, err := tmp.Write(vmlinux); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("kernel cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("kernel cache: %w", err)
	}
	return out, fmt.Sprintf("extracted PVH vmlinux (%d MiB) into the cache", len(vmlinux)>>20), nil
}

func isELF(b []byte) bool { return len(b) > 4 && string(b[:4]) == "\x7fELF" }

// xzReader decodes with the xz tool: the kernel's stream uses the x86 BCJ
// filter, which no pure-Go xz decoder implements.
func xzReader(r io.Reader) (io.Reader, error) {
	path, err := exec.LookPath("xz")
	if err != nil {
		return nil, fmt.Errorf("xz not found (Debian: apt-get install xz-utils)")
	}
	var out, errb bytes.Buffer
	c := exec.Command(path, "-dc", "--single-stream")
	c.Stdin, c.Stdout, c.Stderr = r, &out, &errb
	if err := c.Run(); err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("xz -d: %v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return &out, nil
}

// decompress finds the compressed vmlinux inside a bzImage (xz or gzip) and
// returns it. Several magic matches may be false; the first that decodes
// to an ELF file wins.
func decompress(b []byte) ([]byte, error) {
	last := fmt.Errorf("no xz or gzip payload that decodes to an ELF kernel")
	for _, m := range []struct {
		magic []byte
		open  func(io.Reader) (io.Reader, error)
	}{
		{xzMagic, xzReader},
		{gzipMagic, func(r io.Reader) (io.Reader, error) {
			z, err := gzip.NewReader(r)
			if err == nil {
				z.Multistream(false)
			}
			return z, err
		}},
	} {
		for off := 0; ; {
			i := bytes.Index(b[off:], m.magic)
			if i < 0 {
				break
			}
			off += i
			r, err := m.open(bytes.NewReader(b[off:]))
			if err == nil {
				var out bytes.Buffer
				if _, err = io.Copy(&out, r); err == nil && isELF(out.Bytes()) {
					return out.Bytes(), nil
				}
			}
			if err != nil {
				last = err
			}
			off++
		}
	}
	return nil, last
}

// hasPVHNote reports whether an ELF kernel carries the Xen PHYS32_ENTRY note.
func hasPVHNote(b []byte) (bool, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("vmlinux: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return false, fmt.Errorf("vmlinux note: %w", err)
		}
		for len(data) >= 12 {
			nameSz := binary.LittleEndian.Uint32(data[0:])
			descSz := binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			nameEnd := 12 + int((nameSz+3)&^3)
			end := nameEnd + int((descSz+3)&^3)
			if end > len(data) || nameEnd > len(data) {
				break
			}
			name := string(bytes.TrimRight(data[12:12+int(nameSz)], "\x00"))
			if name == "Xen" && typ == xenElfNotePhys32Entry {
				return true, nil
			}
			data = data[end:]
		}
	}
	return false, nil
}
