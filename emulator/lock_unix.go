//go:build unix

package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockDataDir takes an exclusive lock on the data dir so that a second
// emulator on the same dir fails fast instead of reaping the first one's
// nodes. The lock dies with the process, so a crash never leaves it stale.
func lockDataDir(dir string) (release func(), err error) {
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
		owner, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(owner)))
		if pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // poll until the deadline
			continue
		}
		f.Close()
		return nil, fmt.Errorf("emulator: data dir %s is in use by another elasticache-local (pid %s); stop it or choose another --data-dir", dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
