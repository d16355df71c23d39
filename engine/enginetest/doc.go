// Package enginetest is the contract test suite every engine.Runtime must
// pass: the process runtime and the docker runtime run the same Run from
// their own tests, so the emulator can treat them alike.
//
// The suite talks to real engine servers (no mocks): it starts nodes on
// endpoints from the caller's AddressPool, checks them over the network with
// the engine package's helpers, and covers start/PING/SET/GET, replication
// set up by Start and by runtime-level REPLICAOF through PeerEndpoint, labels
// in List and Inspect, Stop (also past the caller's deadline, and of a
// frozen node), restarting on a freed endpoint, and, where the runtime
// implements the optional interfaces, Kill/Pause/Resume
// (engine.FaultInjector), CopyFrom and seeding a node with
// NodeSpec.InitialRDB (engine.FileReader), Reap (engine.Reaper) by a
// second runtime with another emulator id, and nodes outliving a runtime
// instance (engine.Keeper): Suspend and Start with NodeSpec.Resume, and
// Adopt by a new instance of the nodes a dropped one left in every state
// (running, paused, killed, suspended, not owned). It also checks
// engine.LoadAdmin. It logs the start-to-PING times it measured.
//
// RunTLS (tls.go) is the contract of TLS nodes (NodeSpec.TLS, certificates
// from engine/tlsca) and node users (NodeSpec.Users), run by both runtimes'
// tests with runtimes of their own: replication and a cluster over TLS,
// plaintext clients refused, MIGRATE over TLS, users locking the default
// user, and a new runtime's admin reaching the TLS nodes it adopts.
package enginetest
