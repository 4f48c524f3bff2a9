package daxfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Paths is the path-based API for Go programs, in the style of package os.
// Paths are absolute within the filesystem ("/a/b"); a relative path is
// taken from the root. Files are created with the Paths' uid and gid.
type Paths struct {
	fs       *FS
	uid, gid uint32
}

// Paths returns the path API acting as uid:gid.
func (fs *FS) Paths(uid, gid uint32) *Paths { return &Paths{fs: fs, uid: uid, gid: gid} }

const maxSymlinks = 40

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolve walks p from the root. With follow, a final symlink is followed.
func (p *Paths) resolve(path string, follow bool) (Attr, error) {
	return p.walk(RootIno, splitPath(path), follow, 0)
}

func (p *Paths) walk(dir Ino, comps []string, follow bool, links int) (Attr, error) {
	cur, err := p.fs.GetAttr(dir)
	if err != nil {
		return Attr{}, err
	}
	for i, c := range comps {
		if !cur.IsDir() {
			return Attr{}, fmt.Errorf("daxfs: %s: %w", strings.Join(comps[:i], "/"), ErrNotDir)
		}
		parent := cur.Ino
		next, err := p.fs.Lookup(parent, c)
		if err != nil {
			return Attr{}, err
		}
		if next.IsSymlink() && (follow || i < len(comps)-1) {
			if links >= maxSymlinks {
				return Attr{}, ErrLoop
			}
			target, err := p.fs.Readlink(next.Ino)
			if err != nil {
				return Attr{}, err
			}
			start := parent
			if strings.HasPrefix(target, "/") {
				start = RootIno
			}
			rest := append(splitPath(target), comps[i+1:]...)
			return p.walk(start, rest, follow, links+1)
		}
		cur = next
	}
	return cur, nil
}

// parentOf resolves the directory holding path and returns it with the
// final name.
func (p *Paths) parentOf(path string) (Ino, string, error) {
	comps := splitPath(path)
	if len(comps) == 0 {
		return 0, "", fmt.Errorf("daxfs: %q has no final name: %w", path, ErrInvalid)
	}
	dir, err := p.walk(RootIno, comps[:len(comps)-1], true, 0)
	if err != nil {
		return 0, "", err
	}
	if !dir.IsDir() {
		return 0, "", fmt.Errorf("daxfs: parent of %q: %w", path, ErrNotDir)
	}
	return dir.Ino, comps[len(comps)-1], nil
}

func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}

// Stat follows symlinks.
func (p *Paths) Stat(path string) (Attr, error) {
	a, err := p.resolve(path, true)
	return a, pathErr("stat", path, err)
}

// Lstat does not follow a final symlink.
func (p *Paths) Lstat(path string) (Attr, error) {
	a, err := p.resolve(path, false)
	return a, pathErr("lstat", path, err)
}

// Mkdir makes one directory.
func (p *Paths) Mkdir(path string, perm uint32) error {
	dir, name, err := p.parentOf(path)
	if err == nil {
		_, err = p.fs.Mkdir(dir, name, perm, p.uid, p.gid)
	}
	return pathErr("mkdir", path, err)
}

// MkdirAll makes a directory and any missing parents.
func (p *Paths) MkdirAll(path string, perm uint32) error {
	cur := Ino(RootIno)
	for _, c := range splitPath(path) {
		a, err := p.fs.Lookup(cur, c)
		if errors.Is(err, ErrNotExist) {
			a, err = p.fs.Mkdir(cur, c, perm, p.uid, p.gid)
			if errors.Is(err, ErrExist) {
				a, err = p.fs.Lookup(cur, c)
			}
		}
		if err != nil {
			return pathErr("mkdir", path, err)
		}
		if a.IsSymlink() {
			a, err = p.resolve(path[:strings.Index(path, c)+len(c)], true)
			if err != nil {
				return pathErr("mkdir", path, err)
			}
		}
		if !a.IsDir() {
			return pathErr("mkdir", path, ErrNotDir)
		}
		cur = a.Ino
	}
	return nil
}

// Remove removes a file or an empty directory.
func (p *Paths) Remove(path string) error {
	dir, name, err := p.parentOf(path)
	if err != nil {
		return pathErr("remove", path, err)
	}
	err = p.fs.Unlink(dir, name)
	if errors.Is(err, ErrIsDir) {
		err = p.fs.Rmdir(dir, name)
	}
	return pathErr("remove", path, err)
}

// Rename moves oldPath to newPath, replacing newPath if it exists.
func (p *Paths) Rename(oldPath, newPath string) error {
	od, on, err := p.parentOf(oldPath)
	if err != nil {
		return pathErr("rename", oldPath, err)
	}
	nd, nn, err := p.parentOf(newPath)
	if err != nil {
		return pathErr("rename", newPath, err)
	}
	return pathErr("rename", oldPath, p.fs.Rename(od, on, nd, nn, 0))
}

// Symlink makes newPath a symbolic link to target.
func (p *Paths) Symlink(target, newPath string) error {
	dir, name, err := p.parentOf(newPath)
	if err == nil {
		_, err = p.fs.Symlink(dir, name, target, p.uid, p.gid)
	}
	return pathErr("symlink", newPath, err)
}

// Link makes newPath a hard link to oldPath.
func (p *Paths) Link(oldPath, newPath string) error {
	a, err := p.resolve(oldPath, false)
	if err != nil {
		return pathErr("link", oldPath, err)
	}
	dir, name, err := p.parentOf(newPath)
	if err == nil {
		_, err = p.fs.Link(a.Ino, dir, name)
	}
	return pathErr("link", newPath, err)
}

// Readlink returns a symlink's target.
func (p *Paths) Readlink(path string) (string, error) {
	a, err := p.resolve(path, false)
	if err != nil {
		return "", pathErr("readlink", path, err)
	}
	t, err := p.fs.Readlink(a.Ino)
	return t, pathErr("readlink", path, err)
}

// ReadDir lists a directory.
func (p *Paths) ReadDir(path string) ([]DirEntry, error) {
	a, err := p.resolve(path, true)
	if err != nil {
		return nil, pathErr("readdir", path, err)
	}
	ents, err := p.fs.ReadDir(a.Ino)
	return ents, pathErr("readdir", path, err)
}

// OpenFile opens path with os.O_* flags, creating it with perm under
// O_CREATE (exclusively under O_EXCL).
func (p *Paths) OpenFile(path string, flag int, perm uint32) (*File, error) {
	a, err := p.resolve(path, true)
	if errors.Is(err, ErrNotExist) && flag&os.O_CREATE != 0 {
		var dir Ino
		var name string
		dir, name, err = p.parentOf(path)
		if err == nil {
			a, err = p.fs.Create(dir, name, perm, p.uid, p.gid)
			if errors.Is(err, ErrExist) && flag&os.O_EXCL == 0 {
				a, err = p.resolve(path, true)
			}
		}
	} else if err == nil && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		err = ErrExist
	}
	if err != nil {
		return nil, pathErr("open", path, err)
	}
	if a.IsDir() && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		return nil, pathErr("open", path, ErrIsDir)
	}
	h, err := p.fs.OpenIno(a.Ino, flag&^(os.O_CREATE|os.O_EXCL))
	if err != nil {
		return nil, pathErr("open", path, err)
	}
	f := &File{Handle: h, name: path, appendMode: flag&os.O_APPEND != 0}
	return f, nil
}

// Open opens path for reading.
func (p *Paths) Open(path string) (*File, error) { return p.OpenFile(path, os.O_RDONLY, 0) }

// Create creates or truncates path for writing.
func (p *Paths) Create(path string) (*File, error) {
	return p.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// ReadFile returns the whole content of path.
func (p *Paths) ReadFile(path string) ([]byte, error) {
	f, err := p.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, f.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, pathErr("read", path, err)
	}
	return buf[:n], nil
}

// WriteFile replaces the content of path.
func (p *Paths) WriteFile(path string, data []byte, perm uint32) error {
	f, err := p.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return pathErr("write", path, err)
	}
	return f.Close()
}

// File is an open file with a position, for io.Reader/Writer/Seeker use.
type File struct {
	*Handle
	name       string
	appendMode bool
	mu         sync.Mutex
	pos        int64
}

// Name is the path the file was opened by.
func (f *File) Name() string { return f.name }

// Read reads at the current position.
func (f *File) Read(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.ReadAt(b, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Write writes at the current position (at the end in append mode).
func (f *File) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.appendMode {
		at, err := f.Append(b)
		if err != nil {
			return 0, err
		}
		f.pos = at + int64(len(b))
		return len(b), nil
	}
	n, err := f.WriteAt(b, f.pos)
	f.pos += int64(n)
	return n, err
}

// Seek sets the position.
func (f *File) Seek(off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.pos
	case io.SeekEnd:
		off += int64(f.Size())
	default:
		return 0, syscall.EINVAL
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	f.pos = off
	return off, nil
}
