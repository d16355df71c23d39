package emulator

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// Node changes: a new node type (scaling up or down) or a new engine
// version (an upgrade, Redis OSS → Valkey included) is applied the way AWS
// applies it to a group with replicas, online: node after node is
// replaced, the replicas first, then the primary role is handed to a
// replaced replica with a planned failover (writes paused until it has
// every acknowledged write, see failover), and the old primary is replaced
// last, as a replica. The node endpoints keep their addresses: a node is
// replaced in place, saving its data (engine.Keeper.Suspend) and starting
// with the new version and configuration (maxmemory of its node type, the
// parameter group of the new family) from that data, so a replica resumes
// its replication stream instead of a full sync, and the primary holds
// every write meanwhile. A standalone cluster, or a group of one node, has
// no replica to hand over to: its node is replaced the same way, and
// clients see the short outage the event reports. The primary and reader
// endpoints move as on a failover (nodeGroup.syncEndpoints). In a
// cluster-mode group every shard goes the same way (CLUSTER FAILOVER hands
// the role over); a replaced cluster node comes back with a new identity,
// which formCluster makes a replica of its shard's primary again.
//
// The change is recorded on its group or cluster before any node is
// touched, with the members done and the one in progress, so a restart of
// the emulator resumes it where it was (reconcileRegion); the described
// CacheNodeType and EngineVersion change when the last node is replaced.

// opNodeChange is the operation of a node change under way.
const opNodeChange = "modify-nodes"

// nodeChange is a change of the nodes of a group or standalone cluster:
// waiting for the maintenance window (pending) or under way (rolling).
type nodeChange struct {
	nodeType   string         // "" keeps the node type
	engine     *engineVersion // nil keeps the engine version
	paramGroup string         // the parameter group the new nodes take
	done       []string       // member clusters replaced so far
	current    string         // the member being replaced
	// transit, when set, is the in-transit encryption the nodes move to
	// (transit.go).
	transit *transitLayout
	// primary, when set, is the member to hold the primary role once
	// every node is replaced: a pending PrimaryClusterId applied with the
	// change (the replacement itself moves the role).
	primary string
}

// merge returns ch with later's changes over it (a later modification
// wins), either of them possibly nil.
func (ch *nodeChange) merge(later *nodeChange) *nodeChange {
	switch {
	case ch == nil:
		return later
	case later == nil:
		return ch
	}
	out := *ch
	if later.nodeType != "" {
		out.nodeType = later.nodeType
	}
	if later.engine != nil {
		out.engine, out.paramGroup = later.engine, later.paramGroup
	}
	if later.paramGroup != "" {
		out.paramGroup = later.paramGroup
	}
	if later.transit != nil {
		out.transit = later.transit
	}
	if later.primary != "" {
		out.primary = later.primary
	}
	return &out
}

// applyTo returns cl as it runs once the change is applied: a shallow
// copy, so the described cluster keeps its values until the change is done.
func (ch *nodeChange) applyTo(cl *cacheCluster) *cacheCluster {
	c := *cl
	if ch.nodeType != "" {
		c.nodeType = ch.nodeType
	}
	if ch.engine != nil {
		c.engine = *ch.engine
	}
	if ch.paramGroup != "" {
		c.paramGroup = ch.paramGroup
	}
	return &c
}

// changeOf returns the node change under way for cl's nodes (its group's,
// or its own when it stands alone), nil when none is. The caller holds r.mu.
func (r *region) changeOf(cl *cacheCluster) *nodeChange {
	if g := r.groups[cl.groupID]; g != nil {
		return g.rolling
	}
	return cl.rolling
}

// runningAs is cl as its node runs or is about to: with the change under
// way applied once the node is replaced or being replaced, so a node that
// fails later is repaired with what it ran. The caller holds r.mu.
func (r *region) runningAs(cl *cacheCluster) *cacheCluster {
	if ch := r.changeOf(cl); ch != nil && (ch.current == cl.id || slices.Contains(ch.done, cl.id)) {
		return ch.applyTo(cl)
	}
	return cl
}

// describeChange words a change for the events, as "cache node type
// cache.t4g.micro → cache.m7g.large, engine version 7.0.7 → 7.1.0".
func describeChange(cl *cacheCluster, ch *nodeChange) string {
	var parts []string
	if ch.nodeType != "" && ch.nodeType != cl.nodeType {
		parts = append(parts, "cache node type from "+cl.nodeType+" to "+ch.nodeType)
	}
	if ch.engine != nil && *ch.engine != cl.engine {
		from, to := cl.engine.Actual, ch.engine.Actual
		if ch.engine.Engine != cl.engine.Engine {
			from, to = engineDescriptions[cl.engine.Engine]+" "+from, engineDescriptions[ch.engine.Engine]+" "+to
		}
		parts = append(parts, "engine version from "+from+" to "+to)
	}
	if ch.transit != nil {
		parts = append(parts, "in-transit encryption to "+ch.transit.String())
	}
	if len(parts) == 0 {
		return "cache nodes"
	}
	return strings.Join(parts, " and ")
}

// startGroupChange starts replacing g's nodes; the caller holds r.mu.
func (e *Emulator) startGroupChange(r *region, g *replicationGroup, ch *nodeChange) {
	ch.done, ch.current = nil, ""
	g.rolling, g.status = ch, statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Modifying %s of replication group %s", describeChange(r.clusters[g.nodeGroups[0].primary], ch), g.id)
	e.runOperation(r, opNodeChange, g.id, nil, func(ctx context.Context) { e.rollGroup(ctx, r, g) })
}

// startClusterChange starts replacing a standalone cluster's node; the
// caller holds r.mu.
func (e *Emulator) startClusterChange(r *region, cl *cacheCluster, ch *nodeChange) {
	ch.done, ch.current = nil, ""
	cl.rolling, cl.status = ch, statusModifying
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Modifying %s of cache cluster %s", describeChange(cl, ch), cl.id)
	e.runOperation(r, opNodeChange, cl.id, nil, func(ctx context.Context) { e.rollCluster(ctx, r, cl) })
}

// rollGroup replaces g's nodes one after the other: in every node group
// each replica, then a planned failover to a replaced replica, then the
// old primary. No lock is held by the caller.
func (e *Emulator) rollGroup(ctx context.Context, r *region, g *replicationGroup) {
	handedOver := map[*nodeGroup]bool{}
	finalHandOver := false
	for !stopping(ctx) {
		r.mu.Lock()
		ng, next, promote := g.nextToReplace(r, handedOver)
		cl := r.clusters[next]
		ch := g.rolling
		r.mu.Unlock()
		switch {
		case next == "" && ch.primary != "" && !finalHandOver:
			// Every node is replaced: the primary asked for takes the role.
			finalHandOver = true
			e.handOverTo(ctx, r, g, ch.primary)
		case next == "":
			e.settleTLSReplication(ctx, r, g)
			e.finishGroupChange(r, g)
			return
		case promote != "":
			// Hand the primary role over before its node goes; a failover
			// that fails leaves the primary to be replaced in place.
			handedOver[ng] = true
			if err := e.handOver(ctx, r, g, ng, promote); err != nil && !stopping(ctx) {
				e.log.Error("handing the primary role over before replacing its node failed; replacing it in place", "group", g.id, "err", err)
			}
		default:
			e.replaceNode(ctx, r, cl, ch)
		}
	}
}

// nextToReplace picks what rollGroup does next: the first replica not
// replaced yet, of any node group; else the first primary not replaced,
// with the replaced replica to hand its role to first (promote) unless
// that was tried already. next is "" when every node is replaced. The
// caller holds r.mu.
func (g *replicationGroup) nextToReplace(r *region, handedOver map[*nodeGroup]bool) (ng *nodeGroup, next, promote string) {
	done := g.rolling.done
	for _, x := range g.nodeGroups {
		for _, id := range x.members {
			if id != x.primary && !slices.Contains(done, id) {
				return x, id, ""
			}
		}
	}
	for _, x := range g.nodeGroups {
		if slices.Contains(done, x.primary) {
			continue
		}
		if !handedOver[x] {
			replicas := x.healthyReplicas(r)
			// The primary asked for, if any, takes the role first.
			slices.SortStableFunc(replicas, func(a, b *cacheCluster) int { return rank(b.id == g.rolling.primary) - rank(a.id == g.rolling.primary) })
			for _, cl := range replicas {
				if slices.Contains(done, cl.id) {
					return x, x.primary, cl.id
				}
			}
		}
		return x, x.primary, ""
	}
	return nil, "", ""
}

// rank orders what is asked for first.
func rank(asked bool) int {
	if asked {
		return 1
	}
	return 0
}

// handOverTo hands the primary role of target's node group to target
// (PrimaryClusterId applied with a node change) unless it holds it
// already or is not a healthy replica. No lock is held by the caller.
func (e *Emulator) handOverTo(ctx context.Context, r *region, g *replicationGroup, target string) {
	r.mu.Lock()
	ng := g.nodeGroupOf(target)
	ok := ng != nil && ng.primary != target && slices.ContainsFunc(ng.healthyReplicas(r), func(cl *cacheCluster) bool { return cl.id == target })
	r.mu.Unlock()
	if !ok {
		return
	}
	if err := e.handOver(ctx, r, g, ng, target); err != nil && !stopping(ctx) {
		e.log.Error("promoting the primary asked for after replacing the nodes failed", "group", g.id, "target", target, "err", err)
	}
}

// handOverTries bounds the planned failovers tried before the primary's
// node is replaced in place instead: the nodes just replaced and the
// primary endpoint moving to them (CONFIG SET bind, endpoint_bind.go)
// may refuse a connection for a moment, and a failover that fails before
// the promotion changes nothing, so it is simply tried again.
const (
	handOverTries = 5
	handOverWait  = 50 * time.Millisecond
)

// handOver runs a planned failover of ng to target, trying again while it
// fails before anything changed. No lock is held by the caller.
func (e *Emulator) handOver(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, target string) error {
	e.settleTLSReplication(ctx, r, g)
	var err error
	for try := 1; try <= handOverTries; try++ {
		r.mu.Lock()
		moved := ng.primary == target
		r.mu.Unlock()
		if moved {
			return err // promoted, a member's repointing failed: the failover logged it
		}
		if _, err = e.failover(ctx, r, g, ng, target, true, time.Time{}, "handing the primary role to a replaced node before replacing the primary's node"); err == nil {
			return nil
		}
		e.log.Warn("planned failover before replacing the primary's node failed; trying again", "group", g.id, "target", target, "try", try, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(handOverWait):
		}
	}
	return err
}

// rollCluster replaces a standalone cluster's node. No lock is held by the
// caller.
func (e *Emulator) rollCluster(ctx context.Context, r *region, cl *cacheCluster) {
	r.mu.Lock()
	ch := cl.rolling
	done := slices.Contains(ch.done, cl.id)
	r.mu.Unlock()
	if !done {
		e.replaceNode(ctx, r, cl, ch)
	}
	if stopping(ctx) {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	what := describeChange(cl, ch)
	applyChange(cl, ch)
	cl.rolling, cl.status = nil, statusAvailable
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Finished modifying %s of cache cluster %s", what, cl.id)
}

// applyChange makes the change cl's described values; the caller holds
// r.mu.
func applyChange(cl *cacheCluster, ch *nodeChange) {
	*cl = *ch.applyTo(cl)
}

// finishGroupChange makes the change g's and its members' described values
// once every node runs it, and returns g to available once its endpoints
// answer. No lock is held by the caller.
func (e *Emulator) finishGroupChange(r *region, g *replicationGroup) {
	r.mu.Lock()
	defer e.unlock(r)
	ch := g.rolling
	what := describeChange(r.clusters[g.nodeGroups[0].primary], ch)
	for _, id := range g.memberClusters() {
		if cl := r.clusters[id]; cl != nil {
			applyChange(cl, ch)
		}
	}
	if ch.nodeType != "" {
		g.nodeType = ch.nodeType
	}
	if ch.engine != nil {
		g.engine = *ch.engine
	}
	if ch.paramGroup != "" {
		g.paramGroup = ch.paramGroup
	}
	if ch.transit != nil {
		g.sec.transit, g.sec.preferred = ch.transit.transit, ch.transit.preferred
	}
	g.rolling = nil
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Finished modifying %s of replication group %s", what, g.id)
	e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
}

// replaceNode replaces cl's node in place with one that runs the change:
// the node saves its data and stops, and its replacement starts at the same
// address from that data (a replica then resumes replicating from its
// primary). While it is replaced it serves no endpoint and the health
// monitor leaves it alone. No lock is held by the caller.
func (e *Emulator) replaceNode(ctx context.Context, r *region, cl *cacheCluster, ch *nodeChange) {
	r.mu.Lock()
	n := cl.nodes[0]
	ch.current = cl.id
	n.recovering = true
	primary := r.replicaSource(cl) == nil // a primary, or standalone
	r.syncClusterEndpoints(cl)
	launch := e.launchFor(r, cl, n, r.replicaSource(cl))
	keeper, keeps := e.opts.Runtime.(engine.Keeper)
	if launch.spec.Cluster && !primary {
		// A cluster node comes back with a new identity and formCluster
		// makes it a replica again, which syncs from empty (FLUSHALL,
		// CLUSTER REPLICATE): its own data is of no use.
		keeps = false
	}
	launch.spec.Resume = keeps
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s replacement started", n.id)
	e.unlock(r) // the change, with its current member, is persisted first

	begin := time.Now()
	var err error
	if keeps {
		err = keeper.Suspend(ctx, n.name)
	} else {
		err = e.opts.Runtime.Stop(ctx, n.name)
	}
	if err == nil || isNotFound(err) {
		err = e.startNode(ctx, launch)
	}
	if err == nil && launch.spec.Cluster {
		err = e.rejoinCluster(ctx, r, cl)
	}
	took := time.Since(begin)
	if stopping(ctx) {
		return // the next start replaces it again (runningAs gives it the change)
	}

	r.mu.Lock()
	defer e.unlock(r)
	n.recovering = false
	ch.done, ch.current = append(ch.done, cl.id), ""
	if err != nil {
		// Left down: the health monitor repairs it, with the change
		// (runningAs), and the change goes on with the other nodes.
		e.log.Error("replacing a node failed", "cluster", cl.id, "node", n.id, "err", err)
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to replace cache node %s: %v", n.id, err)
		n.down, n.misses = true, e.opts.HealthMisses-1
		return
	}
	r.syncClusterEndpoints(cl)
	if primary {
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s replacement complete: the node was unavailable for %d ms", n.id, took.Milliseconds())
	} else {
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s replacement complete", n.id)
	}
	e.log.Info("node replaced", "cluster", cl.id, "node", n.id, "primary", primary, "took", took.Round(time.Millisecond))
}

// resumeNodeChanges goes on with the node changes an earlier run left
// under way; the caller holds r.mu.
func (e *Emulator) resumeNodeChanges(r *region) {
	for _, id := range sortedKeys(r.groups) {
		if g := r.groups[id]; g.rolling != nil && g.status != statusDeleting {
			g.status = statusModifying
			e.runOperation(r, opNodeChange, g.id, nil, func(ctx context.Context) { e.rollGroup(ctx, r, g) })
		}
	}
	for _, id := range sortedKeys(r.clusters) {
		if cl := r.clusters[id]; cl.rolling != nil && cl.groupID == "" && cl.status != statusDeleting {
			cl.status = statusModifying
			e.runOperation(r, opNodeChange, cl.id, nil, func(ctx context.Context) { e.rollCluster(ctx, r, cl) })
		}
	}
}

func (ch *nodeChange) record() *state.NodeChange {
	if ch == nil {
		return nil
	}
	rec := &state.NodeChange{NodeType: ch.nodeType, ParamGroup: ch.paramGroup, Done: slices.Clone(ch.done), Current: ch.current, Primary: ch.primary}
	if t := ch.transit; t != nil {
		rec.Transit = &state.TransitLayout{Transit: t.transit, Preferred: t.preferred}
	}
	if ch.engine != nil {
		ev := ch.engine.record()
		rec.Engine = &ev
	}
	return rec
}

func nodeChangeFromRecord(rec *state.NodeChange) *nodeChange {
	if rec == nil {
		return nil
	}
	ch := &nodeChange{nodeType: rec.NodeType, paramGroup: rec.ParamGroup, done: slices.Clone(rec.Done), current: rec.Current, primary: rec.Primary}
	if t := rec.Transit; t != nil {
		ch.transit = &transitLayout{transit: t.Transit, preferred: t.Preferred}
	}
	if rec.Engine != nil {
		ev := engineFromRecord(*rec.Engine)
		ch.engine = &ev
	}
	return ch
}
