//go:build !unix

package process

import (
	"errors"
	"os/exec"
	"syscall"
)

func setProcAttrs(*exec.Cmd) {}

// serverCommand runs the server at path on conf.
func serverCommand(path string, args ...string) *exec.Cmd { return exec.Command(path, args...) }

func pidExists(int) bool { return false }

func signalGroup(int, syscall.Signal) error {
	return errors.New("engine/process: signals are not supported on this platform")
}

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
	sigStop = syscall.Signal(0)
	sigCont = syscall.Signal(0)
)
