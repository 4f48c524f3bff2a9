package actors

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Layout of the "actors" extent; docs/ACTORS.md draws it. All offsets
// below are relative to the extent's start, which cxl aligns to 4096.
// Every word written by more than one process is 8-byte aligned and only
// touched through cxl atomics; byte ranges (modules, state buffers,
// request and output data) are published by the word that follows them.
const (
	arenaMagic   = 0x3153544341494f57 // "WIOACTS1" little-endian
	arenaVersion = 1

	// Arena header: immutable fields [0,72), then mutable words.
	ahMagic     = 0
	ahVersion   = 8
	ahLen       = 16
	ahMaxActors = 24
	ahSlots     = 32
	ahMaxReq    = 40
	ahMaxOut    = 48
	ahMaxState  = 56
	ahCRC       = 64
	ahImmutable = 64 // bytes covered by the checksum
	ahBump      = 128
	ahSides     = 192 // one 64-byte record per side: inc, slot, pid
	sideRecLen  = 64
	arenaHdrLen = 4096

	maxSides = 2

	// Actor entry (entryLen bytes each, table at arenaHdrLen).
	entryLen     = 512
	enClaim      = 0   // [namehash 32 | state 8]
	enOwner      = 64  // owner word
	enCommit     = 128 // commit word
	enTail       = 192 // next sequence number to hand to a producer
	enDrainStart = 256 // unix ns of the last DRAINING CAS (informational)
	enBlackout   = 264 // ns of the last blackout (informational)
	enMigrations = 272
	enTakeovers  = 280
	enDesc       = 320 // immutable descriptor, checksummed
	descLen      = 152 // [320,472)
	enDescCRC    = 472

	// Descriptor fields (relative to enDesc).
	dModuleOff  = 0
	dModuleLen  = 8
	dStateSize  = 16
	dStateOff   = 24 // three buffers of stateStride(size) bytes
	dRingOff    = 32
	dSlots      = 40
	dInCap      = 48
	dOutCap     = 56
	dStride     = 64
	dNameLen    = 72
	dName       = 80 // 32 bytes
	dHash       = 112
	dSide       = 144 // side in the low byte, flags above
	descTrusted = 1 << 8
	maxNameLen  = 32

	// Slot header; data follows at slotData.
	slWord   = 0
	slInLen  = 8
	slResult = 16 // outLen | status<<32
	slData   = 64
)

// Claim states of an actor entry.
const (
	claimFree = 0
	claimInit = 1
	claimLive = 2
	claimDead = 3
)

func claimWord(hash uint32, st uint64) uint64 { return uint64(hash)<<32 | st }

// Side is where an actor runs.
type Side uint8

const (
	Host   Side = 0
	Device Side = 1
)

func (s Side) String() string {
	switch s {
	case Host:
		return "host"
	case Device:
		return "device"
	}
	return fmt.Sprintf("side%d", s)
}

// ParseSide parses "host" or "device".
func ParseSide(s string) (Side, error) {
	switch s {
	case "host":
		return Host, nil
	case "device":
		return Device, nil
	}
	return 0, fmt.Errorf("actors: side %q: want host or device", s)
}

// Owner word: [epoch 48 | target 4 | side 4 | state 8].
const (
	ownNone     = 0
	ownRunning  = 1 // side serves the ring
	ownDraining = 2 // side finishes what it took, then hands off to target
	ownHandoff  = 3 // side (the target) may start at epoch
)

type owner struct {
	state  uint8
	side   Side
	target Side
	epoch  uint64
}

func (o owner) word() uint64 {
	return o.epoch<<16 | uint64(o.target&15)<<12 | uint64(o.side&15)<<8 | uint64(o.state)
}

func decodeOwner(w uint64) owner {
	return owner{state: uint8(w), side: Side(w >> 8 & 15), target: Side(w >> 12 & 15), epoch: w >> 16}
}

func (o owner) String() string {
	switch o.state {
	case ownRunning:
		return fmt.Sprintf("running on %v (epoch %d)", o.side, o.epoch)
	case ownDraining:
		return fmt.Sprintf("draining %v->%v (epoch %d)", o.side, o.target, o.epoch)
	case ownHandoff:
		return fmt.Sprintf("handing off to %v (epoch %d)", o.side, o.epoch)
	}
	return fmt.Sprintf("owner state %d", o.state)
}

// Commit word: [epoch 20 | buf 2 | done 42]. One CAS publishes the state
// buffer a request wrote and the completion of that request.
const (
	doneBits  = 42
	doneMask  = 1<<doneBits - 1
	epochBits = 20
	epochMask = 1<<epochBits - 1
)

func commitWord(epoch uint64, buf int, done uint64) uint64 {
	return (epoch&epochMask)<<44 | uint64(buf&3)<<42 | done&doneMask
}

func commitEpoch(w uint64) uint64 { return w >> 44 }
func commitBuf(w uint64) int      { return int(w >> 42 & 3) }
func commitDone(w uint64) uint64  { return w & doneMask }

// shadowBuf picks the buffer a request at epoch writes, never the current
// one; two consecutive epochs use different shadows, so a fenced owner
// that still runs cannot scribble on its successor's work.
func shadowBuf(cur int, epoch uint64) int {
	var others [2]int
	n := 0
	for b := 0; b < 3; b++ {
		if b != cur {
			others[n] = b
			n++
		}
	}
	return others[epoch&1]
}

// Slot word: [seq 40 | host slot 12 | incarnation tag 8 | state 4].
const (
	slotFree      = 0
	slotWriting   = 1
	slotReady     = 2
	slotAbandoned = 3
	seqMask       = 1<<40 - 1
)

type slotWordT struct {
	seq   uint64
	host  int
	tag   uint8
	state uint8
}

func (s slotWordT) word() uint64 {
	return (s.seq&seqMask)<<24 | uint64(s.host&0xfff)<<12 | uint64(s.tag)<<4 | uint64(s.state&15)
}

func decodeSlot(w uint64) slotWordT {
	return slotWordT{seq: w >> 24, host: int(w >> 12 & 0xfff), tag: uint8(w >> 4), state: uint8(w & 15)}
}

func incTag(inc uint64) uint8 {
	return uint8(inc ^ inc>>8 ^ inc>>16 ^ inc>>24 ^ inc>>32 ^ inc>>40 ^ inc>>48 ^ inc>>56)
}

// Completion status, stored in the slot's result word.
const (
	stOK = iota
	stActorError
	stTrap
	stDeadline
	stTooLarge
	stAbandoned
	stBadModule
)

var crcTab = crc32.MakeTable(crc32.Castagnoli)

func align(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

func stateStride(size uint64) uint64 { return align(max(size, 8), 64) }

// arenaHeader is the decoded immutable part of the arena header.
type arenaHeader struct {
	Len       uint64
	MaxActors uint64
	Slots     uint64
	MaxReq    uint64
	MaxOut    uint64
	MaxState  uint64
}

func (h arenaHeader) encode() []byte {
	b := make([]byte, ahImmutable+8)
	le := binary.LittleEndian
	le.PutUint64(b[ahMagic:], arenaMagic)
	le.PutUint64(b[ahVersion:], arenaVersion)
	le.PutUint64(b[ahLen:], h.Len)
	le.PutUint64(b[ahMaxActors:], h.MaxActors)
	le.PutUint64(b[ahSlots:], h.Slots)
	le.PutUint64(b[ahMaxReq:], h.MaxReq)
	le.PutUint64(b[ahMaxOut:], h.MaxOut)
	le.PutUint64(b[ahMaxState:], h.MaxState)
	le.PutUint64(b[ahCRC:], uint64(crc32.Checksum(b[:ahImmutable], crcTab)))
	return b
}

// tableEnd is where bump allocation starts.
func (h arenaHeader) tableEnd() uint64 { return arenaHdrLen + h.MaxActors*entryLen }

// decodeArenaHeader validates the first 72 bytes of an arena against the
// extent's length. It never panics on bad bytes.
func decodeArenaHeader(b []byte, extLen uint64) (arenaHeader, error) {
	le := binary.LittleEndian
	if len(b) < ahImmutable+8 {
		return arenaHeader{}, fmt.Errorf("actors: arena header: %d bytes, need %d: %w", len(b), ahImmutable+8, ErrCorrupt)
	}
	if m := le.Uint64(b[ahMagic:]); m != arenaMagic {
		return arenaHeader{}, fmt.Errorf("actors: arena header: magic %#x, want %#x: %w", m, uint64(arenaMagic), ErrCorrupt)
	}
	if v := le.Uint64(b[ahVersion:]); v != arenaVersion {
		return arenaHeader{}, fmt.Errorf("actors: arena header: version %d, want %d: %w", v, arenaVersion, ErrCorrupt)
	}
	if c := uint64(crc32.Checksum(b[:ahImmutable], crcTab)); c != le.Uint64(b[ahCRC:]) {
		return arenaHeader{}, fmt.Errorf("actors: arena header: checksum %#x, stored %#x: %w", c, le.Uint64(b[ahCRC:]), ErrCorrupt)
	}
	h := arenaHeader{Len: le.Uint64(b[ahLen:]), MaxActors: le.Uint64(b[ahMaxActors:]), Slots: le.Uint64(b[ahSlots:]),
		MaxReq: le.Uint64(b[ahMaxReq:]), MaxOut: le.Uint64(b[ahMaxOut:]), MaxState: le.Uint64(b[ahMaxState:])}
	switch {
	case h.Len != extLen:
		return h, fmt.Errorf("actors: arena header: length %d, extent is %d: %w", h.Len, extLen, ErrCorrupt)
	case h.MaxActors == 0 || h.MaxActors > 1<<16:
		return h, fmt.Errorf("actors: arena header: %d actors: %w", h.MaxActors, ErrCorrupt)
	case h.Slots == 0 || h.Slots > 1<<20:
		return h, fmt.Errorf("actors: arena header: %d ring slots: %w", h.Slots, ErrCorrupt)
	case h.MaxReq == 0 || h.MaxReq > 1<<30 || h.MaxOut == 0 || h.MaxOut > 1<<30:
		return h, fmt.Errorf("actors: arena header: request/output limits %d/%d: %w", h.MaxReq, h.MaxOut, ErrCorrupt)
	case h.MaxState == 0 || h.MaxState > 1<<30:
		return h, fmt.Errorf("actors: arena header: state limit %d: %w", h.MaxState, ErrCorrupt)
	case h.tableEnd() > extLen:
		return h, fmt.Errorf("actors: arena header: table of %d actors overruns the %d-byte extent: %w", h.MaxActors, extLen, ErrCorrupt)
	}
	return h, nil
}

// desc is an actor's immutable descriptor.
type desc struct {
	ModuleOff, ModuleLen uint64
	StateSize, StateOff  uint64
	RingOff, Slots       uint64
	InCap, OutCap        uint64
	Stride               uint64
	Name                 string
	Hash                 [32]byte
	Side                 Side
	Trusted              bool // run without per-call deadline (see Runtime.CompileTrusted)
}

func (d *desc) encode() []byte {
	b := make([]byte, descLen+8)
	le := binary.LittleEndian
	for i, v := range []uint64{d.ModuleOff, d.ModuleLen, d.StateSize, d.StateOff, d.RingOff, d.Slots, d.InCap, d.OutCap, d.Stride, uint64(len(d.Name))} {
		le.PutUint64(b[8*i:], v)
	}
	copy(b[dName:dName+maxNameLen], d.Name)
	copy(b[dHash:dHash+32], d.Hash[:])
	sw := uint64(d.Side)
	if d.Trusted {
		sw |= descTrusted
	}
	le.PutUint64(b[dSide:], sw)
	le.PutUint64(b[descLen:], uint64(crc32.Checksum(b[:descLen], crcTab)))
	return b
}

func (d *desc) slotOff(seq uint64) uint64 { return d.RingOff + seq%d.Slots*d.Stride }

// decodeDesc validates an actor descriptor (descLen+8 bytes) against the
// arena it claims to live in: every range it names must lie in
// [lo, extLen) and within the arena's limits. It never panics.
func decodeDesc(b []byte, h arenaHeader, lo uint64) (desc, error) {
	le := binary.LittleEndian
	var d desc
	if len(b) < descLen+8 {
		return d, fmt.Errorf("actors: actor descriptor: %d bytes: %w", len(b), ErrCorrupt)
	}
	if c := uint64(crc32.Checksum(b[:descLen], crcTab)); c != le.Uint64(b[descLen:]) {
		return d, fmt.Errorf("actors: actor descriptor: checksum %#x, stored %#x: %w", c, le.Uint64(b[descLen:]), ErrCorrupt)
	}
	f := func(i int) uint64 { return le.Uint64(b[8*i:]) }
	d = desc{ModuleOff: f(0), ModuleLen: f(1), StateSize: f(2), StateOff: f(3), RingOff: f(4), Slots: f(5),
		InCap: f(6), OutCap: f(7), Stride: f(8)}
	nameLen := f(9)
	side := le.Uint64(b[dSide:])
	flags := side &^ 0xff
	side &= 0xff
	within := func(off, n uint64) bool { return off >= lo && off <= h.Len && n <= h.Len-off }
	bad := func(what string) (desc, error) {
		return desc{}, fmt.Errorf("actors: actor descriptor: %s: %w", what, ErrCorrupt)
	}
	switch {
	case nameLen == 0 || nameLen > maxNameLen:
		return bad(fmt.Sprintf("name length %d", nameLen))
	case side >= maxSides:
		return bad(fmt.Sprintf("side %d", side))
	case flags&^descTrusted != 0:
		return bad(fmt.Sprintf("unknown flags %#x", flags))
	case d.ModuleLen == 0 || !within(d.ModuleOff, d.ModuleLen):
		return bad(fmt.Sprintf("module [%d,+%d) outside the arena", d.ModuleOff, d.ModuleLen))
	case d.StateSize == 0 || d.StateSize > h.MaxState || d.StateOff%64 != 0 || !within(d.StateOff, 3*stateStride(d.StateSize)):
		return bad(fmt.Sprintf("state [%d,3x%d) invalid", d.StateOff, d.StateSize))
	case d.Slots == 0 || d.Slots > h.Slots:
		return bad(fmt.Sprintf("%d slots", d.Slots))
	case d.InCap == 0 || d.InCap > h.MaxReq || d.OutCap == 0 || d.OutCap > h.MaxOut:
		return bad(fmt.Sprintf("slot capacities %d/%d", d.InCap, d.OutCap))
	case d.Stride%64 != 0 || d.Stride < slData+align(d.InCap, 64)+d.OutCap || d.Stride > 2*(slData+h.MaxReq+h.MaxOut+64):
		return bad(fmt.Sprintf("slot stride %d", d.Stride))
	case d.RingOff%64 != 0 || !within(d.RingOff, d.Slots*d.Stride):
		return bad(fmt.Sprintf("ring [%d,%dx%d) outside the arena", d.RingOff, d.Slots, d.Stride))
	}
	d.Name = string(b[dName : dName+nameLen])
	copy(d.Hash[:], b[dHash:dHash+32])
	d.Side = Side(side)
	d.Trusted = flags&descTrusted != 0
	return d, nil
}

// slotResult decodes a slot's result word against the slot's output capacity.
func slotResult(w, outCap uint64) (n uint64, status int, err error) {
	n, status = w&0xffffffff, int(w>>32)
	if n > outCap || status > stBadModule {
		return 0, 0, fmt.Errorf("actors: slot result: %d bytes, status %d (capacity %d): %w", n, status, outCap, ErrCorrupt)
	}
	return n, status, nil
}
