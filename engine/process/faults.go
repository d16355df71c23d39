package process

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

var (
	_ engine.FaultInjector = (*Runtime)(nil)
	_ engine.Pulser        = (*Runtime)(nil)
)

// Kill implements engine.FaultInjector: SIGKILL to the node's process group,
// then it waits (bounded by ctx and killWait) until the process is gone, so
// an Inspect right after Kill reports Running=false. The node directory and
// label stay until Stop.
func (r *Runtime) Kill(ctx context.Context, name string) error {
	lbl, p, err := r.runningNode(name)
	if err != nil {
		return err
	}
	if p != nil {
		// Stop must not log the exit as a crash: it was asked for.
		p.stopping.Store(true)
	}
	if err := signalGroup(lbl.PID, sigKill); err != nil {
		return fmt.Errorf("engine/process: kill node %s (pid %d): %w", name, lbl.PID, err)
	}
	if !r.waitExit(ctx, lbl, p, killWait) {
		return fmt.Errorf("engine/process: node %s (pid %d) still running after SIGKILL", name, lbl.PID)
	}
	r.log.Info("node killed", "node", name, "pid", lbl.PID)
	return nil
}

// Pause implements engine.FaultInjector with SIGSTOP: the kernel still
// completes TCP handshakes into the listen backlog, but the server answers
// nothing, like a hung node. Signal delivery is asynchronous, so it waits
// until the process is seen stopped; Inspect then reports Paused.
//
// The node's label records the pause first: if the emulator dies, the
// kernel continues the node (see setProcAttrs), and Adopt pauses it again.
func (r *Runtime) Pause(ctx context.Context, name string) error {
	if err := r.recordPaused(name, true); err != nil {
		return err
	}
	return r.signalAndWait(ctx, name, syscall.SIGSTOP, true)
}

// Resume implements engine.FaultInjector with SIGCONT, waiting until the
// process runs again. The label's pause is cleared before the signal, so an
// emulator that dies in between leaves a node that is still stopped and
// says so, not one a later Adopt would stop again.
func (r *Runtime) Resume(ctx context.Context, name string) error {
	if err := r.recordPaused(name, false); err != nil {
		return err
	}
	return r.signalAndWait(ctx, name, syscall.SIGCONT, false)
}

// recordPaused sets label.Paused of a running node, under its lock (a
// Start's own label writes hold it too).
func (r *Runtime) recordPaused(name string, paused bool) error {
	if _, _, err := r.runningNode(name); err != nil {
		return err
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	dir := r.NodeDir(name)
	lbl, err := readLabel(dir)
	if err != nil {
		return fmt.Errorf("engine/process: node %s: %w", name, err)
	}
	if lbl.Paused == paused {
		return nil
	}
	lbl.Paused = paused
	if err := writeLabel(dir, lbl); err != nil {
		return fmt.Errorf("engine/process: node %s: recording pause: %w", name, err)
	}
	return nil
}

// pauseAgain stops an adopted node whose label records a pause but whose
// process runs: the kernel continued it when the emulator that paused it
// died. It waits (up to stateWait) until the process is seen stopped.
func (r *Runtime) pauseAgain(ctx context.Context, lbl label) error {
	if err := signalGroup(lbl.PID, sigStop); err != nil {
		return fmt.Errorf("engine/process: pausing node %s (pid %d) again: %w", lbl.Name, lbl.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, stateWait)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for hasProc && !processStopped(lbl.PID) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("engine/process: node %s (pid %d) not stopped after SIGSTOP: %w", lbl.Name, lbl.PID, ctx.Err())
		case <-tick.C:
		}
	}
	r.log.Info("paused an adopted node again: it was paused when the last emulator died, and the kernel continues a stopped process group its parent's death orphans",
		"node", lbl.Name, "pid", lbl.PID)
	return nil
}

// stateWait bounds how long Pause/Resume wait for the process state to follow
// the signal; it takes microseconds unless the machine is overloaded.
const stateWait = 5 * time.Second

func (r *Runtime) signalAndWait(ctx context.Context, name string, sig syscall.Signal, stopped bool) error {
	if err := r.Signal(name, sig); err != nil {
		return err
	}
	lbl, _, err := r.lookup(name)
	if err != nil {
		return err
	}
	if !hasProc {
		return nil // no way to observe the state: trust the signal
	}
	ctx, cancel := context.WithTimeout(ctx, stateWait)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for processStopped(lbl.PID) != stopped {
		select {
		case <-ctx.Done():
			return fmt.Errorf("engine/process: node %s (pid %d) not %s after %v: %w", name, lbl.PID,
				map[bool]string{true: "stopped", false: "running"}[stopped], sig, ctx.Err())
		case <-tick.C:
		}
	}
	r.log.Info("node signalled", "node", name, "pid", lbl.PID, "signal", sig.String())
	return nil
}

// runningNode returns the label of a running node, or an error naming why
// it cannot be signalled.
func (r *Runtime) runningNode(name string) (label, *proc, error) {
	if validateName(name) != nil {
		return label{}, nil, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	lbl, p, err := r.lookup(name)
	if err != nil {
		return label{}, nil, err
	}
	if !r.running(lbl, p) {
		return label{}, nil, fmt.Errorf("engine/process: node %s is not running", name)
	}
	return lbl, p, nil
}

// processStopped reports whether pid is in the stopped state (SIGSTOP), read
// from /proc/<pid>/stat; false where /proc is unavailable. It is how Inspect
// fills engine.Node.Paused without keeping state that a restarted emulator
// would lose.
func processStopped(pid int) bool {
	if !hasProc || pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state == 'T' || state == 't'
}

// Pulse implements engine.Pulser: the pulse of the node's redis-server or
// memcached process.
func (r *Runtime) Pulse(name string) (*engine.Pulse, error) {
	lbl, p, err := r.runningNode(name)
	if err != nil {
		return nil, err
	}
	pulse, err := engine.OpenPulse(lbl.PID)
	if err != nil {
		return nil, err
	}
	// The file opened is the process the label names only if that
	// process still runs now (its pid could have been reused).
	if !r.running(lbl, p) {
		_ = pulse.Close()
		return nil, fmt.Errorf("engine/process: node %s exited", name)
	}
	return pulse, nil
}
