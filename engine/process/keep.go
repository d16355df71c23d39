package process

// Nodes that outlive one run of the emulator: Suspend (a clean shutdown
// keeps each node's data) and Adopt (after a crash the nodes still run and
// the next run takes them over).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

var _ engine.Keeper = (*Runtime)(nil)

// suspendTimeout bounds Suspend when its context has no deadline: saving a
// dataset of a local emulator takes far less.
const suspendTimeout = time.Minute

// Suspend implements engine.Keeper. The label is marked Kept first, then the
// server gets SHUTDOWN SAVE and until ctx's deadline (suspendTimeout without
// one) to exit; a server still running then, or one whose save failed, is
// killed, and whatever dump.rdb it saved last is kept. A paused node is
// thawed first. The directory stays (with the label's pid of the stopped
// server); Start with NodeSpec.Resume brings the data back, Stop discards it.
func (r *Runtime) Suspend(ctx context.Context, name string) error {
	if validateName(name) != nil {
		return fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	lbl, p, err := r.lookup(name)
	if err != nil {
		return err
	}
	dir := r.NodeDir(name)
	if lbl.PID == 0 && p == nil {
		// A label without a pid: a start cut short, its server may run.
		if err := r.stopUnrecorded(name, 0); err != nil {
			return err
		}
	}
	if p != nil {
		p.stopping.Store(true) // the exit is asked for, not a crash
	}
	// A node that does not run keeps what it had: no data if it was killed,
	// its kept data if it is suspended already.
	if r.running(lbl, p) {
		// Marked before the save, so an emulator killed during it still
		// finds the data (what the save got to write, or an older dump) kept.
		lbl.Kept = true
		if err := writeLabel(dir, lbl); err != nil {
			return fmt.Errorf("engine/process: node %s: marking its data kept: %w", name, err)
		}
		if err := r.saveAndExit(ctx, lbl, p); err != nil {
			return err
		}
	}
	r.mu.Lock()
	delete(r.procs, name)
	delete(r.adopted, name)
	r.kept[name] = true
	r.mu.Unlock()
	return nil
}

// saveAndExit has the node's server save its dataset and exit, killing it
// when that does not happen before ctx's deadline.
func (r *Runtime) saveAndExit(ctx context.Context, lbl label, p *proc) error {
	begin := time.Now()
	how := "SHUTDOWN SAVE"
	defer func() {
		r.log.Info("node suspended", "node", lbl.Name, "pid", lbl.PID, "how", how, "took", time.Since(begin).Round(time.Microsecond))
	}()
	if engine.IsMemcached(lbl.Engine) {
		how = "SIGTERM (memcached keeps no data)"
		return r.stopMemcached(ctx, lbl, p)
	}
	if sigCont != 0 {
		// A node frozen by SIGSTOP (fault injection) must run to save.
		_ = signalGroup(lbl.PID, sigCont)
	}
	if ctx.Err() == nil {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, suspendTimeout)
			defer cancel()
		}
		exited := func(ctx context.Context, d time.Duration) bool { return r.waitExit(ctx, lbl, p, d) }
		if r.admin.SaveAndAwaitExit(ctx, lbl.Endpoint.endpoint(), exited, r.log, lbl.Name) {
			return nil
		}
	}
	how = "SIGKILL"
	if !r.running(lbl, p) {
		return nil
	}
	_ = signalGroup(lbl.PID, sigKill)
	if r.waitExit(context.Background(), lbl, p, killWait) {
		return nil
	}
	return fmt.Errorf("engine/process: node %s (pid %d) still running after SIGKILL", lbl.Name, lbl.PID)
}

// Adopt implements engine.Keeper over every node directory and every server
// of this data dir (found by command line, as Reap finds them). A node runs
// when its label's pid is alive and is still that node's server, checked on
// its command line (a recycled pid is never adopted, nor signalled later);
// such a node is adopted when keep owns it, and other servers of the same
// node that no label records are killed. A node with a label whose server
// does not run is offered as stopped. Everything keep does not own, and
// every server or directory without a label, is reaped (reapLocked). A nil
// keep owns nothing (Reap). keep is called with the node's lock held: it
// must not call this Runtime for the same node.
func (r *Runtime) Adopt(ctx context.Context, keep func(engine.Node) bool) (engine.Adoption, error) {
	var out engine.Adoption
	servers, err := r.nodeServers()
	if err != nil {
		return out, err
	}
	names := make(map[string]bool, len(servers))
	for name := range servers {
		names[name] = true
	}
	entries, err := os.ReadDir(r.nodesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("engine/process: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && validateName(e.Name()) == nil {
			names[e.Name()] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	slices.Sort(sorted)
	var errs []error
	for _, name := range sorted {
		if err := r.adoptOne(ctx, name, servers[name], keep, &out); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// adoptOne adopts, offers as stopped, or reaps node name, whose servers
// (by command line) are pids, adding it to out.
func (r *Runtime) adoptOne(ctx context.Context, name string, pids []int, keep func(engine.Node) bool, out *engine.Adoption) error {
	unlock := r.locks.Lock(name)
	defer unlock()
	if r.owned(name) {
		return nil
	}
	lbl, lblErr := readLabel(r.NodeDir(name))
	if lblErr == nil && keep != nil {
		running := lbl.PID > 0 && r.isNodeServer(lbl.PID, name)
		n := lbl.node(running)
		if keep(n) {
			for _, pid := range pids {
				if running && pid == lbl.PID {
					continue
				}
				killed, err := r.killUnrecorded(name, pid)
				if err != nil {
					return err
				}
				if killed {
					r.log.Info("killed a server of an adopted node that no label records", "node", name, "pid", pid)
				}
			}
			// Resumed or running, the node speaks what its labels say
			// (TLS only, memcached).
			r.admin.RegisterNode(n)
			if running && lbl.Paused && !n.Paused {
				if err := r.pauseAgain(ctx, lbl); err != nil {
					return err
				}
				n.Paused = true
			}
			r.mu.Lock()
			if running {
				r.adopted[name] = lbl.PID
				out.Running = append(out.Running, n)
			} else {
				r.kept[name] = true
				out.Stopped = append(out.Stopped, n)
			}
			r.mu.Unlock()
			r.log.Info("adopted node of an earlier run", "node", name, "emulator", lbl.EmulatorID, "pid", lbl.PID,
				"running", running, "paused", n.Paused, "hasData", n.HasData)
			return nil
		}
	}
	switch err := r.reapLocked(ctx, name, pids); {
	case err == nil:
		out.Reaped++
	case !errors.Is(err, errSkip):
		return err
	}
	return nil
}
