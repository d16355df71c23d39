package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// This file finishes, after a start, what the earlier run left: Restore
// (restore.go) has taken over the nodes; reconcileRegion brings back the
// ones that do not run and ends every transitional status the way AWS
// would show it.

// reconcileRegion finishes, resource by resource and in parallel, what the
// earlier run left, then drops the operations it recorded.
func (e *Emulator) reconcileRegion(ctx context.Context, r *region, fates map[string]nodeFate) {
	r.mu.Lock()
	inherited := slices.Collect(mapsValues(r.ops.live))
	for _, op := range inherited {
		e.log.Info("resuming an operation the earlier run left unfinished", "account", r.account, "region", r.region,
			"operation", op.id, "kind", op.kind, "target", op.target, "started", op.started)
	}
	e.finishDeletes(r)
	for _, op := range inherited {
		if g := r.groups[op.target]; op.kind == opCreateGroup && op.detail["seeded"] == "true" && g != nil && g.status == statusCreating {
			g.status = statusCreateFailed
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to create replication group %s: loading its snapshot data was cut off by a restart of the emulator", g.id)
		}
	}
	var groups []*replicationGroup
	for _, id := range sortedKeys(r.groups) {
		groups = append(groups, r.groups[id])
	}
	var standalone []*cacheCluster
	for _, id := range sortedKeys(r.clusters) {
		if cl := r.clusters[id]; cl.groupID == "" {
			standalone = append(standalone, cl)
		}
	}
	e.unlock(r)

	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() { defer wg.Done(); e.reconcileGroup(ctx, r, g, fates) }()
	}
	for _, cl := range standalone {
		wg.Add(1)
		go func() { defer wg.Done(); e.reconcileCluster(ctx, r, cl, fates) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // stopping: the operations stay recorded for the next start
	}
	r.mu.Lock()
	for _, op := range inherited {
		// A parameter change may have reached only some nodes: apply it
		// again (CONFIG SET is idempotent), as a new operation.
		if pg := r.paramGroups[op.target]; op.kind == opApplyParameters && pg != nil {
			e.applyParams(r, pg)
		}
		// Users may have reached only some nodes: push them again.
		if op.kind == opApplyUsers {
			e.resumeApplyUsers(r, op.target)
		}
		r.ops.remove(op)
	}
	// Changes of users and user groups the earlier run left (rbac_apply.go).
	e.resumeAccessChanges(r)
	// A resharding the earlier run left goes on from where it was.
	for _, g := range groups {
		if r.groups[g.id] == g && g.resharding != nil {
			g.status = statusModifying
			e.runOperation(r, opReshard, g.id, nil, func(ctx context.Context) { e.reshard(ctx, r, g, nil) })
		}
	}
	// An online migration goes on: its primary follows the source again,
	// or a completion the earlier run left is finished (migration_run.go).
	for _, g := range groups {
		if r.groups[g.id] == g && g.migration != nil {
			e.runOperation(r, opMigration, g.id, nil, func(ctx context.Context) { e.runMigration(ctx, r, g) })
		}
	}
	// A node change (rolling.go) goes on with the nodes not replaced yet.
	e.resumeNodeChanges(r)
	// A group whose member was recovered meanwhile (its settle ran while
	// the inherited create was still recorded) is settled now.
	for _, g := range groups {
		if r.groups[g.id] == g && g.settleable(r) {
			e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
		}
	}
	e.unlock(r)
}

// finishDeletes completes the deletes the earlier run left: their nodes
// were reaped by Restore (no record owns them). The caller holds r.mu.
func (e *Emulator) finishDeletes(r *region) {
	for _, id := range sortedKeys(r.groups) {
		g := r.groups[id]
		if g.status != statusDeleting {
			continue
		}
		for _, m := range g.memberClusters() {
			if cl := r.clusters[m]; cl != nil && cl.status == statusDeleting {
				delete(r.clusters, m)
				delete(r.tags, r.arn("cluster", m))
				e.opts.Addresses.Release(cl.nodes[0].endpoint)
				e.record(r, types.SourceTypeCacheCluster, m, "Cache cluster deleted")
			} else if cl != nil {
				cl.groupID = "" // a retained primary stands alone
			}
		}
		for _, ng := range g.nodeGroups {
			if a, ok := ng.addresses(); ok {
				e.opts.Addresses.Release(a.primary)
				e.opts.Addresses.Release(a.reader)
			}
		}
		e.closeConfigEndpoint(g)
		delete(r.groups, id)
		delete(r.tags, r.arn("replicationgroup", id))
		e.deleteAutomatedSnapshots(r, id)
		e.record(r, types.SourceTypeReplicationGroup, id, "Replication group %s deleted", id)
	}
	for _, id := range sortedKeys(r.clusters) {
		cl := r.clusters[id]
		if cl.status != statusDeleting {
			continue
		}
		delete(r.clusters, id)
		delete(r.tags, r.arn("cluster", id))
		e.opts.Addresses.Release(cl.nodes[0].endpoint)
		if cl.mc != nil {
			e.releaseMemcached(cl) // its other nodes and configuration endpoint
		}
		if g := r.groups[cl.groupID]; g != nil {
			ng := g.nodeGroupOf(id)
			ng.removeMember(id)
			ng.syncEndpoints(r)
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Removed cache cluster %s from replication group %s", id, g.id)
		} else {
			e.deleteAutomatedSnapshots(r, id)
		}
		e.record(r, types.SourceTypeCacheCluster, id, "Cache cluster deleted")
	}
}

// reconcileCluster brings a standalone cluster's node back if it does not
// run, and its status to what it ends in.
func (e *Emulator) reconcileCluster(ctx context.Context, r *region, cl *cacheCluster, fates map[string]nodeFate) {
	if cl.mc != nil {
		e.reconcileMemcached(ctx, r, cl, fates)
		return
	}
	r.mu.Lock()
	if cl.status == statusCreateFailed || cl.status == restoreFailed || r.clusters[cl.id] != cl {
		r.mu.Unlock()
		return
	}
	n := cl.nodes[0]
	var launch *nodeLaunch
	if !fates[n.name].running {
		l := e.launchFor(r, cl, n, nil)
		l.spec.Resume = fates[n.name].kept
		launch = &l
		if cl.status != statusCreating {
			cl.status, n.status = statusRebooting, nodeRebooting
		}
	}
	e.unlock(r)
	var err error
	if launch != nil {
		err = e.startNode(ctx, *launch)
	} else {
		err = e.awaitAdopted(ctx, n.endpoint)
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	e.settleMember(r, cl, launch, err)
	if cl.status == statusAvailable && r.ops.running(opApplyUsers, cl.id) {
		// An unfinished AUTH token change: resumeApplyUsers settles it
		// once every node has the token.
		cl.status = statusModifying
	}
}

// settleMember records how a cluster's node came back (launch is nil for
// an adopted node) and ends its transitional status. The caller holds r.mu.
func (e *Emulator) settleMember(r *region, cl *cacheCluster, launch *nodeLaunch, err error) {
	n := cl.nodes[0]
	n.recovering = false
	creating := cl.status == statusCreating
	switch {
	case err != nil && creating:
		cl.status, n.status = statusCreateFailed, statusCreateFailed
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to create cache cluster %s: %v", cl.id, err)
		return
	case err != nil:
		// The health monitor finds it down and repairs it.
		e.log.Error("restarting a node after the emulator restarted failed", "cluster", cl.id, "err", err)
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to restart cache node %s: %v", n.id, err)
	case creating:
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Added cache node %s in availability zone %s", n.id, cl.az)
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster created")
	case launch != nil:
		how := "empty: it had no saved data"
		if launch.spec.Resume {
			how = "from its saved data"
		}
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s restarted (%s) after the emulator restarted", n.id, how)
	}
	cl.status, n.status = statusAvailable, statusAvailable
}

// reconcileGroup brings a replication group's nodes back with one primary
// and every other member replicating from it, finishes a create or a
// replica change the earlier run left, and makes the group available once
// its endpoints answer.
func (e *Emulator) reconcileGroup(ctx context.Context, r *region, g *replicationGroup, fates map[string]nodeFate) {
	if g.clusterMode {
		if err := e.reconcileClusterNodes(ctx, r, g, fates); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("bringing a cluster back after a restart", "group", g.id, "err", err)
		}
	}
	for _, ng := range g.nodeGroups {
		if g.clusterMode {
			break
		}
		if err := e.reconcileNodeGroup(ctx, r, g, ng, fates); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("bringing a node group back after a restart", "group", g.id, "nodeGroup", ng.id, "err", err)
		}
	}
	r.mu.Lock()
	listed := e.listedEndpoints(r, g)
	e.unlock(r)
	serving := e.waitServing(ctx, listed)
	if serving != nil && ctx.Err() == nil {
		// A group that was available stays so: the health monitor
		// recovers a node that does not answer, or binds again one that
		// answers but listens nowhere (checkListening).
		e.log.Warn("group endpoints do not all answer after the restart", "group", g.id, "err", serving)
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	switch g.status {
	case statusCreating:
		if failed := g.failedMembers(r); len(failed) > 0 {
			g.status = statusCreateFailed
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to create replication group %s: cache clusters %s could not be created", g.id, strings.Join(failed, ", "))
			return
		}
		if g.recovering(r) {
			return // still starting: whatever runs settles it
		}
		if serving != nil {
			// available means every endpoint accepts connections.
			g.status = statusCreateFailed
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to create replication group %s: %v", g.id, serving)
			return
		}
		g.status = statusAvailable
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s created", g.id)
	case statusModifying, statusSnap:
		// A snapshot the earlier run was taking was settled (failed) by
		// LoadSnapshots; a change ends once nothing recovers, and a
		// resharding when it has moved every slot (reconcileRegion
		// resumes it). An unfinished push of users (an AUTH token
		// change) keeps it modifying: resumeApplyUsers settles it.
		if !g.recovering(r) && g.resharding == nil && g.rolling == nil && !r.ops.running(opApplyUsers, g.id) {
			g.status = statusAvailable
		}
	}
}

// failedMembers lists the members whose create failed; the caller holds
// r.mu.
func (g *replicationGroup) failedMembers(r *region) []string {
	var out []string
	for _, id := range g.memberClusters() {
		if cl := r.clusters[id]; cl != nil && (cl.status == statusCreateFailed || cl.status == restoreFailed) {
			out = append(out, id)
		}
	}
	return out
}

// reconcileNodeGroup decides the node group's primary, starts what does
// not run (the primary first) and points every other member at it.
func (e *Emulator) reconcileNodeGroup(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, fates map[string]nodeFate) error {
	r.mu.Lock()
	members := slices.Clone(ng.members)
	primary := r.clusters[ng.primary]
	e.unlock(r)
	if primary == nil {
		return errors.New("the recorded primary does not exist")
	}
	pn := primary.nodes[0]
	if fate := fates[pn.name]; !fate.running && !fate.kept {
		// The primary died without saving while the emulator was down. A
		// failover the earlier run was making may have promoted a replica
		// already; else recover it as a dead primary (failover to an
		// in-sync replica, or repair in place).
		if promoted := e.runningPrimary(ctx, r, members, ng.primary, fates); promoted != "" {
			r.mu.Lock()
			old := ng.primary
			ng.primary = promoted
			primary, pn = r.clusters[promoted], r.clusters[promoted].nodes[0]
			e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", failoverMessage(old, promoted,
				"primary "+old+" stopped while the emulator was down, and the earlier run had promoted "+promoted))
			ng.syncEndpoints(r)
			e.unlock(r)
		} else if e.anyRunning(r, members, fates) {
			// Recover every member that does not run as the health
			// monitor recovers a dead node: the primary by a failover to
			// an in-sync replica (or a repair in place), the others by a
			// repair as replicas of the primary then.
			r.mu.Lock()
			for _, id := range members {
				cl := r.clusters[id]
				if cl == nil || fates[cl.nodes[0].name].running || cl.status == statusCreateFailed || cl.status == restoreFailed {
					continue
				}
				n := cl.nodes[0]
				n.status, n.recovering, n.down = statusAvailable, true, true
				e.startRecovery(r, cl, n, e.opts.Now(), cl.id+" was not running when the emulator started (it stopped while the emulator was down)", true)
			}
			e.unlock(r)
			return nil
		}
	}
	var firstErr error
	if !fates[pn.name].running && pn.recovering {
		if err := e.restartMember(ctx, r, g, primary, nil, fates); err != nil {
			// Without their primary the others cannot follow it: settle
			// them too, so nothing stays transitional (a member being
			// created fails; a running one is repaired by the monitor).
			e.settleOthers(r, members, primary, fmt.Errorf("its primary %s did not start: %w", primary.id, err))
			return err
		}
	} else {
		err := e.awaitAdopted(ctx, pn.endpoint)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		e.settleMember(r, primary, nil, err)
		ng.syncEndpoints(r)
		e.unlock(r)
	}
	peer := e.opts.Runtime.PeerEndpoint(pn.endpoint)
	r.mu.Lock()
	addrs, _ := ng.addresses()
	e.unlock(r)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, id := range members {
		r.mu.Lock()
		cl := r.clusters[id]
		e.unlock(r)
		if cl == nil || cl == primary || cl.status == statusCreateFailed || cl.status == restoreFailed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if fates[cl.nodes[0].name].running {
				r.mu.Lock()
				lazyFlush := r.nodeConfig(cl, cl.paramGroup, true)[lazyFlushParam]
				e.unlock(r)
				err = e.followPrimary(ctx, cl.nodes[0].endpoint, peer, addrs.primary)
				if err == nil && lazyFlush != "" {
					// The earlier run may have been killed between the
					// member's first sync and giving it the group's value
					// (nodes.go eagerFirstFlush). Only a full sync's speed
					// depends on it: a node that does not take it serves
					// on, and says so in the log.
					if serr := e.admin.ConfigSet(ctx, cl.nodes[0].endpoint, map[string]string{lazyFlushParam: lazyFlush}); serr != nil {
						e.log.Warn("an adopted replica keeps its "+lazyFlushParam+" value", "cluster", cl.id, "want", lazyFlush, "err", serr)
					}
				}
				if ctx.Err() != nil {
					return // stopping: the next start settles it
				}
				r.mu.Lock()
				e.settleMember(r, cl, nil, err)
				ng.syncEndpoints(r)
				e.unlock(r)
			} else {
				err = e.restartMember(ctx, r, g, cl, &pn.endpoint, fates)
			}
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, fmt.Errorf("%s: %w", cl.id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// settleOthers ends the transitional status of every member but primary
// whose node did not come back, with why.
func (e *Emulator) settleOthers(r *region, members []string, primary *cacheCluster, why error) {
	r.mu.Lock()
	defer e.unlock(r)
	for _, id := range members {
		if cl := r.clusters[id]; cl != nil && cl != primary && cl.nodes[0].recovering {
			e.settleMember(r, cl, nil, why)
		}
	}
}

// restartMember starts a group member's node again (from its saved data
// when it has some), as a replica of replicaOf or as the primary.
func (e *Emulator) restartMember(ctx context.Context, r *region, g *replicationGroup, cl *cacheCluster, replicaOf *engine.Endpoint, fates map[string]nodeFate) error {
	r.mu.Lock()
	n := cl.nodes[0]
	l := e.launchFor(r, cl, n, replicaOf)
	l.spec.Resume = fates[n.name].kept
	if ng := g.nodeGroupOf(cl.id); g.clusterMode && ng != nil && ng.primary != cl.id {
		// A cluster node resumed from its data claims the slots of its
		// keys on its own (engine.NodeSpec.Resume): a replica starts
		// empty and gets the data from its primary by a full sync.
		l.spec.Resume = false
	}
	if cl.status != statusCreating {
		cl.status, n.status = statusRebooting, nodeRebooting
	}
	if g.status == statusAvailable {
		g.status = statusModifying
	}
	e.unlock(r)
	err := e.startNode(ctx, l)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.mu.Lock()
	defer e.unlock(r)
	e.settleMember(r, cl, &l, err)
	g.nodeGroupOf(cl.id).syncEndpoints(r)
	return err
}

// followPrimary makes an adopted member replicate from the primary (whose
// address other nodes use is peer) unless it does already; primaryEP is the
// node group's primary endpoint address.
func (e *Emulator) followPrimary(ctx context.Context, ep, peer, primaryEP engine.Endpoint) error {
	if err := e.awaitAdopted(ctx, ep); err != nil {
		return err
	}
	if e.opts.BindEndpoints && primaryEP.Host != "" {
		// A member that was the primary before a failover the earlier run
		// cut short may still listen on the primary endpoint's address:
		// it stops, so the primary can claim it. Its other addresses (the
		// reader endpoint's) are the reader endpoint's to move.
		e.binds.Want(ep, primaryEP.Host, false)
		if _, err := e.binds.Apply(ctx, ep, primaryEP.Host, nil, nil); err != nil {
			return err
		}
	}
	info, err := e.admin.InspectReplication(ctx, ep)
	if err != nil {
		return err
	}
	if info.IsReplica() && info.Master() == peer {
		return nil
	}
	e.log.Info("pointing a member at its recorded primary after the restart", "node", ep.Addr(), "primary", peer.Addr(), "role", info.Role)
	return e.admin.ReplicaOf(ctx, ep, &peer)
}

// awaitAdopted waits until an adopted node answers: the earlier run may
// have been killed right after starting it, before it listened.
func (e *Emulator) awaitAdopted(ctx context.Context, ep engine.Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.NodeReadyTimeout)
	defer cancel()
	return engine.WaitReady(ctx, ep, e.admin.Pings)
}

// runningPrimary returns a running member other than old that acts as a
// primary (a failover the earlier run promoted before it could record it),
// or "".
func (e *Emulator) runningPrimary(ctx context.Context, r *region, members []string, old string, fates map[string]nodeFate) string {
	for _, id := range members {
		r.mu.Lock()
		cl := r.clusters[id]
		r.mu.Unlock()
		if id == old || cl == nil || !fates[cl.nodes[0].name].running {
			continue
		}
		if info, err := e.admin.InspectReplication(ctx, cl.nodes[0].endpoint); err == nil && info.IsPrimary() {
			return id
		}
	}
	return ""
}

// anyRunning reports whether a member of the list was adopted running.
func (e *Emulator) anyRunning(r *region, members []string, fates map[string]nodeFate) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range members {
		if cl := r.clusters[id]; cl != nil && fates[cl.nodes[0].name].running {
			return true
		}
	}
	return false
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

func mapsValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}
