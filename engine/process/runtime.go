// Package process is the engine.Runtime that runs every node as a local
// redis-server process.
//
// Layout: each node lives in DataDir/nodes/<name>/ with
//
//	redis.conf  generated configuration (bind/port of the endpoint, dir = the
//	            node dir, no persistence, disk-based replication syncs, NodeSpec.Config)
//	redis.log   the server's stdout and stderr
//	node.json   the label file: name, labels, pid, endpoint, emulator id,
//	            binary, start time
//
// The label files are the source of truth: Inspect and List read them, and a
// node counts as running only while its pid is alive and, where /proc exists,
// /proc/<pid>/cmdline still names the server and that node's redis.conf (so a
// recycled pid is not mistaken for the node). A label is written before its
// server starts, and Reap stops nodes an earlier run left behind, finding
// their servers by command line too, so an emulator killed at any instant
// leaves nothing running that the next run does not stop (reap.go).
//
// Directories are 0700 and files 0600: the server runs with umask 077.
//
// Nodes run in their own process group, so a Ctrl-C in the emulator's
// terminal does not kill them before the emulator stops them. They are not
// tied to the emulator's lifetime: if the emulator dies, they keep running
// until the next run Reaps them.
//
// Engine "valkey" runs valkey-server when one is installed (Options.
// ValkeyServer, or valkey-server on PATH / in the usual directories) and
// otherwise the redis-server binary: Valkey 7.2/8.x speak the same protocol
// and replication, so redis-server stands in for it. NodeSpec.EngineVersion
// is recorded only; the node runs whatever version the binary is.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/internal/keyed"
)

// Stop timings: SHUTDOWN gets shutdownTimeout to be answered, each of the
// SHUTDOWN and SIGTERM steps then gets termGrace for the process to exit,
// and after SIGKILL the runtime waits at most killWait.
const (
	shutdownTimeout = time.Second
	termGrace       = 2 * time.Second
	killWait        = 5 * time.Second
)

// ErrServerNotFound is wrapped by New when no redis-server binary exists.
var ErrServerNotFound = errors.New("engine/process: redis-server binary not found")

// searchDirs are tried after PATH when looking for a server binary.
var searchDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"}

// Options configure a Runtime.
type Options struct {
	// DataDir is the root of the runtime's files; nodes live in
	// DataDir/nodes/<name>/. Required.
	DataDir string
	// EmulatorID identifies the emulator instance; it is written to every
	// label file and Reap stops nodes carrying another id. Required.
	EmulatorID string
	// RedisServer is the redis-server binary (a path, or a name looked up on
	// PATH). Default: "redis-server" on PATH, then in /usr/sbin, /usr/bin,
	// /usr/local/bin, /opt/homebrew/bin.
	RedisServer string
	// ValkeyServer is the binary for Engine "valkey". Default: valkey-server
	// if installed (same search), else RedisServer.
	ValkeyServer string
	// Logger receives node lifecycle events; nil discards them.
	Logger *slog.Logger
}

// Runtime runs nodes as local server processes. It is safe for concurrent
// use; operations on one node name are serialised.
type Runtime struct {
	log      *slog.Logger
	id       string
	dataDir  string
	nodesDir string
	redis    server
	valkey   *server // nil: use redis
	admin    engine.Admin

	locks keyed.Mutex

	mu     sync.Mutex
	procs  map[string]*proc // nodes this Runtime started and has not stopped
	closed bool
}

// proc is a node process this Runtime started. done is closed once the
// process has been reaped; err is its exit error and may be read after done.
type proc struct {
	lbl      label
	done     chan struct{}
	err      error
	stopping atomic.Bool
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var _ engine.Runtime = (*Runtime)(nil)

// New returns a Runtime over opts.DataDir. It finds the server binary and
// checks that it runs (redis-server --version).
func New(opts Options) (*Runtime, error) {
	if opts.DataDir == "" {
		return nil, errors.New("engine/process: Options.DataDir is required")
	}
	if opts.EmulatorID == "" {
		return nil, errors.New("engine/process: Options.EmulatorID is required")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("engine/process: data dir: %w", err)
	}
	nodesDir := filepath.Join(dataDir, "nodes")
	// Node files (data, configuration, logs) are the user's alone: the
	// directories are 0700 and every file in them 0600. Chmod tightens a
	// directory an older version created 0755.
	if err := os.MkdirAll(nodesDir, 0o700); err != nil {
		return nil, fmt.Errorf("engine/process: %w", err)
	}
	if err := os.Chmod(nodesDir, 0o700); err != nil {
		return nil, fmt.Errorf("engine/process: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	admin, err := engine.NewAdmin()
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		log:      log,
		id:       opts.EmulatorID,
		dataDir:  dataDir,
		nodesDir: nodesDir,
		procs:    make(map[string]*proc),
		admin:    admin,
	}

	name := opts.RedisServer
	if name == "" {
		name = "redis-server"
	}
	path, err := findBinary(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v; install it with \"apt-get install redis-server\" (Debian/Ubuntu) or \"brew install redis\" (macOS), or set Options.RedisServer to its path",
			ErrServerNotFound, err)
	}
	if r.redis, err = probeServer(path); err != nil {
		return nil, err
	}

	if opts.ValkeyServer != "" {
		path, err := findBinary(opts.ValkeyServer)
		if err != nil {
			return nil, fmt.Errorf("engine/process: valkey server: %w", err)
		}
		s, err := probeServer(path)
		if err != nil {
			return nil, err
		}
		r.valkey = &s
	} else if path, err := findBinary("valkey-server"); err == nil {
		if s, err := probeServer(path); err == nil {
			r.valkey = &s
		} else {
			log.Warn("ignoring valkey-server that does not run", "path", path, "err", err)
		}
	}
	return r, nil
}

// Name implements engine.Runtime.
func (r *Runtime) Name() string { return "process" }

// ServerVersion is the version of the redis-server binary, e.g. "7.0.15".
func (r *Runtime) ServerVersion() string { return r.redis.version }

// Binary is the path of the redis-server binary in use.
func (r *Runtime) Binary() string { return r.redis.path }

// NodeDir is the directory of the named node (whether or not it exists).
func (r *Runtime) NodeDir(name string) string { return filepath.Join(r.nodesDir, name) }

// serverFor picks the binary for an engine name.
func (r *Runtime) serverFor(eng string) (server, error) {
	switch strings.ToLower(eng) {
	case "", "redis":
		return r.redis, nil
	case "valkey":
		if r.valkey != nil {
			return *r.valkey, nil
		}
		return r.redis, nil
	default:
		return server{}, fmt.Errorf("engine/process: unsupported engine %q (want redis or valkey)", eng)
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("engine/process: invalid node name %q (letters, digits, '.', '_', '-'; at most 200)", name)
	}
	return nil
}

// Start implements engine.Runtime. It writes the node's redis.conf and its
// label, starts the server, records its pid in the label and returns once it
// answers PING (and INFO shows the pid we started, so a stray server on the
// same address is not mistaken for it). The label comes first so that an
// emulator killed at any instant leaves a record of every server it may have
// started (see reap.go). If the process exits or ctx ends first, the node is
// killed and removed and the error carries the tail of its log. A leftover
// directory of a dead node with the same name is replaced; a running one
// gives engine.ErrNodeExists.
func (r *Runtime) Start(ctx context.Context, spec engine.NodeSpec) (engine.Node, error) {
	if err := validateName(spec.Name); err != nil {
		return engine.Node{}, err
	}
	if spec.Endpoint.Host == "" || spec.Endpoint.Port <= 0 || spec.Endpoint.Port > 65535 {
		return engine.Node{}, fmt.Errorf("engine/process: node %s: invalid endpoint %q", spec.Name, spec.Endpoint.Addr())
	}
	srv, err := r.serverFor(spec.Engine)
	if err != nil {
		return engine.Node{}, err
	}
	dir := r.NodeDir(spec.Name)
	conf, err := buildConfig(spec, dir, srv.caps, r.admin)
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
	if err == nil {
		if r.running(lbl, p) {
			return engine.Node{}, fmt.Errorf("%w: %s (pid %d on %s)", engine.ErrNodeExists, spec.Name, lbl.PID, lbl.Endpoint.endpoint().Addr())
		}
		r.forget(spec.Name)
	}
	if _, statErr := os.Stat(dir); statErr == nil && (err != nil || lbl.PID == 0) {
		// The directory of a start cut short: its server may run unrecorded.
		if err := r.stopUnrecorded(spec.Name, 0); err != nil {
			return engine.Node{}, err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return engine.Node{}, fmt.Errorf("engine/process: clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return engine.Node{}, fmt.Errorf("engine/process: %w", err)
	}
	confPath := filepath.Join(dir, confFileName)
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return engine.Node{}, fmt.Errorf("engine/process: %w", err)
	}
	if spec.InitialRDB != nil {
		if err := keyed.WriteFile(filepath.Join(dir, "dump.rdb"), spec.InitialRDB); err != nil {
			os.RemoveAll(dir)
			return engine.Node{}, fmt.Errorf("engine/process: seeding %s: %w", spec.Name, err)
		}
	}
	lbl = label{
		Name:          spec.Name,
		EmulatorID:    r.id,
		Labels:        maps.Clone(spec.Labels),
		Endpoint:      toJSONEndpoint(spec.Endpoint),
		Engine:        spec.Engine,
		EngineVersion: spec.EngineVersion,
		Binary:        srv.path,
		ServerVersion: srv.version,
		ConfigPath:    confPath,
	}
	if spec.ReplicaOf != nil {
		ep := toJSONEndpoint(*spec.ReplicaOf)
		lbl.ReplicaOf = &ep
	}
	// Recorded before the server exists (pid 0: not started yet), so no
	// crash leaves a server without a label.
	if err := writeLabel(dir, lbl); err != nil {
		os.RemoveAll(dir)
		return engine.Node{}, fmt.Errorf("engine/process: node %s: writing label: %w", spec.Name, err)
	}
	logPath := filepath.Join(dir, logFileName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return engine.Node{}, fmt.Errorf("engine/process: %w", err)
	}

	cmd := serverCommand(srv.path, confPath)
	cmd.Dir = dir
	cmd.Stdout = logf // an *os.File is handed to the child: no copy goroutine
	cmd.Stderr = logf
	setProcAttrs(cmd)
	started := time.Now()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		os.RemoveAll(dir)
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
		r.abort(p, dir)
		return engine.Node{}, fmt.Errorf("engine/process: node %s: recording pid %d: %w", spec.Name, lbl.PID, err)
	}
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
	err = engine.WaitReady(wctx, spec.Endpoint, p.check, r.servedBy(lbl.PID))
	cancelWait()
	if err != nil && p.exited() {
		err = p.check(ctx, spec.Endpoint)
	}
	if err != nil {
		tail := logTail(logPath, 20)
		r.abort(p, dir)
		return engine.Node{}, fmt.Errorf("engine/process: node %s (pid %d) did not start on %s: %w\n--- %s (tail) ---\n%s",
			spec.Name, lbl.PID, spec.Endpoint.Addr(), err, logFileName, tail)
	}
	r.log.Info("node started", "node", spec.Name, "addr", spec.Endpoint.Addr(), "pid", lbl.PID,
		"replicaOf", replicaOfAttr(spec.ReplicaOf), "took", time.Since(started).Round(time.Microsecond))
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
	}
}

// abort kills a node whose start failed and removes its files.
func (r *Runtime) abort(p *proc, dir string) {
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
	_ = os.RemoveAll(dir)
}

// Inspect implements engine.Runtime.
func (r *Runtime) Inspect(ctx context.Context, name string) (engine.Node, error) {
	if validateName(name) != nil {
		return engine.Node{}, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	lbl, p, err := r.lookup(name)
	if err != nil {
		return engine.Node{}, err
	}
	return lbl.node(r.running(lbl, p)), nil
}

// List implements engine.Runtime: every node with a label file under
// DataDir/nodes, this run's and earlier runs', sorted by name.
func (r *Runtime) List(ctx context.Context) ([]engine.Node, error) {
	entries, err := os.ReadDir(r.nodesDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("engine/process: %w", err)
	}
	var nodes []engine.Node
	for _, e := range entries {
		if !e.IsDir() || validateName(e.Name()) != nil {
			continue
		}
		lbl, p, err := r.lookup(e.Name())
		if err != nil {
			if !errors.Is(err, engine.ErrNodeNotFound) {
				r.log.Warn("unreadable node label", "node", e.Name(), "err", err)
			}
			continue
		}
		nodes = append(nodes, lbl.node(r.running(lbl, p)))
	}
	return nodes, nil
}

// Signal sends sig to the node's process group (e.g. SIGSTOP/SIGCONT to
// simulate a hung node). The node must be running.
func (r *Runtime) Signal(name string, sig syscall.Signal) error {
	if validateName(name) != nil {
		return fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	lbl, p, err := r.lookup(name)
	if err != nil {
		return err
	}
	if !r.running(lbl, p) {
		return fmt.Errorf("engine/process: node %s is not running", name)
	}
	if err := signalGroup(lbl.PID, sig); err != nil {
		return fmt.Errorf("engine/process: signal %v to node %s (pid %d): %w", sig, name, lbl.PID, err)
	}
	return nil
}

// Close implements engine.Runtime: later Starts fail; running nodes are left
// alone (Stop them first, or let the next run Reap them).
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// lookup returns the node's label (from disk, else from memory for a node
// this Runtime started) and its proc when this Runtime started it.
func (r *Runtime) lookup(name string) (label, *proc, error) {
	r.mu.Lock()
	p := r.procs[name]
	r.mu.Unlock()
	lbl, err := readLabel(r.NodeDir(name))
	switch {
	case err == nil:
		if p != nil && p.lbl.PID != lbl.PID {
			p = nil // the label describes another process
		}
		return lbl, p, nil
	case p != nil && !p.exited():
		// Our process runs although its label is gone (removed by another
		// runtime sharing the data dir): keep it stoppable.
		return p.lbl, p, nil
	case errors.Is(err, fs.ErrNotExist):
		return label{}, nil, fmt.Errorf("%w: %s", engine.ErrNodeNotFound, name)
	default:
		return label{}, nil, err
	}
}

func (r *Runtime) forget(name string) {
	r.mu.Lock()
	delete(r.procs, name)
	r.mu.Unlock()
}

// running reports whether the node's process is alive.
func (r *Runtime) running(lbl label, p *proc) bool {
	if p != nil {
		return !p.exited() // our child: alive until reaped
	}
	return processMatches(lbl)
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
