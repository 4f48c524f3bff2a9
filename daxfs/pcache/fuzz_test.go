package pcache

import (
	"encoding/binary"
	"testing"
)

func FuzzDecodeHeader(f *testing.F) {
	g := geometry(64, 16)
	f.Add(g.encode(), g.ExtentLen)
	f.Add(g.encode(), uint64(4096))
	f.Add(make([]byte, hdrFixed), uint64(1<<20))
	f.Fuzz(func(t *testing.T, b []byte, extLen uint64) {
		h, err := DecodeHeader(b, extLen)
		if err != nil {
			return
		}
		if h.ExtentLen > extLen || h.Slots < Window || h.DataOff+h.Slots*PageSize != h.ExtentLen || h.MetaOff+h.Slots*h.MetaStride > h.DataOff {
			t.Fatalf("accepted an inconsistent header: %+v for %d bytes", h, extLen)
		}
		if string(h.encode()) != string(b[:hdrFixed]) {
			t.Fatalf("header does not re-encode to its bytes")
		}
	})
}

func FuzzSlotWord(f *testing.F) {
	f.Add(uint64(0))
	f.Add(mkWord(StatePending, 7, 0xbeef, 3))
	f.Add(^uint64(0))
	f.Fuzz(func(t *testing.T, w uint64) {
		d := DecodeSlotWord(w)
		if d.Encode() != w {
			t.Fatalf("%#x decodes to %v, re-encodes to %#x", w, d, d.Encode())
		}
		if wState(w) != uint64(d.State) || wGen(w) != d.Gen || wOwner(w) != d.Owner || wFP(w) != d.FP {
			t.Fatalf("accessors disagree with DecodeSlotWord for %#x", w)
		}
		if nw, ok := released(w); ok && !DecodeSlotWord(nw).Valid(4096) {
			t.Fatalf("releasing %v gives an invalid word %v", d, DecodeSlotWord(nw))
		}
		_ = d.String()
	})
}

func FuzzPinHolders(f *testing.F) {
	f.Add(uint64(1), uint64(0), 64)
	f.Add(^uint64(0), ^uint64(0), 70)
	f.Fuzz(func(t *testing.T, a, b uint64, maxHosts int) {
		holders, bad := PinHolders([]uint64{a, b}, maxHosts)
		seen := map[int]bool{}
		for _, h := range holders {
			if h < 0 || h >= maxHosts || h >= 128 || seen[h] {
				t.Fatalf("holder %d of %d hosts (dup %v)", h, maxHosts, seen[h])
			}
			seen[h] = true
		}
		if len(holders)+bad != popcount(a)+popcount(b) {
			t.Fatalf("%d holders + %d bad != %d bits", len(holders), bad, popcount(a)+popcount(b))
		}
	})
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// FuzzInspectImage feeds arbitrary metadata (slot words, tags, pin
// bitmaps, host records) behind a valid header: the scan never panics and
// its counts add up.
func FuzzInspectImage(f *testing.F) {
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{2, 0, 0, 0x80, 0, 0, 0, 0, 1, 2, 3}, uint8(5))
	f.Fuzz(func(t *testing.T, meta []byte, mode uint8) {
		g := geometry(Window+uint64(mode%8), 1+int(mode)%100)
		img := make([]byte, g.DataOff)
		copy(img, g.encode())
		// Spread the fuzz bytes over records and slot metadata.
		for i, b := range meta {
			o := hdrFixed + uint64(i)*37%(g.DataOff-hdrFixed)
			img[o] = b
		}
		if mode&1 == 1 && len(meta) >= 8 {
			binary.LittleEndian.PutUint64(img[g.MetaOff:], binary.LittleEndian.Uint64(meta))
		}
		rep, err := InspectImage(img, g.ExtentLen)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Free+rep.Pending+rep.Valid+rep.Evicting != rep.Slots {
			t.Fatalf("states do not add up: %v", rep)
		}
		_ = rep.String()
		if _, err := InspectImage(img[:len(img)/2], g.ExtentLen); err == nil {
			t.Fatal("accepted a truncated image")
		}
	})
}
