package fuse

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// skipPosix are posixtest cases we skip, with the reason.
var skipPosix = map[string]string{
	// XAttr, XAttrLarge and Tmpfile skip themselves when the FS answers
	// EOPNOTSUPP, which daxfs does (no xattrs, no O_TMPFILE in the
	// library).
	"FcntlFlockLocksFile": "expects two descriptors of one process to conflict (open-file-description " +
		"locks, what go-fuse's loopback forwards to); daxfs keeps no lock table in the region, so the " +
		"kernel's local POSIX lock manager answers, and POSIX record locks of one process never conflict. " +
		"Locks are per mount, not across hosts (docs/FUSE.md).",
}

// TestPosix runs go-fuse's POSIX suite against a daxfs mount, each case in
// a fresh directory of one mount.
func TestPosix(t *testing.T) {
	requireFUSE(t)
	region := newRegion(t, 256<<20)
	mnt := mountDir(t)
	serve(t, region, mnt, CoherenceZero)
	var names []string
	for n := range posixtest.All {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := posixtest.All[n]
		t.Run(n, func(t *testing.T) {
			if why, ok := skipPosix[n]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(mnt, strings.ToLower(n))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			f(t, dir)
		})
	}
}
