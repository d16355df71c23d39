//go:build unix

package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockDataDir takes an exclusive lock on the data dir so that a second
// emulator on the same dir fails fast instead of reaping the first one's
// nodes. The lock dies with the process, so a crash never leaves it stale.
// The lock file records the holder (pid, start time, listen address) for
// the error a second emulator gets (DataDirInUseError).
func lockDataDir(dir, listen string) (release func(), err error) {
	path := filepath.Join(dir, "emulator.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("emulator: lock %s: %w", path, err)
	}
	// A killed emulator's lock can outlive it by a moment: a node server it
	// was forking holds the lock file until its exec closes it. So a lock
	// whose recorded owner is gone is waited for briefly.
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		content, _ := os.ReadFile(path)
		owner := parseLockOwner(string(content))
		if owner.pid > 0 && syscall.Kill(owner.pid, 0) == syscall.ESRCH && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // poll until the deadline
			continue
		}
		f.Close()
		return nil, &DataDirInUseError{Dir: dir, PID: owner.pid, Started: owner.started, Listen: owner.listen}
	}
	_ = f.Truncate(0)
	me := lockOwner{pid: os.Getpid(), started: time.Now(), listen: listen}
	_, _ = f.WriteAt([]byte(me.format()), 0)
	return func() { f.Close() }, nil
}
