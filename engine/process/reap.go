package process

// Finding and stopping the servers of this data dir, whatever records of
// them survived a crash of the emulator.
//
// A node is recorded in two steps: Start writes its label (with pid 0) before
// the server exists and the pid right after the server started. An emulator
// killed between the two steps leaves a running server whose label has no
// pid, and servers of older versions could run with no label at all. So the
// servers themselves are found by their command line: a node server always
// runs as "<server binary> <DataDir>/nodes/<name>/redis.conf", and that path
// names its node. Reap and Stop stop such servers even when no label (or no
// pid in it) says they run; each is identified again right before the
// signal, so a pid reused by another program is never signalled.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Reap stops and removes every node of DataDir/nodes that is not this
// Runtime's (started, adopted or kept by it): those of earlier runs (same
// or another emulator id), of other emulators sharing the data dir, and
// servers of this data dir that no label records (a run killed while
// starting them). Directories without a label file are removed. It returns
// how many nodes it stopped or removed a label of; the emulator calls it at
// a fresh start and once more at shutdown. It is Adopt with nothing owned.
func (r *Runtime) Reap(ctx context.Context) (int, error) {
	a, err := r.Adopt(ctx, nil)
	return a.Reaped, err
}

var errSkip = errors.New("skip")

// reapLocked stops node name, which is not this Runtime's: the server its
// label records (gracefully, as Stop does) and every other server pids of
// the node (unrecorded, killed), then removes its directory. The caller
// holds the node's lock. errSkip means nothing ran and no label was there.
func (r *Runtime) reapLocked(ctx context.Context, name string, pids []int) error {
	dir := r.NodeDir(name)
	lbl, lblErr := readLabel(dir)
	reaped := false
	if lblErr == nil {
		running := processMatches(lbl)
		if err := r.terminate(ctx, lbl, nil); err != nil {
			return err
		}
		r.log.Info("reaped node of an earlier run", "node", name, "emulator", lbl.EmulatorID, "pid", lbl.PID, "wasRunning", running)
		reaped = true
	} else if !errors.Is(lblErr, fs.ErrNotExist) {
		r.log.Info("node directory has no usable label", "node", name, "err", lblErr)
	}
	for _, pid := range pids {
		if lblErr == nil && pid == lbl.PID {
			continue // stopped above
		}
		killed, err := r.killUnrecorded(name, pid)
		if err != nil {
			return err
		}
		if killed {
			r.log.Info("killed a node server no label records (an earlier run died while starting it)",
				"node", name, "pid", pid, "labelPid", lbl.PID, "labelErr", errString(lblErr))
			reaped = true
		}
	}
	if err := r.removeNodeDir(name); err != nil {
		return fmt.Errorf("engine/process: removing %s: %w", dir, err)
	}
	if !reaped {
		r.log.Info("removed node directory of an earlier run with nothing running", "node", name)
		return errSkip
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// stopUnrecorded kills the servers of node name other than pid except, for a
// node directory whose label has no pid or that has no label; the caller
// holds the node's lock.
func (r *Runtime) stopUnrecorded(name string, except int) error {
	servers, err := r.nodeServers()
	if err != nil {
		return err
	}
	for _, pid := range servers[name] {
		if pid == except {
			continue
		}
		killed, err := r.killUnrecorded(name, pid)
		if err != nil {
			return err
		}
		if killed {
			r.log.Info("killed a node server no label records", "node", name, "pid", pid)
		}
	}
	return nil
}

// killUnrecorded SIGKILLs pid if it is still a server of node name and waits
// until it is gone. Such a server has no label to stop it by (no endpoint to
// SHUTDOWN), and with persistence off it has nothing to flush.
func (r *Runtime) killUnrecorded(name string, pid int) (killed bool, err error) {
	if !r.isNodeServer(pid, name) {
		return false, nil
	}
	_ = signalGroup(pid, sigKill)
	deadline := time.Now().Add(killWait)
	for r.isNodeServer(pid, name) {
		if time.Now().After(deadline) {
			return true, fmt.Errorf("engine/process: node %s: server pid %d still running after SIGKILL", name, pid)
		}
		time.Sleep(engine.PollInterval)
	}
	return true, nil
}

// isNodeServer reports whether pid is alive and a server of node name of
// this data dir.
func (r *Runtime) isNodeServer(pid int, name string) bool {
	if !pidExists(pid) {
		return false
	}
	cmdline, verified := commandLine(pid)
	if !verified {
		return false // never signal what cannot be identified
	}
	got, ok := r.nodeOfCommand(cmdline)
	return ok && got == name
}

// nodeServers lists the live servers of this data dir's nodes, by node name.
func (r *Runtime) nodeServers() (map[string][]int, error) {
	procs, err := listProcesses()
	if err != nil {
		return nil, fmt.Errorf("engine/process: listing processes: %w", err)
	}
	out := make(map[string][]int)
	for pid, cmdline := range procs {
		if name, ok := r.nodeOfCommand(cmdline); ok {
			out[name] = append(out[name], pid)
		}
	}
	return out, nil
}

// nodeOfCommand returns the node whose server a command line runs: its last
// argument is DataDir/nodes/<name>/redis.conf and an earlier one is a server
// binary (a program reading the file, an editor say, is not a node). The
// shell that sets the server's umask before exec-ing it counts too: it runs
// with the server's arguments.
func (r *Runtime) nodeOfCommand(cmdline string) (string, bool) {
	cmdline = strings.TrimRight(cmdline, " \n")
	prefix := r.nodesDir + string(filepath.Separator)
	i := strings.LastIndex(cmdline, " "+prefix)
	if i < 0 {
		return "", false
	}
	head, rest := cmdline[:i], cmdline[i+1+len(prefix):]
	name, file, ok := strings.Cut(rest, string(filepath.Separator))
	if !ok || (file != confFileName && file != engine.MemcachedPIDFile) || validateName(name) != nil {
		return "", false
	}
	if file == engine.MemcachedPIDFile {
		return name, strings.Contains(head, "memcached")
	}
	if !strings.Contains(head, "-server") && !strings.Contains(head, r.redis.path) &&
		(r.valkey == nil || !strings.Contains(head, r.valkey.path)) {
		return "", false
	}
	return name, true
}

// processMatches reports whether lbl.PID is alive and still the node's server
// (not a recycled pid): its command line must name the node's redis.conf,
// or, for servers that rewrite their process title, a server binary and the
// node's address. A label without a pid (a start in progress or cut short)
// matches no process.
func processMatches(lbl label) bool {
	if !pidExists(lbl.PID) {
		return false
	}
	cmdline, verified := commandLine(lbl.PID)
	if !verified {
		return true
	}
	if lbl.ConfigPath != "" && strings.Contains(cmdline, lbl.ConfigPath) {
		return true
	}
	return strings.Contains(cmdline, "-server") && strings.Contains(cmdline, lbl.Endpoint.endpoint().Addr())
}

var hasProc = func() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}()

// commandLine returns the process's command line, arguments separated by
// spaces; verified is false when it cannot be determined on this system.
func commandLine(pid int) (cmdline string, verified bool) {
	if hasProc {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			return "", true // gone
		}
		return procCmdline(b), true // empty for a zombie
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", true // ps found no such process
		}
		return "", false
	}
	return string(out), true
}

func procCmdline(b []byte) string {
	return string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
}

// listProcesses returns the command line of every process, by pid.
func listProcesses() (map[int]string, error) {
	out := make(map[int]string)
	if hasProc {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil || len(b) == 0 {
				continue // gone, or a zombie
			}
			out[pid] = procCmdline(b)
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "ps", "-axww", "-o", "pid=", "-o", "command=").Output()
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		pidField, cmdline, ok := strings.Cut(strings.TrimSpace(line), " ")
		if pid, err := strconv.Atoi(pidField); ok && err == nil {
			out[pid] = strings.TrimSpace(cmdline)
		}
	}
	return out, nil
}
