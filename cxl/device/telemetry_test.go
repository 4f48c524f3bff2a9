package device

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTelemetryRoundTrip(t *testing.T) {
	m := newMemWords(256)
	if _, err := ReadTelemetry(m, 64); !errors.Is(err, ErrNoTelemetry) {
		t.Fatalf("empty region: %v", err)
	}
	tel, err := NewTelemetry(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTelemetry(m, 64); !errors.Is(err, ErrNoTelemetry) {
		t.Fatalf("before the first publish: %v", err)
	}
	wall := time.Unix(1_700_000_000, 123456789)
	in := Sample{TempC: 76.543, Factor: 0.625, PowerW: 18.25, Events: 3, Wall: wall, Throttled: true}
	tel.Publish(in)
	tel.Publish(in)
	got, err := ReadTelemetry(m, 64)
	if err != nil {
		t.Fatal(err)
	}
	in.Seq = 4
	if got.Seq != 4 || got.TempC != in.TempC || got.Factor != in.Factor || got.PowerW != in.PowerW ||
		got.Events != 3 || !got.Wall.Equal(wall) || !got.Throttled {
		t.Fatalf("got %+v want %+v", got, in)
	}
	// Bytes form matches the words form.
	b := EncodeTelemetry(got)
	got2, err := DecodeTelemetry(b)
	if err != nil || got2 != got {
		t.Fatalf("decode(encode) = %+v, %v", got2, err)
	}
}

func TestTelemetryOffsets(t *testing.T) {
	m := newMemWords(128)
	if _, err := NewTelemetry(m, 4); err == nil {
		t.Fatal("accepted unaligned offset")
	}
	if _, err := NewTelemetry(m, 72); err == nil {
		t.Fatal("accepted offset past the end")
	}
	if _, err := ReadTelemetry(m, 1<<62); err == nil {
		t.Fatal("read past the end")
	}
}

// A publisher that died mid-publish leaves seq odd: readers give up with
// ErrTorn (they never return half a record), and a new publisher repairs it.
func TestTelemetryDeadPublisher(t *testing.T) {
	m := newMemWords(64)
	tel, _ := NewTelemetry(m, 0)
	tel.Publish(Sample{TempC: 50, Factor: 1})
	m.Add(offSeq, 1) // writer started a publish and died
	if _, err := ReadTelemetry(m, 0); !errors.Is(err, ErrTorn) {
		t.Fatalf("err %v, want ErrTorn", err)
	}
	tel, _ = NewTelemetry(m, 0)
	tel.Publish(Sample{TempC: 51, Factor: 1})
	if s, err := ReadTelemetry(m, 0); err != nil || s.TempC != 51 {
		t.Fatalf("%+v %v", s, err)
	}
}

// Concurrent publisher and readers: every read is one whole record (the
// fields of a record are tied together by construction).
func TestTelemetrySeqlockConsistent(t *testing.T) {
	m := newMemWords(64)
	tel, _ := NewTelemetry(m, 0)
	tel.Publish(Sample{})
	var writer, readers sync.WaitGroup
	stop := make(chan struct{})
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := uint64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tel.Publish(Sample{TempC: float64(i % 1000), PowerW: float64(i % 1000), Events: i,
				Factor: float64(i%1000) / 1000})
		}
	}()
	for r := 0; r < 3; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var last uint64
			for n := 0; n < 20000; n++ {
				s, err := ReadTelemetry(m, 0)
				if errors.Is(err, ErrTorn) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if s.Seq < last {
					t.Errorf("seq went back %d -> %d", last, s.Seq)
				}
				last = s.Seq
				if s.Events != 0 && (uint64(s.TempC) != s.Events%1000 || s.PowerW != s.TempC ||
					math.Abs(s.Factor-s.TempC/1000) > 1e-9) {
					t.Errorf("torn record %+v", s)
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	writer.Wait()
}

func TestDecodeTelemetryRejects(t *testing.T) {
	good := EncodeTelemetry(Sample{TempC: 40, Factor: 1, PowerW: 10})
	mut := func(word int, v uint64) []byte {
		b := bytes.Clone(good)
		for i := 0; i < 8; i++ {
			b[word*8+i] = byte(v >> (8 * i))
		}
		return b
	}
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"short":    {good[:63], ErrBadTelemetry},
		"magic":    {mut(0, 1), ErrNoTelemetry},
		"odd seq":  {mut(1, 3), ErrBadTelemetry},
		"too hot":  {mut(2, 2_000_000), ErrBadTelemetry},
		"too cold": {mut(2, uint64(1<<64-300_000)), ErrBadTelemetry},
		"factor":   {mut(3, 1_000_001), ErrBadTelemetry},
		"power":    {mut(4, 1<<40), ErrBadTelemetry},
		"wall":     {mut(6, 1<<63), ErrBadTelemetry},
		"flags":    {mut(7, 2), ErrBadTelemetry},
	}
	for name, c := range cases {
		if _, err := DecodeTelemetry(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	f.Add(EncodeTelemetry(Sample{TempC: 77.5, Factor: 0.5, PowerW: 25, Events: 2, Throttled: true,
		Wall: time.Unix(1, 2)}))
	f.Add(make([]byte, TelemetrySize))
	f.Add([]byte("WIOTEL01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeTelemetry(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if got := EncodeTelemetry(s); !bytes.Equal(got, b) {
			t.Fatalf("re-encode differs:\n%x\n%x", got, b)
		}
	})
}

func FuzzReadTrace(f *testing.F) {
	f.Add("time_s,temp_c,throughput\n0,70,2000\n10,70.25,2000\n")
	f.Add("# c\n0,1,1\n")
	f.Add("0,1,1\n1,2,0\n2,3,5\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ReadTrace(strings.NewReader(s))
		if err != nil {
			return
		}
		if tr.Len() == 0 {
			t.Fatal("no rows without error")
		}
		pts := tr.Points()
		for i, p := range pts {
			if p.Factor < 0 || p.Factor > 1 || (i > 0 && p.At <= pts[i-1].At) {
				t.Fatalf("row %d: %+v", i, p)
			}
		}
		for _, at := range []time.Duration{0, tr.Duration() / 2, tr.Duration(), tr.Duration() + 1} {
			p := tr.At(at)
			if p.Factor < 0 || p.Factor > 1 || math.IsNaN(p.TempC) {
				t.Fatalf("At(%v) = %+v", at, p)
			}
		}
	})
}
