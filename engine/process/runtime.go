// Package process is the engine.Runtime that runs every node as a local
// redis-server process.
//
// Layout: each node lives in DataDir/nodes/<name>/ with
//
//	redis.conf  generated configuration (bind/port of the endpoint, dir = the
//	            node dir, no persistence, disk-based replication syncs, NodeSpec.Config)
//	redis.log   the server's stdout and stderr; when the directory goes (a
//	            stop, a rebuild, a reap), its end is kept in
//	            DataDir/node-logs/<name>/redis.log.1 … (engine.LogKeeper)
//	node.json   the label file: name, labels, pid, endpoint, emulator id,
//	            binary, start time, and whether dump.rdb is kept data
//	dump.rdb    what SAVE writes; after Suspend, the node's kept data
//	nodes.conf  a cluster node's cluster state (NodeSpec.Cluster): kept while
//	            the server runs (an adopted node keeps its place), not by
//	            Suspend: a resumed node starts as a fresh cluster node
//	tls-*.pem   a TLS node's certificate, key and CA (NodeSpec.TLS,
//	            engine.TLSFiles), written at every start
//
// A TLS node listens with TLS only (engine.PortDirectives); Start and
// Adopt register it with the Admin (engine.Admin.UseTLS, by its label
// engine.LabelTLS), Stop unregisters it. NodeSpec.Users are user directives
// of redis.conf, after the admin user's.
//
// A cluster node binds its own address like any node, so CLUSTER SLOTS and
// MOVED name its host endpoint and the other nodes reach it there too
// (engine.ClusterAddrOf gives the endpoint back); it announces that address
// (cluster-announce-ip) and its bus listens on port+10000.
//
// The label files are the source of truth: Inspect and List read them, and a
// node counts as running only while its pid is alive and, where /proc exists,
// /proc/<pid>/cmdline still names the server and that node's redis.conf (so a
// recycled pid is not mistaken for the node). A label is written before its
// server starts, and Reap stops nodes an earlier run left behind, finding
// their servers by command line too, so an emulator killed at any instant
// leaves nothing running that the next run does not adopt or stop (reap.go).
//
// Directories are 0700 and files 0600: the server runs with umask 077.
//
// Nodes run in a process group of their own (setpgid) in the emulator's
// session: a Ctrl-C of the emulator's terminal does not reach them. They
// are not tied to the emulator's lifetime: if the emulator dies (kill -9),
// they keep running, and the next run Adopts those its records own and
// Reaps the rest (keep.go). An adopted server is not a child of the new
// run: it is watched through its pid, identified again by its command line
// before every signal, as any server of the data dir is. Suspend saves a
// node's dataset into its directory (SHUTDOWN SAVE) and stops it; Start
// with NodeSpec.Resume loads it back.
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
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	// MemcachedServer is the binary for Engine "memcached". Default:
	// memcached on PATH, then in the same directories.
	MemcachedServer string
	// Logger receives node lifecycle events; nil discards them.
	Logger *slog.Logger
	// Admin are the credentials of the control plane's ACL user on every
	// node. The emulator passes those of engine.LoadAdmin, so that the next
	// run reaches the nodes it adopts; zero means engine.NewAdmin (fresh
	// credentials, in memory only).
	Admin engine.Admin
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
	// memcached is the binary of Memcached nodes, found at the first one
	// (memcachedServer) under mu; memcachedName is Options.MemcachedServer.
	memcached     *server
	memcachedName string
	admin         engine.Admin
	// logs keeps the end of a node's log when its directory goes
	// (engine.LogKeeper), so a rebuilt node's previous log stays readable.
	logs engine.LogKeeper

	locks keyed.Mutex

	mu    sync.Mutex
	procs map[string]*proc // nodes this Runtime started and has not stopped
	// adopted are running nodes of an earlier run this Runtime took over
	// (Adopt), by name, with their pid: not children, so they are watched
	// through their pid and label like any node of the data dir.
	adopted map[string]int
	// kept are nodes that do not run but are this Runtime's to keep: those
	// it suspended and the stopped ones Adopt's caller owns. Reap spares
	// them; Start, Stop and Suspend of the name settle them.
	kept   map[string]bool
	closed bool
	// onExit is called with the name of a child that exits unasked
	// (engine.ExitReporter).
	onExit func(name string)
}

var _ engine.ExitReporter = (*Runtime)(nil)

// ReportExits implements engine.ExitReporter for the nodes this Runtime
// started: reap, which waits for each child, reports it once it is
// reaped. Adopted nodes are not children and are not reported.
func (r *Runtime) ReportExits(fn func(name string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onExit = fn
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
	admin := opts.Admin
	if admin == (engine.Admin{}) {
		var err error
		if admin, err = engine.NewAdmin(); err != nil {
			return nil, err
		}
	}
	r := &Runtime{
		log:      log,
		id:       opts.EmulatorID,
		dataDir:  dataDir,
		nodesDir: nodesDir,
		logs:     engine.LogKeeper{Dir: filepath.Join(dataDir, engine.KeptLogsDir)},
		procs:    make(map[string]*proc),
		adopted:  make(map[string]int),
		kept:     make(map[string]bool),
		admin:    admin,

		memcachedName: opts.MemcachedServer,
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
	case engine.EngineMemcached:
		return r.memcachedServer()
	default:
		return server{}, fmt.Errorf("engine/process: unsupported engine %q (want redis, valkey or memcached)", eng)
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("engine/process: invalid node name %q (letters, digits, '.', '_', '-'; at most 200)", name)
	}
	return nil
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

// forget drops every claim of this Runtime on the node.
func (r *Runtime) forget(name string) {
	r.mu.Lock()
	delete(r.procs, name)
	delete(r.adopted, name)
	delete(r.kept, name)
	r.mu.Unlock()
}

// owned reports whether the node is this Runtime's: started, adopted or kept.
func (r *Runtime) owned(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, started := r.procs[name]
	_, adopted := r.adopted[name]
	return started || adopted || r.kept[name]
}

// running reports whether the node's process is alive.
func (r *Runtime) running(lbl label, p *proc) bool {
	if p != nil {
		return !p.exited() // our child: alive until reaped
	}
	return processMatches(lbl)
}

// removeNodeDir removes a node's directory after keeping the end of its
// log (engine.LogKeeper): a log that cannot be kept is not worth failing a
// stop for, so that only warns.
func (r *Runtime) removeNodeDir(name string) error {
	dir := r.NodeDir(name)
	if err := r.logs.KeepFile(name, filepath.Join(dir, logFileName)); err != nil {
		r.log.Warn("could not keep the log of a node", "node", name, "err", err)
	}
	return os.RemoveAll(dir)
}
