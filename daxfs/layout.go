package daxfs

import (
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"math/bits"
)

// On-media layout of the "daxfs" extent. docs/FORMAT.md has the pictures;
// keep the two in step.
//
//	extent start E
//	E+0      superblock          4096 B, checksummed, written once by mkfs
//	E+4096   shared words        64 lines of 64 B; one hot word per line
//	E+8192   host records        MaxHosts x 8192 B
//	B        buckets             BucketCount x 8 B (heads of hash chains)
//	C        chunk map           ChunkCount x 8 B (size class of each chunk)
//	P        pool                ChunkCount x 64 KiB
const (
	BlockSize   = 4096
	ChunkSize   = 64 << 10
	superSize   = 4096
	sharedOff   = 4096
	sharedSize  = 4096
	hostsOff    = 8192
	hostRecSize = 8192
	lineSize    = 64

	formatVersion = 1
	// RootIno is the inode number of the root directory.
	RootIno = 1
)

var superMagic = [8]byte{'D', 'A', 'X', 'F', 'S', 0, 'v', '1'}

// Shared words: index * lineSize from the start of the shared area.
const (
	swNextIno    = 0 // next inode number to hand out (fetch-add)
	swChunkBump  = 1 // next never-used chunk index (CAS bump)
	swEpoch      = 2 // global reclamation epoch
	swRenameLock = 3 // incarnation holding the directory-rename lock, 0 = free
	swChanges    = 4 // namespace change counter (coherence for mounts)
	swFreeBase   = 8 // swFreeBase+c: free list head of size class c
)

// Host record fields (offsets inside one 8192-byte record). A host runs at
// most epochSlots operations at once; operation i owns epoch word i and
// intent record i.
const (
	hrInc       = 0    // incarnation owning the record, 0 = none
	hrReaper    = 8    // incarnation reaping a dead owner's record, 0 = none
	hrLimbo     = 16   // offset of the newest limbo block, 0 = none
	hrAllocated = 64   // bytes allocated minus bytes freed by this record's owners (two's complement)
	hrEpochs    = 512  // epochSlots words: 0 = quiescent, else epoch<<1|1
	hrIntents   = 1024 // epochSlots intents of intentSize bytes
	intentSize  = 64
	epochSlots  = 64
)

// Size classes: class c holds objects of 64<<c bytes; class 6 is a page.
const (
	numClasses = 7
	pageClass  = 6
	minObj     = 64
)

func classSize(c int) uint64 { return minObj << c }

// classFor returns the smallest class holding n bytes.
func classFor(n uint64) int {
	if n <= minObj {
		return 0
	}
	c := bits.Len64((n - 1) / minObj) // ceil(log2(n/64))
	if c >= numClasses {
		return -1
	}
	return c
}

// Superblock is the decoded, validated superblock. Offsets in it are
// absolute region offsets (the on-media fields are relative to Extent).
type Superblock struct {
	Version     uint32
	Extent      uint64 // absolute offset of the extent
	ExtentLen   uint64
	MaxHosts    int
	Flags       uint32
	BucketOff   uint64
	BucketCount uint64
	ChunkMapOff uint64
	ChunkCount  uint64
	PoolOff     uint64
	Created     uint64
	UUID        [16]byte

	// Base image (base.go); all zero in empty mode.
	Mode        Mode
	BaseInodes  uint64 // base inode numbers are 1..BaseInodes
	BaseOff     uint64 // absolute offset of the base extent
	BaseLen     uint64
	BackingSize uint64 // split: size of the backing file
}

// Superblock byte layout (little-endian):
//
//	0    8   magic "DAXFS\0v1"
//	8    4   version (1)
//	12   4   block size (4096)
//	16   8   extent offset (absolute)
//	24   8   extent length
//	32   4   max hosts
//	36   4   flags (0)
//	40   8   bucket array offset (relative)
//	48   8   bucket count (power of two)
//	56   8   chunk map offset (relative)
//	64   8   chunk count
//	72   8   pool offset (relative, 4096-aligned)
//	80   8   chunk size (65536)
//	88   8   host record size (8192)
//	96   8   root inode number (1)
//	104  8   created, unix ns
//	112  16  uuid
//	128  4   mode: 0 empty, 1 static, 2 split (base.go)
//	132  4   zero
//	136  8   base inode count N (0 in empty mode)
//	144  8   base extent offset (absolute; 0 in empty mode)
//	152  8   base extent length
//	160  8   backing file size (split mode; else 0)
//	168  ..  zero
//	4088 8   CRC-64/ECMA of bytes [0, 4088)
const superCRC = superSize - 8

var crcTab = crc64.MakeTable(crc64.ECMA)

// Geometry computes a layout for an extent at off of length n.
func Geometry(off, n uint64, maxHosts int, buckets uint64) (*Superblock, error) {
	if maxHosts < 1 || maxHosts > 4096 {
		return nil, fmt.Errorf("daxfs: geometry: %d hosts, want 1..4096", maxHosts)
	}
	if off%BlockSize != 0 {
		return nil, fmt.Errorf("daxfs: geometry: extent offset %#x is not %d-aligned", off, BlockSize)
	}
	fixed := uint64(hostsOff) + alignUp(uint64(maxHosts)*hostRecSize, BlockSize)
	if n < fixed+4*ChunkSize {
		return nil, fmt.Errorf("daxfs: geometry: extent of %d bytes is too small (need at least %d)", n, fixed+4*ChunkSize)
	}
	if buckets == 0 {
		// One bucket per 2 KiB of extent: chains stay short for any mix
		// of small files and directories.
		buckets = uint64(1) << bits.Len64((n/2048)-1)
	}
	if buckets&(buckets-1) != 0 || buckets < 64 || buckets > 1<<32 {
		return nil, fmt.Errorf("daxfs: geometry: bucket count %d must be a power of two in [64, 2^32]", buckets)
	}
	bucketBytes := alignUp(buckets*8, BlockSize)
	if fixed+bucketBytes >= n {
		return nil, fmt.Errorf("daxfs: geometry: %d buckets do not fit in %d bytes", buckets, n)
	}
	rest := n - fixed - bucketBytes
	// Each chunk costs ChunkSize plus one chunk-map word.
	chunks := rest / (ChunkSize + 8)
	for chunks > 0 && alignUp(chunks*8, BlockSize)+chunks*ChunkSize > rest {
		chunks--
	}
	if chunks < 4 {
		return nil, fmt.Errorf("daxfs: geometry: extent of %d bytes leaves no room for a pool", n)
	}
	if chunks > (1<<32)*minObj/ChunkSize {
		chunks = (1 << 32) * minObj / ChunkSize // free-list indexes are 32 bits of 64-byte units
	}
	sb := &Superblock{
		Version:     formatVersion,
		Extent:      off,
		ExtentLen:   n,
		MaxHosts:    maxHosts,
		BucketOff:   off + fixed,
		BucketCount: buckets,
		ChunkMapOff: off + fixed + bucketBytes,
		ChunkCount:  chunks,
	}
	sb.PoolOff = sb.ChunkMapOff + alignUp(chunks*8, BlockSize)
	return sb, nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// PoolEnd is the first byte after the pool.
func (sb *Superblock) PoolEnd() uint64 { return sb.PoolOff + sb.ChunkCount*ChunkSize }

func (sb *Superblock) sharedWord(i int) uint64 { return sb.Extent + sharedOff + uint64(i)*lineSize }
func (sb *Superblock) hostRec(slot int) uint64 {
	return sb.Extent + hostsOff + uint64(slot)*hostRecSize
}
func (sb *Superblock) bucket(i uint64) uint64 { return sb.BucketOff + i*8 }
func (sb *Superblock) chunkWord(i uint64) uint64 {
	return sb.ChunkMapOff + i*8
}

// Encode returns the 4096-byte superblock image.
func (sb *Superblock) Encode() []byte {
	b := make([]byte, superSize)
	le := binary.LittleEndian
	copy(b, superMagic[:])
	le.PutUint32(b[8:], sb.Version)
	le.PutUint32(b[12:], BlockSize)
	le.PutUint64(b[16:], sb.Extent)
	le.PutUint64(b[24:], sb.ExtentLen)
	le.PutUint32(b[32:], uint32(sb.MaxHosts))
	le.PutUint32(b[36:], sb.Flags)
	le.PutUint64(b[40:], sb.BucketOff-sb.Extent)
	le.PutUint64(b[48:], sb.BucketCount)
	le.PutUint64(b[56:], sb.ChunkMapOff-sb.Extent)
	le.PutUint64(b[64:], sb.ChunkCount)
	le.PutUint64(b[72:], sb.PoolOff-sb.Extent)
	le.PutUint64(b[80:], ChunkSize)
	le.PutUint64(b[88:], hostRecSize)
	le.PutUint64(b[96:], RootIno)
	le.PutUint64(b[104:], sb.Created)
	copy(b[112:128], sb.UUID[:])
	le.PutUint32(b[128:], uint32(sb.Mode))
	le.PutUint64(b[136:], sb.BaseInodes)
	le.PutUint64(b[144:], sb.BaseOff)
	le.PutUint64(b[152:], sb.BaseLen)
	le.PutUint64(b[160:], sb.BackingSize)
	le.PutUint64(b[superCRC:], crc64.Checksum(b[:superCRC], crcTab))
	return b
}

// DecodeSuperblock validates a superblock image found at extent offset off
// of an extent of length n. It never panics: every field is range checked
// and the regions it names must tile the extent exactly as Geometry would.
func DecodeSuperblock(b []byte, off, n uint64) (*Superblock, error) {
	if len(b) < superSize {
		return nil, fmt.Errorf("%w: superblock is %d bytes", ErrBadFormat, len(b))
	}
	le := binary.LittleEndian
	if [8]byte(b[:8]) != superMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadFormat, b[:8])
	}
	if v := le.Uint32(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w: superblock version %d, this build reads %d", ErrBadFormat, v, formatVersion)
	}
	if want, got := le.Uint64(b[superCRC:]), crc64.Checksum(b[:superCRC], crcTab); want != got {
		return nil, fmt.Errorf("%w: superblock checksum: stored %#x, computed %#x", ErrBadFormat, want, got)
	}
	field := func(name string, got, want uint64) error {
		if got != want {
			return fmt.Errorf("%w: superblock field %s is %d, want %d", ErrBadFormat, name, got, want)
		}
		return nil
	}
	if err := field("block_size", uint64(le.Uint32(b[12:])), BlockSize); err != nil {
		return nil, err
	}
	if err := field("extent_offset", le.Uint64(b[16:]), off); err != nil {
		return nil, err
	}
	if err := field("extent_length", le.Uint64(b[24:]), n); err != nil {
		return nil, err
	}
	if err := field("chunk_size", le.Uint64(b[80:]), ChunkSize); err != nil {
		return nil, err
	}
	if err := field("host_record_size", le.Uint64(b[88:]), hostRecSize); err != nil {
		return nil, err
	}
	if err := field("root_ino", le.Uint64(b[96:]), RootIno); err != nil {
		return nil, err
	}
	if err := field("flags", uint64(le.Uint32(b[36:])), 0); err != nil {
		return nil, err
	}
	want, err := Geometry(off, n, int(le.Uint32(b[32:])), le.Uint64(b[48:]))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFormat, err)
	}
	if err := field("bucket_offset", le.Uint64(b[40:]), want.BucketOff-off); err != nil {
		return nil, err
	}
	if err := field("chunk_map_offset", le.Uint64(b[56:]), want.ChunkMapOff-off); err != nil {
		return nil, err
	}
	if err := field("chunk_count", le.Uint64(b[64:]), want.ChunkCount); err != nil {
		return nil, err
	}
	if err := field("pool_offset", le.Uint64(b[72:]), want.PoolOff-off); err != nil {
		return nil, err
	}
	mode := Mode(le.Uint32(b[128:]))
	want.BaseInodes, want.BaseOff, want.BaseLen, want.BackingSize = le.Uint64(b[136:]), le.Uint64(b[144:]), le.Uint64(b[152:]), le.Uint64(b[160:])
	switch mode {
	case ModeEmpty:
		if want.BaseInodes|want.BaseOff|want.BaseLen|want.BackingSize != 0 {
			return nil, fmt.Errorf("%w: superblock of an empty-mode daxfs has base image fields set", ErrBadFormat)
		}
	case ModeStatic, ModeSplit:
		if want.BaseInodes < 1 || want.BaseInodes > maxBaseInodes {
			return nil, fmt.Errorf("%w: superblock field base_inodes is %d", ErrBadFormat, want.BaseInodes)
		}
		if want.BaseOff%BlockSize != 0 || want.BaseLen < baseHdrSize || want.BaseOff+want.BaseLen < want.BaseOff ||
			(want.BaseOff < off+n && off < want.BaseOff+want.BaseLen) {
			return nil, fmt.Errorf("%w: superblock field base_offset/base_length [%#x, +%#x) is misaligned or overlaps the daxfs extent", ErrBadFormat, want.BaseOff, want.BaseLen)
		}
		if mode == ModeStatic && want.BackingSize != 0 {
			return nil, fmt.Errorf("%w: superblock field backing_size is %d in static mode", ErrBadFormat, want.BackingSize)
		}
	default:
		return nil, fmt.Errorf("%w: superblock field mode is %d, want 0, 1 or 2", ErrBadFormat, mode)
	}
	want.Mode = mode
	if le.Uint32(b[132:]) != 0 {
		return nil, fmt.Errorf("%w: reserved superblock byte 132 is not zero", ErrBadFormat)
	}
	for i := 168; i < superCRC; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: reserved superblock byte %d is not zero", ErrBadFormat, i)
		}
	}
	want.Created = le.Uint64(b[104:])
	copy(want.UUID[:], b[112:128])
	return want, nil
}
