//go:build unix

package process

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcAttrs starts the node in a session of its own, whose only process
// group has the node's pid: a Ctrl-C in the emulator's terminal (SIGINT to
// the foreground group) or its hang-up does not kill nodes before the
// emulator stops them gracefully, and nodes outlive the emulator. A mere
// process group would stay in the emulator's session, where the kernel
// sends SIGHUP and SIGCONT to a group that the emulator's death orphans if
// a member is stopped: the server ignores the hang-up, but the continue
// thawed a node paused by fault injection (TestNodesSurviveKill9 saw it).
// No parent-death signal is set: nodes are meant to outlive the emulator.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// serverCommand runs the server at path on conf with umask 077, so every
// file it creates (RDB files, the temp files of a replica sync) is 0600: a
// child's umask cannot be set from Go, so a shell sets it and execs the
// server in its place (same pid; conf stays the last argument, which is how
// reap.go recognises the node's server).
func serverCommand(path string, args ...string) *exec.Cmd {
	return exec.Command("/bin/sh", append([]string{"-c", `umask 077 && exec "$0" "$@"`, path}, args...)...)
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
// started with Setsid; earlier versions used Setpgid, same group id),
// falling back to the process alone.
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
