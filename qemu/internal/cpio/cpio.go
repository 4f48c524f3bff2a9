// Package cpio writes the "newc" (SVR4, no CRC) cpio archives that the Linux
// kernel unpacks as an initramfs.
//
// Only what an initramfs needs is supported: directories, regular files and
// symbolic links, each with a mode, written in order. Names are stored
// relative (no leading "/"); parent directories must be added before their
// children (Writer.Add* does not create them implicitly, but Writer.MkdirAll
// does).
package cpio

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// Mode bits as stored in a newc header.
const (
	TypeDir     = 0o040000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
	typeMask    = 0o170000
)

const (
	newcMagic  = "070701"
	trailer    = "TRAILER!!!"
	headerSize = 110
)

// Writer writes a newc archive. The zero value is not usable; use NewWriter.
type Writer struct {
	w      io.Writer
	off    int64
	ino    uint32
	seen   map[string]bool
	closed bool
}

// NewWriter returns a Writer that writes the archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, seen: map[string]bool{}}
}

// clean turns "/a/b/" or "a//b" into "a/b" and rejects names that escape the
// archive root.
func clean(name string) (string, error) {
	n := path.Clean("/" + name)
	if n == "/" {
		return "", fmt.Errorf("cpio: empty or root name %q", name)
	}
	n = strings.TrimPrefix(n, "/")
	if len(n) > 4095 {
		return "", fmt.Errorf("cpio: name too long (%d bytes): %.40q...", len(n), n)
	}
	return n, nil
}

// Has reports whether name was already written.
func (w *Writer) Has(name string) bool {
	n, err := clean(name)
	return err == nil && w.seen[n]
}

// Mkdir writes one directory entry.
func (w *Writer) Mkdir(name string, perm uint32) error {
	return w.add(name, TypeDir|(perm&0o7777), nil)
}

// MkdirAll writes entries for name and every missing parent, with mode 0755.
// The root ("/", "." or "") needs no entry and is accepted as a no-op.
func (w *Writer) MkdirAll(name string) error {
	if c := path.Clean("/" + name); c == "/" {
		return nil
	}
	n, err := clean(name)
	if err != nil {
		return err
	}
	parts := strings.Split(n, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if w.seen[p] {
			continue
		}
		if err := w.Mkdir(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes a regular file with the given permission bits and
// contents.
func (w *Writer) WriteFile(name string, perm uint32, data []byte) error {
	return w.add(name, TypeRegular|(perm&0o7777), data)
}

// Symlink writes a symbolic link name -> target.
func (w *Writer) Symlink(target, name string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %q has an empty target", name)
	}
	return w.add(name, TypeSymlink|0o777, []byte(target))
}

func (w *Writer) add(name string, mode uint32, data []byte) error {
	if w.closed {
		return fmt.Errorf("cpio: write of %q after Close", name)
	}
	n, err := clean(name)
	if err != nil {
		return err
	}
	if w.seen[n] {
		return fmt.Errorf("cpio: duplicate entry %q", n)
	}
	if dir := path.Dir(n); dir != "." && !w.seen[dir] {
		return fmt.Errorf("cpio: parent directory %q of %q not written yet", dir, n)
	}
	if err := w.entry(n, mode, w.ino, data); err != nil {
		return err
	}
	w.ino++
	w.seen[n] = true
	return nil
}

func (w *Writer) entry(name string, mode, ino uint32, data []byte) error {
	nlink := uint32(1)
	if mode&typeMask == TypeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic,
		ino,
		mode,
		0, // uid
		0, // gid
		nlink,
		0, // mtime: fixed, so archives are reproducible
		uint32(len(data)),
		0, 0, // dev major, minor
		0, 0, // rdev major, minor
		uint32(len(name)+1),
		0, // check
	)
	if err := w.write([]byte(hdr)); err != nil {
		return err
	}
	if err := w.write(append([]byte(name), 0)); err != nil {
		return err
	}
	if err := w.pad(); err != nil {
		return err
	}
	if err := w.write(data); err != nil {
		return err
	}
	return w.pad()
}

func (w *Writer) write(b []byte) error {
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: write at offset %d: %w", w.off, err)
	}
	return nil
}

func (w *Writer) pad() error {
	if r := w.off % 4; r != 0 {
		return w.write(make([]byte, 4-r))
	}
	return nil
}

// Close writes the trailer entry. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.entry(trailer, 0, 0, nil); err != nil {
		return err
	}
	w.closed = true
	return nil
}

// Entry is one record read back by Read.
type Entry struct {
	Name string
	Mode uint32
	Data []byte
}

// Read parses a newc archive (up to its trailer). It exists so that tests
// and the testbed's "inspect" command can check what was written.
func Read(r io.Reader) ([]Entry, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cpio: read: %w", err)
	}
	var out []Entry
	off := 0
	align := func(x int) int { return (x + 3) &^ 3 }
	for {
		if off+headerSize > len(b) {
			return nil, fmt.Errorf("cpio: truncated header at offset %d", off)
		}
		h := b[off : off+headerSize]
		if string(h[:6]) != newcMagic {
			return nil, fmt.Errorf("cpio: bad magic %q at offset %d", h[:6], off)
		}
		field := func(i int) (uint32, error) {
			var v uint32
			s := string(h[6+8*i : 6+8*i+8])
			if _, err := fmt.Sscanf(s, "%08X", &v); err != nil {
				return 0, fmt.Errorf("cpio: bad header field %d %q at offset %d", i, s, off)
			}
			return v, nil
		}
		mode, err := field(1)
		if err != nil {
			return nil, err
		}
		size, err := field(6)
		if err != nil {
			return nil, err
		}
		nsize, err := field(11)
		if err != nil {
			return nil, err
		}
		nameStart := off + headerSize
		if nsize == 0 || nameStart+int(nsize) > len(b) {
			return nil, fmt.Errorf("cpio: bad name size %d at offset %d", nsize, off)
		}
		name := string(b[nameStart : nameStart+int(nsize)-1])
		dataStart := align(nameStart + int(nsize))
		if dataStart+int(size) > len(b) {
			return nil, fmt.Errorf("cpio: entry %q: data (%d bytes) runs past the end", name, size)
		}
		if name == trailer {
			return out, nil
		}
		out = append(out, Entry{Name: name, Mode: mode, Data: b[dataStart : dataStart+int(size)]})
		off = align(dataStart + int(size))
	}
}
