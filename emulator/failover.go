package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// monitored is one node the health monitor looks at.
type monitored struct {
	r  *region
	cl *cacheCluster
	n  *cacheNode
}

// startRecovery reacts to a dead or hung node; the caller holds r.mu.
// failingSince is when its checks began to fail. A failed primary of a group
// with automatic failover is replaced by its most up-to-date replica first,
// if one holds its data; then the failed node is repaired: replaced, with
// the same cluster id and endpoint, as a replica of the current primary (or
// in place, empty, when it is still the primary: without failover, as on
// AWS without persistence, or with no replica fit to take over).
//
// dead says the node's server is known to have exited (the runtime reports
// it gone, or its address refuses connections): the failover then starts
// at once, without first killing what is left of it (a docker kill waits
// on the daemon), which is killed after.
func (e *Emulator) startRecovery(r *region, cl *cacheCluster, n *cacheNode, failingSince time.Time, why string, dead bool) {
	g := r.groups[cl.groupID]
	var ng *nodeGroup
	if g != nil {
		ng = g.nodeGroupOf(cl.id)
		ng.syncEndpoints(r) // stop sending traffic to the failed node now
	}
	e.syncDiscovery(r, cl) // a Memcached cluster's, likewise
	cl.status = statusModifying
	if g != nil && g.status == statusAvailable {
		g.status = statusModifying
	}
	failover := g != nil && g.autoFailover && ng.primary == cl.id && len(ng.healthyReplicas(r)) > 0
	e.runOperationAhead(r, opRepair, cl.id, map[string]string{"failover": strconv.FormatBool(failover)}, func(ctx context.Context) {
		// The node is replaced either way: make sure a hung one lets go of
		// its addresses (and its clients) before anything takes them over.
		fi, _ := e.opts.Runtime.(engine.FaultInjector)
		if fi != nil && !dead {
			_ = fi.Kill(ctx, n.name)
		}
		if failover {
			_, err := e.failover(ctx, r, g, ng, "", false, failingSince, "primary "+why)
			var stale *noFitReplicaError
			switch {
			case errors.As(err, &stale):
				e.log.Warn("automatic failover skipped: no replica holds the primary's data; repairing the primary in place", "group", g.id, "primary", cl.id, "why", stale.Error())
				r.mu.Lock()
				e.record(r, types.SourceTypeReplicationGroup, g.id, "Failover of node group %s skipped: %s. Recovering primary node %s in place: %s", ng.id, stale.Error(), cl.id, why)
				e.unlock(r)
			case err != nil:
				e.log.Error("automatic failover failed", "group", g.id, "err", err)
			}
		}
		if fi != nil && dead {
			_ = fi.Kill(ctx, n.name)
		}
		e.repair(ctx, r, cl, n, why)
	})
}

// healthyReplicas lists the replica clusters of ng that serve traffic; the
// caller holds r.mu.
func (ng *nodeGroup) healthyReplicas(r *region) []*cacheCluster {
	var out []*cacheCluster
	for _, id := range ng.members {
		if cl := r.clusters[id]; id != ng.primary && cl != nil && cl.nodes[0].healthy() {
			out = append(out, cl)
		}
	}
	return out
}

// failover promotes a replica of ng to primary and returns its cluster id.
// target names the replica, or "" for the one with the highest replication
// offset (the smallest lag). A planned failover pauses writes on the old
// primary and waits until the target has every acknowledged write, so none
// is lost; the old primary then follows the new one. An unplanned one (the
// primary is dead, its checks failing since failingSince) promotes at once,
// and only a replica that holds the primary's data (see pickReplica). No
// lock is held by the caller.
func (e *Emulator) failover(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, target string, planned bool, failingSince time.Time, why string) (string, error) {
	r.mu.Lock()
	oldID := ng.primary
	oldEP := r.clusters[oldID].nodes[0].endpoint
	// The new primary of a migrating group follows the migration source,
	// as the old one did (migration.go).
	follow := g.migrationSourceOf()
	candidates := map[string]engine.Endpoint{}
	for _, cl := range ng.healthyReplicas(r) {
		candidates[cl.id] = cl.nodes[0].endpoint
	}
	e.unlock(r)
	if len(candidates) == 0 {
		return "", errors.New("no healthy replica to promote")
	}
	if target == "" {
		var err error
		if target, err = e.pickReplica(ctx, candidates, planned, failingSince); err != nil {
			return "", err
		}
		why += fmt.Sprintf("; %s had the highest replication offset of %d healthy replica(s)", target, len(candidates))
	}
	newEP, ok := candidates[target]
	if !ok {
		return "", fmt.Errorf("cache cluster %s is not a healthy replica", target)
	}

	if g.clusterMode {
		return e.clusterFailover(ctx, r, g, ng, oldID, target, newEP, planned, why)
	}
	if planned {
		if err := e.admin.PauseAndCatchUp(ctx, oldEP, newEP); err != nil {
			return "", err
		}
	}
	promote := func() error { return e.admin.ReplicaOf(ctx, newEP, nil) }
	if follow != nil {
		promote = func() error { return e.admin.FollowSource(ctx, newEP, *follow) }
	}
	if err := promote(); err != nil {
		if planned {
			_ = e.admin.UnpauseWrites(ctx, oldEP)
		}
		return "", fmt.Errorf("promoting %s: %w", target, err)
	}
	r.mu.Lock()
	ng.primary = target
	ng.syncEndpoints(r) // closes connections to the old primary
	var others []engine.Endpoint
	for _, id := range ng.members {
		if id != target && (id != oldID || planned) {
			if cl := r.clusters[id]; cl != nil {
				others = append(others, cl.nodes[0].endpoint)
			}
		}
	}
	e.unlock(r)

	peer := e.opts.Runtime.PeerEndpoint(newEP)
	var firstErr error
	for _, ep := range others {
		if err := e.repoint(ctx, ep, peer); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("repointing %s: %w", ep.Addr(), err)
		}
	}
	if planned {
		_ = e.admin.UnpauseWrites(ctx, oldEP)
	}
	r.mu.Lock()
	msg := failoverMessage(oldID, target, why)
	e.record(r, types.SourceTypeCacheCluster, target, "%s", msg)
	e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", msg)
	e.unlock(r)
	e.log.Info("failover completed", "group", g.id, "from", oldID, "to", target, "planned", planned)
	return target, firstErr
}

// repointWithin bounds how long a failover keeps trying to point a member
// at the new primary: a node under load may refuse a connection for a
// moment (a reset during the TLS handshake), and a member left pointing
// nowhere after a planned failover would be a second primary.
const (
	repointWithin = 10 * time.Second
	repointEvery  = 100 * time.Millisecond
)

// repoint makes ep replicate from peer, trying again until repointWithin
// has passed when the node cannot be reached.
func (e *Emulator) repoint(ctx context.Context, ep, peer engine.Endpoint) error {
	deadline := time.Now().Add(repointWithin)
	for {
		err := e.admin.ReplicaOf(ctx, ep, &peer)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		e.log.Warn("pointing a member at the new primary failed; trying again", "node", ep.Addr(), "primary", peer.Addr(), "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(repointEvery):
		}
	}
}

// noFitReplicaError says why no replica may take over from a failed primary.
type noFitReplicaError struct{ reasons []string }

func (e *noFitReplicaError) Error() string {
	return "no replica was in sync with the primary (" + strings.Join(e.reasons, "; ") + ")"
}

// pickReplica returns the candidate with the highest replication offset. In
// an unplanned failover it considers only replicas that hold the primary's
// data: one in the middle of a full sync, whose link never came up, or
// whose link was down before the primary failed (failingSince) would be
// promoted empty or stale, and every replica would then resync from it; in
// that case it returns a *noFitReplicaError.
func (e *Emulator) pickReplica(ctx context.Context, candidates map[string]engine.Endpoint, planned bool, failingSince time.Time) (string, error) {
	// Seconds the replicas' links may have been down: since the primary's
	// first failed check, plus one for INFO's whole-second rounding.
	downFor := int(time.Since(failingSince).Seconds()) + 1
	best, target := int64(-1), ""
	var reasons []string
	ids := slices.Sorted(mapsKeys(candidates))
	// Asked all at once: each answer is a round trip of an unplanned
	// failover's outage.
	infos := make([]engine.ReplicationInfo, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infos[i], errs[i] = e.admin.InspectReplication(ctx, candidates[id])
		}()
	}
	wg.Wait()
	for i, id := range ids {
		info, err := infos[i], errs[i]
		if err != nil {
			reasons = append(reasons, id+" did not answer")
			continue
		}
		if !planned {
			if why := unfitReplica(info, downFor); why != "" {
				reasons = append(reasons, id+" "+why)
				continue
			}
		}
		if info.ReplicaOffset > best {
			target, best = id, info.ReplicaOffset
		}
	}
	if target == "" {
		return "", &noFitReplicaError{reasons: reasons}
	}
	return target, nil
}

// unfitReplica says why a replica does not hold its failed primary's data,
// or "" when it does: its link was up, or went down at most downFor seconds
// ago (when the primary failed), and no full sync was in progress.
func unfitReplica(info engine.ReplicationInfo, downFor int) string {
	switch {
	case !info.IsReplica():
		return "is not a replica"
	case info.SyncInProgress:
		return "was in the middle of a full sync"
	case info.LinkUp:
		return ""
	case info.LinkDownSeconds < 0:
		return "never completed a sync"
	case info.LinkDownSeconds > downFor:
		return fmt.Sprintf("had lost its link %ds before the primary failed", info.LinkDownSeconds-downFor+1)
	}
	return ""
}

// repair replaces a failed node with a fresh one with the same cluster id
// and endpoint, as a replica of the group's current primary when it is not
// the primary itself.
func (e *Emulator) repair(ctx context.Context, r *region, cl *cacheCluster, n *cacheNode, why string) {
	r.mu.Lock()
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Recovering cache nodes %s: %s", n.id, why)
	source := r.replicaSource(cl)
	launch := e.launchFor(r, cl, n, source)
	e.unlock(r)
	began := time.Now()

	if fi, ok := e.opts.Runtime.(engine.FaultInjector); ok {
		_ = fi.Kill(ctx, n.name) // a hung node would make Stop wait for its grace period
	}
	err := e.opts.Runtime.Stop(ctx, n.name)
	if err == nil || isNotFound(err) {
		err = e.startNode(ctx, launch)
	}
	if err == nil && launch.spec.Cluster {
		err = e.rejoinCluster(ctx, r, cl)
	}

	r.mu.Lock()
	defer e.unlock(r)
	n.misses, n.down, n.recovering = 0, false, false
	if err != nil {
		// Leave it down; the next health check round tries again.
		e.log.Error("node recovery failed", "cluster", cl.id, "node", n.id, "err", err)
		n.down = true
		n.misses = e.opts.HealthMisses - 1
		return
	}
	if cl.status == statusModifying {
		cl.status = statusAvailable
	}
	how := "empty, as AWS rebuilds a node without persistence"
	if source != nil {
		how = "as a replica, copying the primary's data"
	}
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Finished recovery for cache nodes %s: a new node started in %v, %s", n.id, time.Since(began).Round(time.Millisecond), how)
	if cl.mc != nil {
		delete(cl.mc.reboot, n.id) // it started with the parameters in force
		e.syncDiscovery(r, cl)
	}
	if g := r.groups[cl.groupID]; g != nil && g.nodeGroupOf(cl.id) != nil {
		g.nodeGroupOf(cl.id).syncEndpoints(r)
		e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
		if source == nil && g.migrationSourceOf() != nil {
			// A migrating group's primary rebuilt in place follows the
			// migration source again (migration_run.go).
			e.runOperation(r, opMigration, g.id, nil, func(ctx context.Context) { e.runMigration(ctx, r, g) })
		}
	}
}

// availableWhenServing returns a group that a failover or a repair left
// "modifying" to "available" once nothing in it is still being recovered and
// every endpoint it lists answers: a primary endpoint bound on the node
// itself moves asynchronously, and a client that connects right after a
// waiter saw "available" must be served. A group still "creating" that no
// create operation drives any more (one a restart finished while a member
// was being recovered) ends created the same way. No lock is held by the
// caller.
func (e *Emulator) availableWhenServing(ctx context.Context, r *region, g *replicationGroup) {
	r.mu.Lock()
	if !g.settleable(r) {
		r.mu.Unlock()
		return // not done yet: whatever is still running calls this again
	}
	listed := e.listedEndpoints(r, g)
	r.mu.Unlock()
	if err := e.waitServing(ctx, listed); err != nil {
		e.log.Warn("group endpoints do not all answer after a change; marking it available anyway", "group", g.id, "err", err)
	}
	r.mu.Lock()
	defer e.unlock(r)
	if !g.settleable(r) {
		return
	}
	if g.status == statusCreating {
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s created", g.id)
	}
	g.status = statusAvailable
}

// settleable reports whether g is in a transitional status nothing else
// will end: modifying, or creating with no create operation running, and
// no member being recovered nor a resharding or node change in progress
// (they end it). The caller holds r.mu.
func (g *replicationGroup) settleable(r *region) bool {
	switch {
	case g.recovering(r), g.resharding != nil, g.rolling != nil:
		return false
	case g.status == statusModifying:
		// A push of users (pushGroupAccess) settles the group itself.
		return !r.ops.running(opApplyUsers, g.id)
	case g.status == statusCreating:
		return !r.ops.running(opCreateGroup, g.id) && len(g.failedMembers(r)) == 0
	}
	return false
}

// recovering reports whether any member is still being recovered.
func (g *replicationGroup) recovering(r *region) bool {
	for _, id := range g.memberClusters() {
		if cl := r.clusters[id]; cl != nil && (cl.nodes[0].recovering || cl.status == statusModifying || cl.status == statusCreating) {
			return true
		}
	}
	return false
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestFailover runs a planned failover of one node group, as AWS does to
// let customers rehearse: no acknowledged write is lost.
func (e *Emulator) TestFailover(ctx context.Context, in *elasticache.TestFailoverInput) (*elasticache.TestFailoverOutput, error) {
	id, err := lookupID("ReplicationGroupId", in.ReplicationGroupId)
	if err != nil {
		return nil, err
	}
	ngID := aws.ToString(in.NodeGroupId)
	if ngID == "" {
		return nil, mustNotBeBlank("NodeGroupId")
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, ok := r.groups[id]
	if !ok {
		return nil, replicationGroupNotFound(id)
	}
	var ng *nodeGroup
	for _, x := range g.nodeGroups {
		if x.id == ngID {
			ng = x
		}
	}
	if ng == nil {
		return nil, nodeGroupNotFound(ngID, id)
	}
	if g.status != statusAvailable {
		return nil, invalidGroupState("Replication group %s is not in available state (it is %s).", id, g.status)
	}
	if !g.autoFailover {
		return nil, invalidGroupState("Replication group %s does not have automatic failover enabled.", id)
	}
	if len(ng.healthyReplicas(r)) == 0 {
		return nil, testFailoverNotAvailable(ngID)
	}
	now := e.opts.Now()
	r.testFailovers = slices.DeleteFunc(r.testFailovers, func(t time.Time) bool { return now.Sub(t) >= 24*time.Hour })
	if len(r.testFailovers) >= e.opts.TestFailoverQuota {
		return nil, testFailoverQuotaExceeded(e.opts.TestFailoverQuota)
	}
	r.testFailovers = append(r.testFailovers, now)
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Test Failover API called for node group %s", ng.id)
	out := &elasticache.TestFailoverOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opFailover, g.id, nil, func(ctx context.Context) { e.promote(ctx, r, g, ng, "", "requested by TestFailover") })
	return out, nil
}

// promote runs a planned failover (TestFailover, or a manual promotion with
// ModifyReplicationGroup PrimaryClusterId) and returns the group to available.
func (e *Emulator) promote(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, target, why string) {
	_, err := e.failover(ctx, r, g, ng, target, true, time.Time{}, why)
	if err != nil {
		e.log.Error("planned failover failed", "group", g.id, "err", err)
		r.mu.Lock()
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Failover of node group %s failed: %v", ng.id, err)
		e.unlock(r)
	}
	e.availableWhenServing(ctx, r, g)
}

// failoverMessage is the event of a completed failover: AWS's wording,
// then why it happened (a failed health check and for how long, or the
// call that asked for it), so the event stream explains itself.
func failoverMessage(oldID, target, why string) string {
	return fmt.Sprintf("Failover from primary node %s to replica node %s completed: %s", oldID, target, why)
}
