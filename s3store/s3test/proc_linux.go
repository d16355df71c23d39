package s3test

import "syscall"

// sysProcAttr puts MinIO in its own process group and has the kernel kill
// it if the test binary dies without running its cleanups (a -timeout
// panic, a kill), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
