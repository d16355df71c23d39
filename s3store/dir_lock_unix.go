//go:build unix

package s3store

import (
	"errors"
	"os"
	"syscall"
)

// lockRoot opens path and holds a shared flock on it for as long as the
// file stays open. sole reports that, just before, an exclusive lock was
// granted: no other open Dir on the same root existed, in this process or
// another, so no put was in progress there.
func lockRoot(path string) (f *os.File, sole bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, false, err
	}
	fd := int(f.Fd())
	switch err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		sole = true
	case !errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, false, err
	}
	// Shared from here on: other Dirs may open the root too. Blocking is
	// brief: another NewDir holds the exclusive lock only while it cleans.
	if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, sole, nil
}
