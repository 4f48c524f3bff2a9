package pcache

import (
	"testing"
	"time"
)

type nullSrc struct{}

func (nullSrc) ID() uint64                    { return 1 }
func (nullSrc) ReadPage(uint64, []byte) error { return nil }

func benchCache(b *testing.B) *Cache {
	e := newEnv(b, 1024, 256, 2*time.Second)
	c, _ := e.open(b, "bench")
	for p := range uint64(256) {
		if _, err := c.Read(nullSrc{}, p, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

func BenchmarkReadHit64(b *testing.B) {
	c := benchCache(b)
	buf := make([]byte, 64)
	for i := 0; b.Loop(); i++ {
		c.Read(nullSrc{}, uint64(i%256), 0, buf)
	}
}

func BenchmarkReadHit4K(b *testing.B) {
	c := benchCache(b)
	buf := make([]byte, PageSize)
	for i := 0; b.Loop(); i++ {
		c.Read(nullSrc{}, uint64(i%256), 0, buf)
	}
}

func BenchmarkPinUnpin(b *testing.B) {
	c := benchCache(b)
	for i := 0; b.Loop(); i++ {
		p, _ := c.Pin(nullSrc{}, uint64(i%256))
		p.Unpin()
	}
}

func BenchmarkCopy4K(b *testing.B) {
	e := newEnv(b, 1024, 256, 2*time.Second)
	src := e.r.Bytes(e.ext.Off+4096*64, PageSize)
	buf := make([]byte, PageSize)
	for b.Loop() {
		copy(buf, src)
	}
}
