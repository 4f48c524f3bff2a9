package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/cxl"
)

// regionFlags are shared by every command.
type regionFlags struct {
	path string
}

func (r *regionFlags) add(fs *flag.FlagSet) {
	def := os.Getenv("WIO_REGION")
	if def == "" {
		def = cxl.DefaultPath("wio")
	}
	fs.StringVar(&r.path, "region", def, "shared region (file, /dev/daxX.Y or PCI resource); $WIO_REGION")
}

// session is an open region joined as one host.
type session struct {
	r    *cxl.Region
	hdr  *cxl.Header
	ht   *cxl.HostTable
	host *cxl.Host
	a    *actors.Arena
}

func (s *session) close() {
	if s.host != nil {
		s.host.Leave()
	}
	s.r.Close()
}

// open opens the region, joins its host table as name and opens the actor
// arena (formatting it with ao if it never was).
func open(path, name string, ao *actors.ArenaOptions) (*session, error) {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		return nil, err
	}
	s := &session{r: r}
	if s.hdr, err = cxl.ReadHeader(r); err != nil {
		r.Close()
		return nil, err
	}
	if s.ht, err = cxl.OpenHostTable(r, s.hdr); err != nil {
		r.Close()
		return nil, err
	}
	if s.host, err = s.ht.Join(cxl.JoinOptions{Name: name}); err != nil {
		r.Close()
		return nil, err
	}
	if s.a, err = actors.OpenArena(r, s.hdr, s.ht, ao); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// create makes and formats a region file holding only an actors extent,
// if path does not exist. It formats a temporary file and links it into
// place, so two daemons started together never see a half-formatted
// region (the loser of the link finds the winner's).
func create(path string, size int64, lease time.Duration) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if strings.HasPrefix(path, "/dev/dax") || strings.HasPrefix(path, "/sys/") {
		return fmt.Errorf("region %s does not exist (only regular files are created)", path)
	}
	if size < 8<<20 {
		return fmt.Errorf("region size %d: want at least 8 MiB", size)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	defer os.Remove(tmp)
	r, err := cxl.Open(tmp, cxl.OpenOptions{Create: true, Size: size})
	if err != nil {
		return err
	}
	_, err = cxl.Format(r, cxl.FormatOptions{Lease: lease,
		Extents: []cxl.ExtentSpec{{Name: actors.ExtentName, Size: uint64(size) - 1<<20}}})
	r.Close()
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !os.IsExist(err) {
		return fmt.Errorf("create region %s: %w", path, err)
	}
	return nil
}

// parseSize parses 64M, 1G, 4096.
func parseSize(s string) (int64, error) {
	mul := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mul, s = 1<<30, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, s[:len(s)-1]
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M or G suffix", s)
	}
	return n * mul, nil
}

func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "daxwio", "wazero")
}
