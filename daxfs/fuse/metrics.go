package fuse

import (
	"time"

	"github.com/daxwio/daxwio/daxfs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
)

// FUSE operations we count (the op label).
const (
	opLookup = iota
	opForget
	opGetattr
	opSetattr
	opMknod
	opMkdir
	opUnlink
	opRmdir
	opRename
	opLink
	opSymlink
	opReadlink
	opCreate
	opOpen
	opRead
	opWrite
	opFlush
	opFsync
	opFallocate
	opRelease
	opOpendir
	opReaddir
	opReaddirplus
	opReleasedir
	opFsyncdir
	opStatfs
	opLseek
	opStatx
	numOps
)

var opNames = [numOps]string{
	"lookup", "forget", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename", "link",
	"symlink", "readlink", "create", "open", "read", "write", "flush", "fsync", "fallocate", "release",
	"opendir", "readdir", "readdirplus", "releasedir", "fsyncdir", "statfs", "lseek", "statx",
}

// Metrics are the Prometheus metrics of one mount. Label children are
// resolved once here; a request touches only its op's counters.
type Metrics struct {
	ops           [numOps]opMetrics
	readBytes     prometheus.Counter
	writeBytes    prometheus.Counter
	invalidations prometheus.Counter
}

type opMetrics struct {
	reqs prometheus.Counter
	errs prometheus.Counter
	dur  prometheus.Observer
}

// NewMetrics registers the FUSE request metrics on reg, and, when fs is
// non-nil, gauges and counters read from the filesystem at scrape time
// (pool and inode usage from Statfs, this host's overlay and epoch
// counters from Stats, the region's namespace change counter).
func NewMetrics(reg prometheus.Registerer, fs *daxfs.FS) *Metrics {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "daxfs_fuse_requests_total", Help: "FUSE requests served, by operation.",
	}, []string{"op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "daxfs_fuse_request_errors_total", Help: "FUSE requests answered with an error, by operation.",
	}, []string{"op"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "daxfs_fuse_request_duration_seconds",
		Help:    "Time to serve a FUSE request in the daemon, by operation.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 11), // 1µs .. ~1s
	}, []string{"op"})
	m := &Metrics{
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "daxfs_fuse_read_bytes_total", Help: "Bytes returned by FUSE reads."}),
		writeBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "daxfs_fuse_write_bytes_total", Help: "Bytes accepted by FUSE writes."}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "daxfs_fuse_entry_invalidations_total", Help: "Kernel name-cache entries invalidated by the change-counter watcher."}),
	}
	reg.MustRegister(reqs, errs, dur, m.readBytes, m.writeBytes, m.invalidations)
	for i, n := range opNames {
		m.ops[i] = opMetrics{reqs: reqs.WithLabelValues(n), errs: errs.WithLabelValues(n), dur: dur.WithLabelValues(n)}
	}
	if fs != nil {
		registerFS(reg, fs)
	}
	return m
}

func registerFS(reg prometheus.Registerer, fs *daxfs.FS) {
	gauge := func(name, help string, f func(daxfs.Statfs) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(fs.Statfs()) })
	}
	st := fs.Stats()
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(
		gauge("daxfs_pool_size_bytes", "Bytes in the region's object pool.", func(s daxfs.Statfs) float64 { return float64(s.TotalBytes) }),
		gauge("daxfs_pool_used_bytes", "Pool bytes in live objects (all hosts).", func(s daxfs.Statfs) float64 { return float64(s.UsedBytes) }),
		gauge("daxfs_pool_free_bytes", "Pool bytes free (all hosts).", func(s daxfs.Statfs) float64 { return float64(s.FreeBytes) }),
		gauge("daxfs_inodes_free", "Files that still fit in the free pool.", func(s daxfs.Statfs) float64 { return float64(s.FreeInodes) }),
		gauge("daxfs_hosts_live", "Hosts with a live lease in the region's host table.", func(s daxfs.Statfs) float64 { return float64(s.Hosts) }),
		counter("daxfs_namespace_changes_total", "The region's namespace change counter (creates, unlinks, renames, links by any host).", fs.Changes),
		counter("daxfs_overlay_cas_retries_total", "Failed CAS attempts on shared words by this host.", st.CASRetries.Load),
		counter("daxfs_pool_allocs_total", "Pool objects allocated by this host.", st.Allocs.Load),
		counter("daxfs_pool_frees_total", "Pool objects freed by this host.", st.Frees.Load),
		counter("daxfs_epoch_retired_total", "Objects this host handed to epoch reclamation.", st.Retired.Load),
		counter("daxfs_epoch_reclaimed_total", "Objects freed after their grace period by this host.", st.Reclaimed.Load),
		counter("daxfs_epoch_advances_total", "Global epoch advances made by this host.", st.EpochAdvance.Load),
		counter("daxfs_hosts_reaped_total", "Dead hosts' records taken over by this host.", st.Reaped.Load),
	)
}

func (m *Metrics) wrap(fs gofuse.RawFileSystem) gofuse.RawFileSystem {
	return &instrumented{RawFileSystem: fs, m: m}
}

func (m *Metrics) done(op int, start time.Time, s gofuse.Status) {
	o := &m.ops[op]
	o.reqs.Inc()
	if s != gofuse.OK {
		o.errs.Inc()
	}
	o.dur.Observe(time.Since(start).Seconds())
}

// instrumented counts and times every request of a RawFileSystem.
type instrumented struct {
	gofuse.RawFileSystem
	m *Metrics
}

type (
	cancelT = <-chan struct{}
	status  = gofuse.Status
)

func (i *instrumented) Lookup(c cancelT, h *gofuse.InHeader, name string, out *gofuse.EntryOut) status {
	t := time.Now()
	s := i.RawFileSystem.Lookup(c, h, name, out)
	i.m.done(opLookup, t, s)
	return s
}

func (i *instrumented) Forget(nodeid, nlookup uint64) {
	t := time.Now()
	i.RawFileSystem.Forget(nodeid, nlookup)
	i.m.done(opForget, t, gofuse.OK)
}

func (i *instrumented) GetAttr(c cancelT, in *gofuse.GetAttrIn, out *gofuse.AttrOut) status {
	t := time.Now()
	s := i.RawFileSystem.GetAttr(c, in, out)
	i.m.done(opGetattr, t, s)
	return s
}

func (i *instrumented) SetAttr(c cancelT, in *gofuse.SetAttrIn, out *gofuse.AttrOut) status {
	t := time.Now()
	s := i.RawFileSystem.SetAttr(c, in, out)
	i.m.done(opSetattr, t, s)
	return s
}

func (i *instrumented) Mknod(c cancelT, in *gofuse.MknodIn, name string, out *gofuse.EntryOut) status {
	t := time.Now()
	s := i.RawFileSystem.Mknod(c, in, name, out)
	i.m.done(opMknod, t, s)
	return s
}

func (i *instrumented) Mkdir(c cancelT, in *gofuse.MkdirIn, name string, out *gofuse.EntryOut) status {
	t := time.Now()
	s := i.RawFileSystem.Mkdir(c, in, name, out)
	i.m.done(opMkdir, t, s)
	return s
}

func (i *instrumented) Unlink(c cancelT, h *gofuse.InHeader, name string) status {
	t := time.Now()
	s := i.RawFileSystem.Unlink(c, h, name)
	i.m.done(opUnlink, t, s)
	return s
}

func (i *instrumented) Rmdir(c cancelT, h *gofuse.InHeader, name string) status {
	t := time.Now()
	s := i.RawFileSystem.Rmdir(c, h, name)
	i.m.done(opRmdir, t, s)
	return s
}

func (i *instrumented) Rename(c cancelT, in *gofuse.RenameIn, oldName, newName string) status {
	t := time.Now()
	s := i.RawFileSystem.Rename(c, in, oldName, newName)
	i.m.done(opRename, t, s)
	return s
}

func (i *instrumented) Link(c cancelT, in *gofuse.LinkIn, name string, out *gofuse.EntryOut) status {
	t := time.Now()
	s := i.RawFileSystem.Link(c, in, name, out)
	i.m.done(opLink, t, s)
	return s
}

func (i *instrumented) Symlink(c cancelT, h *gofuse.InHeader, target, name string, out *gofuse.EntryOut) status {
	t := time.Now()
	s := i.RawFileSystem.Symlink(c, h, target, name, out)
	i.m.done(opSymlink, t, s)
	return s
}

func (i *instrumented) Readlink(c cancelT, h *gofuse.InHeader) ([]byte, status) {
	t := time.Now()
	b, s := i.RawFileSystem.Readlink(c, h)
	i.m.done(opReadlink, t, s)
	return b, s
}

func (i *instrumented) Create(c cancelT, in *gofuse.CreateIn, name string, out *gofuse.CreateOut) status {
	t := time.Now()
	s := i.RawFileSystem.Create(c, in, name, out)
	i.m.done(opCreate, t, s)
	return s
}

func (i *instrumented) Open(c cancelT, in *gofuse.OpenIn, out *gofuse.OpenOut) status {
	t := time.Now()
	s := i.RawFileSystem.Open(c, in, out)
	i.m.done(opOpen, t, s)
	return s
}

func (i *instrumented) Read(c cancelT, in *gofuse.ReadIn, buf []byte) (gofuse.ReadResult, status) {
	t := time.Now()
	r, s := i.RawFileSystem.Read(c, in, buf)
	i.m.done(opRead, t, s)
	if s == gofuse.OK && r != nil {
		i.m.readBytes.Add(float64(r.Size()))
	}
	return r, s
}

func (i *instrumented) Write(c cancelT, in *gofuse.WriteIn, data []byte) (uint32, status) {
	t := time.Now()
	n, s := i.RawFileSystem.Write(c, in, data)
	i.m.done(opWrite, t, s)
	i.m.writeBytes.Add(float64(n))
	return n, s
}

func (i *instrumented) Writev(c cancelT, in *gofuse.WriteIn, data [][]byte) (uint32, status) {
	t := time.Now()
	n, s := i.RawFileSystem.Writev(c, in, data)
	i.m.done(opWrite, t, s)
	i.m.writeBytes.Add(float64(n))
	return n, s
}

func (i *instrumented) Flush(c cancelT, in *gofuse.FlushIn) status {
	t := time.Now()
	s := i.RawFileSystem.Flush(c, in)
	i.m.done(opFlush, t, s)
	return s
}

func (i *instrumented) Fsync(c cancelT, in *gofuse.FsyncIn) status {
	t := time.Now()
	s := i.RawFileSystem.Fsync(c, in)
	i.m.done(opFsync, t, s)
	return s
}

func (i *instrumented) Fallocate(c cancelT, in *gofuse.FallocateIn) status {
	t := time.Now()
	s := i.RawFileSystem.Fallocate(c, in)
	i.m.done(opFallocate, t, s)
	return s
}

func (i *instrumented) Release(c cancelT, in *gofuse.ReleaseIn) {
	t := time.Now()
	i.RawFileSystem.Release(c, in)
	i.m.done(opRelease, t, gofuse.OK)
}

func (i *instrumented) OpenDir(c cancelT, in *gofuse.OpenIn, out *gofuse.OpenOut) status {
	t := time.Now()
	s := i.RawFileSystem.OpenDir(c, in, out)
	i.m.done(opOpendir, t, s)
	return s
}

func (i *instrumented) ReadDir(c cancelT, in *gofuse.ReadIn, out *gofuse.DirEntryList) status {
	t := time.Now()
	s := i.RawFileSystem.ReadDir(c, in, out)
	i.m.done(opReaddir, t, s)
	return s
}

func (i *instrumented) ReadDirPlus(c cancelT, in *gofuse.ReadIn, out *gofuse.DirEntryList) status {
	t := time.Now()
	s := i.RawFileSystem.ReadDirPlus(c, in, out)
	i.m.done(opReaddirplus, t, s)
	return s
}

func (i *instrumented) ReleaseDir(in *gofuse.ReleaseIn) {
	t := time.Now()
	i.RawFileSystem.ReleaseDir(in)
	i.m.done(opReleasedir, t, gofuse.OK)
}

func (i *instrumented) FsyncDir(c cancelT, in *gofuse.FsyncIn) status {
	t := time.Now()
	s := i.RawFileSystem.FsyncDir(c, in)
	i.m.done(opFsyncdir, t, s)
	return s
}

func (i *instrumented) StatFs(c cancelT, h *gofuse.InHeader, out *gofuse.StatfsOut) status {
	t := time.Now()
	s := i.RawFileSystem.StatFs(c, h, out)
	i.m.done(opStatfs, t, s)
	return s
}

func (i *instrumented) Lseek(c cancelT, in *gofuse.LseekIn, out *gofuse.LseekOut) status {
	t := time.Now()
	s := i.RawFileSystem.Lseek(c, in, out)
	i.m.done(opLseek, t, s)
	return s
}

func (i *instrumented) Statx(c cancelT, in *gofuse.StatxIn, out *gofuse.StatxOut) status {
	t := time.Now()
	s := i.RawFileSystem.Statx(c, in, out)
	i.m.done(opStatx, t, s)
	return s
}
