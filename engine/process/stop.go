package process

// Stopping a node: gracefully, then by signals.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Stop implements engine.Runtime: SHUTDOWN NOSAVE, then SIGTERM, then
// SIGKILL, each after a short grace period (sooner when ctx ends); then the
// node directory is removed. Stopping a node whose process is already gone
// just removes its files.
func (r *Runtime) Stop(ctx context.Context, name string) error {
	if validateName(name) != nil {
		return fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	dir := r.NodeDir(name)
	lbl, p, err := r.lookup(name)
	if err != nil {
		if errors.Is(err, engine.ErrNodeNotFound) {
			r.forget(name) // an exited process whose files someone removed
			if _, statErr := os.Stat(dir); statErr == nil {
				// A directory without a label: a start that crashed half-way.
				if err := r.stopUnrecorded(name, 0); err != nil {
					return err
				}
				return r.removeNodeDir(name)
			}
		}
		return err
	}
	if lbl.PID == 0 && p == nil {
		// A label without a pid: a start cut short, its server may run.
		if err := r.stopUnrecorded(name, 0); err != nil {
			return err
		}
	}
	if p != nil {
		p.stopping.Store(true)
	}
	stopErr := r.terminate(ctx, lbl, p)
	if stopErr != nil {
		return stopErr
	}
	r.forget(name)
	r.admin.UseTLS(lbl.Endpoint.endpoint(), false)
	r.admin.UseMemcached(lbl.Endpoint.endpoint(), false)
	if err := r.removeNodeDir(name); err != nil {
		return fmt.Errorf("engine/process: removing %s: %w", dir, err)
	}
	return nil
}

// terminate stops the node's process and waits until it is gone.
func (r *Runtime) terminate(ctx context.Context, lbl label, p *proc) error {
	if !r.running(lbl, p) {
		return nil
	}
	begin := time.Now()
	ep := lbl.Endpoint.endpoint()
	how := "SHUTDOWN"
	defer func() {
		r.log.Info("node stopped", "node", lbl.Name, "pid", lbl.PID, "how", how, "took", time.Since(begin).Round(time.Microsecond))
	}()
	if sigCont != 0 {
		// A node frozen by SIGSTOP (fault injection) must run to shut down.
		_ = signalGroup(lbl.PID, sigCont)
	}
	// A TLS node the admin does not know as one (reaped, not adopted)
	// would take a plaintext SHUTDOWN for a failed handshake: signals only.
	if ctx.Err() == nil && (lbl.Labels[engine.LabelTLS] == "" || r.admin.TLS(ep)) {
		sctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
		err := r.admin.Shutdown(sctx, ep)
		cancel()
		if err == nil && r.waitExit(ctx, lbl, p, termGrace) {
			return nil
		}
	}
	how = "SIGTERM"
	if !r.running(lbl, p) {
		return nil
	}
	_ = signalGroup(lbl.PID, sigTerm)
	if r.waitExit(ctx, lbl, p, termGrace) {
		return nil
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

// waitExit waits up to d (or until ctx ends) for the node's process to be
// gone, reporting whether it is.
func (r *Runtime) waitExit(ctx context.Context, lbl label, p *proc, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if p != nil {
		select {
		case <-p.done:
			return true
		case <-timer.C:
		case <-ctx.Done():
		}
		return p.exited()
	}
	tick := time.NewTicker(engine.PollInterval)
	defer tick.Stop()
	for {
		if !processMatches(lbl) {
			return true
		}
		select {
		case <-tick.C:
		case <-timer.C:
			return !processMatches(lbl)
		case <-ctx.Done():
			return !processMatches(lbl)
		}
	}
}
