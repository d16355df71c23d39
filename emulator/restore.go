package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// This file brings back, at start, what an earlier run left: its records
// (package state) and its nodes. A node the records own is adopted as it
// runs when the earlier run was killed (engine.Keeper.Adopt: same process
// or container, client connections undisturbed), started again from the
// data it saved when the earlier run stopped gracefully (NodeSpec.Resume),
// or, if it died meanwhile, recovered as the health monitor recovers a
// dead node. Everything else of the data dir is reaped. Then every
// resource is reconciled with its records: work an operation left half
// done (a create, a delete, a replica change, a failover) is finished, so
// nothing stays in a transitional status, and the operations' records go.

// endpointAddresses are the addresses of a node group's primary and reader
// endpoints.
type endpointAddresses struct {
	primary, reader engine.Endpoint
}

// addresses returns the node group's endpoint addresses: those of its open
// endpoints, or the recorded ones it is restored at.
func (ng *nodeGroup) addresses() (endpointAddresses, bool) {
	switch {
	case ng.primaryEP != nil && ng.readerEP != nil:
		return endpointAddresses{primary: ng.primaryEP.Addr(), reader: ng.readerEP.Addr()}, true
	case ng.restoredAt != nil:
		return *ng.restoredAt, true
	}
	return endpointAddresses{}, false
}

// RestoreReport says what Restore found.
type RestoreReport struct {
	Regions    int // account+region scopes loaded
	Adopted    int // nodes taken over while running
	Restarted  int // nodes to start again (from their saved data when they have some)
	Reaped     int // nodes and kept data no record owns, removed
	Operations int // operations the earlier run left unfinished
}

// nodeFate is how a recorded node comes back.
type nodeFate struct {
	running bool // adopted as it runs
	kept    bool // not running, its saved data is kept
}

// Restore installs the regions of an earlier run and takes over their
// nodes; Start calls it before the API serves. Nodes that must start again
// and half-done work are handled in the background (reconcileRegion), so
// the API serves at once; until then their resources show a transitional
// status.
func (e *Emulator) Restore(ctx context.Context, recs []state.Region) (RestoreReport, error) {
	var rep RestoreReport
	var regions []*region
	owned := map[string]*cacheNode{}
	for i := range recs {
		r := regionFromRecord(&recs[i])
		regions = append(regions, r)
		rep.Regions++
		rep.Operations += len(r.ops.live)
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if err := e.opts.Addresses.Reserve(n.endpoint); err != nil {
					return rep, fmt.Errorf("emulator: the state of %s/%s gives node %s the address of another: %w", r.account, r.region, n.name, err)
				}
				if !r.doomed(cl) {
					owned[n.name] = n
				}
			}
		}
		for _, g := range r.groups {
			for _, ng := range g.nodeGroups {
				if a := ng.restoredAt; a != nil {
					for _, ep := range []engine.Endpoint{a.primary, a.reader} {
						if err := e.opts.Addresses.Reserve(ep); err != nil {
							return rep, fmt.Errorf("emulator: the state of %s/%s gives an endpoint of %s the address of another: %w", r.account, r.region, g.id, err)
						}
					}
				}
			}
		}
	}

	fates := map[string]nodeFate{}
	switch rt := e.opts.Runtime.(type) {
	case engine.Keeper:
		ad, err := rt.Adopt(ctx, func(n engine.Node) bool {
			o := owned[n.Name]
			return o != nil && o.endpoint == n.Endpoint
		})
		if err != nil {
			return rep, fmt.Errorf("emulator: taking over the nodes of the earlier run: %w", err)
		}
		for _, n := range ad.Running {
			fates[n.Name] = nodeFate{running: true}
		}
		for _, n := range ad.Stopped {
			fates[n.Name] = nodeFate{kept: n.HasData}
		}
		rep.Adopted, rep.Reaped = len(ad.Running), ad.Reaped
	case engine.Reaper:
		n, err := rt.Reap(ctx)
		if err != nil {
			return rep, fmt.Errorf("emulator: reaping nodes of an earlier run: %w", err)
		}
		rep.Reaped = n
	}

	for _, r := range regions {
		for _, cl := range r.clusters {
			if r.doomed(cl) || cl.status == statusCreateFailed || cl.status == restoreFailed {
				continue
			}
			for _, n := range cl.nodes {
				if !fates[n.name].running {
					// Not serving until restarted: the health monitor
					// leaves it alone, the endpoints skip it, and
					// Describe says so from the first request on.
					n.recovering = true
					if cl.status != statusCreating {
						cl.status, n.status = statusRebooting, nodeRebooting
					}
					rep.Restarted++
				}
			}
		}
		for _, g := range r.groups {
			if g.status == statusDeleting {
				continue
			}
			if g.status == statusAvailable && g.recovering(r) {
				g.status = statusModifying
			}
			for _, ng := range g.nodeGroups {
				if err := e.reopenEndpoints(g, ng); err != nil {
					return rep, err
				}
				ng.syncEndpoints(r)
			}
		}
		e.mu.Lock()
		e.regions[r.scope] = r
		e.mu.Unlock()
	}
	for _, r := range regions {
		e.goBackground(func(ctx context.Context) { e.reconcileRegion(ctx, r, fates) })
	}
	return rep, nil
}

// doomed reports whether cl was being deleted (alone or with its group).
func (r *region) doomed(cl *cacheCluster) bool {
	if cl.status == statusDeleting {
		return true
	}
	g := r.groups[cl.groupID]
	return g != nil && g.status == statusDeleting
}

// reopenEndpoints opens a restored node group's endpoints at their
// recorded addresses (a group recorded before its endpoints opened gets
// new ones).
func (e *Emulator) reopenEndpoints(g *replicationGroup, ng *nodeGroup) error {
	a := ng.restoredAt
	if a == nil {
		return e.openEndpoints(g, ng)
	}
	name := g.id + "/" + ng.id + "/"
	if e.opts.BindPrimaryEndpoint {
		ng.primaryEP = newBindEndpoint(a.primary, e.admin, e.log.With("endpoint", name+"primary"))
	} else {
		p, err := proxy.Listen(a.primary.Addr(), proxy.Options{Name: name + "primary", Logger: e.log})
		if err != nil {
			return fmt.Errorf("emulator: reopening the primary endpoint of %s at %s: %w", g.id, a.primary.Addr(), err)
		}
		ng.primaryEP = p
	}
	p, err := proxy.Listen(a.reader.Addr(), proxy.Options{Name: name + "reader", Logger: e.log})
	if err != nil {
		e.closeEndpoint(ng.primaryEP)
		ng.primaryEP = nil
		return fmt.Errorf("emulator: reopening the reader endpoint of %s at %s: %w", g.id, a.reader.Addr(), err)
	}
	ng.readerEP, ng.restoredAt = p, nil
	return nil
}

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
		r.ops.remove(op)
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
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	e.settleMember(r, cl, launch, err)
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
	for _, ng := range g.nodeGroups {
		if err := e.reconcileNodeGroup(ctx, r, g, ng, fates); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("bringing a node group back after a restart", "group", g.id, "nodeGroup", ng.id, "err", err)
		}
	}
	r.mu.Lock()
	listed := g.listedEndpoints(r)
	e.unlock(r)
	if err := e.waitServing(ctx, listed); err != nil && ctx.Err() == nil {
		e.log.Warn("group endpoints do not all answer after the restart", "group", g.id, "err", err)
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	switch g.status {
	case statusCreating:
		if g.recovering(r) {
			return // a member failed: recorded by settleMember
		}
		g.status = statusAvailable
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s created", g.id)
	case statusModifying, statusSnap:
		// A snapshot the earlier run was taking was settled (failed) by
		// LoadSnapshots; a change ends once nothing recovers.
		if !g.recovering(r) {
			g.status = statusAvailable
		}
	}
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
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Failover from primary node %s to replica node %s completed", old, promoted)
			ng.syncEndpoints(r)
			e.unlock(r)
		} else if e.anyRunning(r, members, fates) {
			r.mu.Lock()
			pn.recovering, pn.down = true, true
			e.startRecovery(r, primary, pn, e.opts.Now())
			e.unlock(r)
			return nil
		}
	}
	var firstErr error
	if !fates[pn.name].running && pn.recovering {
		err := e.restartMember(ctx, r, g, primary, nil, fates)
		if err != nil {
			return err
		}
	} else {
		r.mu.Lock()
		e.settleMember(r, primary, nil, nil)
		e.unlock(r)
	}
	peer := e.opts.Runtime.PeerEndpoint(pn.endpoint)
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
				err = e.followPrimary(ctx, cl.nodes[0].endpoint, peer)
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

// restartMember starts a group member's node again (from its saved data
// when it has some), as a replica of replicaOf or as the primary.
func (e *Emulator) restartMember(ctx context.Context, r *region, g *replicationGroup, cl *cacheCluster, replicaOf *engine.Endpoint, fates map[string]nodeFate) error {
	r.mu.Lock()
	n := cl.nodes[0]
	l := e.launchFor(r, cl, n, replicaOf)
	l.spec.Resume = fates[n.name].kept
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
// address other nodes use is peer) unless it does already.
func (e *Emulator) followPrimary(ctx context.Context, ep, peer engine.Endpoint) error {
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

// ownsNode reports whether a record owns the runtime node called name.
func (e *Emulator) ownsNode(name string) bool {
	for _, r := range e.allRegions() {
		r.mu.Lock()
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if n.name == name {
					r.mu.Unlock()
					return true
				}
			}
		}
		r.mu.Unlock()
	}
	return false
}
