package cxl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"time"
)

// The region header occupies the first 4096 bytes of every region:
//
//	off  size  field
//	0    8     magic "DAXWIO\x00\x01"
//	8    4     version (1)
//	12   4     header size (4096)
//	16   8     region size in bytes
//	24   4     host table slots
//	28   4     extent count (<= MaxExtents)
//	32   8     lease in nanoseconds
//	40   8     host table offset (4096)
//	48   8     host table length
//	56   8     reserved (0)
//	64   32*N  extents: name [16]byte (NUL padded), offset u64, length u64
//	4088 8     CRC-64/ECMA of bytes [0, 4088)
//
// All integers are little-endian. Extents are 4096-aligned, lie after the
// host table, do not overlap and end inside the region.
const (
	HeaderSize    = 4096
	HeaderVersion = 1
	MaxExtents    = 32
	// ExtentAlign is the alignment of every extent.
	ExtentAlign = 4096
	maxNameLen  = 15
	crcOff      = HeaderSize - 8
)

var headerMagic = [8]byte{'D', 'A', 'X', 'W', 'I', 'O', 0, 1}

var crcTable = crc64.MakeTable(crc64.ECMA)

// Errors returned by ReadHeader.
var (
	ErrBadMagic    = errors.New("cxl: not a daxwio region (bad magic)")
	ErrBadVersion  = errors.New("cxl: unsupported region version")
	ErrBadChecksum = errors.New("cxl: region header checksum mismatch")
	ErrCorrupt     = errors.New("cxl: corrupt region header")
	ErrNoExtent    = errors.New("cxl: no such extent")
)

// ExtentSpec asks Format for an extent of Size bytes (rounded up to 4096).
type ExtentSpec struct {
	Name string
	Size uint64
}

// FormatOptions describe a new region layout.
type FormatOptions struct {
	Extents  []ExtentSpec
	MaxHosts int           // host table slots; default 64
	Lease    time.Duration // heartbeat lease; default 5s
}

// Extent is a named range of the region.
type Extent struct {
	Name string
	Off  uint64
	Len  uint64
}

// Header is the decoded region header.
type Header struct {
	Version  uint32
	Size     uint64
	MaxHosts int
	Lease    time.Duration
	HostsOff uint64
	HostsLen uint64
	Extents  []Extent
}

// Extent returns the extent named name.
func (h *Header) Extent(name string) (Extent, error) {
	for _, e := range h.Extents {
		if e.Name == name {
			return e, nil
		}
	}
	return Extent{}, fmt.Errorf("%w %q", ErrNoExtent, name)
}

// Default layout parameters.
const (
	DefaultMaxHosts = 64
	DefaultLease    = 5 * time.Second
	maxHostSlots    = 4096
)

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// Format writes a new header and an empty host table. It zeroes the header
// and host table; extents are zeroed too so that their owners start from a
// known state. Format must not run while any host uses the region.
func Format(r *Region, o FormatOptions) (*Header, error) {
	if r.ro {
		return nil, fmt.Errorf("cxl: format %s: region is read-only", r.path)
	}
	if o.MaxHosts == 0 {
		o.MaxHosts = DefaultMaxHosts
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.MaxHosts < 1 || o.MaxHosts > maxHostSlots {
		return nil, fmt.Errorf("cxl: format: %d host slots, want 1..%d", o.MaxHosts, maxHostSlots)
	}
	if o.Lease < time.Millisecond {
		return nil, fmt.Errorf("cxl: format: lease %v is shorter than 1ms", o.Lease)
	}
	if len(o.Extents) > MaxExtents {
		return nil, fmt.Errorf("cxl: format: %d extents, at most %d", len(o.Extents), MaxExtents)
	}
	h := &Header{
		Version:  HeaderVersion,
		Size:     r.Len(),
		MaxHosts: o.MaxHosts,
		Lease:    o.Lease,
		HostsOff: HeaderSize,
		HostsLen: alignUp(hostTableLen(o.MaxHosts), ExtentAlign),
	}
	next := h.HostsOff + h.HostsLen
	seen := map[string]bool{}
	for _, s := range o.Extents {
		if s.Name == "" || len(s.Name) > maxNameLen {
			return nil, fmt.Errorf("cxl: format: extent name %q must be 1..%d bytes", s.Name, maxNameLen)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("cxl: format: extent %q named twice", s.Name)
		}
		seen[s.Name] = true
		if s.Size == 0 {
			return nil, fmt.Errorf("cxl: format: extent %q has size 0", s.Name)
		}
		size := alignUp(s.Size, ExtentAlign)
		if size < s.Size || next+size < next || next+size > r.Len() {
			return nil, fmt.Errorf("cxl: format: extent %q (%d bytes) does not fit in a %d-byte region (%d bytes free)",
				s.Name, s.Size, r.Len(), r.Len()-min(next, r.Len()))
		}
		h.Extents = append(h.Extents, Extent{Name: s.Name, Off: next, Len: size})
		next += size
	}
	// Zero everything we hand out, header last so that a crash mid-format
	// leaves a region that does not validate.
	if err := r.Zero(0, next); err != nil {
		return nil, err
	}
	if err := r.Persist(0, next); err != nil {
		return nil, err
	}
	buf := h.encode()
	copy(r.mem[:HeaderSize], buf)
	if err := r.Persist(0, HeaderSize); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Header) encode() []byte {
	b := make([]byte, HeaderSize)
	le := binary.LittleEndian
	copy(b[0:8], headerMagic[:])
	le.PutUint32(b[8:], h.Version)
	le.PutUint32(b[12:], HeaderSize)
	le.PutUint64(b[16:], h.Size)
	le.PutUint32(b[24:], uint32(h.MaxHosts))
	le.PutUint32(b[28:], uint32(len(h.Extents)))
	le.PutUint64(b[32:], uint64(h.Lease))
	le.PutUint64(b[40:], h.HostsOff)
	le.PutUint64(b[48:], h.HostsLen)
	for i, e := range h.Extents {
		p := b[64+32*i:]
		copy(p[:16], e.Name)
		le.PutUint64(p[16:], e.Off)
		le.PutUint64(p[24:], e.Len)
	}
	le.PutUint64(b[crcOff:], crc64.Checksum(b[:crcOff], crcTable))
	return b
}

// ReadHeader decodes and validates the header of r.
func ReadHeader(r *Region) (*Header, error) {
	if r.Len() < HeaderSize {
		return nil, fmt.Errorf("%w: region of %d bytes has no room for a header", ErrCorrupt, r.Len())
	}
	// Copy first: another host could be writing while we validate.
	b := make([]byte, HeaderSize)
	copy(b, r.mem[:HeaderSize])
	return DecodeHeader(b, r.Len())
}

// DecodeHeader validates a header image taken from a region of regionLen bytes.
func DecodeHeader(b []byte, regionLen uint64) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("%w: header is %d bytes, want %d", ErrCorrupt, len(b), HeaderSize)
	}
	le := binary.LittleEndian
	if [8]byte(b[0:8]) != headerMagic {
		return nil, fmt.Errorf("%w: %q", ErrBadMagic, b[0:8])
	}
	if v := le.Uint32(b[8:]); v != HeaderVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrBadVersion, v, HeaderVersion)
	}
	if want, got := le.Uint64(b[crcOff:]), crc64.Checksum(b[:crcOff], crcTable); want != got {
		return nil, fmt.Errorf("%w: stored %#x, computed %#x", ErrBadChecksum, want, got)
	}
	if hs := le.Uint32(b[12:]); hs != HeaderSize {
		return nil, fmt.Errorf("%w: header size field %d, want %d", ErrCorrupt, hs, HeaderSize)
	}
	h := &Header{
		Version:  HeaderVersion,
		Size:     le.Uint64(b[16:]),
		MaxHosts: int(le.Uint32(b[24:])),
		Lease:    time.Duration(le.Uint64(b[32:])),
		HostsOff: le.Uint64(b[40:]),
		HostsLen: le.Uint64(b[48:]),
	}
	if h.Size != regionLen {
		return nil, fmt.Errorf("%w: size field %d, but the region is %d bytes", ErrCorrupt, h.Size, regionLen)
	}
	if h.MaxHosts < 1 || h.MaxHosts > maxHostSlots {
		return nil, fmt.Errorf("%w: host slots field %d, want 1..%d", ErrCorrupt, h.MaxHosts, maxHostSlots)
	}
	if h.Lease < time.Millisecond || h.Lease > time.Hour {
		return nil, fmt.Errorf("%w: lease field %v out of range", ErrCorrupt, h.Lease)
	}
	if h.HostsOff != HeaderSize || h.HostsLen != alignUp(hostTableLen(h.MaxHosts), ExtentAlign) ||
		h.HostsOff+h.HostsLen > regionLen {
		return nil, fmt.Errorf("%w: host table at [%#x, +%#x) for %d slots", ErrCorrupt, h.HostsOff, h.HostsLen, h.MaxHosts)
	}
	if le.Uint64(b[56:]) != 0 {
		return nil, fmt.Errorf("%w: reserved field is not zero", ErrCorrupt)
	}
	n := le.Uint32(b[28:])
	if n > MaxExtents {
		return nil, fmt.Errorf("%w: extent count %d > %d", ErrCorrupt, n, MaxExtents)
	}
	prevEnd := h.HostsOff + h.HostsLen
	for i := range int(n) {
		p := b[64+32*i:]
		name := p[:16]
		l := 0
		for l < 16 && name[l] != 0 {
			l++
		}
		if l == 0 || l > maxNameLen {
			return nil, fmt.Errorf("%w: extent %d has a bad name length", ErrCorrupt, i)
		}
		for _, c := range name[l:] {
			if c != 0 {
				return nil, fmt.Errorf("%w: extent %d name is not NUL padded", ErrCorrupt, i)
			}
		}
		e := Extent{Name: string(name[:l]), Off: le.Uint64(p[16:]), Len: le.Uint64(p[24:])}
		if e.Off%ExtentAlign != 0 || e.Len%ExtentAlign != 0 || e.Len == 0 {
			return nil, fmt.Errorf("%w: extent %q at %#x+%#x is not %d-aligned", ErrCorrupt, e.Name, e.Off, e.Len, ExtentAlign)
		}
		if e.Off < prevEnd || e.Off+e.Len < e.Off || e.Off+e.Len > regionLen {
			return nil, fmt.Errorf("%w: extent %q at [%#x, %#x) overlaps or leaves the region", ErrCorrupt, e.Name, e.Off, e.Off+e.Len)
		}
		for _, o := range h.Extents {
			if o.Name == e.Name {
				return nil, fmt.Errorf("%w: extent %q named twice", ErrCorrupt, e.Name)
			}
		}
		prevEnd = e.Off + e.Len
		h.Extents = append(h.Extents, e)
	}
	for i := 64 + 32*int(n); i < crcOff; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: unused header byte %d is not zero", ErrCorrupt, i)
		}
	}
	return h, nil
}
