package pcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"math/bits"
)

// Extent layout (docs/PCACHE.md has the pictures). Offsets are relative to
// the start of the extent, which is 4096-aligned in the region.
//
//	[0, 4096)        header: 256 bytes of fixed fields with a CRC-64, then
//	                 shared words (clock hand, region-wide counters)
//	[recsOff, ...)   host records, 64 bytes each, one per host-table slot
//	[metaOff, ...)   slot metadata, metaSize bytes each
//	[dataOff, ...)   slot data, PageSize bytes each
//
// Header (little-endian):
//
//	0   8  magic "DXPCACHE"
//	8   4  version (1)
//	12  4  page size (4096)
//	16  8  slots
//	24  4  max hosts (the region's host-table slots)
//	28  4  pin bitmap words per slot, ceil(max hosts / 64)
//	32  8  records offset
//	40  8  metadata offset
//	48  8  data offset
//	56  8  extent length
//	64  184 reserved, zero
//	248 8  CRC-64/ECMA of bytes [0, 248)
//	256 8  clock hand (shared, advanced by CAS)
//	264 8  fills (shared counter)
//	272 8  evictions (shared counter)
//	280 8  takeovers: slots taken from dead hosts (shared counter)
const (
	PageSize = 4096
	// Window is the number of slots a page may live in (its probe window).
	Window  = 8
	Version = 1

	hdrFixed    = 256
	hdrCRC      = 248
	hdrSize     = 4096
	hdrHand     = 256
	hdrFills    = 264
	hdrEvicts   = 272
	hdrTakeover = 280

	recSize   = 64
	recInc    = 0 // incarnation of the host that uses this record; 0 = free
	recReaper = 8 // incarnation of the host reaping a dead holder; 0 = none

	// Slot metadata: state word, source id, page, tag generation, then the
	// pin bitmap (one bit per host-table slot).
	metaWord   = 0
	metaSrc    = 8
	metaPage   = 16
	metaTagGen = 24
	metaPins   = 32

	maxHostsLimit = 4096
)

var magic = [8]byte{'D', 'X', 'P', 'C', 'A', 'C', 'H', 'E'}

var crcTable = crc64.MakeTable(crc64.ECMA)

// Sentinel errors.
var (
	// ErrBadFormat reports an extent that does not hold a valid cache.
	ErrBadFormat = errors.New("pcache: not a valid page cache extent")
	// ErrTooSmall reports an extent too small for the asked slot count.
	ErrTooSmall = errors.New("pcache: extent too small")
	// ErrRange reports an offset outside a page.
	ErrRange = errors.New("pcache: offset outside the page")
	// ErrBusy reports a page whose fill by another live host did not finish
	// within the wait bound.
	ErrBusy = errors.New("pcache: page busy (fill by another host did not finish in time)")
	// ErrNoVictim reports a probe window whose every slot stayed pinned or
	// being filled.
	ErrNoVictim = errors.New("pcache: no evictable slot in the probe window (all pinned or pending)")
	// ErrRecordBusy reports that this host's record is still being reaped.
	ErrRecordBusy = errors.New("pcache: host record still being reaped by another host")
	// ErrClosed reports use of a closed cache.
	ErrClosed = errors.New("pcache: cache closed")
)

// Header is the decoded fixed part of the extent header.
type Header struct {
	Version    uint32
	PageSize   uint32
	Slots      uint64
	MaxHosts   int
	PinWords   int
	RecsOff    uint64
	MetaOff    uint64
	DataOff    uint64
	ExtentLen  uint64
	MetaStride uint64
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// geometry computes the layout of a cache with the given slots.
func geometry(slots uint64, maxHosts int) Header {
	pw := (maxHosts + 63) / 64
	h := Header{
		Version:    Version,
		PageSize:   PageSize,
		Slots:      slots,
		MaxHosts:   maxHosts,
		PinWords:   pw,
		MetaStride: metaPins + 8*uint64(pw),
		RecsOff:    hdrSize,
	}
	h.MetaOff = h.RecsOff + alignUp(uint64(maxHosts)*recSize, 4096)
	h.DataOff = h.MetaOff + alignUp(slots*h.MetaStride, 4096)
	h.ExtentLen = h.DataOff + slots*PageSize
	return h
}

// maxSlots is the most slots that fit in length bytes.
func maxSlots(length uint64, maxHosts int) uint64 {
	g := geometry(0, maxHosts)
	if length <= g.DataOff {
		return 0
	}
	n := (length - g.DataOff) / (PageSize + g.MetaStride)
	for n > 0 && geometry(n, maxHosts).ExtentLen > length {
		n--
	}
	return n
}

func (h *Header) encode() []byte {
	b := make([]byte, hdrFixed)
	le := binary.LittleEndian
	copy(b, magic[:])
	le.PutUint32(b[8:], h.Version)
	le.PutUint32(b[12:], h.PageSize)
	le.PutUint64(b[16:], h.Slots)
	le.PutUint32(b[24:], uint32(h.MaxHosts))
	le.PutUint32(b[28:], uint32(h.PinWords))
	le.PutUint64(b[32:], h.RecsOff)
	le.PutUint64(b[40:], h.MetaOff)
	le.PutUint64(b[48:], h.DataOff)
	le.PutUint64(b[56:], h.ExtentLen)
	le.PutUint64(b[hdrCRC:], crc64.Checksum(b[:hdrCRC], crcTable))
	return b
}

// DecodeHeader validates the fixed header bytes b of an extent of extLen
// bytes. It never panics on bad input.
func DecodeHeader(b []byte, extLen uint64) (*Header, error) {
	if len(b) < hdrFixed {
		return nil, fmt.Errorf("%w: header is %d bytes, want %d", ErrBadFormat, len(b), hdrFixed)
	}
	le := binary.LittleEndian
	if [8]byte(b[:8]) != magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadFormat, b[:8])
	}
	if want, got := le.Uint64(b[hdrCRC:]), crc64.Checksum(b[:hdrCRC], crcTable); want != got {
		return nil, fmt.Errorf("%w: header checksum stored %#x, computed %#x", ErrBadFormat, want, got)
	}
	if v := le.Uint32(b[8:]); v != Version {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrBadFormat, v, Version)
	}
	if ps := le.Uint32(b[12:]); ps != PageSize {
		return nil, fmt.Errorf("%w: page size %d, want %d", ErrBadFormat, ps, PageSize)
	}
	for i := 64; i < hdrCRC; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: reserved header byte %d is not zero", ErrBadFormat, i)
		}
	}
	slots := le.Uint64(b[16:])
	mh := le.Uint32(b[24:])
	if mh < 1 || mh > maxHostsLimit {
		return nil, fmt.Errorf("%w: max hosts %d, want 1..%d", ErrBadFormat, mh, maxHostsLimit)
	}
	if slots < Window || slots > extLen/PageSize {
		return nil, fmt.Errorf("%w: %d slots in an extent of %d bytes (need >= %d)", ErrBadFormat, slots, extLen, Window)
	}
	g := geometry(slots, int(mh))
	h := &Header{
		Version: Version, PageSize: PageSize, Slots: slots, MaxHosts: int(mh),
		PinWords:  int(le.Uint32(b[28:])),
		RecsOff:   le.Uint64(b[32:]),
		MetaOff:   le.Uint64(b[40:]),
		DataOff:   le.Uint64(b[48:]),
		ExtentLen: le.Uint64(b[56:]),
	}
	h.MetaStride = g.MetaStride
	if h.PinWords != g.PinWords || h.RecsOff != g.RecsOff || h.MetaOff != g.MetaOff || h.DataOff != g.DataOff || h.ExtentLen != g.ExtentLen {
		return nil, fmt.Errorf("%w: layout fields (pins %d, recs %#x, meta %#x, data %#x, len %#x) do not match the geometry of %d slots and %d hosts",
			ErrBadFormat, h.PinWords, h.RecsOff, h.MetaOff, h.DataOff, h.ExtentLen, slots, mh)
	}
	if h.ExtentLen > extLen {
		return nil, fmt.Errorf("%w: layout needs %d bytes, extent has %d", ErrBadFormat, h.ExtentLen, extLen)
	}
	return h, nil
}

// Slot states.
const (
	StateFree     = 0 // empty; may be claimed
	StatePending  = 1 // claimed by owner, being filled
	StateValid    = 2 // holds the page named by its tag
	StateEvicting = 3 // owner is checking pins before freeing it
)

// The slot word:
//
//	bits 0-1   state
//	bit  2     ref (referenced since last aged)
//	bits 3-14  owner host-table slot (PENDING, EVICTING)
//	bits 15-30 fingerprint of the tag (PENDING, EVICTING, VALID)
//	bits 31-63 generation (33 bits), bumped on every change of identity
const (
	refBit     = 1 << 2
	ownerShift = 3
	ownerMask  = 1<<12 - 1
	fpShift    = 15
	fpMask     = 1<<16 - 1
	genShift   = 31
	genMask    = 1<<33 - 1
)

// SlotWord is a decoded slot word.
type SlotWord struct {
	State uint8
	Ref   bool
	Owner int
	FP    uint16
	Gen   uint64
}

// DecodeSlotWord splits a slot word into its fields. Every 64-bit value
// decodes; Valid says whether the combination can occur.
func DecodeSlotWord(w uint64) SlotWord {
	return SlotWord{
		State: uint8(w & 3),
		Ref:   w&refBit != 0,
		Owner: int(w >> ownerShift & ownerMask),
		FP:    uint16(w >> fpShift & fpMask),
		Gen:   w >> genShift,
	}
}

// Encode packs the fields back into a word.
func (s SlotWord) Encode() uint64 {
	w := uint64(s.State&3) | uint64(s.Owner&ownerMask)<<ownerShift | uint64(s.FP)<<fpShift | (s.Gen&genMask)<<genShift
	if s.Ref {
		w |= refBit
	}
	return w
}

// Valid reports whether the word could have been written by this package:
// FREE words carry no owner, fingerprint or ref; VALID words no owner;
// PENDING and EVICTING words an owner below maxHosts.
func (s SlotWord) Valid(maxHosts int) bool {
	switch s.State {
	case StateFree:
		return !s.Ref && s.Owner == 0 && s.FP == 0
	case StateValid:
		return s.Owner == 0
	case StatePending:
		return s.Owner < maxHosts && !s.Ref
	default:
		return s.Owner < maxHosts
	}
}

func (s SlotWord) String() string {
	names := [4]string{"FREE", "PENDING", "VALID", "EVICTING"}
	r := ""
	if s.Ref {
		r = " ref"
	}
	return fmt.Sprintf("%s gen %d owner %d fp %#04x%s", names[s.State], s.Gen, s.Owner, s.FP, r)
}

func wState(w uint64) uint64 { return w & 3 }
func wGen(w uint64) uint64   { return w >> genShift }
func wOwner(w uint64) int    { return int(w >> ownerShift & ownerMask) }
func wFP(w uint64) uint16    { return uint16(w >> fpShift & fpMask) }
func nextGen(g uint64) uint64 {
	return (g + 1) & genMask
}

func mkWord(state uint64, gen uint64, fp uint16, owner int) uint64 {
	return state | uint64(owner&ownerMask)<<ownerShift | uint64(fp)<<fpShift | (gen&genMask)<<genShift
}

// PinHolders decodes a slot's pin bitmap into the host-table slots that
// hold pins on it. Bits at or above maxHosts are reported as bad.
func PinHolders(words []uint64, maxHosts int) (holders []int, bad int) {
	for i, w := range words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &= w - 1
			h := i*64 + b
			if h >= maxHosts {
				bad++
				continue
			}
			holders = append(holders, h)
		}
	}
	return holders, bad
}

// splitmix64 finaliser: a bijective mix of a 64-bit value.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// tagHash mixes a (source, page) tag. The full tag is stored in the slot
// and compared on every lookup, so collisions cost a probe, never a wrong
// page.
func tagHash(src, page uint64) uint64 { return splitmix64(splitmix64(src) ^ page) }
