package daxfs

import (
	"encoding/binary"
	"errors"
	"hash/crc64"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/cxl"
)

// baseImage is a small static region image and where its base extent is.
var baseImage = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "daxfs-basefuzz-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755)
	os.MkdirAll(filepath.Join(dir, "d"), 0o700)
	os.WriteFile(filepath.Join(dir, "a/f"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "a/b/big"), make([]byte, 2*BlockSize+3), 0o600)
	os.WriteFile(filepath.Join(dir, "zz"), nil, 0o644)
	os.Symlink("a/f", filepath.Join(dir, "s"))
	os.Link(filepath.Join(dir, "a/f"), filepath.Join(dir, "d/hard"))
	tree, err := ScanTree(dir, ModeStatic)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "daxfs-basefuzz-*")
	if err != nil {
		return nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	r, err := cxl.Open(f.Name(), cxl.OpenOptions{Create: true, Size: 1 << 20})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := Mkfs(r, MkfsOptions{MaxHosts: 2, Lease: time.Second, Buckets: 64, Tree: tree}); err != nil {
		return nil, err
	}
	return append([]byte(nil), r.Bytes(0, r.Len())...), nil
})

func baseExtentOf(t testing.TB, img []byte) cxl.Extent {
	h, err := cxl.DecodeHeader(img, uint64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := h.Extent(BaseExtentName)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fixBaseCRCs recomputes the base image's checksums so that a mutation
// reaches the validation behind them.
func fixBaseCRCs(b []byte) {
	le := binary.LittleEndian
	n, m := le.Uint64(b[16:]), le.Uint64(b[32:])
	io, do := le.Uint64(b[24:]), le.Uint64(b[40:])
	if n < 1<<20 && m < 1<<20 && io <= uint64(len(b)) && n*baseInodeSize <= uint64(len(b))-io &&
		do <= uint64(len(b)) && m*DirentStride <= uint64(len(b))-do {
		crc := crc64.Update(0, crcTab, b[io:io+n*baseInodeSize])
		le.PutUint64(b[72:], crc64.Update(crc, crcTab, b[do:do+m*DirentStride]))
	}
	le.PutUint64(b[baseHdrCRC:], crc64.Checksum(b[:baseHdrCRC], crcTab))
}

// FuzzBaseImage mutates the base extent of a valid static image
// ([offset u16][length u8][bytes]...; a first byte with bit 0 set fixes the
// checksums afterwards) and then validates, mounts and walks it: rejected
// or working, never a panic or a hang.
func FuzzBaseImage(f *testing.F) {
	img, err := baseImage()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0})
	f.Add([]byte{1, 0x00, 0x10, 4, 0, 0, 0, 0})                // inode 1 mode
	f.Add([]byte{1, 0x40, 0x10, 4, 9, 0, 0, 0})                // inode 2 nlink
	f.Add([]byte{1, 0x00, 0x20, 4, 1, 0, 0, 0})                // dirent 0 ino -> root
	f.Add([]byte{1, 0x08, 0x20, 3, 'a', '/', 'b'})             // dirent 0 name
	f.Add([]byte{1, 0x18, 0x10, 8, 0, 0x10, 0, 0, 0, 0, 0, 0}) // data offset
	f.Add([]byte{0, 0x00, 0x00, 1, 'X'})                       // magic
	f.Fuzz(func(t *testing.T, muts []byte) {
		b := append([]byte(nil), img...)
		e := baseExtentOf(t, b)
		ext := b[e.Off : e.Off+e.Len]
		fix := len(muts) > 0 && muts[0]&1 != 0
		if len(muts) > 0 {
			muts = muts[1:]
		}
		for len(muts) >= 3 {
			off := int(binary.LittleEndian.Uint16(muts)) % len(ext)
			n := int(muts[2])
			muts = muts[3:]
			n = min(n, len(muts), len(ext)-off)
			copy(ext[off:], muts[:n])
			muts = muts[n:]
		}
		if fix {
			fixBaseCRCs(ext)
		}
		watchdog := time.AfterFunc(5*time.Second, func() { panic("base image validation hangs") })
		err := ValidateBaseImage(ext)
		watchdog.Stop()
		if err != nil && !errors.Is(err, ErrBadFormat) {
			t.Fatalf("validation error without ErrBadFormat: %v", err)
		}
		exerciseImage(t, b)
	})
}

// Every kind of damage is rejected with a message naming the field.
func TestBaseValidationRejects(t *testing.T) {
	img, err := baseImage()
	if err != nil {
		t.Fatal(err)
	}
	e := baseExtentOf(t, img)
	le := binary.LittleEndian
	h, err := decodeBaseHeader(img[e.Off:], e.Len)
	if err != nil {
		t.Fatal(err)
	}
	ino := func(b []byte, i uint64) []byte { return b[h.InodeOff+(i-1)*baseInodeSize:] }
	dent := func(b []byte, i uint64) []byte { return b[h.DirentOff+i*DirentStride:] }
	// Find things to break.
	var fileIno, dirIno uint64
	for i := uint64(1); i <= h.Inodes; i++ {
		m := le.Uint32(ino(img[e.Off:], i))
		if m&modeType == modeReg && le.Uint64(ino(img[e.Off:], i)[biSize:]) > BlockSize && fileIno == 0 {
			fileIno = i
		}
		if m&modeType == modeDir && i > 1 && le.Uint64(ino(img[e.Off:], i)[biSize:]) > 0 && dirIno == 0 {
			dirIno = i
		}
	}
	for _, tc := range []struct {
		name, want string
		fix        bool
		mut        func(b []byte)
	}{
		{"magic", "magic", false, func(b []byte) { b[0] = 'X' }},
		{"header checksum", "base header checksum", false, func(b []byte) { b[100]++ }},
		{"version", "version", true, func(b []byte) { le.PutUint32(b[8:], 7) }},
		{"table checksum", "table checksum", false, func(b []byte) {
			ino(b, 1)[biUID]++
			le.PutUint64(b[baseHdrCRC:], crc64.Checksum(b[:baseHdrCRC], crcTab))
		}},
		{"inode count", "inode_count", true, func(b []byte) { le.PutUint64(b[16:], 1<<40) }},
		{"dirent offset", "dirent_offset", true, func(b []byte) { le.PutUint64(b[40:], 4096*9) }},
		{"data length", "data_length", true, func(b []byte) { le.PutUint64(b[56:], 1<<40) }},
		{"file out of range", "field data", true, func(b []byte) { le.PutUint64(ino(b, fileIno)[biData:], 1<<30) }},
		{"file misaligned", "not 4096-aligned", true, func(b []byte) { le.PutUint64(ino(b, fileIno)[biData:], 8) }},
		{"file size", "field data", true, func(b []byte) { le.PutUint64(ino(b, fileIno)[biSize:], 1<<30) }},
		{"bad type", "field mode", true, func(b []byte) { le.PutUint32(ino(b, fileIno)[biMode:], 0o070644) }},
		{"nlink", "field nlink", true, func(b []byte) { le.PutUint32(ino(b, fileIno)[biNlink:], 5) }},
		{"dir range", "field data", true, func(b []byte) { le.PutUint64(ino(b, dirIno)[biSize:], 1<<20) }},
		{"dirent ino 0", "field ino", true, func(b []byte) { le.PutUint32(dent(b, 0), 0) }},
		{"dirent ino big", "field ino", true, func(b []byte) { le.PutUint32(dent(b, 0), 1<<30) }},
		{"dirent names root", "ino", true, func(b []byte) { le.PutUint32(dent(b, 0), 1); dent(b, 0)[4] = DTDir }},
		{"name slash", "field name", true, func(b []byte) { dent(b, 0)[8] = '/' }},
		{"name dot", "field name", true, func(b []byte) {
			le.PutUint16(dent(b, 0)[6:], 1)
			clear(dent(b, 0)[8:DirentStride])
			dent(b, 0)[8] = '.'
		}},
		{"name length", "name_len", true, func(b []byte) { le.PutUint16(dent(b, 0)[6:], 300) }},
		{"name tail", "past name_len", true, func(b []byte) { dent(b, 0)[DirentStride-1] = 'x' }},
		{"unsorted", "does not sort", true, func(b []byte) { dent(b, 0)[8] = 'z' }},
		{"dtype", "field dtype", true, func(b []byte) { dent(b, 0)[4] = DTLnk }},
		{"parent", "parent", true, func(b []byte) { le.PutUint32(ino(b, dirIno)[biParent:], uint32(dirIno)) }},
		{"reserved header byte", "reserved", true, func(b []byte) { b[90] = 1 }},
		{"backing size", "backing_size", true, func(b []byte) { le.PutUint64(b[64:], 5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), img[e.Off:e.Off+e.Len]...)
			tc.mut(b)
			if tc.fix {
				fixBaseCRCs(b)
			}
			err := ValidateBaseImage(b)
			if err == nil || !errors.Is(err, ErrBadFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrBadFormat naming %q", err, tc.want)
			}
			// And a mount refuses it the same way.
			full := append([]byte(nil), img...)
			copy(full[e.Off:], b)
			path := regionPath(t)
			os.WriteFile(path, full, 0o644)
			r, err := cxl.Open(path, cxl.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if fs, err := Open(r, Options{}); err == nil {
				fs.Close()
				t.Fatal("mounted a damaged base image")
			} else if !errors.Is(err, ErrBadFormat) {
				t.Fatalf("mount error %v", err)
			}
		})
	}
}

// Validation time grows linearly with the image: measured at three sizes
// (go test -run TestBaseValidationScaling -v; DAXFS_HEAVY=1 for larger).
func TestBaseValidationScaling(t *testing.T) {
	sizes := []int{1000, 4000, 16000}
	if os.Getenv("DAXFS_HEAVY") != "" {
		sizes = []int{20000, 80000, 320000}
	}
	for _, n := range sizes {
		tree := syntheticTree(n)
		img := make([]byte, tree.ImageSize())
		if err := tree.writeBase(img, nil, 0, nil, "", 1, nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		const reps = 5
		for range reps {
			if err := ValidateBaseImage(img); err != nil {
				t.Fatal(err)
			}
		}
		el := time.Since(start) / reps
		t.Logf("validate %7d entries, %6.1f MiB image: %8v (%.0f ns/entry)", n, float64(len(img))/(1<<20), el, float64(el.Nanoseconds())/float64(n))
	}
}

// syntheticTree lays out n entries without touching a filesystem: 1/16
// directories, the rest symlinks (no file data to copy).
func syntheticTree(n int) *BaseTree {
	t := &BaseTree{Mode: ModeStatic}
	t.inodes = append(t.inodes, planInode{mode: modeDir | 0o755, nlink: 2, parent: 1})
	dirs := []uint32{1}
	ents := map[uint32][]planDirent{}
	for i := 0; i < n; i++ {
		parent := dirs[i%len(dirs)]
		name := "n" + strings.Repeat("x", i%40) + strconv.Itoa(i)
		ino := uint32(len(t.inodes) + 1)
		if i%16 == 0 {
			t.inodes = append(t.inodes, planInode{mode: modeDir | 0o755, nlink: 2, parent: parent})
			t.inodes[parent-1].nlink++
			dirs = append(dirs, ino)
			ents[parent] = append(ents[parent], planDirent{ino: ino, dtype: DTDir, name: name})
		} else {
			t.inodes = append(t.inodes, planInode{mode: modeLnk | 0o777, nlink: 1, target: name, size: uint64(len(name))})
			ents[parent] = append(ents[parent], planDirent{ino: ino, dtype: DTLnk, name: name})
		}
	}
	var data uint64
	for i := range t.inodes {
		in := &t.inodes[i]
		switch in.mode & modeType {
		case modeDir:
			e := ents[uint32(i+1)]
			sort.Slice(e, func(a, b int) bool { return e[a].name < e[b].name })
			in.data, in.size = uint64(len(t.dirents)), uint64(len(e))
			t.dirents = append(t.dirents, e...)
		case modeLnk:
			in.data = data
			data += in.size
		}
	}
	t.dataLen = data
	return t
}
