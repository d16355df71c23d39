package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// errNodeGone marks a failed check of a node whose process or container is
// no longer running.
var errNodeGone = errors.New("the node is not running")

// monitored is one node the health checker looks at.
type monitored struct {
	r  *region
	cl *cacheCluster
	n  *cacheNode
}

// checkNodes PINGs every node that should be serving, in parallel, and
// starts a recovery for each one that failed HealthMisses checks in a row.
func (e *Emulator) checkNodes(ctx context.Context) {
	e.mu.Lock()
	var targets []monitored
	for _, r := range e.regions {
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if n.status == statusAvailable && !n.recovering {
					targets = append(targets, monitored{r, cl, n})
				}
			}
		}
	}
	e.mu.Unlock()

	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, m := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, e.opts.HealthTimeout)
			defer cancel()
			// Any reply (BUSY from a long script, LOADING, an error)
			// proves the node alive; only silence or a refused
			// connection counts against it.
			errs[i] = e.admin.Alive(pctx, m.n.endpoint)
			if errs[i] != nil {
				// A node the runtime reports gone (crashed, killed) needs no
				// more evidence; only a hung one has to miss checks in a row.
				if node, err := e.opts.Runtime.Inspect(pctx, m.n.name); err == nil && !node.Running {
					errs[i] = errNodeGone
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	for i, m := range targets {
		n := m.n
		if n.status != statusAvailable || n.recovering {
			continue // changed while we were checking
		}
		if errs[i] == nil {
			n.misses = 0
			continue
		}
		n.misses++
		if errs[i] == errNodeGone {
			n.misses = max(n.misses, e.opts.HealthMisses)
		}
		if n.misses < e.opts.HealthMisses {
			continue
		}
		e.log.Warn("node failed health checks", "cluster", m.cl.id, "node", n.id, "misses", n.misses, "err", errs[i])
		n.down, n.recovering = true, true
		e.startRecovery(m.r, m.cl, n)
	}
}

// startRecovery reacts to a dead or hung node; the caller holds e.mu. A
// failed primary of a group with automatic failover is replaced by its most
// up-to-date replica first; then the failed node is repaired: replaced, with
// the same cluster id and endpoint, as a replica of the current primary (or
// in place, empty, when it is a primary without failover, as on AWS without
// persistence).
func (e *Emulator) startRecovery(r *region, cl *cacheCluster, n *cacheNode) {
	g := r.groups[cl.groupID]
	var ng *nodeGroup
	if g != nil {
		ng = g.nodeGroupOf(cl.id)
		ng.syncEndpoints(r) // stop sending traffic to the failed node now
	}
	cl.status = statusModifying
	if g != nil && g.status == statusAvailable {
		g.status = statusModifying
	}
	failover := g != nil && g.autoFailover && ng.primary == cl.id && len(ng.healthyReplicas(r)) > 0
	e.goBackground(func(ctx context.Context) {
		// The node is replaced either way: make sure a hung one lets go of
		// its addresses (and its clients) before anything takes them over.
		if fi, ok := e.opts.Runtime.(engine.FaultInjector); ok {
			_ = fi.Kill(ctx, n.name)
		}
		if failover {
			if _, err := e.failover(ctx, r, g, ng, "", false); err != nil {
				e.log.Error("automatic failover failed", "group", g.id, "err", err)
			}
		}
		e.repair(ctx, r, cl, n)
	})
}

// healthyReplicas lists the replica clusters of ng that serve traffic; the
// caller holds e.mu.
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
// primary is dead) promotes at once. No lock is held by the caller.
func (e *Emulator) failover(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, target string, planned bool) (string, error) {
	e.mu.Lock()
	oldID := ng.primary
	oldEP := r.clusters[oldID].nodes[0].endpoint
	candidates := map[string]engine.Endpoint{}
	for _, cl := range ng.healthyReplicas(r) {
		candidates[cl.id] = cl.nodes[0].endpoint
	}
	e.mu.Unlock()
	if len(candidates) == 0 {
		return "", errors.New("no healthy replica to promote")
	}
	if target == "" {
		best := int64(-1)
		for _, id := range slices.Sorted(mapsKeys(candidates)) {
			info, err := e.admin.InspectReplication(ctx, candidates[id])
			if err == nil && info.ReplicaOffset > best {
				target, best = id, info.ReplicaOffset
			}
		}
		if target == "" {
			return "", errors.New("no replica answered")
		}
	}
	newEP, ok := candidates[target]
	if !ok {
		return "", fmt.Errorf("cache cluster %s is not a healthy replica", target)
	}

	if planned {
		if err := e.pauseAndCatchUp(ctx, oldEP, newEP); err != nil {
			return "", err
		}
	}
	if err := e.admin.ReplicaOf(ctx, newEP, nil); err != nil {
		if planned {
			e.unpause(oldEP)
		}
		return "", fmt.Errorf("promoting %s: %w", target, err)
	}
	e.mu.Lock()
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
	e.mu.Unlock()

	peer := e.opts.Runtime.PeerEndpoint(newEP)
	var firstErr error
	for _, ep := range others {
		if err := e.admin.ReplicaOf(ctx, ep, &peer); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("repointing %s: %w", ep.Addr(), err)
		}
	}
	if planned {
		e.unpause(oldEP)
	}
	e.mu.Lock()
	msg := fmt.Sprintf("Failover from primary node %s to replica node %s completed", oldID, target)
	e.record(r, types.SourceTypeCacheCluster, target, "%s", msg)
	e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", msg)
	e.mu.Unlock()
	e.log.Info("failover completed", "group", g.id, "from", oldID, "to", target, "planned", planned)
	return target, firstErr
}

// pauseAndCatchUp blocks writes on the primary (CLIENT PAUSE WRITE) and
// waits until the replica has processed the primary's whole stream.
func (e *Emulator) pauseAndCatchUp(ctx context.Context, primary, replica engine.Endpoint) error {
	err := e.admin.WithClient(ctx, primary, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "CLIENT", "PAUSE", "10000", "WRITE").Err()
	})
	if err != nil {
		return fmt.Errorf("pausing writes on the primary: %w", err)
	}
	if err := e.catchUp(ctx, primary, replica); err != nil {
		e.unpause(primary)
		return fmt.Errorf("replica did not catch up with the primary: %w", err)
	}
	return nil
}

func (e *Emulator) unpause(ep engine.Endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.admin.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "CLIENT", "UNPAUSE").Err()
	})
}

// repair replaces a failed node with a fresh one with the same cluster id
// and endpoint, as a replica of the group's current primary when it is not
// the primary itself.
func (e *Emulator) repair(ctx context.Context, r *region, cl *cacheCluster, n *cacheNode) {
	e.mu.Lock()
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Recovering cache nodes %s", n.id)
	launch := e.launchFor(r, cl, n, r.replicaSource(cl))
	e.mu.Unlock()

	if fi, ok := e.opts.Runtime.(engine.FaultInjector); ok {
		_ = fi.Kill(ctx, n.name) // a hung node would make Stop wait for its grace period
	}
	err := e.opts.Runtime.Stop(ctx, n.name)
	if err == nil || isNotFound(err) {
		err = e.startNode(ctx, launch)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
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
	if g := r.groups[cl.groupID]; g != nil {
		g.nodeGroupOf(cl.id).syncEndpoints(r)
		if g.status == statusModifying && !g.recovering(r) {
			g.status = statusAvailable
		}
	}
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Finished recovery for cache nodes %s", n.id)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.regionFor(ctx)
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
		return nil, &types.NodeGroupNotFoundFault{Message: aws.String("Node group " + ngID + " not found in replication group " + id + ".")}
	}
	if g.status != statusAvailable {
		return nil, invalidGroupState("Replication group %s is not in available state (it is %s).", id, g.status)
	}
	if !g.autoFailover {
		return nil, invalidGroupState("Replication group %s does not have automatic failover enabled.", id)
	}
	if len(ng.healthyReplicas(r)) == 0 {
		return nil, &types.TestFailoverNotAvailableFault{Message: aws.String("Node group " + ngID + " has no replica available for failover.")}
	}
	now := e.opts.Now()
	r.testFailovers = slices.DeleteFunc(r.testFailovers, func(t time.Time) bool { return now.Sub(t) >= 24*time.Hour })
	if len(r.testFailovers) >= e.opts.TestFailoverQuota {
		return nil, &types.APICallRateForCustomerExceededFault{Message: aws.String(fmt.Sprintf("You have exceeded the quota of %d TestFailover calls in a rolling 24 hours.", e.opts.TestFailoverQuota))}
	}
	r.testFailovers = append(r.testFailovers, now)
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Test Failover API called for node group %s", ng.id)
	out := &elasticache.TestFailoverOutput{ReplicationGroup: ptr(g.describe(r))}
	e.goBackground(func(ctx context.Context) { e.promote(ctx, r, g, ng, "") })
	return out, nil
}

// promote runs a planned failover (TestFailover, or a manual promotion with
// ModifyReplicationGroup PrimaryClusterId) and returns the group to available.
func (e *Emulator) promote(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, target string) {
	_, err := e.failover(ctx, r, g, ng, target, true)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.log.Error("planned failover failed", "group", g.id, "err", err)
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Failover of node group %s failed: %v", ng.id, err)
	}
	if g.status == statusModifying && !g.recovering(r) {
		g.status = statusAvailable
	}
}
