package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
)

// Label keys every runtime attaches to a node so that the runtime itself,
// not the emulator's memory, is the record of what runs.
const (
	LabelEmulator = "elasticache-local.emulator" // emulator instance id (per data dir)
	LabelAccount  = "elasticache-local.account"
	LabelRegion   = "elasticache-local.region"
	LabelGroup    = "elasticache-local.replication-group" // empty for standalone clusters
	LabelCluster  = "elasticache-local.cache-cluster"     // e.g. orders-001
	LabelNode     = "elasticache-local.cache-node"        // e.g. 0001
)

// ErrNodeNotFound is returned for a node name the runtime does not know.
var ErrNodeNotFound = errors.New("engine: node not found")

// ErrNodeExists is returned by Start for a name that already has a running node.
var ErrNodeExists = errors.New("engine: node already exists")

// Endpoint is a host-reachable address of a node.
type Endpoint struct {
	Host string
	Port int
}

// Addr returns host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// NodeSpec describes a node to start.
type NodeSpec struct {
	// Name is unique within the runtime (and the data dir); used for files,
	// container names and Stop/Inspect.
	Name string
	// Labels are stored with the node and returned by List.
	Labels map[string]string
	// Engine is "redis", "valkey" or "memcached" (EngineMemcached: a
	// memcached server, which takes none of the Redis fields below but
	// Config, TLS and Resume; see MemcachedArgs); EngineVersion as the API
	// shows it.
	Engine        string
	EngineVersion string
	// Endpoint is where the node must listen (host-reachable).
	Endpoint Endpoint
	// Config holds extra redis.conf directives (name → value); for
	// memcached, its command-line options (MemcachedArgs).
	Config map[string]string
	// ReplicaOf, when set, starts the node as a replica of that endpoint.
	ReplicaOf *Endpoint
	// InitialRDB, when set, is an RDB stream the runtime writes into the
	// node's data directory as dump.rdb before starting it, so the node
	// loads it at start (restoring a snapshot). A node whose RDB does not
	// load fails to start.
	InitialRDB io.Reader
	// Resume starts the node from the data Keeper.Suspend kept for this name
	// (its dump.rdb) instead of an empty dataset; InitialRDB must be nil
	// then. Without kept data (never suspended, or killed before it saved
	// anything) the node starts empty, exactly as without Resume. ReplicaOf
	// and Config apply as usual. Once the node runs the kept data is its own
	// and no longer kept; a Start that fails leaves it kept for the next try.
	// A Start without Resume discards kept data of the name.
	//
	// A cluster node (Cluster) resumes with its dataset only: its nodes.conf
	// (node id, peers, slots, epochs) is not kept, so it starts as a fresh
	// cluster node with a new id that knows no peers and serves no slot
	// (Redis claims the slots of the keys a fresh node loads; the runtime
	// drops those claims, see Admin.ClusterDropSlots, as it does for a
	// cluster node seeded with InitialRDB). The control plane re-forms the
	// cluster from its own records: MEET, ADDSLOTS of a primary's slots
	// (serving its keys again), FlushAll and REPLICATE for a replica. A
	// node adopted while running (Keeper.Adopt) keeps its nodes.conf and
	// its place in the cluster.
	Resume bool
	// Cluster starts the node in cluster mode (cluster-enabled yes, with
	// its nodes.conf in the node's data directory). The runtime leaves
	// failure detection's failovers to the control plane
	// (cluster-replica-no-failover yes), serves partial coverage
	// (cluster-require-full-coverage no) and uses cluster-node-timeout 5000
	// unless Config sets it. Config may set the cluster-* directives that
	// tune behaviour (cluster-node-timeout, cluster-require-full-coverage,
	// cluster-allow-reads-when-down, cluster-allow-pubsubshard-when-down,
	// cluster-replica-validity-factor, cluster-migration-barrier,
	// cluster-allow-replica-migration) but none of the others. ReplicaOf
	// must be nil: a cluster node becomes a replica by CLUSTER REPLICATE
	// (Admin.ClusterReplicate). Nodes reach each other at ClusterAddrOf and
	// talk over the cluster bus on port+10000, so the port must be 55535
	// at most.
	Cluster bool
	// TLS, when set, makes the node serve TLS only on Endpoint.Port (no
	// plaintext listener), replicate over TLS (tls-replication) and, with
	// Cluster, talk TLS on the cluster bus (tls-cluster). Clients need no
	// certificate of their own. The runtime labels the node (LabelTLS) and
	// registers its endpoint with its Admin (Admin.UseTLS), at Start and at
	// Adopt, so the control plane's connections use TLS too.
	TLS *TLSSpec
	// Users are the node's users besides the admin user, set at start as
	// redis.conf user directives (so no client ever sees the node without
	// them); nil leaves Redis's own default user (on, nopass, all
	// permissions). Changes later go through Admin.ApplyUsers.
	Users []ACLUser
}

// LabelTLS marks a node started with NodeSpec.TLS (value LabelTLSRequired,
// or LabelTLSPreferred with TLSSpec.Preferred).
const LabelTLS = "elasticache-local.tls"

// TLSSpec is what a TLS node needs: PEM blocks, kept in the node's own
// files (the key readable by its owner only).
type TLSSpec struct {
	// CertPEM is the node's server certificate (then any intermediates);
	// KeyPEM its private key.
	CertPEM, KeyPEM []byte
	// CAPEM is the CA the node trusts for its peers (a replica verifies
	// its primary, cluster nodes each other).
	CAPEM []byte
	// Preferred makes the node serve plaintext too (ElastiCache's
	// TransitEncryptionMode preferred). Redis serves the two on two ports,
	// so the node listens at PreferredEndpoints(Endpoint) instead of
	// Endpoint, and the caller serves Endpoint itself with a demultiplexer
	// (emulator/proxy.ListenDemux) opened before Start, which the runtime's
	// readiness check goes through. Not with Cluster.
	Preferred bool
	// PlainReplication makes a replica connect to its primary without TLS
	// (tls-replication no): its primary serves plaintext (a preferred
	// group, or one changing from or to plaintext). A runtime-level
	// REPLICAOF follows it too.
	PlainReplication bool
}

// PreferredEndpoints are where a node with TLSSpec.Preferred listens, as
// the host reaches it: plaintext on the endpoint's port+1, TLS on port+2,
// same host. On Linux every node has a loopback address of its own (see
// AddressPool), so these ports are free.
func PreferredEndpoints(ep Endpoint) (plain, tls Endpoint) {
	return Endpoint{Host: ep.Host, Port: ep.Port + 1}, Endpoint{Host: ep.Host, Port: ep.Port + 2}
}

// Node is a node as the runtime sees it.
type Node struct {
	Name     string
	Endpoint Endpoint
	Labels   map[string]string
	// Running is false for a node whose process/container has exited.
	Running bool
	// ID is the runtime's id of the running instance: the container id
	// (docker) or the pid in decimal (process). It changes when the node is
	// restarted, so equal IDs prove a node was not (an adopted node keeps it).
	// A node that does not run has the ID of its last instance.
	ID string
	// PID is the OS process id where the runtime has one (0 otherwise).
	PID int
	// Paused is true for a running node that is frozen (SIGSTOP, docker
	// pause): it accepts connections but answers nothing.
	Paused bool
	// HasData reports, for a node that does not run, whether data kept by
	// Keeper.Suspend exists, i.e. whether Start with NodeSpec.Resume brings
	// back a dataset rather than an empty one. Meaningful in
	// Adoption.Stopped (and Inspect/List of a suspended node).
	HasData bool
}

// Runtime starts and stops engine nodes. Implementations: process (local
// redis-server processes) and docker (containers).
type Runtime interface {
	// Name is "process" or "docker".
	Name() string
	// Start launches a node and returns once it accepts connections and
	// answers PING. It does not wait for a replica's link to come up.
	Start(ctx context.Context, spec NodeSpec) (Node, error)
	// Stop stops the node (gracefully, then forcibly) and removes its files.
	Stop(ctx context.Context, name string) error
	// Inspect reports the runtime's view of one node.
	Inspect(ctx context.Context, name string) (Node, error)
	// List returns every node this runtime knows, from its own records
	// (label files, container labels), including ones an earlier run left.
	List(ctx context.Context) ([]Node, error)
	// PeerEndpoint returns the address another node of this runtime must use
	// to reach the node published at ep, i.e. the argument of REPLICAOF. The
	// process runtime returns ep; the docker runtime returns the container's
	// network alias and its port inside the network, because 127.0.0.x is a
	// container's own loopback. Start translates NodeSpec.ReplicaOf through
	// it itself; callers use it for runtime-level REPLICAOF and to compare
	// with the master_host/master_port a replica reports.
	PeerEndpoint(ep Endpoint) Endpoint
	// Admin is how the control plane connects to this runtime's nodes:
	// every node it starts has the admin user of these credentials, and its
	// replicas authenticate to their primary with them.
	Admin() Admin
	// Close releases runtime resources; it does not stop nodes.
	Close() error
}

// Reaper is implemented by runtimes that can remove nodes an earlier run (or
// another emulator id sharing their records) left behind.
type Reaper interface {
	// Reap stops and removes those nodes, kept data included, and returns
	// how many it removed. What this runtime instance started, adopted
	// (Keeper.Adopt) or suspended (Keeper.Suspend) is spared.
	Reap(ctx context.Context) (int, error)
}

// Keeper is implemented by runtimes whose nodes can outlive one run of the
// emulator (both built-in runtimes are): a clean shutdown Suspends every
// node and the next run Starts them with NodeSpec.Resume; after a crash of
// the emulator the nodes keep running and the next run Adopts them.
type Keeper interface {
	// Suspend saves the node's dataset (SHUTDOWN SAVE) and stops it, keeping
	// the data under the data dir so Start with NodeSpec.Resume brings it
	// back. Nothing of the node runs afterwards (docker: dump.rdb is copied
	// out to <DataDir>/nodes/<name>/dump.rdb and the container removed). It
	// honours ctx: past its deadline (or at once with ctx already done) the
	// node is killed and whatever was saved is kept. A node that does not
	// run is left as it is: its record stays, with no data once killed, and
	// with its kept data when it is suspended already. Reap of the
	// same runtime instance spares what it suspended (the emulator's
	// shutdown sweep runs after the Suspends); Stop discards it.
	Suspend(ctx context.Context, name string) error
	// Adopt goes over every node of this data dir an earlier run left
	// (processes/containers, and kept data). keep reports whether the
	// emulator's records own a node; it gets Name, Labels, Endpoint, ID,
	// Running (and HasData). Owned running nodes are taken over as they run:
	// same process/container and Node.ID, open client connections
	// undisturbed; from then on Stop/Inspect/Kill/Pause/Resume/CopyFrom/
	// Suspend work on them as on nodes this run started, and Reap spares
	// them. Owned nodes that do not run are returned in Stopped (HasData
	// tells whether kept data exists; Start them with Resume) and Reap spares
	// them too. Everything else is stopped and removed; Reaped counts those.
	// Nodes this runtime instance started, adopted or suspended are not
	// considered. Adopt with a keep that owns nothing is Reap.
	Adopt(ctx context.Context, keep func(Node) bool) (Adoption, error)
}

// Adoption is what Keeper.Adopt found.
type Adoption struct {
	// Running are the adopted running nodes (Paused ones included).
	Running []Node
	// Stopped are owned nodes that do not run.
	Stopped []Node
	// Reaped counts the nodes stopped or removed because nothing owns them.
	Reaped int
}

// FaultInjector is implemented by runtimes that can simulate node failures
// (both built-in runtimes do).
type FaultInjector interface {
	// Kill ends the node abruptly (SIGKILL) and returns once the runtime
	// reports it as not running. Its records and files stay until Stop.
	Kill(ctx context.Context, name string) error
	// Pause freezes a running node: it keeps its address, TCP connections
	// may still be accepted, but it answers nothing (a hung server).
	Pause(ctx context.Context, name string) error
	// Resume thaws a node frozen by Pause.
	Resume(ctx context.Context, name string) error
}

// ClusterAddresser is implemented by runtimes whose nodes reach each other
// at addresses other than their host endpoint (docker: the container's IP
// on its network). CLUSTER MEET takes the address the nodes use among
// themselves; ClusterAddrOf picks it for any runtime.
type ClusterAddresser interface {
	// ClusterAddr returns the node's IP (not a hostname: CLUSTER MEET needs
	// an IP) and the client port other nodes of the runtime use.
	ClusterAddr(ctx context.Context, name string) (Endpoint, error)
}

// ClusterAddrOf returns the address other nodes of rt reach node name at:
// rt's ClusterAddr when rt implements ClusterAddresser, else ep (the node's
// host endpoint, which the process runtime's nodes share with the host).
func ClusterAddrOf(ctx context.Context, rt Runtime, name string, ep Endpoint) (Endpoint, error) {
	if ca, ok := rt.(ClusterAddresser); ok {
		return ca.ClusterAddr(ctx, name)
	}
	return ep, nil
}

// FileReader is implemented by runtimes that can read a file out of a node's
// data directory (where SAVE writes dump.rdb), e.g. to export a snapshot.
type FileReader interface {
	// CopyFrom streams the regular file at path, relative to the node's data
	// directory (e.g. "dump.rdb"). A missing file gives an error wrapping
	// fs.ErrNotExist; paths that are absolute or leave the directory are
	// rejected. The node need not be running.
	CopyFrom(ctx context.Context, name, path string) (io.ReadCloser, error)
}

// ExitReporter is implemented by runtimes that learn of a node's exit as it
// happens (the process runtime is the parent of the nodes it started; the
// docker runtime follows the daemon's event stream), so that the control
// plane reacts to a crash at once instead of at its next health check.
// Nodes the runtime cannot watch that way (the process runtime's adopted
// nodes, which are not its children) are not reported: a health check still
// finds them dead.
type ExitReporter interface {
	// ReportExits makes the runtime call fn with the name of each node that
	// exits without having been asked to (exits it was asked for, by Stop,
	// Suspend or Kill, may be reported too), on a goroutine of its own and
	// without holding its locks, as Inspect starts reporting the node not
	// running. A later call replaces fn; nil stops the reports.
	ReportExits(fn func(name string))
}
