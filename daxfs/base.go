package daxfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"sort"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs/pcache"
)

// The base image: a flat, pointer-free image of a directory tree that mkfs
// writes once into its own region extent ("daxfs.base"). Nothing in it is
// ever written again; the overlay (the rest of daxfs) shadows it. Because
// every table has a fixed stride and every reference is an index or an
// offset checked against a bound, validateBase checks a whole image in one
// linear pass (docs/FORMAT.md, "Base image").
//
//	base extent start X
//	X+0      header        4096 B, CRC-64 at 4088
//	X+I      inode table   N x 64 B, inode i at I+(i-1)*64
//	X+D      dirent table  M x 272 B (the one dirent stride)
//	X+A      data area     static: file bytes (each file 4096-aligned);
//	                       both modes: symlink targets (packed)
//
// Header (little-endian):
//
//	0    8  magic "DAXBASE1"
//	8    4  version (1)
//	12   4  mode: 1 static, 2 split
//	16   8  inode count N (>= 1; inode 1 is the root directory)
//	24   8  inode table offset (relative to X, 4096)
//	32   8  dirent count M
//	40   8  dirent table offset (relative, 4096-aligned, after the inodes)
//	48   8  data area offset (relative, 4096-aligned, after the dirents)
//	56   8  data area length (data area ends inside the extent)
//	64   8  backing file size (split; 0 for static)
//	72   8  CRC-64/ECMA of the inode and dirent tables
//	80   8  created, unix ns
//	88   40 zero
//	128  256 backing file path as given to mkfs (split), NUL padded; a hint
//	384  .. zero
//	4088 8  CRC-64/ECMA of bytes [0, 4088)
//
// Inode (64 B):
//
//	0  mode  u32   S_IF* | permission bits
//	4  nlink u32   dirs: 2 + subdirectories; others: names in the image
//	8  uid   u32
//	12 gid   u32
//	16 size  u64   file: bytes; symlink: target length (1..4095); dir: entries
//	24 data  u64   file: offset in the data area (static) or backing file
//	               (split), 4096-aligned; symlink: offset in the data area;
//	               dir: index of its first dirent; others 0
//	32 mtime i64   unix ns
//	40 atime i64
//	48 ctime i64
//	56 parent u32  dirs: the directory naming it (root: 1); others 0
//	60 rdev  u32   device number of character/block devices
//
// Dirent (272 B):
//
//	0  ino      u32  1..N
//	4  dtype    u8   DT_* of the inode's mode
//	5  zero     u8
//	6  name_len u16  1..255
//	8  name     [264]byte, bytes past name_len zero
//
// A directory's dirents are contiguous and sorted by name (bytewise,
// strictly ascending), so lookups binary-search. Directories own their
// dirent ranges, and files their data ranges, in inode order: ranges never
// overlap because each must start at or after the end of the previous one.
const (
	BaseExtentName = "daxfs.base"

	baseHdrSize    = 4096
	baseVersion    = 1
	baseInodeSize  = 64
	DirentStride   = 272
	baseNameCap    = DirentStride - 8
	baseHdrCRC     = baseHdrSize - 8
	basePathOff    = 128
	basePathLen    = 256
	maxSymlinkLen  = BlockSize - 1
	maxBaseInodes  = 1<<32 - 1
	baseDirentBase = 8
)

var baseMagic = [8]byte{'D', 'A', 'X', 'B', 'A', 'S', 'E', '1'}

// Mode is the kind of a daxfs: where the tree lives.
type Mode uint32

const (
	// ModeEmpty has no base image: everything lives in the overlay.
	ModeEmpty Mode = 0
	// ModeStatic is a read-only base image with file data inline.
	ModeStatic Mode = 1
	// ModeSplit is a base image whose file data lives in a backing file,
	// with a writable overlay on top.
	ModeSplit Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeEmpty:
		return "empty"
	case ModeStatic:
		return "static"
	case ModeSplit:
		return "split"
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// ParseMode parses "empty", "static" or "split".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "empty", "":
		return ModeEmpty, nil
	case "static":
		return ModeStatic, nil
	case "split":
		return ModeSplit, nil
	}
	return 0, fmt.Errorf("daxfs: mode %q: want empty, static or split", s)
}

// baseInode field offsets.
const (
	biMode   = 0
	biNlink  = 4
	biUID    = 8
	biGID    = 12
	biSize   = 16
	biData   = 24
	biMtime  = 32
	biAtime  = 40
	biCtime  = 48
	biParent = 56
	biRdev   = 60
)

// baseHeader is a decoded base image header.
type baseHeader struct {
	Mode        Mode
	Inodes      uint64
	InodeOff    uint64
	Dirents     uint64
	DirentOff   uint64
	DataOff     uint64
	DataLen     uint64
	BackingSize uint64
	MetaCRC     uint64
	Created     uint64
	BackingPath string
}

func (h *baseHeader) encode() []byte {
	b := make([]byte, baseHdrSize)
	le := binary.LittleEndian
	copy(b, baseMagic[:])
	le.PutUint32(b[8:], baseVersion)
	le.PutUint32(b[12:], uint32(h.Mode))
	le.PutUint64(b[16:], h.Inodes)
	le.PutUint64(b[24:], h.InodeOff)
	le.PutUint64(b[32:], h.Dirents)
	le.PutUint64(b[40:], h.DirentOff)
	le.PutUint64(b[48:], h.DataOff)
	le.PutUint64(b[56:], h.DataLen)
	le.PutUint64(b[64:], h.BackingSize)
	le.PutUint64(b[72:], h.MetaCRC)
	le.PutUint64(b[80:], h.Created)
	copy(b[basePathOff:basePathOff+basePathLen-1], h.BackingPath)
	le.PutUint64(b[baseHdrCRC:], crc64.Checksum(b[:baseHdrCRC], crcTab))
	return b
}

// baseLayout computes the offsets of an image with n inodes, m dirents and
// dataLen bytes of data area.
func baseLayout(n, m, dataLen uint64) (inodeOff, direntOff, dataOff, total uint64) {
	inodeOff = baseHdrSize
	direntOff = inodeOff + alignUp(n*baseInodeSize, BlockSize)
	dataOff = direntOff + alignUp(m*DirentStride, BlockSize)
	total = dataOff + alignUp(dataLen, BlockSize)
	return
}

// decodeBaseHeader validates a header image for an extent of extLen bytes.
// Every field is checked; a message names the field that is wrong.
func decodeBaseHeader(b []byte, extLen uint64) (*baseHeader, error) {
	if len(b) < baseHdrSize {
		return nil, fmt.Errorf("%w: base header is %d bytes", ErrBadFormat, len(b))
	}
	le := binary.LittleEndian
	if [8]byte(b[:8]) != baseMagic {
		return nil, fmt.Errorf("%w: base image magic %q", ErrBadFormat, b[:8])
	}
	if v := le.Uint32(b[8:]); v != baseVersion {
		return nil, fmt.Errorf("%w: base image version %d, this build reads %d", ErrBadFormat, v, baseVersion)
	}
	if want, got := le.Uint64(b[baseHdrCRC:]), crc64.Checksum(b[:baseHdrCRC], crcTab); want != got {
		return nil, fmt.Errorf("%w: base header checksum: stored %#x, computed %#x", ErrBadFormat, want, got)
	}
	h := &baseHeader{
		Mode:        Mode(le.Uint32(b[12:])),
		Inodes:      le.Uint64(b[16:]),
		InodeOff:    le.Uint64(b[24:]),
		Dirents:     le.Uint64(b[32:]),
		DirentOff:   le.Uint64(b[40:]),
		DataOff:     le.Uint64(b[48:]),
		DataLen:     le.Uint64(b[56:]),
		BackingSize: le.Uint64(b[64:]),
		MetaCRC:     le.Uint64(b[72:]),
		Created:     le.Uint64(b[80:]),
	}
	bad := func(field string, v uint64, why string) error {
		return fmt.Errorf("%w: base header field %s = %d: %s", ErrBadFormat, field, v, why)
	}
	if h.Mode != ModeStatic && h.Mode != ModeSplit {
		return nil, bad("mode", uint64(h.Mode), "want 1 (static) or 2 (split)")
	}
	if h.Inodes < 1 || h.Inodes > maxBaseInodes || h.Inodes > extLen/baseInodeSize {
		return nil, bad("inode_count", h.Inodes, "out of range")
	}
	if h.Dirents > extLen/DirentStride {
		return nil, bad("dirent_count", h.Dirents, "more than the extent holds")
	}
	io, do, ao, _ := baseLayout(h.Inodes, h.Dirents, 0)
	if h.InodeOff != io {
		return nil, bad("inode_offset", h.InodeOff, fmt.Sprintf("want %d", io))
	}
	if h.DirentOff != do {
		return nil, bad("dirent_offset", h.DirentOff, fmt.Sprintf("want %d (after %d inodes)", do, h.Inodes))
	}
	if h.DataOff != ao {
		return nil, bad("data_offset", h.DataOff, fmt.Sprintf("want %d (after %d dirents)", ao, h.Dirents))
	}
	if h.DataOff > extLen || h.DataLen > extLen-h.DataOff {
		return nil, bad("data_length", h.DataLen, fmt.Sprintf("data area at %d leaves the %d-byte extent", h.DataOff, extLen))
	}
	if h.Mode == ModeStatic && h.BackingSize != 0 {
		return nil, bad("backing_size", h.BackingSize, "a static image has no backing file")
	}
	for i := 88; i < basePathOff; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: reserved base header byte %d is not zero", ErrBadFormat, i)
		}
	}
	p := b[basePathOff : basePathOff+basePathLen]
	n := bytes.IndexByte(p, 0)
	if n < 0 {
		return nil, fmt.Errorf("%w: base header field backing_path is not NUL-terminated", ErrBadFormat)
	}
	for _, c := range p[n:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: base header field backing_path is not NUL padded", ErrBadFormat)
		}
	}
	h.BackingPath = string(p[:n])
	for i := basePathOff + basePathLen; i < baseHdrCRC; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: reserved base header byte %d is not zero", ErrBadFormat, i)
		}
	}
	return h, nil
}

// pageSource is where base file data of a split image comes from. Today it
// is the backing file read with pread; the shared page cache (package
// daxfs/pcache) plugs in here.
type pageSource interface {
	// ReadAt reads backing-file bytes at off (io.ReaderAt semantics).
	ReadAt(p []byte, off int64) (int, error)
}

// base is a validated base image mapped from the region.
type base struct {
	r   *cxl.Region
	off uint64 // extent start
	len uint64
	h   *baseHeader
	src pageSource // split mode: the backing file, or the cache in front of it
	cl  io.Closer

	file  pageSource    // the backing file itself
	cache *pcache.Cache // shared page cache (base_pcache.go), nil if none
}

func (b *base) n() uint64 { return b.h.Inodes }

func (b *base) has(ino Ino) bool { return b != nil && ino >= 1 && ino <= b.h.Inodes }

func (b *base) inodeBytes(ino Ino) []byte {
	return b.r.Bytes(b.off+b.h.InodeOff+(ino-1)*baseInodeSize, baseInodeSize)
}

type baseInode struct {
	mode, nlink, uid, gid uint32
	size, data            uint64
	mtime, atime, ctime   int64
	parent, rdev          uint32
}

func decodeBaseInode(p []byte) baseInode {
	le := binary.LittleEndian
	return baseInode{
		mode: le.Uint32(p[biMode:]), nlink: le.Uint32(p[biNlink:]),
		uid: le.Uint32(p[biUID:]), gid: le.Uint32(p[biGID:]),
		size: le.Uint64(p[biSize:]), data: le.Uint64(p[biData:]),
		mtime: int64(le.Uint64(p[biMtime:])), atime: int64(le.Uint64(p[biAtime:])), ctime: int64(le.Uint64(p[biCtime:])),
		parent: le.Uint32(p[biParent:]), rdev: le.Uint32(p[biRdev:]),
	}
}

func (b *base) inode(ino Ino) baseInode { return decodeBaseInode(b.inodeBytes(ino)) }

func (b *base) attr(ino Ino) Attr {
	in := b.inode(ino)
	a := Attr{
		Ino: ino, Gen: 1, Mode: in.mode, Nlink: in.nlink, Uid: in.uid, Gid: in.gid, Rdev: in.rdev,
		Size:  in.size,
		Atime: time.Unix(0, in.atime), Mtime: time.Unix(0, in.mtime), Ctime: time.Unix(0, in.ctime), Btime: time.Unix(0, in.ctime),
	}
	switch in.mode & modeType {
	case modeDir:
		a.Size = in.size * 32
	case modeReg:
		a.Blocks = (in.size + 511) / 512
	}
	return a
}

func (b *base) dirent(i uint64) []byte {
	return b.r.Bytes(b.off+b.h.DirentOff+i*DirentStride, DirentStride)
}

func direntNameOf(d []byte) []byte {
	n := binary.LittleEndian.Uint16(d[6:])
	return d[baseDirentBase : baseDirentBase+uint64(min(n, MaxNameLen))]
}

// lookup binary-searches directory dir (a validated base directory).
func (b *base) lookup(dir Ino, name string) (Ino, uint8, bool) {
	in := b.inode(dir)
	lo, hi := in.data, in.data+in.size
	for lo < hi {
		mid := lo + (hi-lo)/2
		d := b.dirent(mid)
		switch c := bytes.Compare(direntNameOf(d), []byte(name)); {
		case c == 0:
			return Ino(binary.LittleEndian.Uint32(d)), d[4], true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, 0, false
}

// entries calls f for each entry of base directory dir, in name order.
func (b *base) entries(dir Ino, f func(name []byte, ino Ino, dtype uint8) error) error {
	in := b.inode(dir)
	for i := in.data; i < in.data+in.size; i++ {
		d := b.dirent(i)
		if err := f(direntNameOf(d), Ino(binary.LittleEndian.Uint32(d)), d[4]); err != nil {
			return err
		}
	}
	return nil
}

func (b *base) readlink(ino Ino) string {
	in := b.inode(ino)
	return string(b.r.Bytes(b.off+b.h.DataOff+in.data, in.size))
}

// readAt reads base file bytes of ino at off, clipped to limit (the file
// size the caller sees); bytes past the base size read as zeros.
func (b *base) readAt(ino Ino, p []byte, off uint64) error {
	in := b.inode(ino)
	var n uint64
	if off < in.size {
		n = min(uint64(len(p)), in.size-off)
	}
	if n > 0 {
		if b.h.Mode == ModeStatic {
			copy(p[:n], b.r.Bytes(b.off+b.h.DataOff+in.data+off, n))
		} else {
			if b.src == nil {
				return fmt.Errorf("daxfs: base inode %d: split image opened without its backing file: %w", ino, ErrInvalid)
			}
			k, err := b.src.ReadAt(p[:n], int64(in.data+off))
			if uint64(k) < n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("daxfs: backing file: read inode %d at %d: %w", ino, off, err)
			}
		}
	}
	clear(p[n:])
	return nil
}

// inline returns the region bytes of a static base file's range (zero
// copy), or nil in split mode.
func (b *base) inline(ino Ino, off, n uint64) []byte {
	if b.h.Mode != ModeStatic {
		return nil
	}
	in := b.inode(ino)
	if off >= in.size {
		return nil
	}
	n = min(n, in.size-off)
	return b.r.Bytes(b.off+b.h.DataOff+in.data+off, n)
}

func (b *base) close() error {
	if b.cache != nil {
		b.cache.Close()
	}
	if b.cl != nil {
		return b.cl.Close()
	}
	return nil
}

// openBase validates the base image in extent e and, for a split image,
// opens its backing file (backing overrides the path recorded by mkfs).
func openBase(r *cxl.Region, e cxl.Extent, sb *Superblock, backing string, noBacking bool) (*base, error) {
	if e.Off != sb.BaseOff || e.Len != sb.BaseLen {
		return nil, fmt.Errorf("%w: superblock says the base image is at [%#x, +%#x), region header has [%#x, +%#x)", ErrBadFormat, sb.BaseOff, sb.BaseLen, e.Off, e.Len)
	}
	hb := make([]byte, baseHdrSize)
	copy(hb, r.Bytes(e.Off, baseHdrSize))
	h, err := decodeBaseHeader(hb, e.Len)
	if err != nil {
		return nil, err
	}
	if h.Mode != sb.Mode {
		return nil, fmt.Errorf("%w: superblock mode %v, base image mode %v", ErrBadFormat, sb.Mode, h.Mode)
	}
	if h.Inodes != sb.BaseInodes {
		return nil, fmt.Errorf("%w: superblock says %d base inodes, base header %d", ErrBadFormat, sb.BaseInodes, h.Inodes)
	}
	if h.BackingSize != sb.BackingSize {
		return nil, fmt.Errorf("%w: superblock says a %d-byte backing file, base header %d", ErrBadFormat, sb.BackingSize, h.BackingSize)
	}
	b := &base{r: r, off: e.Off, len: e.Len, h: h}
	if err := validateBase(r.Bytes(e.Off, e.Len), h); err != nil {
		return nil, err
	}
	if h.Mode == ModeSplit {
		if backing == "" {
			backing = h.BackingPath
		}
		f, err := os.Open(backing)
		if err != nil {
			if noBacking {
				return b, nil
			}
			return nil, fmt.Errorf("daxfs: split image: backing file: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("daxfs: split image: backing file: %w", err)
		}
		if uint64(st.Size()) != h.BackingSize {
			f.Close()
			return nil, fmt.Errorf("daxfs: split image: backing file %s is %d bytes, the image was built with %d", backing, st.Size(), h.BackingSize)
		}
		b.src, b.cl, b.file = f, f, f
	}
	return b, nil
}

// ValidateBaseImage validates a whole base extent image (header and
// tables) in one bounded pass; exported for tools and fuzzing.
func ValidateBaseImage(img []byte) error {
	h, err := decodeBaseHeader(img, uint64(len(img)))
	if err != nil {
		return err
	}
	return validateBase(img, h)
}

// validateBase checks every inode and dirent of an image whose header is
// valid. Time and memory are linear in the image: one pass over the inode
// table, one over the dirents, one breadth-first walk of the directories,
// with a 4-byte counter per inode.
func validateBase(img []byte, h *baseHeader) error {
	le := binary.LittleEndian
	if uint64(len(img)) < h.DataOff+h.DataLen {
		return fmt.Errorf("%w: base image of %d bytes is shorter than its data area end %d", ErrBadFormat, len(img), h.DataOff+h.DataLen)
	}
	meta := img[h.InodeOff : h.DirentOff+h.Dirents*DirentStride]
	inodes := img[h.InodeOff : h.InodeOff+h.Inodes*baseInodeSize]
	dirents := img[h.DirentOff : h.DirentOff+h.Dirents*DirentStride]
	crc := crc64.Update(0, crcTab, inodes)
	crc = crc64.Update(crc, crcTab, dirents)
	if crc != h.MetaCRC {
		_ = meta
		return fmt.Errorf("%w: base image table checksum: stored %#x, computed %#x", ErrBadFormat, h.MetaCRC, crc)
	}
	bad := func(ino uint64, field, format string, a ...any) error {
		return fmt.Errorf("%w: base inode %d field %s: %s", ErrBadFormat, ino, field, fmt.Sprintf(format, a...))
	}
	var dataEnd, fileEnd, nextDirent uint64 // ranges are claimed in inode order
	ndirs := uint64(0)
	for ino := uint64(1); ino <= h.Inodes; ino++ {
		in := decodeBaseInode(inodes[(ino-1)*baseInodeSize:])
		switch in.mode & modeType {
		case modeDir:
			ndirs++
			if in.size > h.Dirents || in.data != nextDirent || in.data+in.size > h.Dirents {
				return bad(ino, "data", "dirents [%d, +%d) out of range or not following the previous directory's (next is %d of %d)", in.data, in.size, nextDirent, h.Dirents)
			}
			nextDirent = in.data + in.size
			if in.parent < 1 || uint64(in.parent) > h.Inodes {
				return bad(ino, "parent", "%d out of range", in.parent)
			}
			if in.rdev != 0 {
				return bad(ino, "rdev", "%d on a directory", in.rdev)
			}
		case modeReg:
			if in.parent != 0 || in.rdev != 0 {
				return bad(ino, "parent/rdev", "not zero on a file")
			}
			if in.size > MaxFileSize {
				return bad(ino, "size", "%d beyond the largest file", in.size)
			}
			if in.size == 0 {
				if in.data != 0 {
					return bad(ino, "data", "%d on an empty file", in.data)
				}
				break
			}
			if in.data%BlockSize != 0 {
				return bad(ino, "data", "offset %d is not %d-aligned", in.data, BlockSize)
			}
			limit := h.DataLen
			if h.Mode == ModeSplit {
				limit = h.BackingSize
			}
			if in.data < fileEnd || in.data > limit || in.size > limit-in.data {
				return bad(ino, "data", "file bytes [%d, +%d) overlap the previous file (ends %d) or leave the %s (%d bytes)", in.data, in.size, fileEnd, map[Mode]string{ModeStatic: "data area", ModeSplit: "backing file"}[h.Mode], limit)
			}
			fileEnd = in.data + in.size
			if h.Mode == ModeStatic {
				dataEnd = max(dataEnd, fileEnd)
			}
		case modeLnk:
			if in.parent != 0 || in.rdev != 0 {
				return bad(ino, "parent/rdev", "not zero on a symlink")
			}
			if in.size < 1 || in.size > maxSymlinkLen {
				return bad(ino, "size", "symlink target of %d bytes", in.size)
			}
			start := in.data
			if start < dataEnd || start > h.DataLen || in.size > h.DataLen-start {
				return bad(ino, "data", "symlink target [%d, +%d) overlaps (previous ends %d) or leaves the data area (%d bytes)", start, in.size, dataEnd, h.DataLen)
			}
			dataEnd = start + in.size
			if h.Mode == ModeStatic {
				fileEnd = max(fileEnd, dataEnd)
			}
			if bytes.IndexByte(img[h.DataOff+start:h.DataOff+start+in.size], 0) >= 0 {
				return bad(ino, "data", "symlink target contains NUL")
			}
		case 0o010000, 0o020000, 0o060000, 0o140000: // fifo, chr, blk, sock
			if in.size != 0 || in.data != 0 || in.parent != 0 {
				return bad(ino, "size/data/parent", "not zero on a special file")
			}
		default:
			return bad(ino, "mode", "file type %#o", in.mode&modeType)
		}
		if in.mode&^uint32(modeType|0o7777) != 0 {
			return bad(ino, "mode", "unknown bits in %#o", in.mode)
		}
		if in.nlink == 0 {
			return bad(ino, "nlink", "0")
		}
	}
	if nextDirent != h.Dirents {
		return fmt.Errorf("%w: base directories own %d dirents, the table has %d", ErrBadFormat, nextDirent, h.Dirents)
	}
	root := decodeBaseInode(inodes)
	if root.mode&modeType != modeDir || root.parent != RootIno {
		return fmt.Errorf("%w: base inode 1 is not the root directory (mode %#o, parent %d)", ErrBadFormat, root.mode, root.parent)
	}
	// Dirents: ranges, names, order, types. refs counts names per inode.
	refs := make([]uint32, h.Inodes+1)
	subdirs := make([]uint32, h.Inodes+1)
	for ino := uint64(1); ino <= h.Inodes; ino++ {
		in := decodeBaseInode(inodes[(ino-1)*baseInodeSize:])
		if in.mode&modeType != modeDir {
			continue
		}
		var prev []byte
		for i := in.data; i < in.data+in.size; i++ {
			d := dirents[i*DirentStride : (i+1)*DirentStride]
			child := uint64(le.Uint32(d))
			nl := uint64(le.Uint16(d[6:]))
			where := func(format string, a ...any) error {
				return fmt.Errorf("%w: base dirent %d (directory %d) field %s", ErrBadFormat, i, ino, fmt.Sprintf(format, a...))
			}
			if child < 1 || child > h.Inodes {
				return where("ino: %d is not an inode (1..%d)", child, h.Inodes)
			}
			if nl < 1 || nl > MaxNameLen {
				return where("name_len: %d", nl)
			}
			name := d[baseDirentBase : baseDirentBase+nl]
			if err := checkName(string(name)); err != nil {
				return where("name: %v", err)
			}
			for _, c := range d[baseDirentBase+nl:] {
				if c != 0 {
					return where("name: bytes past name_len are not zero")
				}
			}
			if d[5] != 0 {
				return where("reserved byte is not zero")
			}
			if prev != nil && bytes.Compare(prev, name) >= 0 {
				return where("name: %q does not sort after %q (duplicate or unsorted)", name, prev)
			}
			prev = name
			cin := decodeBaseInode(inodes[(child-1)*baseInodeSize:])
			if uint64(d[4]) != dtypeOf(cin.mode) {
				return where("dtype: %d, inode %d has mode %#o", d[4], child, cin.mode)
			}
			if cin.mode&modeType == modeDir {
				if child == RootIno {
					return where("ino: names the root directory (cycle)")
				}
				if uint64(cin.parent) != ino {
					return where("ino: directory %d says its parent is %d", child, cin.parent)
				}
				subdirs[ino]++
			}
			if refs[child] == 1<<32-1 {
				return where("ino: too many names")
			}
			refs[child]++
		}
	}
	// Link counts, and every directory named exactly once: with parent
	// fields matching, the directories form a tree iff all are reachable
	// from the root, checked by a walk that touches each directory once.
	for ino := uint64(1); ino <= h.Inodes; ino++ {
		in := decodeBaseInode(inodes[(ino-1)*baseInodeSize:])
		if in.mode&modeType == modeDir {
			want := uint32(0)
			if ino != RootIno {
				want = 1
			}
			if refs[ino] != want {
				return fmt.Errorf("%w: base directory %d is named %d times, want %d (hard-linked directory or cycle)", ErrBadFormat, ino, refs[ino], want)
			}
			if in.nlink != 2+subdirs[ino] {
				return bad(ino, "nlink", "%d, a directory with %d subdirectories has %d", in.nlink, subdirs[ino], 2+subdirs[ino])
			}
		} else {
			if refs[ino] == 0 {
				return bad(ino, "nlink", "inode is not named by any dirent (orphan)")
			}
			if in.nlink != refs[ino] {
				return bad(ino, "nlink", "%d, but %d dirents name it", in.nlink, refs[ino])
			}
		}
	}
	reached := uint64(0)
	queue := []uint64{RootIno}
	for len(queue) > 0 {
		dir := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		reached++
		if reached > ndirs {
			return fmt.Errorf("%w: base directory walk visits more than the %d directories (cycle)", ErrBadFormat, ndirs)
		}
		in := decodeBaseInode(inodes[(dir-1)*baseInodeSize:])
		for i := in.data; i < in.data+in.size; i++ {
			child := uint64(le.Uint32(dirents[i*DirentStride:]))
			if dirents[i*DirentStride+4] == DTDir {
				queue = append(queue, child)
			}
		}
	}
	if reached != ndirs {
		return fmt.Errorf("%w: %d of %d base directories are not reachable from the root (cycle)", ErrBadFormat, ndirs-reached, ndirs)
	}
	return nil
}

// sortNames sorts names bytewise, the order of base directories.
func sortNames(names []string) { sort.Strings(names) }
