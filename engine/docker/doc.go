// Package docker is the engine.Runtime that runs every node as a Docker
// container, through the Docker Engine API (github.com/docker/docker/client,
// configured from the environment like the docker CLI: DOCKER_HOST, …, with
// API version negotiation so older daemons work).
//
// Per node there is one container, named elasticache-local-<node>-<hash of
// the emulator id>. Where the daemon's host network is the emulator's (a
// local Linux daemon, not rootless, not Docker Desktop: Options.NetworkMode
// NetworkAuto picks NetworkHost, network.go) the container runs on the
// host's network and the server binds NodeSpec.Endpoint itself, exactly as
// a process of the process runtime: nothing is published, no network is
// created, PeerEndpoint and ClusterAddr are the host endpoint, and a dead
// server's address refuses connections at once. Starting such a container
// costs about half a bridged one (no network namespace, veth pair, NAT
// rules or docker-proxy). The rest of this comment describes NetworkBridge.
//
// On a bridge network (NetworkBridge) the container is attached to a
// user-defined bridge network of the scope
// (default elasticache-local-<hash of the scope>, the same for every run, so
// nodes of this run and nodes it adopted reach each other). Its port is published
// on the host at exactly NodeSpec.Endpoint (HostIP 127.0.0.2, HostPort 6379,
// mapped to the same port inside), so the host reaches the node at the
// endpoint the API reports, as with the process runtime. The server is
// configured by command-line arguments, no config file: the endpoint's port,
// bind 0.0.0.0, no persistence, disk-based replication syncs, and the replica
// announces the host endpoint so a primary's INFO shows it.
//
// Replication between containers cannot use the host endpoints: 127.0.0.x
// inside a container is its own loopback. Every container therefore has a
// network alias derived from its host endpoint (node-127-0-0-2-6379), and
// PeerEndpoint maps a host endpoint to that alias and the same port. Start
// translates NodeSpec.ReplicaOf itself; callers use PeerEndpoint for
// runtime-level REPLICAOF and when comparing a replica's master_host.
//
// Cluster mode (NodeSpec.Cluster, cluster.go): the nodes meet, gossip and
// MIGRATE over the scope network at their container IPs, which ClusterAddr
// reports (CLUSTER MEET takes an IP, not an alias), and the cluster bus
// (port+10000) stays inside that network, unpublished. Clients on the host
// are sent to the published endpoints: each node announces its host IP as
// cluster-announce-hostname with cluster-preferred-endpoint-type hostname,
// so CLUSTER SLOTS, CLUSTER SHARDS, MOVED and ASK name it; the port needs no
// announcing, being the same inside and out. nodes.conf lives in /data and
// goes with the container (a resumed node starts without one).
//
// A TLS node (NodeSpec.TLS) listens with TLS only on the same port, so
// the published mapping is unchanged; its certificate, key and CA
// (engine.TLSFiles) are copied into /data through the API before the
// server starts (mode 0600, owned by root, the server's user there), or
// written into the bind-mounted directory. Replicas and cluster peers
// reach it by alias or container IP: Redis verifies a peer's chain against
// the CA, not its host name, so the certificate needs only the host
// endpoint's IP. NodeSpec.Users are --user arguments after the admin's.
//
// Container labels are the source of truth: engine.LabelEmulator, the
// NodeSpec labels, and the runtime's own (LabelScope, LabelNodeName,
// LabelEndpoint, LabelSpecKeys). Inspect and List read them; a paused
// container is Running and Paused. Reap removes the containers of the same
// scope (by default the data dir, like the process runtime's reaping is per
// data dir) that are not this runtime's, so emulators and test binaries
// with their own data dirs never reap each other; a runtime's containers
// are those of its emulator id and those it adopted.
//
// Nodes outlive the emulator (engine.Keeper, keep.go). Suspend saves a
// node's dataset (SHUTDOWN SAVE), copies its dump.rdb out through the API to
// Options.DataDir/nodes/<node>/ beside a record of the node (kept.json), and
// removes the container; Start with NodeSpec.Resume seeds the new container
// with it. After a crash of the emulator the containers keep running and
// Adopt takes over those the emulator's records own, keeping their ids.
//
// Node data lives in the container and goes with it, unless
// Options.BindMounts: each node's /data (the server's dir, where SAVE writes
// dump.rdb) is then bind-mounted from DataDir/containers/<node>/ and the
// server runs as the calling user's uid:gid, so the files stay removable
// without root. CopyFrom reads files through the API either way (works with
// remote daemons); NodeSpec.InitialRDB is written into the bind-mounted
// directory, or copied into the created container through the API, before
// the server starts and loads it.
//
// Images: Options.Images maps "engine:major.minor", "engine:major" or
// "engine" to an image; the defaults are redis:7.2 and valkey/valkey:8.1,
// run with entrypoint redis-server or valkey-server. Nothing is pulled: a
// missing image is an error naming scripts/build-offline-images, which
// builds both tags offline from the host's redis-server.
package docker
