package docker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/internal/keyed"
)

// Labels the runtime sets on its containers and networks besides
// engine.LabelEmulator and the NodeSpec labels. The prefix is reserved: spec
// labels may not use it.
const (
	labelPrefix = "elasticache-local.docker."
	// LabelScope groups the containers and networks one Reap considers.
	LabelScope = labelPrefix + "scope"
	// LabelNodeName is NodeSpec.Name.
	LabelNodeName = labelPrefix + "node"
	// LabelEndpoint is the host endpoint the node is published on (host:port).
	LabelEndpoint = labelPrefix + "endpoint"
	// LabelSpecKeys is the JSON list of the NodeSpec label keys, so Inspect
	// returns exactly those (Docker merges image labels into containers').
	LabelSpecKeys = labelPrefix + "spec-labels"
)

// Default images, by engine. scripts/build-offline-images builds both tags
// from the host's redis-server when no registry is reachable.
const (
	DefaultRedisImage  = "redis:7.2"
	DefaultValkeyImage = "valkey/valkey:8.1"
)

// dataPath is the server's dir inside every container.
const dataPath = "/data"

// Timings. SHUTDOWN gets shutdownTimeout before the container is removed by
// force; Kill waits at most killWait for the container to be seen exited;
// cleanupTimeout bounds removals that must finish even when the caller's
// context has ended.
const (
	shutdownTimeout = time.Second
	killWait        = 10 * time.Second
	cleanupTimeout  = 30 * time.Second
	pingTimeout     = 5 * time.Second
)

// ErrDaemonUnavailable is wrapped by New when the Docker daemon does not answer.
var ErrDaemonUnavailable = errors.New("engine/docker: Docker daemon not reachable")

// ErrImageNotFound is wrapped by Start when the node's image is not present
// locally (the runtime never pulls).
var ErrImageNotFound = errors.New("engine/docker: image not found")

// Options configure a Runtime.
type Options struct {
	// EmulatorID identifies the emulator instance; every container and the
	// network carry it, and Reap removes those of other ids. Required.
	EmulatorID string
	// Images maps "engine:major.minor" (e.g. "redis:7.0"), "engine:major" or
	// "engine" to an image reference; the most specific key matching
	// NodeSpec.Engine and EngineVersion wins. Unset engines use
	// DefaultRedisImage and DefaultValkeyImage.
	Images map[string]string
	// NetworkMode is NetworkHost, NetworkBridge or NetworkAuto (the
	// default, "" too): see their docs.
	NetworkMode string
	// Network is the user-defined bridge network the nodes join in
	// NetworkBridge mode. Default:
	// elasticache-local-<hash of Scope>, the same for every run over one
	// scope, so nodes a run starts reach by alias the nodes it adopted.
	// Created when the first node starts; Close removes it when no
	// container is attached.
	Network string
	// Logger receives node lifecycle events; nil discards them.
	Logger *slog.Logger
	// DataDir is the emulator's directory (it need not be on the Docker
	// host): Suspend copies a node's dump.rdb, through the API, to
	// DataDir/nodes/<node>/ with a record of the node (kept.json), and
	// Start with NodeSpec.Resume seeds the node from there. Suspend needs it.
	DataDir string
	// BindMounts bind-mounts each node's /data from DataDir/containers/<node>
	// and runs the server as the calling user's uid:gid, so its files stay
	// removable without root. It needs DataDir to be a directory of the
	// Docker host; without it /data lives inside the container.
	BindMounts bool
	// Scope limits Reap, Adopt and List to containers labelled with the same
	// scope. Default: the absolute DataDir, or "default" without one.
	Scope string
	// Admin are the credentials of the control plane's ACL user on every
	// node. The emulator passes those of engine.LoadAdmin, so that the next
	// run reaches the nodes it adopts; zero means engine.NewAdmin (fresh
	// credentials, in memory only).
	Admin engine.Admin
}

// Runtime runs nodes as Docker containers. It is safe for concurrent use;
// operations on one node name are serialised.
type Runtime struct {
	cli      *client.Client
	log      *slog.Logger
	id       string
	scope    string
	network  string
	hostNet  bool // NetworkHost: containers on the host's network
	images   map[string]string
	dataDir  string // Options.DataDir, absolute ("" → Suspend unavailable)
	mountDir string // DataDir/containers when bind-mounting ("" → no bind mounts)
	user     string // container user for bind-mounted data ("" → image default)
	admin    engine.Admin
	// logs keeps the end of a container's output when Stop removes it
	// (engine.LogKeeper; nothing without a data dir).
	logs engine.LogKeeper

	locks keyed.Mutex

	netMu sync.Mutex
	netID string // id of the network named network ("" → look it up, or create it)

	peers peerCache // ClusterAddr of running nodes

	mu     sync.Mutex
	closed bool
	// adopted are the ids of containers of earlier runs this Runtime took
	// over (Adopt); with its own emulator id they make up its containers.
	adopted map[string]bool
	// kept are node names whose kept data (or stopped container) is this
	// Runtime's: suspended by it, or owned stopped nodes Adopt returned.
	// Reap and Adopt spare them; Start and Stop settle them.
	kept map[string]bool
	// stopExits ends the exit reports (ReportExits), nil when none run.
	stopExits context.CancelFunc
}

var (
	_ engine.Runtime       = (*Runtime)(nil)
	_ engine.Reaper        = (*Runtime)(nil)
	_ engine.FaultInjector = (*Runtime)(nil)
	_ engine.FileReader    = (*Runtime)(nil)
	_ engine.Keeper        = (*Runtime)(nil)
)

// New connects to the Docker daemon configured by the environment (as the
// docker CLI does) and checks that it answers.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.EmulatorID == "" {
		return nil, errors.New("engine/docker: Options.EmulatorID is required")
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
		log:     log,
		admin:   admin,
		id:      opts.EmulatorID,
		network: opts.Network,
		scope:   opts.Scope,
		adopted: make(map[string]bool),
		kept:    make(map[string]bool),
		images: map[string]string{
			"redis":  DefaultRedisImage,
			"valkey": DefaultValkeyImage,

			engine.EngineMemcached: DefaultMemcachedImage,
		},
	}
	for k, v := range opts.Images {
		r.images[strings.ToLower(k)] = v
	}
	if opts.BindMounts && opts.DataDir == "" {
		return nil, errors.New("engine/docker: Options.BindMounts needs Options.DataDir")
	}
	if opts.DataDir != "" {
		dir, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("engine/docker: data dir: %w", err)
		}
		// Node data is the user's alone (0700), as in the process runtime.
		if err := os.MkdirAll(filepath.Join(dir, keptDirName), 0o700); err != nil {
			return nil, fmt.Errorf("engine/docker: %w", err)
		}
		r.dataDir = dir
		r.logs = engine.LogKeeper{Dir: filepath.Join(dir, engine.KeptLogsDir)}
		if opts.BindMounts {
			r.mountDir = filepath.Join(dir, "containers")
			if err := os.MkdirAll(r.mountDir, 0o700); err != nil {
				return nil, fmt.Errorf("engine/docker: %w", err)
			}
		}
	}
	if r.scope == "" {
		r.scope = r.dataDir
		if r.scope == "" {
			r.scope = "default"
		}
	}
	if r.network == "" {
		sum := sha256.Sum256([]byte(r.scope))
		r.network = "elasticache-local-" + hex.EncodeToString(sum[:6])
	}

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("engine/docker: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := cli.Ping(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w at %s: %v", ErrDaemonUnavailable, cli.DaemonHost(), err)
	}
	// Negotiate now, before concurrent use: the client's lazy negotiation
	// on the first requests writes its version unguarded (a data race when
	// several Starts begin at once).
	cli.NegotiateAPIVersionPing(ping)
	r.cli = cli
	info, err := cli.Info(pctx)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("engine/docker: docker info: %w", err)
	}
	rootless := slices.ContainsFunc(info.SecurityOptions, func(s string) bool { return strings.Contains(s, "rootless") })
	if r.mountDir != "" && runtime.GOOS == "linux" && os.Getuid() > 0 && !rootless {
		// Run the server as the caller so the bind-mounted files stay
		// removable without root. Rootless Docker maps container root to
		// the caller already, and a uid there would map elsewhere.
		r.user = strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid())
	}
	switch opts.NetworkMode {
	case NetworkHost:
		r.hostNet = true
	case NetworkBridge:
	case "", NetworkAuto:
		var why string
		r.hostNet, why = hostNetworkUsable(cli, info)
		if r.hostNet {
			// Containers of an earlier run on the scope's bridge network
			// (made by a version without the host network, or with
			// --docker-network bridge) are adopted as they are: a node
			// started on the host's network could not reach them, nor
			// they it. The scope stays on the bridge until none is left.
			r.hostNet, why, err = r.noBridgeContainers(pctx)
			if err != nil {
				cli.Close()
				return nil, err
			}
		}
		if !r.hostNet {
			log.Info("docker runtime: nodes on a bridge network with published ports", "why", why)
		}
	default:
		cli.Close()
		return nil, fmt.Errorf("engine/docker: unknown network mode %q (want %s, %s or %s)", opts.NetworkMode, NetworkAuto, NetworkHost, NetworkBridge)
	}
	return r, nil
}

// Name implements engine.Runtime.
func (r *Runtime) Name() string { return "docker" }

// Network is the name of the emulator's bridge network.
func (r *Runtime) Network() string { return r.network }

// HostNetwork reports whether the nodes run on the host's network
// (NetworkHost): each then listens on its endpoint itself, so a node can
// also listen on another address of the host (a bound primary endpoint).
func (r *Runtime) HostNetwork() bool { return r.hostNet }

// Scope is the value of LabelScope on this runtime's containers.
func (r *Runtime) Scope() string { return r.scope }

// PeerEndpoint implements engine.Runtime: on a bridge network, the
// container's network alias and the same port, for an endpoint whose host
// is an IP address (as the host sees it); on the host's network the
// endpoint itself. Any other endpoint is returned unchanged, so the mapping is
// idempotent and host names resolvable in the network pass through.
func (r *Runtime) PeerEndpoint(ep engine.Endpoint) engine.Endpoint {
	if r.hostNet || net.ParseIP(ep.Host) == nil {
		return ep
	}
	return engine.Endpoint{Host: alias(ep), Port: ep.Port}
}

// alias is the network alias of the container published at ep:
// node-127-0-0-2-6379. It depends on the endpoint only, so PeerEndpoint
// needs no lookup and works for containers an earlier run started.
func alias(ep engine.Endpoint) string {
	return "node-" + strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, strings.ToLower(ep.Host)) + "-" + strconv.Itoa(ep.Port)
}

// containerName is unique per emulator id, so two emulators (or test
// binaries) on one daemon can use the same node names.
func containerName(emulatorID, node string) string {
	sum := sha256.Sum256([]byte(emulatorID))
	return "elasticache-local-" + node + "-" + hex.EncodeToString(sum[:4])
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// sanitize makes s usable in a Docker object name.
func sanitize(s string) string { return unsafeName.ReplaceAllString(s, "-") }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func validateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("engine/docker: invalid node name %q (letters, digits, '.', '_', '-'; at most 200)", name)
	}
	return nil
}

// nodeDir is the host directory bind-mounted as the node's /data ("" when
// nothing is bind-mounted).
func (r *Runtime) nodeDir(name string) string {
	if r.mountDir == "" {
		return ""
	}
	return filepath.Join(r.mountDir, name)
}

// Inspect implements engine.Runtime from the container's labels and state.
func (r *Runtime) Inspect(ctx context.Context, name string) (engine.Node, error) {
	if validateName(name) != nil {
		return engine.Node{}, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	c, err := r.find(ctx, name)
	if errors.Is(err, engine.ErrNodeNotFound) {
		if k, kerr := r.readKept(name); kerr == nil {
			return k.node(r.hasKeptData(name)), nil // suspended
		}
	}
	if err != nil {
		return engine.Node{}, err
	}
	n := nodeOf(c)
	n.HasData = !n.Running && r.hasKeptData(name)
	return n, nil
}

// List implements engine.Runtime: every container in this runtime's scope,
// this emulator's and leftovers of other ids, and the suspended nodes of
// DataDir, sorted by node name.
func (r *Runtime) List(ctx context.Context) ([]engine.Node, error) {
	cs, err := r.containers(ctx, "")
	if err != nil {
		return nil, err
	}
	nodes := make([]engine.Node, 0, len(cs))
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		n := nodeOf(c)
		n.HasData = !n.Running && r.hasKeptData(n.Name)
		nodes = append(nodes, n)
		seen[n.Name] = true
	}
	kept, err := r.keptRecords()
	if err != nil {
		return nil, err
	}
	for name, k := range kept {
		if !seen[name] {
			nodes = append(nodes, k.node(r.hasKeptData(name)))
		}
	}
	slices.SortFunc(nodes, func(a, b engine.Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, nil
}

// noBridgeContainers reports whether none of the scope's node containers
// (of an earlier run) is on a bridge network, and why not.
func (r *Runtime) noBridgeContainers(ctx context.Context) (bool, string, error) {
	cs, err := r.containers(ctx, "")
	if err != nil {
		return false, "", err
	}
	for _, c := range cs {
		if c.HostConfig.NetworkMode != network.NetworkHost {
			return false, "containers of an earlier run of the data dir are on its bridge network (" + c.ID[:12] + ", ...)", nil
		}
	}
	return true, "", nil
}

// containers lists the scope's node containers in any state, those of node
// name only when name is set.
func (r *Runtime) containers(ctx context.Context, name string) ([]container.Summary, error) {
	f := filters.NewArgs(filters.Arg("label", LabelScope+"="+r.scope))
	if name != "" {
		f.Add("label", LabelNodeName+"="+name)
	} else {
		f.Add("label", LabelNodeName)
	}
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("engine/docker: listing containers: %w", err)
	}
	return cs, nil
}

// find returns the container of a node: this runtime's (its emulator id,
// or adopted) if there is one, else the newest leftover of another id.
func (r *Runtime) find(ctx context.Context, name string) (container.Summary, error) {
	cs, err := r.containers(ctx, name)
	if err != nil {
		return container.Summary{}, err
	}
	if len(cs) == 0 {
		return container.Summary{}, fmt.Errorf("%w: %s", engine.ErrNodeNotFound, name)
	}
	slices.SortFunc(cs, func(a, b container.Summary) int {
		aOurs, bOurs := r.owns(a), r.owns(b)
		if aOurs != bOurs {
			if aOurs {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Created, a.Created) // newest first
	})
	return cs[0], nil
}

// owns reports whether the container is this runtime's: started by a
// runtime of its emulator id, or adopted.
func (r *Runtime) owns(c container.Summary) bool {
	if c.Labels[engine.LabelEmulator] == r.id {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.adopted[c.ID]
}

// running reports whether the container's processes exist (a paused
// container is running, frozen).
func running(state string) bool {
	return state == container.StateRunning || state == container.StatePaused || state == container.StateRestarting
}

// nodeOf converts a container to the engine's view, from its labels.
func nodeOf(c container.Summary) engine.Node {
	n := engine.Node{
		Name:    c.Labels[LabelNodeName],
		ID:      c.ID,
		Running: running(c.State),
		Paused:  c.State == container.StatePaused,
		Labels:  map[string]string{},
	}
	if host, port, err := net.SplitHostPort(c.Labels[LabelEndpoint]); err == nil {
		n.Endpoint.Host = host
		n.Endpoint.Port, _ = strconv.Atoi(port)
	}
	var keys []string
	_ = json.Unmarshal([]byte(c.Labels[LabelSpecKeys]), &keys)
	for _, k := range keys {
		if v, ok := c.Labels[k]; ok {
			n.Labels[k] = v
		}
	}
	return n
}

// Close implements engine.Runtime: later Starts fail, and the network is
// removed when no container uses it. Running nodes are left alone (Stop
// them first, or let the next run Reap them).
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.stopExits != nil {
		r.stopExits()
		r.stopExits = nil
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", r.network))})
	errs = append(errs, err)
	for _, n := range nets {
		if n.Name == r.network { // the filter matches substrings
			errs = append(errs, r.removeNetwork(ctx, n.ID))
		}
	}
	errs = append(errs, r.cli.Close())
	return errors.Join(errs...)
}

// removeNetwork removes the network of this id unless containers are still
// attached.
func (r *Runtime) removeNetwork(ctx context.Context, id string) error {
	n, err := r.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("engine/docker: inspecting network %.12s: %w", id, err)
	case len(n.Containers) > 0:
		r.log.Info("keeping network with attached containers", "network", n.Name, "containers", len(n.Containers))
		return nil
	}
	if err := r.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("engine/docker: removing network %s: %w", n.Name, err)
	}
	r.netMu.Lock()
	if r.netID == n.ID {
		r.netID = ""
	}
	r.netMu.Unlock()
	return nil
}
