package daxfs

import (
	"errors"
	"syscall"
)

// Sentinel errors. Each wraps the errno a POSIX caller expects, so
// errors.Is(err, syscall.ENOENT) works as well as errors.Is(err, ErrNotExist).
var (
	ErrNotExist     = &fsError{"daxfs: no such file or directory", syscall.ENOENT}
	ErrExist        = &fsError{"daxfs: file exists", syscall.EEXIST}
	ErrNotDir       = &fsError{"daxfs: not a directory", syscall.ENOTDIR}
	ErrIsDir        = &fsError{"daxfs: is a directory", syscall.EISDIR}
	ErrNotEmpty     = &fsError{"daxfs: directory not empty", syscall.ENOTEMPTY}
	ErrInvalid      = &fsError{"daxfs: invalid argument", syscall.EINVAL}
	ErrNoSpace      = &fsError{"daxfs: no space left in the pool", syscall.ENOSPC}
	ErrNameTooLong  = &fsError{"daxfs: file name too long", syscall.ENAMETOOLONG}
	ErrReadOnly     = &fsError{"daxfs: read-only file system", syscall.EROFS}
	ErrCorrupt      = &fsError{"daxfs: corrupt region", syscall.EIO}
	ErrTooManyLinks = &fsError{"daxfs: too many links", syscall.EMLINK}
	ErrLoop         = &fsError{"daxfs: too many levels of symbolic links", syscall.ELOOP}
	ErrStale        = &fsError{"daxfs: stale inode", syscall.ESTALE}
	ErrBusy         = &fsError{"daxfs: resource busy", syscall.EBUSY}
	ErrBadFormat    = errors.New("daxfs: not a daxfs image")
)

type fsError struct {
	msg   string
	errno syscall.Errno
}

func (e *fsError) Error() string { return e.msg }

// Is lets errors.Is match the errno too.
func (e *fsError) Is(target error) bool {
	if t, ok := target.(syscall.Errno); ok {
		return t == e.errno
	}
	return target == e
}

// Errno is the POSIX error number for err (EIO when it has none).
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var fe *fsError
	if errors.As(err, &fe) {
		return fe.errno
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}
