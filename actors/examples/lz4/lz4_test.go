package lz4

import (
	"bytes"
	"testing"

	plz4 "github.com/pierrec/lz4/v4"
)

// FuzzDecompress: request bytes come from the region; the decoder must
// reject garbage with an error, never panic, and round-trip what it made.
func FuzzDecompress(f *testing.F) {
	var c plz4.Compressor
	f.Add(Compress(&c, bytes.Repeat([]byte("abc"), 100), nil))
	f.Add(Compress(&c, []byte("x"), nil))
	f.Add([]byte{5, 0, 0, 0, 1, 0x50, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0xff, 0xff, 0xff, 0x00, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		Decompress(b, nil)
		out := Compress(&c, b, nil)
		back, err := Decompress(out, nil)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip of %d bytes: %v", len(b), err)
		}
	})
}
