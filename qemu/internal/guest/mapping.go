package guest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Mapping is a minimal MAP_SHARED mapping with atomic word access. The
// testbed uses it only where cxl.Open cannot open a device (see
// docs/TESTBED.md, "Known gaps"); everything else goes through package cxl.
type Mapping struct {
	mem []byte
}

// MapDevice maps a whole device-dax character device (its size comes from
// sysfs) or regular file.
func MapDevice(path string) (*Mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("guest: map %w", err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("guest: stat %s: %w", path, err)
	}
	size := st.Size
	if st.Mode&syscall.S_IFMT == syscall.S_IFCHR {
		p := fmt.Sprintf("/sys/dev/char/%d:%d/size", (st.Rdev>>8)&0xfff, (st.Rdev&0xff)|((st.Rdev>>12)&0xfff00))
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("guest: size of %s: %w", path, err)
		}
		size, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("guest: size of %s from %s: %w", path, p, err)
		}
	}
	if size <= 0 {
		return nil, fmt.Errorf("guest: %s is empty", path)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("guest: mmap %s (%d bytes): %w", path, size, err)
	}
	return &Mapping{mem: mem}, nil
}

func (m *Mapping) word(off uint64) *uint64 {
	if off%8 != 0 || off+8 > uint64(len(m.mem)) {
		panic(fmt.Sprintf("guest: word offset %#x out of range or misaligned (mapping is %d bytes)", off, len(m.mem)))
	}
	return (*uint64)(unsafe.Pointer(&m.mem[off]))
}

// Len is the mapping's size in bytes.
func (m *Mapping) Len() uint64            { return uint64(len(m.mem)) }
func (m *Mapping) Load(off uint64) uint64 { return atomic.LoadUint64(m.word(off)) }
func (m *Mapping) Store(off, v uint64)    { atomic.StoreUint64(m.word(off), v) }
func (m *Mapping) CAS(off, old, new uint64) bool {
	return atomic.CompareAndSwapUint64(m.word(off), old, new)
}
func (m *Mapping) Add(off, d uint64) uint64 { return atomic.AddUint64(m.word(off), d) }

// Close unmaps.
func (m *Mapping) Close() error { return syscall.Munmap(m.mem) }
