//go:build unix

package emulator

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("emulator: data dir %s is in use by another elasticache-local (pid %s); stop it or choose another --data-dir", dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
