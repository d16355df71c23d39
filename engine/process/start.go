package process

// Starting a node: its files, its label, the server, and the wait until it
// answers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/internal/keyed"
)

// Start implements engine.Runtime. It writes the node's redis.conf and its
// label, starts the server, records its pid in the label and returns once it
// answers PING (and INFO shows the pid we started, so a stray server on the
// same address is not mistaken for it). The label comes first so that an
// emulator killed at any instant leaves a record of every server it may have
// started (see reap.go). If the process exits or ctx ends first, the node is
// killed and removed and the error carries the tail of its log. A leftover
// directory of a dead node with the same name is replaced; a running one
// gives engine.ErrNodeExists.
//
// With NodeSpec.Resume and data Suspend kept (the label's Kept and a
// dump.rdb), the directory is cleared but for dump.rdb and the label, which
// says Kept until the server answers, and a start that fails leaves them so
// (the data stays kept, the node not running). Otherwise the directory is
// replaced whole, a stale dump.rdb included.
func (r *Runtime) Start(ctx context.Context, spec engine.NodeSpec) (engine.Node, error) {
	if err := validateName(spec.Name); err != nil {
		return engine.Node{}, err
	}
	if spec.Resume && spec.InitialRDB != nil {
		return engine.Node{}, fmt.Errorf("engine/process: node %s: NodeSpec.Resume and InitialRDB exclude each other", spec.Name)
	}
	if spec.Endpoint.Host == "" || spec.Endpoint.Port <= 0 || spec.Endpoint.Port > 65535 {
		return engine.Node{}, fmt.Errorf("engine/process: node %s: invalid endpoint %q", spec.Name, spec.Endpoint.Addr())
	}
	if err := engine.CheckTLSSpec(spec); err != nil {
		return engine.Node{}, err
	}
	srv, err := r.serverFor(spec.Engine)
	if err != nil {
		return engine.Node{}, err
	}
	dir := r.NodeDir(spec.Name)
	nc, err := r.commandFor(spec, dir, srv)
	if err != nil {
		return engine.Node{}, err
	}

	unlock := r.locks.Lock(spec.Name)
	defer unlock()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return engine.Node{}, errors.New("engine/process: runtime is closed")
	}
	lbl, p, err := r.lookup(spec.Name)
	resume := false
	if err == nil {
		if r.running(lbl, p) {
			return engine.Node{}, fmt.Errorf("%w: %s (pid %d on %s)", engine.ErrNodeExists, spec.Name, lbl.PID, lbl.Endpoint.endpoint().Addr())
		}
		resume = spec.Resume && lbl.hasKeptData()
		r.forget(spec.Name)
	}
	if _, statErr := os.Stat(dir); statErr == nil && (err != nil || lbl.PID == 0) {
		// The directory of a start cut short: its server may run unrecorded.
		if err := r.stopUnrecorded(spec.Name, 0); err != nil {
			return engine.Node{}, err
		}
	}
	// discard undoes a failed start: the whole directory goes, but for the
	// kept data of a resume, which stays kept for the next try.
	discard := func() { os.RemoveAll(dir) }
	if resume {
		discard = func() {
			if err := clearDir(dir, rdbFileName, labelFileName); err != nil {
				r.log.Warn("clearing the directory of a node that did not resume", "node", spec.Name, "err", err)
			}
			r.mu.Lock()
			r.kept[spec.Name] = true
			r.mu.Unlock()
		}
		if err := r.logs.KeepFile(spec.Name, filepath.Join(dir, logFileName)); err != nil {
			r.log.Warn("could not keep the log of a node", "node", spec.Name, "err", err)
		}
		if err := clearDir(dir, rdbFileName, labelFileName); err != nil {
			return engine.Node{}, fmt.Errorf("engine/process: clearing %s: %w", dir, err)
		}
	} else if err := r.removeNodeDir(spec.Name); err != nil {
		return engine.Node{}, fmt.Errorf("engine/process: clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return engine.Node{}, fmt.Errorf("engine/process: %w", err)
	}
	confPath := nc.confPath
	if nc.conf != "" {
		if err := os.WriteFile(confPath, []byte(nc.conf), 0o600); err != nil {
			discard()
			return engine.Node{}, fmt.Errorf("engine/process: %w", err)
		}
	}
	for _, f := range engine.TLSFiles(spec) {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			discard()
			return engine.Node{}, fmt.Errorf("engine/process: node %s: %w", spec.Name, err)
		}
	}
	if spec.InitialRDB != nil {
		if err := keyed.WriteFile(filepath.Join(dir, rdbFileName), spec.InitialRDB); err != nil {
			discard()
			return engine.Node{}, fmt.Errorf("engine/process: seeding %s: %w", spec.Name, err)
		}
	}
	lbl = label{
		Name:          spec.Name,
		EmulatorID:    r.id,
		Labels:        engine.NodeLabels(spec),
		Endpoint:      toJSONEndpoint(spec.Endpoint),
		Engine:        spec.Engine,
		EngineVersion: spec.EngineVersion,
		Binary:        srv.path,
		ServerVersion: srv.version,
		ConfigPath:    confPath,
		Kept:          resume,
	}
	if spec.ReplicaOf != nil {
		ep := toJSONEndpoint(*spec.ReplicaOf)
		lbl.ReplicaOf = &ep
	}
	// Recorded before the server exists (pid 0: not started yet), so no
	// crash leaves a server without a label.
	if err := writeLabel(dir, lbl); err != nil {
		discard()
		return engine.Node{}, fmt.Errorf("engine/process: node %s: writing label: %w", spec.Name, err)
	}
	logPath := filepath.Join(dir, logFileName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		discard()
		return engine.Node{}, fmt.Errorf("engine/process: %w", err)
	}

	cmd := serverCommand(srv.path, nc.args...)
	cmd.Dir = dir
	cmd.Stdout = logf // an *os.File is handed to the child: no copy goroutine
	cmd.Stderr = logf
	setProcAttrs(cmd)
	started := time.Now()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		discard()
		return engine.Node{}, fmt.Errorf("engine/process: starting %s for node %s: %w", srv.path, spec.Name, err)
	}

	lbl.PID = cmd.Process.Pid
	lbl.StartedAt = started.UTC()
	p = &proc{lbl: lbl, done: make(chan struct{})}
	go r.reap(cmd, p)
	r.mu.Lock()
	r.procs[spec.Name] = p
	r.mu.Unlock()

	if err := writeLabel(dir, lbl); err != nil {
		r.abort(p, discard)
		return engine.Node{}, fmt.Errorf("engine/process: node %s: recording pid %d: %w", spec.Name, lbl.PID, err)
	}
	// The admin's connections to the node (this wait's first) use TLS
	// exactly when it serves TLS.
	r.admin.UseTLS(spec.Endpoint, spec.TLS != nil)
	r.admin.UseMemcached(spec.Endpoint, engine.IsMemcached(spec.Engine))
	// Wait for PING, but give up at once when the process exits (a check in
	// flight, e.g. against another program holding the port, is cancelled).
	wctx, cancelWait := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.done:
			cancelWait()
		case <-wctx.Done():
		}
	}()
	err = engine.WaitReady(wctx, spec.Endpoint, p.check, r.readyCheck(spec, lbl.PID))
	cancelWait()
	if err != nil && p.exited() {
		err = p.check(ctx, spec.Endpoint)
	}
	if err != nil {
		tail := logTail(logPath, 20)
		r.abort(p, discard)
		return engine.Node{}, fmt.Errorf("engine/process: node %s (pid %d) did not start on %s: %w\n--- %s (tail) ---\n%s",
			spec.Name, lbl.PID, spec.Endpoint.Addr(), err, logFileName, tail)
	}
	if spec.Cluster && (resume || spec.InitialRDB != nil) {
		// Loading keys made the fresh cluster node claim their slots.
		if err := r.admin.ClusterDropSlots(ctx, spec.Endpoint); err != nil {
			r.abort(p, discard)
			return engine.Node{}, fmt.Errorf("engine/process: node %s: %w", spec.Name, err)
		}
	}
	if resume {
		// The server answers, so it has loaded the kept data: from now on
		// dump.rdb is only what the server writes.
		lbl.Kept = false
		if err := writeLabel(dir, lbl); err != nil {
			r.abort(p, discard)
			return engine.Node{}, fmt.Errorf("engine/process: node %s: recording the resume: %w", spec.Name, err)
		}
	}
	r.mu.Lock()
	delete(r.kept, spec.Name) // the data, if any, is the running node's now
	r.mu.Unlock()
	r.log.Info("node started", "node", spec.Name, "addr", spec.Endpoint.Addr(), "pid", lbl.PID,
		"replicaOf", replicaOfAttr(spec.ReplicaOf), "resumed", resume, "took", time.Since(started).Round(time.Microsecond))
	return lbl.node(true), nil
}

func replicaOfAttr(ep *engine.Endpoint) string {
	if ep == nil {
		return ""
	}
	return ep.Addr()
}

// check is a readiness check failing permanently once the process exited.
func (p *proc) check(context.Context, engine.Endpoint) error {
	if p.exited() {
		if p.err != nil {
			return engine.Permanent(fmt.Errorf("server exited: %w", p.err))
		}
		return engine.Permanent(errors.New("server exited with status 0"))
	}
	return nil
}

// servedBy holds when the endpoint answers PING and INFO reports pid, so a
// different server on the address (another program, a stray node) does not
// pass for ours.
func (r *Runtime) servedBy(pid int) engine.Check {
	return func(ctx context.Context, ep engine.Endpoint) error {
		return r.admin.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return err
			}
			info, err := c.Info(ctx, "server").Result()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
					if got, _ := strconv.Atoi(v); got != pid {
						return fmt.Errorf("another server (pid %d) answers on %s", got, ep.Addr())
					}
					return nil
				}
			}
			return nil // no process_id field: accept
		})
	}
}

// reap waits for the process (so it never lingers as a zombie) and records
// its exit.
func (r *Runtime) reap(cmd *exec.Cmd, p *proc) {
	err := cmd.Wait()
	p.err = err
	close(p.done)
	if !p.stopping.Load() {
		r.log.Warn("node exited", "node", p.lbl.Name, "pid", p.lbl.PID, "err", err)
		r.mu.Lock()
		report := r.onExit
		r.mu.Unlock()
		if report != nil {
			report(p.lbl.Name)
		}
	}
}

// abort kills a node whose start failed and discards its files.
func (r *Runtime) abort(p *proc, discard func()) {
	p.stopping.Store(true)
	if !p.exited() {
		_ = signalGroup(p.lbl.PID, sigKill)
		select {
		case <-p.done:
		case <-time.After(killWait):
			r.log.Error("node did not exit after SIGKILL", "node", p.lbl.Name, "pid", p.lbl.PID)
		}
	}
	r.forget(p.lbl.Name)
	r.admin.UseTLS(p.lbl.Endpoint.endpoint(), false)
	r.admin.UseMemcached(p.lbl.Endpoint.endpoint(), false)
	discard()
}

// clearDir removes everything in dir but the named entries.
func clearDir(dir string, keep ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// logTail returns the last n lines of the file at path.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
