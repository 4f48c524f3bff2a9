package daxfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// BaseTree is a scanned directory tree, laid out as a base image. Build it
// with ScanTree, size the region with ImageSize, then pass it to Mkfs.
type BaseTree struct {
	Root string
	Mode Mode

	inodes  []planInode // inode i at index i-1
	dirents []planDirent
	dataLen uint64 // data area bytes
	backing uint64 // backing file bytes (split)

	// What the tree holds.
	Dirs, Files, Symlinks, Specials, HardLinks uint64
	FileBytes                                  uint64
}

type planInode struct {
	path                string
	mode, uid, gid      uint32
	nlink               uint32
	size, data          uint64
	mtime, atime, ctime int64
	parent, rdev        uint32
	target              string
	first               uint64 // dirs: first dirent
}

type planDirent struct {
	ino   uint32
	dtype uint8
	name  string
}

// Entries is the number of names in the tree (the root not counted).
func (t *BaseTree) Entries() int { return len(t.dirents) }

// Inodes is the number of base inodes.
func (t *BaseTree) Inodes() int { return len(t.inodes) }

// ImageSize is the size of the base extent the tree needs.
func (t *BaseTree) ImageSize() uint64 {
	_, _, _, total := baseLayout(uint64(len(t.inodes)), uint64(len(t.dirents)), t.dataLen)
	return total
}

// BackingSize is the size of the backing file (split mode).
func (t *BaseTree) BackingSize() uint64 { return t.backing }

// ScanTree walks the tree at root (without following symlinks) and lays it
// out: inode numbers in breadth-first order, each directory's names sorted,
// hard links (same device and inode inside the tree) sharing one inode.
func ScanTree(root string, mode Mode) (*BaseTree, error) {
	if mode != ModeStatic && mode != ModeSplit {
		return nil, fmt.Errorf("daxfs: scan %s: mode %v has no base image", root, mode)
	}
	t := &BaseTree{Root: root, Mode: mode}
	st, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("daxfs: scan: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("daxfs: scan %s: not a directory", root)
	}
	type key struct{ dev, ino uint64 }
	links := map[key]uint32{}
	add := func(path string, st os.FileInfo, parent uint32) (uint32, error) {
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, fmt.Errorf("daxfs: scan %s: no stat data", path)
		}
		mode := uint32(sys.Mode)
		if mode&modeType != modeDir && sys.Nlink > 1 {
			k := key{uint64(sys.Dev), sys.Ino}
			if ino, ok := links[k]; ok {
				t.inodes[ino-1].nlink++
				t.HardLinks++
				return ino, nil
			}
			defer func() { links[k] = uint32(len(t.inodes)) }()
		}
		if uint64(len(t.inodes)) >= maxBaseInodes {
			return 0, fmt.Errorf("daxfs: scan %s: more than %d inodes", path, uint64(maxBaseInodes))
		}
		in := planInode{path: path, mode: mode, uid: sys.Uid, gid: sys.Gid, nlink: 1,
			mtime: sys.Mtim.Nano(), atime: sys.Atim.Nano(), ctime: sys.Ctim.Nano()}
		switch mode & modeType {
		case modeDir:
			in.nlink = 2
			in.parent = parent
			t.Dirs++
		case modeReg:
			in.size = uint64(sys.Size)
			if in.size > MaxFileSize {
				return 0, fmt.Errorf("daxfs: scan %s: %d bytes is larger than the largest file", path, in.size)
			}
			t.Files++
			t.FileBytes += in.size
		case modeLnk:
			target, err := os.Readlink(path)
			if err != nil {
				return 0, fmt.Errorf("daxfs: scan: %w", err)
			}
			if len(target) == 0 || len(target) > maxSymlinkLen {
				return 0, fmt.Errorf("daxfs: scan %s: symlink target of %d bytes (1..%d)", path, len(target), maxSymlinkLen)
			}
			in.target = target
			in.size = uint64(len(target))
			t.Symlinks++
		case 0o010000, 0o140000, 0o020000, 0o060000:
			if mode&modeType == 0o020000 || mode&modeType == 0o060000 {
				in.rdev = uint32(unix.Mkdev(unix.Major(uint64(sys.Rdev)), unix.Minor(uint64(sys.Rdev))))
			}
			t.Specials++
		default:
			return 0, fmt.Errorf("daxfs: scan %s: unsupported file type %#o", path, mode&modeType)
		}
		t.inodes = append(t.inodes, in)
		return uint32(len(t.inodes)), nil
	}
	if _, err := add(root, st, RootIno); err != nil {
		return nil, err
	}
	// Breadth-first: directories are numbered, and their dirent ranges
	// claimed, in increasing inode order.
	for q := uint32(1); q <= uint32(len(t.inodes)); q++ {
		d := &t.inodes[q-1]
		if d.mode&modeType != modeDir {
			continue
		}
		dir := d.path
		d.first = uint64(len(t.dirents))
		ents, err := os.ReadDir(dir) // sorted by name, bytewise
		if err != nil {
			return nil, fmt.Errorf("daxfs: scan: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if err := checkName(name); err != nil {
				return nil, fmt.Errorf("daxfs: scan %s: %w", filepath.Join(dir, name), err)
			}
			p := filepath.Join(dir, name)
			cst, err := os.Lstat(p)
			if err != nil {
				return nil, fmt.Errorf("daxfs: scan: %w", err)
			}
			ino, err := add(p, cst, q)
			if err != nil {
				return nil, err
			}
			cm := t.inodes[ino-1].mode
			if cm&modeType == modeDir {
				t.inodes[q-1].nlink++
			}
			t.dirents = append(t.dirents, planDirent{ino: ino, dtype: uint8(dtypeOf(cm)), name: name})
		}
		t.inodes[q-1].size = uint64(len(t.dirents)) - t.inodes[q-1].first
	}
	// Data: in inode order, files 4096-aligned, symlink targets packed.
	var data, back uint64
	for i := range t.inodes {
		in := &t.inodes[i]
		switch in.mode & modeType {
		case modeDir:
			in.data = in.first
		case modeReg:
			if in.size == 0 {
				continue
			}
			if mode == ModeStatic {
				data = alignUp(data, BlockSize)
				in.data = data
				data += in.size
			} else {
				back = alignUp(back, BlockSize)
				in.data = back
				back += in.size
			}
		case modeLnk:
			in.data = data
			data += in.size
		}
	}
	t.dataLen, t.backing = data, back
	return t, nil
}

// Progress reports mkfs progress: entries and bytes written so far.
type Progress func(entries, bytes uint64)

// writeBase writes the image of t into img (the zeroed base extent) and,
// in split mode, the file data into backing.
//
// regionFile, when not nil, is the region's own file with img at imgOff in
// it: static file data is then copied file-to-file (copy_file_range), which
// skips the page faults of reading into the mapping.
func (t *BaseTree) writeBase(img []byte, regionFile *os.File, imgOff uint64, backing *os.File, backingPath string, created uint64, progress Progress) error {
	n, m := uint64(len(t.inodes)), uint64(len(t.dirents))
	inodeOff, direntOff, dataOff, total := baseLayout(n, m, t.dataLen)
	if uint64(len(img)) < total {
		return fmt.Errorf("daxfs: mkfs: base extent of %d bytes, the image needs %d", len(img), total)
	}
	if len(backingPath) >= basePathLen {
		backingPath = "" // too long to record: Open must be told the path
	}
	le := binary.LittleEndian
	for i := range t.inodes {
		in := &t.inodes[i]
		p := img[inodeOff+uint64(i)*baseInodeSize:]
		le.PutUint32(p[biMode:], in.mode)
		le.PutUint32(p[biNlink:], in.nlink)
		le.PutUint32(p[biUID:], in.uid)
		le.PutUint32(p[biGID:], in.gid)
		le.PutUint64(p[biSize:], in.size)
		le.PutUint64(p[biData:], in.data)
		le.PutUint64(p[biMtime:], uint64(in.mtime))
		le.PutUint64(p[biAtime:], uint64(in.atime))
		le.PutUint64(p[biCtime:], uint64(in.ctime))
		le.PutUint32(p[biParent:], in.parent)
		le.PutUint32(p[biRdev:], in.rdev)
		if in.mode&modeType == modeLnk {
			copy(img[dataOff+in.data:], in.target)
		}
	}
	for i, d := range t.dirents {
		p := img[direntOff+uint64(i)*DirentStride:]
		le.PutUint32(p, d.ino)
		p[4] = d.dtype
		le.PutUint16(p[6:], uint16(len(d.name)))
		copy(p[baseDirentBase:], d.name)
	}
	h := &baseHeader{Mode: t.Mode, Inodes: n, InodeOff: inodeOff, Dirents: m, DirentOff: direntOff,
		DataOff: dataOff, DataLen: t.dataLen, BackingSize: t.backing, Created: created, BackingPath: backingPath}
	h.MetaCRC = crc64.Update(crc64.Update(0, crcTab, img[inodeOff:inodeOff+n*baseInodeSize]), crcTab, img[direntOff:direntOff+m*DirentStride])
	if err := t.copyData(img[dataOff:], regionFile, imgOff+dataOff, backing, progress); err != nil {
		return err
	}
	copy(img, h.encode())
	return nil
}

// copyData copies every regular file's bytes, a few files at a time.
func (t *BaseTree) copyData(area []byte, regionFile *os.File, areaOff uint64, backing *os.File, progress Progress) error {
	var (
		next          atomic.Int64
		done, written atomic.Uint64
		wg            sync.WaitGroup
		errMu         sync.Mutex
		firstErr      error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	worker := func() {
		defer wg.Done()
		for {
			i := int(next.Add(1) - 1)
			if i >= len(t.inodes) {
				return
			}
			in := &t.inodes[i]
			if in.mode&modeType == modeReg && in.size > 0 {
				var err error
				switch {
				case t.Mode == ModeStatic && regionFile != nil:
					err = copyToBacking(in.path, regionFile, areaOff+in.data, in.size)
				case t.Mode == ModeStatic:
					err = readWhole(in.path, area[in.data:in.data+in.size])
				default:
					err = copyToBacking(in.path, backing, in.data, in.size)
				}
				if err != nil {
					fail(err)
					return
				}
				written.Add(in.size)
			}
			if d := done.Add(1); progress != nil && d%1024 == 0 {
				progress(d, written.Load())
			}
		}
	}
	for range 4 {
		wg.Add(1)
		go worker()
	}
	wg.Wait()
	if progress != nil {
		progress(done.Load(), written.Load())
	}
	return firstErr
}

func readWhole(path string, dst []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("daxfs: mkfs: %w", err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, dst); err != nil {
		return fmt.Errorf("daxfs: mkfs: read %s: %w (did it change during mkfs?)", path, err)
	}
	return nil
}

func copyToBacking(path string, dst *os.File, off, size uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("daxfs: mkfs: %w", err)
	}
	defer f.Close()
	srcOff, dstOff := int64(0), int64(off)
	left := int(size)
	for left > 0 {
		k, err := unix.CopyFileRange(int(f.Fd()), &srcOff, int(dst.Fd()), &dstOff, left, 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
				break
			}
			return fmt.Errorf("daxfs: mkfs: copy %s to the backing file: %w", path, err)
		}
		if k == 0 {
			return fmt.Errorf("daxfs: mkfs: %s shrank during mkfs", path)
		}
		left -= k
	}
	if left > 0 {
		buf := make([]byte, min(left, 1<<20))
		for left > 0 {
			k := min(left, len(buf))
			if _, err := f.ReadAt(buf[:k], srcOff); err != nil {
				return fmt.Errorf("daxfs: mkfs: read %s: %w", path, err)
			}
			if _, err := dst.WriteAt(buf[:k], dstOff); err != nil {
				return fmt.Errorf("daxfs: mkfs: write the backing file: %w", err)
			}
			srcOff += int64(k)
			dstOff += int64(k)
			left -= k
		}
	}
	return nil
}
