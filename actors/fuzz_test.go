package actors

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Every decoder of bytes read from the region has a fuzz target: it must
// reject bad input with ErrCorrupt and never panic, and what it accepts
// must be internally consistent.

func validHeader() arenaHeader {
	return arenaHeader{Len: 1 << 20, MaxActors: 4, Slots: 8, MaxReq: 4096, MaxOut: 5120, MaxState: 4096}
}

func FuzzArenaHeader(f *testing.F) {
	good := validHeader().encode()
	f.Add(good, uint64(1<<20))
	f.Add(good[:10], uint64(1<<20))
	bad := append([]byte(nil), good...)
	bad[ahSlots] = 0
	f.Add(bad, uint64(1<<20))
	f.Add(make([]byte, 72), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, extLen uint64) {
		h, err := decodeArenaHeader(b, extLen)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if h.tableEnd() > extLen || h.Slots == 0 || h.MaxActors == 0 {
			t.Fatalf("accepted inconsistent header %+v for extent %d", h, extLen)
		}
		if string(h.encode()) != string(b[:ahImmutable+8]) {
			t.Fatal("accepted header does not re-encode to the same bytes")
		}
	})
}

func validDesc(h arenaHeader) desc {
	d := desc{ModuleOff: h.tableEnd(), ModuleLen: 100, StateSize: 64, Slots: 8, InCap: h.MaxReq, OutCap: h.MaxOut, Name: "a", Side: Device}
	d.StateOff = align(d.ModuleOff+d.ModuleLen, 64)
	d.Stride = align(slData+align(d.InCap, 64)+d.OutCap, 64)
	d.RingOff = d.StateOff + 3*stateStride(d.StateSize)
	return d
}

func FuzzActorDescriptor(f *testing.F) {
	h := validHeader()
	d := validDesc(h)
	f.Add(d.encode())
	f.Add(d.encode()[:20])
	d2 := d
	d2.RingOff = h.Len - 64
	f.Add(d2.encode())
	d3 := d
	d3.Name = ""
	f.Add(d3.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeDesc(b, h, h.tableEnd())
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		in := func(off, n uint64) bool { return off >= h.tableEnd() && off+n <= h.Len && off+n >= off }
		if !in(got.ModuleOff, got.ModuleLen) || !in(got.StateOff, 3*stateStride(got.StateSize)) ||
			!in(got.RingOff, got.Slots*got.Stride) || got.Stride < slData+align(got.InCap, 64)+got.OutCap ||
			got.Slots == 0 || len(got.Name) == 0 {
			t.Fatalf("accepted descriptor with ranges outside the arena: %+v", got)
		}
		for s := uint64(0); s < 2*got.Slots; s++ {
			if so := got.slotOff(s); so+got.Stride > h.Len {
				t.Fatalf("slot %d at %d overruns the arena", s, so)
			}
		}
	})
}

func FuzzRingSlot(f *testing.F) {
	f.Add(slotWordT{seq: 5, host: 3, tag: 9, state: slotReady}.word(), uint64(17)|uint64(stTrap)<<32, uint64(4096))
	f.Add(^uint64(0), ^uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, w, result, outCap uint64) {
		sw := decodeSlot(w)
		if sw.word() != w {
			t.Fatalf("slot word %#x decodes to %+v which encodes to %#x", w, sw, sw.word())
		}
		n, status, err := slotResult(result, outCap)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if n > outCap || status < 0 || status > stBadModule {
			t.Fatalf("accepted result %d bytes status %d over capacity %d", n, status, outCap)
		}
		_ = statusErr("x", 0, status, nil)
	})
}

func FuzzOwnerAndCommitWords(f *testing.F) {
	f.Add(owner{state: ownDraining, side: Host, target: Device, epoch: 77}.word(), commitWord(77, 2, 1234))
	f.Fuzz(func(t *testing.T, ow, cw uint64) {
		o := decodeOwner(ow)
		_ = o.String()
		if decodeOwner(o.word()) != o {
			t.Fatalf("owner word %#x does not round-trip", ow)
		}
		c := commitWord(commitEpoch(cw), commitBuf(cw), commitDone(cw))
		if c != cw {
			t.Fatalf("commit word %#x re-encodes to %#x", cw, c)
		}
		if b := commitBuf(cw); b <= 2 {
			if s := shadowBuf(b, commitEpoch(cw)); s == b || s > 2 {
				t.Fatalf("shadow %d of buffer %d", s, b)
			}
		}
	})
}

// FuzzArenaBytes scribbles on the arena header and actor table of a real
// region and checks that opening, listing and looking up never panic.
func FuzzArenaBytes(f *testing.F) {
	h := validHeader()
	d := validDesc(h)
	f.Add(uint16(0), validHeader().encode())
	f.Add(uint16(arenaHdrLen+enDesc), d.encode())
	f.Add(uint16(arenaHdrLen+enClaim), binary.LittleEndian.AppendUint64(nil, claimWord(nameHash("a"), claimLive)))
	f.Add(uint16(arenaHdrLen+enCommit), binary.LittleEndian.AppendUint64(nil, ^uint64(0)))
	path := filepath.Join(f.TempDir(), "region")
	testRegion(f, path, 3*time.Second, ArenaOptions{MaxActors: 4, Slots: 4, MaxRequest: 1024})
	f.Fuzz(func(t *testing.T, off uint16, b []byte) {
		p := openProc(t, path, "fuzz")
		ext := p.a.base
		saved := append([]byte(nil), p.r.Bytes(ext, 3*arenaHdrLen)...)
		defer copy(p.r.Bytes(ext, 3*arenaHdrLen), saved)
		o := uint64(off) % (3 * arenaHdrLen)
		copy(p.r.Bytes(ext+o, min(uint64(len(b)), 3*arenaHdrLen-o)), b)
		hdr, _ := readHeaderForTest(p)
		a, err := OpenArena(p.r, hdr, p.a.hosts, nil)
		if err != nil {
			return
		}
		a.Status()
		if i, err := a.Lookup("a"); err == nil {
			a.State("a")
			_ = i
		}
	})
}
