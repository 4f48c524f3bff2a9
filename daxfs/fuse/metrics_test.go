package fuse

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/daxfs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// TestMetrics: names follow Prometheus conventions (promlint) and a request
// through the instrumented file system is counted under its op. Needs no
// mount.
func TestMetrics(t *testing.T) {
	path := newRegion(t, 32<<20)
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fs, err := daxfs.Open(r, daxfs.Options{Name: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, fs)
	raw := m.wrap(gofuse.NewDefaultRawFileSystem())
	var out gofuse.StatfsOut
	raw.StatFs(nil, &gofuse.InHeader{}, &out)
	if got := testutil.ToFloat64(m.ops[opStatfs].reqs); got != 1 {
		t.Errorf("statfs requests: %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.ops[opStatfs].errs); got != 1 {
		t.Errorf("statfs errors (default FS answers ENOSYS): %v, want 1", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(reg, "daxfs_pool_size_bytes", "daxfs_namespace_changes_total"); err != nil || n != 2 {
		t.Errorf("filesystem gauges: %d, %v", n, err)
	}
}
