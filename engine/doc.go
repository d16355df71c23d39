// Package engine is the node layer of elasticache-local: every ElastiCache
// cache node is backed by a real engine server (redis-server, or valkey-server
// where installed) reachable from the host.
//
// The package has three parts:
//
//   - The Runtime interface (engine.go) that starts, stops and lists nodes.
//     Implementations live in sub-packages: engine/process runs local
//     redis-server processes, engine/docker a container per node; both pass
//     the contract suite in engine/enginetest. A runtime's own records (label
//     files, container labels) are the source of truth for what runs, not
//     the emulator's memory. Keeper lets nodes outlive one run of the
//     emulator: Suspend saves a node's data and stops it (a graceful stop),
//     Adopt takes over what an earlier run left, running (after a kill -9)
//     or suspended, and removes what no record owns; LoadAdmin keeps the
//     admin credentials in the data dir so the next run can reach them.
//     A node started with NodeSpec.TLS serves TLS only, replicates and (in
//     cluster mode) gossips over TLS, with a certificate the control plane
//     issues from engine/tlsca, the emulator's CA; the runtimes render its
//     directives and NodeSpec.Users the same way (node_tls.go), label it
//     LabelTLS and register it with their Admin (Admin.UseTLS, at Start
//     and Adopt), whose connections then use TLS, verified against the CA
//     Admin.WithCA gives.
//     A node with NodeSpec.Engine "memcached" runs memcached (memcached.go:
//     its command line); it is labelled LabelEngine, registered with the
//     Admin (UseMemcached) like a TLS node, and the Admin's Ping, Probe
//     and Shutdown speak memcached to it through gomemcache
//     (memcached_client.go). It keeps no data: Suspend stops it, Resume
//     starts it empty.
//
//   - Runtime-independent node operations that talk to a node over the network
//     with go-redis, so they behave the same for processes and containers.
//     They are methods of Admin, the credentials of the emulator's own ACL
//     user that every runtime writes into its nodes (Runtime.Admin), so users
//     changing the default user lock out neither the control plane nor
//     replicas: Ping, Alive (any reply, errors included, proves a node alive;
//     IsReply classifies an error), ReplicaOf, Shutdown, InspectReplication,
//     WithClient, Options (for a long-lived client), and the composable
//     readiness checks (Check, PortOpen, Pings, ReplicationLinkUp,
//     ReplicatingFrom) polled by WaitReady. Every call uses one short-lived
//     client with small dial and I/O timeouts, so they are cheap to poll and a
//     hung node costs at most the caller's deadline.
//
//     Every Redis command the control plane sends is here, never in the
//     emulator, in a file named by its command family: client.go (the
//     connection, PING, SHUTDOWN, INFO parsing), node_replication.go
//     (REPLICAOF, INFO replication, CatchUp, CLIENT PAUSE/UNPAUSE and
//     PauseAndCatchUp for a planned failover), node_persistence.go (BGSAVE
//     and INFO persistence), node_config.go (CONFIG SET/GET, hz, bind),
//     node_clients.go (CLIENT KILL), node_probe.go (the health monitor's
//     persistent connections: Probe and Watch), admin.go (the admin user,
//     Alive), admin_tls.go (which nodes the admin reaches over TLS) and
//     ready.go (readiness checks). Cluster (CLUSTER, MIGRATE) and
//     ACL commands belong in node_cluster.go and node_acl.go.
//
//   - AddressPool, which hands out host-reachable endpoints. On Linux every
//     127.x.y.z address is loopback, so each node gets its own address
//     (127.0.0.2, 127.0.0.3, …) on the port the caller asked for, typically
//     6379, exactly like ElastiCache endpoints that differ by host name only.
//     127.0.0.1 is never used in that mode, so neither the emulator's own port
//     nor a developer's local redis on 6379 can clash with a node. Where only
//     127.0.0.1 is bindable (macOS), the pool falls back to 127.0.0.1 with a
//     free port chosen by the OS.
package engine
