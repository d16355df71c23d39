package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Status values, as the API spells them.
const (
	statusCreating     = "creating"
	statusAvailable    = "available"
	statusModifying    = "modifying"
	statusDeleting     = "deleting"
	statusCreateFailed = "create-failed"
	statusRebooting    = "rebooting cache cluster nodes"
	nodeRebooting      = "rebooting"
)

// cacheNode is one engine node (a Redis OSS/Valkey cluster has exactly one).
type cacheNode struct {
	id       string // "0001"
	name     string // runtime name, unique per data dir
	endpoint engine.Endpoint
	status   string
	created  time.Time
	az       string
	// misses counts consecutive failed health checks; down is set when they
	// reach the threshold, recovering while the node is being replaced.
	misses     int
	down       bool
	recovering bool
}

// healthy reports whether the node serves traffic; the caller holds r.mu.
func (n *cacheNode) healthy() bool {
	return n.status == statusAvailable && !n.recovering && !n.down
}

// nodeName is the runtime name of a node: unique across accounts and regions
// because runtime resources (processes, containers, directories) are shared.
func nodeName(sc scope, clusterID, nodeID string) string {
	return fmt.Sprintf("%s-%s-%s-%s", sc.account, sc.region, clusterID, nodeID)
}

// nodeLabels are the labels a node carries in the runtime.
func nodeLabels(sc scope, groupID, clusterID, nodeID string) map[string]string {
	return map[string]string{
		engine.LabelAccount: sc.account,
		engine.LabelRegion:  sc.region,
		engine.LabelGroup:   groupID,
		engine.LabelCluster: clusterID,
		engine.LabelNode:    nodeID,
	}
}

// nodeLaunch is everything needed to (re)start one node, captured under the
// lock so the slow part runs without it.
type nodeLaunch struct {
	spec      engine.NodeSpec
	replicaOf *engine.Endpoint
	// seed, when set, opens the RDB the node starts from (a restore).
	seed rdbSeed
	// tlsHosts, for a TLS node, are the addresses its certificate names;
	// startNode issues it (security.go).
	tlsHosts []string
	// preferred and plainReplication go to its engine.TLSSpec.
	preferred, plainReplication bool
	// defrag is the activedefrag value the node's parameter group asks
	// for, set once it runs (param_apply.go setDefrag).
	defrag string
	// primaryReady, for a replica started at the same time as its
	// primary, waits until the primary's start is over and returns its
	// error: the replica starts on its own and is made a replica then
	// (startNode).
	primaryReady func(context.Context) error
}

// launchFor describes how to start node n of cluster cl; the caller holds r.mu.
func (e *Emulator) launchFor(r *region, cl *cacheCluster, n *cacheNode, replicaOf *engine.Endpoint) nodeLaunch {
	// The node starts with every value of the group, requires-reboot ones
	// included (a Redis OSS or Valkey cluster has one node).
	cl.pendingReboot = false
	cl = r.runningAs(cl) // a node change under way (rolling.go)
	l := e.plainLaunch(r, cl, n, replicaOf)
	e.secureLaunch(r, cl, n, &l)
	return l
}

// plainLaunch is launchFor without the group's TLS and users; the caller
// holds r.mu.
func (e *Emulator) plainLaunch(r *region, cl *cacheCluster, n *cacheNode, replicaOf *engine.Endpoint) nodeLaunch {
	if g := r.groups[cl.groupID]; g != nil && g.clusterMode {
		// A cluster node starts alone: REPLICAOF is not allowed in a Redis
		// Cluster, formCluster attaches it to its node group's primary.
		l := e.plainLaunch(r, &cacheCluster{id: cl.id, engine: cl.engine, paramGroup: cl.paramGroup, nodeType: cl.nodeType}, n, nil)
		l.spec.Labels[engine.LabelGroup] = cl.groupID
		l.spec.Cluster = true
		// A primary whose last slot a resharding moves away stays a
		// primary until its node group is removed, instead of becoming a
		// replica of the slot's new owner on its own.
		if l.spec.Config == nil {
			l.spec.Config = map[string]string{}
		}
		l.spec.Config["cluster-allow-replica-migration"] = "no"
		return l
	}
	return nodeLaunch{
		spec: engine.NodeSpec{
			Name:          n.name,
			Labels:        nodeLabels(r.scope, cl.groupID, cl.id, n.id),
			Engine:        cl.engine.Engine,
			EngineVersion: cl.engine.Actual,
			Endpoint:      n.endpoint,
			ReplicaOf:     replicaOf,
			Config:        r.nodeConfig(cl, cl.paramGroup, false),
		},
		replicaOf: replicaOf,
		defrag:    r.paramValue(cl.paramGroup, "activedefrag"),
	}
}

// startNode starts a node and waits until it is ready: it answers PING and,
// for a replica, its link to the primary is up (the full sync is done).
func (e *Emulator) startNode(ctx context.Context, l nodeLaunch) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.NodeReadyTimeout)
	defer cancel()
	if l.seed != nil {
		rc, err := l.seed(ctx)
		if err != nil {
			return fmt.Errorf("opening the snapshot: %w", err)
		}
		defer rc.Close()
		l.spec.InitialRDB = rc
	}
	if err := e.issueTLS(&l); err != nil {
		return err
	}
	if l.replicaOf != nil && l.primaryReady == nil {
		defer e.boostSync(ctx, *l.replicaOf)()
	}
	if l.primaryReady != nil {
		// A replica whose primary does not listen yet would retry only
		// at its next replication cron, up to a second later: it starts
		// without REPLICAOF and gets it once the primary answers.
		l.spec.ReplicaOf = nil
	}
	lazyFlush := eagerFirstFlush(&l)
	// A preferred node's endpoint is its demultiplexer's, open before the
	// node starts (the runtime's readiness check goes through it); any
	// other node listens there itself.
	if l.spec.TLS != nil && l.spec.TLS.Preferred {
		if err := e.demux.serve(l.spec.Name, l.spec.Endpoint); err != nil {
			return err
		}
	} else {
		e.demux.stop(l.spec.Name)
	}
	if _, err := e.opts.Runtime.Start(ctx, l.spec); err != nil {
		return err
	}
	if l.primaryReady != nil {
		if err := l.primaryReady(ctx); err != nil {
			return fmt.Errorf("its primary did not start: %w", err)
		}
		defer e.boostSync(ctx, *l.replicaOf)()
		if err := e.followOnceStarted(ctx, l.spec.Endpoint, e.opts.Runtime.PeerEndpoint(*l.replicaOf)); err != nil {
			return err
		}
	}
	checks := []engine.Check{e.admin.Pings}
	if l.replicaOf != nil {
		checks = append(checks, e.admin.ReplicationLinkUp)
	}
	if err := engine.WaitReady(ctx, l.spec.Endpoint, checks...); err != nil {
		return fmt.Errorf("node %s not ready: %w", l.spec.Name, err)
	}
	if l.defrag == "yes" {
		e.setDefrag(ctx, l.spec.Endpoint, l.defrag)
	}
	if lazyFlush != "" {
		if err := e.admin.ConfigSet(ctx, l.spec.Endpoint, map[string]string{lazyFlushParam: lazyFlush}); err != nil {
			return fmt.Errorf("node %s: setting %s: %w", l.spec.Name, lazyFlushParam, err)
		}
	}
	return nil
}

// lazyFlushParam makes a replica empty its old dataset in a background
// thread when a full sync replaces it (AWS sets it to yes, not modifiable).
const lazyFlushParam = "replica-lazy-flush"

// eagerFirstFlush has a replica that starts empty run its first full sync
// with lazyFlushParam off and returns the value the group gives it, which
// startNode sets once that sync is done ("" when there is nothing to
// change). The first sync has nothing to flush, but a lazy flush of the
// empty tables still hands them to the lazy-free thread, whose first free
// gives that thread an allocator arena of its own; every cron of the
// server then gathers its memory statistics over two arenas, for good:
// such a replica costs 12–16 % more CPU idle than one that flushed in
// place (measured: 30 replicas either way, side by side). Later full syncs
// (after a failover or a lost link) flush lazily, as on AWS.
func eagerFirstFlush(l *nodeLaunch) string {
	v := l.spec.Config[lazyFlushParam]
	if l.replicaOf == nil || l.spec.InitialRDB != nil || l.spec.Resume || v != "yes" {
		return ""
	}
	l.spec.Config = maps.Clone(l.spec.Config)
	l.spec.Config[lazyFlushParam] = "no"
	return v
}

// followOnceStarted points a node that has just started at its primary.
// The admin dials once, and a dial to a node that has just started can
// still fail when hundreds start at once (a full accept backlog times the
// dial out): a network error is retried until the node's readiness
// deadline, as the node would have retried its own REPLICAOF.
func (e *Emulator) followOnceStarted(ctx context.Context, ep, primary engine.Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.NodeReadyTimeout)
	defer cancel()
	for {
		err := e.admin.ReplicaOf(ctx, ep, &primary)
		var netErr net.Error
		if err == nil || !errors.As(err, &netErr) && !errors.Is(err, io.EOF) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitServing waits until every endpoint answers PING, all in parallel and
// within NodeReadyTimeout; it returns the first failure.
func (e *Emulator) waitServing(ctx context.Context, eps []engine.Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.NodeReadyTimeout)
	defer cancel()
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := engine.WaitReady(ctx, ep, e.admin.Pings); err != nil {
				errs[i] = fmt.Errorf("endpoint %s does not answer: %w", ep.Addr(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopNode stops a node and gives its endpoint back to the pool. A node the
// runtime no longer knows is already gone, which is fine.
func (e *Emulator) stopNode(ctx context.Context, n *cacheNode) error {
	err := e.opts.Runtime.Stop(ctx, n.name)
	if err != nil && !isNotFound(err) {
		return err
	}
	e.demux.stop(n.name)
	e.opts.Addresses.Release(n.endpoint)
	return nil
}

// stopParallelism bounds how many nodes stopNodes stops at once. Stopping
// is mostly waiting (for SHUTDOWN to be answered, for a process or container
// to exit), so many go at once; the bound keeps hundreds of nodes from
// opening as many connections and Docker API calls in the same instant.
const stopParallelism = 32

// stopNodes stops nodes in parallel and returns when every one is stopped.
// The runtime honours ctx: once it ends, Stop skips the graceful steps and
// kills what still runs, so nothing is left running past the deadline; the
// error then says the deadline passed.
func (e *Emulator) stopNodes(ctx context.Context, nodes []*cacheNode) error {
	return e.forNodes(ctx, "stopped", nodes, e.stopNode)
}

// suspendNodes saves every node's data and stops it, keeping the data for
// the next start (engine.Keeper), in parallel like stopNodes.
func (e *Emulator) suspendNodes(ctx context.Context, keeper engine.Keeper, nodes []*cacheNode) error {
	return e.forNodes(ctx, "saved and stopped", nodes, func(ctx context.Context, n *cacheNode) error {
		err := keeper.Suspend(ctx, n.name)
		if err != nil && !isNotFound(err) {
			return err
		}
		return nil
	})
}

// forNodes runs fn (stop or suspend) on every node, stopParallelism at once.
func (e *Emulator) forNodes(ctx context.Context, done string, nodes []*cacheNode, fn func(context.Context, *cacheNode) error) error {
	begin := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, stopParallelism)
	)
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, n); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %s not %s: %w", n.name, done, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	late := ctx.Err()
	if late != nil {
		errs = append(errs, fmt.Errorf("emulator: the deadline passed while stopping %d nodes, those still running then were killed: %w", len(nodes), late))
	}
	e.log.Info(done+" every node", "nodes", len(nodes), "took", time.Since(begin).Round(time.Millisecond), "deadlinePassed", late != nil)
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	return errors.Is(err, engine.ErrNodeNotFound)
}

// nodeID formats the n-th (1-based) cache node id.
func nodeID(n int) string { return fmt.Sprintf("%04d", n) }

// memberID formats the n-th (1-based) member cluster id of a replication group.
func memberID(groupID string, n int) string { return groupID + "-" + fmt.Sprintf("%03d", n) }

func itoa(n int) string { return strconv.Itoa(n) }
