package device

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/internal/proctest"
)

var _ Words = (*cxl.Region)(nil)

func TestMain(m *testing.M) {
	proctest.Register("telemetry-publisher", publisherChild)
	proctest.Main(m)
}

// publisherChild publishes n linked samples at offset 64 of the region file.
func publisherChild(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want path and count, got %q", args)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	r, err := cxl.Open(args[0], cxl.OpenOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	tel, err := NewTelemetry(r, 64)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		tel.Publish(Sample{TempC: float64(i % 997), PowerW: float64(i % 997), Events: uint64(i)})
	}
	return nil
}

// A publisher in another process and a reader here: every read is a whole
// record and the heartbeat only moves forward.
func TestTelemetryAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	r, err := cxl.Open(path, cxl.OpenOptions{Create: true, Size: 65536})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 200000
	c := proctest.Start(t, "telemetry-publisher", path, strconv.Itoa(n))
	errc := make(chan error, 1)
	go func() { errc <- c.Wait() }()
	var last uint64
	reads := 0
	for done := false; !done; {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		s, err := ReadTelemetry(r, 64)
		if errors.Is(err, ErrNoTelemetry) || errors.Is(err, ErrTorn) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		reads++
		if s.Seq < last {
			t.Fatalf("heartbeat went back %d -> %d", last, s.Seq)
		}
		last = s.Seq
		if s.Events != 0 && (s.Events%997 != uint64(s.TempC) || s.PowerW != s.TempC) {
			t.Fatalf("torn record across processes: %+v", s)
		}
	}
	s, err := ReadTelemetry(r, 64)
	if err != nil || s.Seq != 2*n || s.Events != n {
		t.Fatalf("final %+v %v", s, err)
	}
	t.Logf("%d consistent reads while the other process published", reads)
}
