package emulator

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/elasticache-local/elasticache-local/emulator/console"
	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/docker"
	"github.com/elasticache-local/elasticache-local/engine/process"
	"github.com/elasticache-local/elasticache-local/engine/tlsca"
	"github.com/elasticache-local/elasticache-local/queryapi"
	"github.com/elasticache-local/elasticache-local/s3store"
)

// Version is the emulator's version, reported by the health endpoint.
const Version = "0.1.0"

// HealthPath answers 200 with JSON once the emulator serves requests.
const HealthPath = "/_elasticache/health"

// Config is what a Server needs; cmd/elasticache-local fills it from flags
// and environment variables, tests fill it directly.
type Config struct {
	// Listen is the API address; "127.0.0.1:0" picks a free port.
	Listen string
	// DataDir holds the state (state/), node directories and, by default,
	// snapshots; the next start on it brings everything back.
	DataDir string
	// Fresh starts from an empty state: every node of the data dir is
	// reaped and every resource forgotten (snapshots, which live in the
	// snapshot store, stay).
	Fresh bool
	// Runtime selects the node runtime: "process" (the default) or
	// "docker"; Images overrides the docker runtime's engine → image map
	// (keys "redis", "valkey", "redis:7.0", ...).
	Runtime string
	Images  map[string]string
	// RedisServer is the redis-server binary the process runtime runs
	// (a path or a name on PATH; default: redis-server on PATH), e.g. one
	// scripts/build-redis-jemalloc built with Redis's bundled jemalloc,
	// which active defragmentation (activedefrag) needs.
	RedisServer string
	// DockerNetwork is the docker runtime's docker.Options.NetworkMode:
	// "host", "bridge" or "auto" ("" too).
	DockerNetwork string
	// Region and AccountID are used for unsigned requests.
	Region    string
	AccountID string
	// AddressBase is the first loopback address handed to nodes
	// (default engine.DefaultAddressBase).
	AddressBase string
	Logger      *slog.Logger
	// Health checks and quotas; zero values take the Options defaults.
	HealthInterval time.Duration
	HealthMisses   int
	// ReaderEndpointRotation: how long a reader endpoint stays on one
	// replica while others are healthy (where endpoints are bound on the
	// nodes); zero takes DefaultReaderEndpointRotation.
	ReaderEndpointRotation time.Duration
	TestFailoverQuota      int
	NodeQuota              int
	// Nodes per cluster-mode group and per Memcached cluster.
	ClusterNodeQuota   int
	MemcachedNodeQuota int
	// Snapshots live in SnapshotDir (default DataDir/snapshots), or in
	// SnapshotBucket on the S3 endpoint when that is set. The S3 endpoint
	// (host:port or URL) also serves CopySnapshot TargetBucket exports and
	// SnapshotArns restores.
	SnapshotDir    string
	SnapshotBucket string
	S3Endpoint     string
	S3AccessKey    string
	S3SecretKey    string
	S3Region       string
	// Now is the clock (tests inject one to run automated backups).
	Now func() time.Time
	// AllowedOrigins are the web origins (scheme://host[:port]) whose pages
	// may call the API; none by default, "*" allows any. AllowedHosts are
	// names besides localhost, loopback and the listen address that the
	// Host header may carry (e.g. a docker-compose service name); "*"
	// allows any. See frontDoor.
	AllowedOrigins []string
	AllowedHosts   []string
	// HTTP limits; zero values take the defaults below (tests set short
	// ones). ReadTimeout bounds reading a whole request, WriteTimeout
	// handling and answering it, IdleTimeout a keep-alive connection's wait
	// for its next request; MaxConnections caps open API connections.
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxConnections int
	// Credentials (access key id → secret access key), when set, make the
	// API refuse every request not signed with one of them (SigV4, as AWS
	// checks it); none accepts any. AdminAPI says who may use the admin
	// API, which signing does not cover: AdminAPILoopback (the default),
	// AdminAPIAny or AdminAPIOff. See admin_access.go.
	Credentials map[string]string
	AdminAPI    string
}

// HTTP limit defaults. A request body is at most 2 MiB, so a minute to read
// it only fails a client that stalls; handlers answer in well under a
// minute (long work runs after the answer), so two leave room. Idle
// connections outlive the 90 s the AWS SDKs keep theirs, so the client
// side closes first and never reuses a connection the server is closing.
const (
	DefaultReadTimeout    = time.Minute
	DefaultWriteTimeout   = 2 * time.Minute
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxConnections = 512
)

// Server is a running emulator: the Query API and health endpoint over HTTP,
// the control plane, and the node runtime.
type Server struct {
	emu         *Emulator
	runtime     engine.Runtime
	http        *http.Server
	ln          net.Listener
	served      chan error
	log         *slog.Logger
	runtimeName string
	unlock      func()
}

// Start is the composition root: it opens the data dir and its state,
// builds the runtime, the snapshot stores and the control plane, restores
// what an earlier run left (adopting or resuming its nodes, reaping the
// rest; see Emulator.Restore), and serves the API. It returns once the listener accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "process"
	}
	if cfg.DataDir == "" {
		return nil, errors.New("emulator: a data dir is required")
	}
	// Region and account name storage; the API refuses requests scoped to
	// invalid ones, and so must the defaults be valid.
	if cfg.Region != "" && !queryapi.ValidRegion(cfg.Region) {
		return nil, fmt.Errorf("emulator: %q is not an AWS region code (like us-east-1)", cfg.Region)
	}
	if cfg.AccountID != "" && !queryapi.ValidAccountID(cfg.AccountID) {
		return nil, fmt.Errorf("emulator: account id %q is not 12 digits", cfg.AccountID)
	}
	if err := checkAccess(cfg); err != nil {
		return nil, err
	}
	// Private to the user: node data, snapshots and keys live under it.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("emulator: data dir: %w", err)
	}
	log := cfg.Logger
	unlock, err := lockDataDir(cfg.DataDir, cfg.Listen)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			unlock()
		}
	}()
	store, recs, err := openState(cfg, log)
	if err != nil {
		return nil, err
	}
	admin, err := engine.LoadAdmin(filepath.Join(cfg.DataDir, adminSecretFile))
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	// One CA per data dir, created on first start: clients trust it once
	// (CAPath serves it) for every TLS group of every run.
	ca, err := tlsca.LoadOrCreate(filepath.Join(cfg.DataDir, caDir))
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	admin = admin.WithCA(ca.Pool())
	rt, err := newRuntime(ctx, cfg, admin)
	if err != nil {
		return nil, err
	}
	pool, err := engine.NewAddressPool(cfg.AddressBase)
	if err != nil {
		rt.Close()
		return nil, err
	}
	snaps, err := openSnapshotStores(ctx, cfg)
	if err != nil {
		rt.Close()
		return nil, err
	}
	emu, err := New(Options{Runtime: rt, Addresses: pool, Region: cfg.Region, AccountID: cfg.AccountID, Logger: log,
		HealthInterval: cfg.HealthInterval, HealthMisses: cfg.HealthMisses, TestFailoverQuota: cfg.TestFailoverQuota, NodeQuota: cfg.NodeQuota,
		ClusterNodeQuota: cfg.ClusterNodeQuota, MemcachedNodeQuota: cfg.MemcachedNodeQuota,
		Snapshots: snaps.store, SnapshotKeys: snaps.keys, Buckets: snaps.buckets, Now: cfg.Now, Store: store,
		BindEndpoints: nodesOnHost(rt) && !pool.SingleAddress(), ReaderEndpointRotation: cfg.ReaderEndpointRotation, CA: ca})
	if err != nil {
		rt.Close()
		return nil, err
	}
	begin := time.Now()
	rep, err := emu.Restore(ctx, recs)
	if err != nil {
		emu.Close(ctx)
		rt.Close()
		return nil, err
	}
	if rep.Regions > 0 || rep.Reaped > 0 {
		log.Info("restored the state of the earlier run", "regions", rep.Regions, "adoptedNodes", rep.Adopted,
			"nodesToRestart", rep.Restarted, "reapedNodes", rep.Reaped, "unfinishedOperations", rep.Operations,
			"took", time.Since(begin).Round(time.Microsecond))
	}
	if n, err := emu.LoadSnapshots(ctx); err != nil {
		log.Warn("loading snapshots of earlier runs", "store", snaps.store.Describe(), "err", err)
	} else if n > 0 {
		log.Info("loaded snapshots of earlier runs", "count", n, "store", snaps.store.Describe())
	}
	svc := queryapi.New(queryapi.Options{Region: emu.opts.Region, AccountID: emu.opts.AccountID, Logger: log,
		Credentials: cfg.Credentials})
	emu.Register(svc)

	s := &Server{emu: emu, runtime: rt, log: log, served: make(chan error, 1), runtimeName: cfg.Runtime, unlock: unlock}
	router := mux.NewRouter()
	router.HandleFunc(HealthPath, s.health).Methods(http.MethodGet)
	router.HandleFunc(CAPath, caHandler(ca.CertPEM())).Methods(http.MethodGet)
	s.registerAdmin(router)
	router.PathPrefix(strings.TrimSuffix(console.Path, "/")).Handler(console.New(consoleSource{emu},
		console.Options{Logger: log, AdminHeader: AdminHeader, NodesPath: AdminNodesPath, Version: Version}))
	router.PathPrefix("/").Handler(svc)
	handler := newFrontDoor(newAdminGate(router, cfg.AdminAPI, log), log, cfg.Listen, cfg.AllowedOrigins, cfg.AllowedHosts)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("emulator: listen on %s: %w", cfg.Listen, err)
	}
	s.ln = ln
	s.http = HTTPServer(cfg, handler)
	limited := LimitListener(cfg, ln)
	go func() { s.served <- s.http.Serve(limited) }()
	started = true
	log.Info("elasticache-local ready", "endpoint", s.URL(), "runtime", cfg.Runtime, "dataDir", cfg.DataDir,
		"region", emu.opts.Region, "accountId", emu.opts.AccountID)
	return s, nil
}

// HTTPServer is the API's HTTP server around handler, with cfg's
// timeouts (or the defaults). With LimitListener it is the whole HTTP
// stack the API is served with; a benchmark serves its baseline through
// the same one.
func HTTPServer(cfg Config, handler http.Handler) *http.Server {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:  cmp.Or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout: cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:  cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)}
	srv.ReadHeaderTimeout = min(srv.ReadHeaderTimeout, srv.ReadTimeout)
	return srv
}

// LimitListener caps the connections ln accepts at cfg.MaxConnections (or
// the default): see limitListener.
func LimitListener(cfg Config, ln net.Listener) net.Listener {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newLimitListener(ln, cmp.Or(cfg.MaxConnections, DefaultMaxConnections), log)
}

// newRuntime builds the configured node runtime. On a fresh start it reaps
// what an earlier run of the same data dir left; otherwise Restore adopts
// the nodes the state owns and reaps the rest.
// nodesOnHost reports whether every node listens on the host's network
// itself, so a primary can also listen on its group's primary endpoint:
// processes, and containers on the host's network.
func nodesOnHost(rt engine.Runtime) bool {
	if d, ok := rt.(*docker.Runtime); ok {
		return d.HostNetwork()
	}
	return rt.Name() == "process"
}

func newRuntime(ctx context.Context, cfg Config, admin engine.Admin) (engine.Runtime, error) {
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	var rt interface {
		engine.Runtime
		engine.Reaper
	}
	switch cfg.Runtime {
	case "process":
		p, err := process.New(process.Options{DataDir: cfg.DataDir, EmulatorID: id, Logger: cfg.Logger, Admin: admin, RedisServer: cfg.RedisServer})
		if err != nil {
			return nil, err
		}
		rt = p
	case "docker":
		// Node data stays inside the containers (copied in and out through
		// the API), so the emulator itself may run in a container; the data
		// dir scopes which containers are ours to reap.
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		d, err := docker.New(ctx, docker.Options{EmulatorID: id, Logger: cfg.Logger, Scope: abs, Images: cfg.Images, Admin: admin, DataDir: abs,
			NetworkMode: cfg.DockerNetwork})
		if err != nil {
			return nil, err
		}
		rt = d
	default:
		return nil, fmt.Errorf("emulator: unknown runtime %q (supported: process, docker)", cfg.Runtime)
	}
	if !cfg.Fresh {
		return rt, nil
	}
	n, err := rt.Reap(ctx)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("emulator: reaping nodes of an earlier run: %w", err)
	}
	if n > 0 {
		cfg.Logger.Info("fresh start: reaped nodes left by an earlier run", "count", n)
	}
	return rt, nil
}

// snapshotStores are the snapshot store, the key provider for encryption
// at rest, and access to other S3 buckets.
type snapshotStores struct {
	store   s3store.Store
	keys    s3store.KeyProvider
	buckets func(string) (s3store.Store, error)
}

func openSnapshotStores(ctx context.Context, cfg Config) (snapshotStores, error) {
	var out snapshotStores
	master, err := masterKey(cfg.DataDir)
	if err != nil {
		return out, err
	}
	out.keys = s3store.DerivedKeys(master)
	s3opts := func(bucket string, create bool) s3store.S3Options {
		return s3store.S3Options{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
			Region: cfg.S3Region, Bucket: bucket, CreateBucket: create}
	}
	if cfg.S3Endpoint != "" {
		out.buckets = func(bucket string) (s3store.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return s3store.NewS3(ctx, s3opts(bucket, false))
		}
	}
	switch {
	case cfg.SnapshotBucket != "" && cfg.S3Endpoint == "":
		return out, errors.New("emulator: --snapshot-bucket needs --s3-endpoint")
	case cfg.SnapshotBucket != "":
		// The S3 server may be starting next to us (docker compose): retry
		// for a while before giving up.
		var st *s3store.S3
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err = s3store.NewS3(ctx, s3opts(cfg.SnapshotBucket, true))
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			cfg.Logger.Info("waiting for the S3 endpoint", "endpoint", cfg.S3Endpoint, "err", err)
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			return out, fmt.Errorf("emulator: snapshot bucket: %w", err)
		}
		out.store = st
	default:
		dir := cfg.SnapshotDir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "snapshots")
		}
		st, err := s3store.NewDir(dir)
		if err != nil {
			return out, fmt.Errorf("emulator: snapshot dir: %w", err)
		}
		if n := st.RemovedTemps(); n > 0 {
			cfg.Logger.Info("removed temporary files of snapshot writes a crash cut off", "count", n, "dir", dir)
		}
		out.store = st
	}
	return out, nil
}

// masterKey is the emulated KMS's root secret, kept in the data dir so
// encrypted snapshots stay readable across runs.
func masterKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "kms-master.key")
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("emulator: writing %s: %w", path, err)
	}
	return b, nil
}

// URL is the API endpoint, e.g. http://127.0.0.1:4566.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Emulator returns the control plane (for tests and the health endpoint).
func (s *Server) Emulator() *Emulator { return s.emu }

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status  string `json:"status"`
		Version string `json:"version"`
		Runtime string `json:"runtime"`
		Counts  Counts `json:"counts"`
	}{"ready", Version, s.runtimeName, s.emu.Counts()})
}

// Shutdown stops serving, saves every node's data and stops it (see
// Emulator.Close: the next start on the data dir brings everything back)
// and closes the runtime.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if e := s.emu.Close(ctx); e != nil && err == nil {
		err = e
	}
	if e := s.sweep(ctx); e != nil && err == nil {
		err = e
	}
	if e := s.runtime.Close(); e != nil && err == nil {
		err = e
	}
	if e := <-s.served; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	s.unlock()
	return err
}

// sweep reaps, once every node is stopped, whatever of this data dir still
// runs without a record: a node an earlier run was starting when it was
// killed can come up after this run's start-up adoption (a container create
// the Docker daemon finished late), and it must not outlive this run. The
// data the records' nodes saved stays. It runs even when ctx has ended,
// bounded by sweepTimeout.
func (s *Server) sweep(ctx context.Context) error {
	reaper, ok := s.runtime.(engine.Reaper)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sweepTimeout)
	defer cancel()
	var n int
	var err error
	if keeper, ok := s.runtime.(engine.Keeper); ok {
		// Nodes the records own saved their data for the next start.
		var ad engine.Adoption
		ad, err = keeper.Adopt(ctx, func(n engine.Node) bool { return s.emu.ownsNode(n.Name) })
		n = ad.Reaped
	} else {
		n, err = reaper.Reap(ctx)
	}
	if n > 0 {
		s.log.Warn("reaped nodes no record owned at shutdown", "count", n)
	}
	if err != nil {
		return fmt.Errorf("emulator: reaping at shutdown: %w", err)
	}
	return nil
}

// sweepTimeout bounds the shutdown sweep (a container listing, a process scan).
const sweepTimeout = 10 * time.Second

// DefaultDataDir is a per-user directory for node data.
func DefaultDataDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "elasticache-local")
	}
	return filepath.Join(os.TempDir(), "elasticache-local")
}

// adminSecretFile holds the password of the emulator's ACL user on every
// node (engine.LoadAdmin), so the next run reaches the nodes it adopts.
const adminSecretFile = "admin.secret"

// caDir is the data dir's directory of the CA that issues TLS nodes'
// certificates (engine/tlsca).
const caDir = "tls"

// CAPath serves the CA certificate (PEM) that TLS clients verify nodes
// with, e.g. curl -o ca.pem http://127.0.0.1:4566/_elasticache/ca.pem.
const CAPath = "/_elasticache/ca.pem"

// caHandler serves the CA certificate; it is public, like a root
// certificate of AWS's.
func caHandler(pem []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(pem)
	}
}

// FreshHint is how a user starts from an empty state; errors about the
// state name it.
const FreshHint = "--fresh (or ELASTICACHE_LOCAL_FRESH=true)"

// openState opens the state store of the data dir and loads what an earlier
// run recorded; on a fresh start it forgets it instead. A file that cannot
// be used stops the start, naming the file and the way out: an emulator
// that silently started empty would look like it lost everything.
func openState(cfg Config, log *slog.Logger) (*state.Store, []state.Region, error) {
	store, err := state.Open(filepath.Join(cfg.DataDir, "state"))
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: %w", err)
	}
	if cfg.Fresh {
		if err := store.Remove(); err != nil {
			return nil, nil, fmt.Errorf("emulator: fresh start: %w", err)
		}
		log.Info("fresh start: the state of earlier runs is forgotten", "dir", store.Dir())
		return store, nil, nil
	}
	recs, err := store.Load()
	if err != nil {
		return nil, nil, fmt.Errorf("emulator: %w; the file is left as it is: fix or remove it, or start with %s to start from an empty state", err, FreshHint)
	}
	return store, recs, nil
}
