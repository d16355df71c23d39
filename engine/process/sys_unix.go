//go:build unix

package process

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcAttrs starts the node in a process group of its own (its pid), in
// the emulator's session: a Ctrl-C in the emulator's terminal (SIGINT to
// the foreground group) does not kill nodes before the emulator stops them
// gracefully, and nodes outlive the emulator. No parent-death signal is
// set: nodes are meant to outlive the emulator.
//
// Not a session of its own (setsid), which nodes had before: the kernel
// schedules every session as a group of its own (autogroup, on by default),
// and an idle server in a group of its own spent about 1.4 times the CPU of
// one in a shared group on each of its cron wake-ups (the scheduler's work
// for the group's entity on every wake-up and sleep), the whole difference
// between a managed idle node and a bare redis-server. What the session
// also kept out: when the emulator dies, a node's group is orphaned, and
// the kernel sends an orphaned group with a stopped member SIGHUP (the
// server ignores it) and SIGCONT, which continues a node paused by fault
// injection. Pause records the pause in the node's label, and Adopt stops
// such a node again (keep.go).
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
// started with Setpgid; earlier versions used Setsid, same group id),
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
