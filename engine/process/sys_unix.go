//go:build unix

package process

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcAttrs puts the node in its own process group, so a Ctrl-C in the
// emulator's terminal (SIGINT to the foreground group) does not kill nodes
// before the emulator stops them gracefully.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// pidExists reports whether a process with this pid exists (possibly a zombie).
func pidExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// signalGroup sends sig to the node's process group (its pid, as it was
// started with Setpgid), falling back to the process alone.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return syscall.ESRCH
	}
	if err := syscall.Kill(-pid, sig); err == nil {
		return nil
	}
	return syscall.Kill(pid, sig)
}

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
