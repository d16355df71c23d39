// Package emulator owns the ElastiCache control plane: replication groups,
// cache clusters, parameter and subnet groups, events and tags, keyed by
// account and region. Handlers are typed (SDK *Input → *Output) and are
// registered on a queryapi.Service by Register, behind an audit of their
// input members (inputs.go, input_rules.go): every member is applied,
// reported back as AWS does, or refused with NotImplemented, never accepted
// and ignored.
//
// Each account+region scope (region in emulator.go) has its own lock; its
// records are persisted by package state whenever a change releases the
// lock (persist.go), before the API answers, so a restart loses nothing.
//
// State changes that take time on AWS (starting nodes, rebooting, deleting)
// are named operations (operations.go) run in the background and recorded
// with their scope while they run; the API answers immediately with the
// transitional status (creating, modifying, deleting, ...) exactly like the
// real service, and every change records an event for DescribeEvents. At
// the next start, restore.go takes over the nodes of the earlier run
// (adopted running after a kill -9, started from their saved data after a
// graceful stop) and reconcile.go finishes what its operations left half
// done; records.go converts the live model to and from the records.
//
// One file per resource family: replication_groups.go (creation in
// replication_group_create.go, replica changes in replicas.go),
// cache_clusters.go, catalog.go (engine versions), parameter_groups.go,
// subnet_groups.go, events.go, tags.go (every ARN kind); every AWS fault is
// built in faults.go, every Describe pages with pager.go, and the settings'
// defaults are in defaults.go. nodes.go holds the lifecycle of the engine
// nodes behind them (every Redis command is sent through package engine),
// and quota.go the node quota they count against. The health monitor
// (health.go) checks the nodes cheaply, tells an overloaded machine from
// dead nodes and starts their recovery: failover.go promotes a replica that
// holds the primary's data and rebuilds failed nodes; syncboost.go raises a
// primary's cron rate while replicas sync from it. Snapshots
// (snapshots.go, snapshot_ops.go) keep a record beside their RDB objects in
// the snapshot store; snapshot_records.go says how the record follows each
// state change so that a crash at any instant leaves a truthful one, which
// LoadSnapshots settles at the next start.
//
// Server (server.go, the composition root: state, runtime, snapshot
// stores, control plane, HTTP) puts the API, the health endpoint, the admin API
// (admin.go) and the web console (package console, which reads and acts
// through consoleSource: the API's own handlers and the admin API's node
// view) behind one HTTP server with timeouts and a connection cap
// (connlimit.go); frontDoor (frontdoor.go) refuses requests web pages make
// before any of them runs, and adminGate (admin_access.go) keeps the admin
// API and the console to the clients --admin-api allows.
package emulator
