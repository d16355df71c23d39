package engine

import (
	"context"
	"errors"
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
	// Engine is "redis" or "valkey"; EngineVersion as the API shows it.
	Engine        string
	EngineVersion string
	// Endpoint is where the node must listen (host-reachable).
	Endpoint Endpoint
	// Config holds extra redis.conf directives (name → value).
	Config map[string]string
	// ReplicaOf, when set, starts the node as a replica of that endpoint.
	ReplicaOf *Endpoint
}

// Node is a node as the runtime sees it.
type Node struct {
	Name     string
	Endpoint Endpoint
	Labels   map[string]string
	// Running is false for a node whose process/container has exited.
	Running bool
	// PID is the OS process id where the runtime has one (0 otherwise).
	PID int
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
	// Close releases runtime resources; it does not stop nodes.
	Close() error
}
