//go:build unix && !linux

package s3test

import "syscall"

// sysProcAttr puts MinIO in its own process group; without Linux's
// Pdeathsig, a test binary killed before its cleanups leaves it running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
