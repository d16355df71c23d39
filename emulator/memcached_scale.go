package emulator

// Changing a Memcached cluster: its node count (ModifyCacheCluster with
// NumCacheNodes and CacheNodeIdsToRemove, now or pending), reboots of
// named nodes, its deletion, and bringing it back after the emulator
// restarted.

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// opScaleMemcached adds or removes the nodes of a Memcached cluster.
const opScaleMemcached = "scale-memcached"

// modifyMemcachedCluster is ModifyCacheCluster for a Memcached cluster;
// the caller holds r.mu.
func (e *Emulator) modifyMemcachedCluster(r *region, cl *cacheCluster, in *elasticache.ModifyCacheClusterInput) (*elasticache.ModifyCacheClusterOutput, error) {
	switch {
	case in.AuthToken != nil || in.AuthTokenUpdateStrategy != "":
		return nil, invalidParameterCombination("AuthToken is only supported for the Redis OSS and Valkey engines.")
	case in.SnapshotRetentionLimit != nil || in.SnapshotWindow != nil:
		return nil, invalidParameterCombination("SnapshotRetentionLimit and SnapshotWindow are not supported for the memcached engine.")
	case in.Engine != nil && *in.Engine != "" && !engineIsMemcached(*in.Engine):
		return nil, notImplemented("changing the engine of a cache cluster")
	case in.CacheNodeType != nil && *in.CacheNodeType != "" && *in.CacheNodeType != cl.nodeType:
		return nil, notImplemented("scaling the node type of a cache cluster")
	}
	if cl.status != statusAvailable {
		return nil, invalidClusterState("Cache cluster %s is not in available state (it is %s).", cl.id, cl.status)
	}
	cur := len(cl.nodes)
	want := cur
	if in.NumCacheNodes != nil {
		want = int(*in.NumCacheNodes)
		if err := e.checkMemcachedNodes(want); err != nil {
			return nil, err
		}
	}
	remove := slices.Clone(in.CacheNodeIdsToRemove)
	switch {
	case len(remove) > 0 && in.NumCacheNodes == nil:
		return nil, invalidParameterCombination("CacheNodeIdsToRemove needs NumCacheNodes, the number of nodes the cluster keeps.")
	case want < cur && len(remove) != cur-want:
		return nil, invalidParameterValue("Going from %d to %d nodes needs exactly %d node ids in CacheNodeIdsToRemove (got %d).", cur, want, cur-want, len(remove))
	case want >= cur && len(remove) > 0:
		return nil, invalidParameterCombination("CacheNodeIdsToRemove is only valid when NumCacheNodes is lower than the number of nodes (%d).", cur)
	}
	for _, id := range remove {
		if !slices.ContainsFunc(cl.nodes, func(n *cacheNode) bool { return n.id == id }) {
			return nil, invalidParameterValue("Cache node %s does not exist in cache cluster %s.", id, cl.id)
		}
	}
	slices.Sort(remove)
	if len(slices.Compact(slices.Clone(remove))) != len(remove) {
		return nil, invalidParameterValue("CacheNodeIdsToRemove names a node more than once.")
	}
	mode := cl.mc.azMode
	if in.AZMode != "" {
		if mode = string(in.AZMode); mode != azSingle && mode != azCross {
			return nil, invalidParameterValue("Invalid value for parameter AZMode: %s. Valid values are single-az, cross-az.", mode)
		}
	}
	var azs []string
	if want > cur {
		var err error
		if azs, err = memcachedAZs(r.region, mode, aws.String(cl.az), in.NewAvailabilityZones, want-cur); err != nil {
			return nil, err
		}
		if err := e.checkNodeQuota(r, want-cur); err != nil {
			return nil, err
		}
	} else if len(in.NewAvailabilityZones) > 0 {
		return nil, invalidParameterCombination("NewAvailabilityZones is only valid when NumCacheNodes adds nodes.")
	}
	pg := cl.paramGroup
	if name := aws.ToString(in.CacheParameterGroupName); name != "" {
		var err error
		if pg, err = r.resolveParamGroup(in.CacheParameterGroupName, cl.engine); err != nil {
			return nil, err
		}
	}
	settings, err := cl.settings.modify(in.PreferredMaintenanceWindow, nil, nil, in.AutoMinorVersionUpgrade, in.NotificationTopicArn, in.NotificationTopicStatus)
	if err != nil {
		return nil, err
	}
	// Validation is over.
	if pg != cl.paramGroup {
		cl.mc.markReboot(cl.nodes)
	}
	cl.paramGroup, cl.settings, cl.mc.azMode = pg, settings, mode
	if in.SecurityGroupIds != nil {
		cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
	}
	cl.status = statusModifying
	if want == cur {
		out := &elasticache.ModifyCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
		e.settle(r, &cl.status, types.SourceTypeCacheCluster, cl.id, "Cache cluster %s modified", cl.id)
		return out, nil
	}
	if !aws.ToBool(in.ApplyImmediately) {
		// Applied in the next maintenance window (TickMaintenance), or by
		// a later modification with ApplyImmediately.
		cl.mc.pendingNodes, cl.mc.pendingRemove = want, remove
		out := &elasticache.ModifyCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
		e.settle(r, &cl.status, types.SourceTypeCacheCluster, cl.id, "Cache cluster %s modified: %d nodes pending for the maintenance window", cl.id, want)
		return out, nil
	}
	if err := e.startMemcachedScale(r, cl, remove, azs); err != nil {
		cl.status = statusAvailable
		return nil, err
	}
	return &elasticache.ModifyCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}, nil
}

// startMemcachedScale starts a validated node count change of cl: a node
// added in each of azs, the nodes named in remove marked deleting, the
// discovery answer updated, and the operation that starts and stops them.
// It clears what was pending. The caller holds r.mu and has set cl's
// status to modifying.
func (e *Emulator) startMemcachedScale(r *region, cl *cacheCluster, remove, azs []string) error {
	cur := len(cl.nodes)
	cl.mc.pendingNodes, cl.mc.pendingRemove = 0, nil
	var added []*cacheNode
	for _, az := range azs {
		n, err := e.addMemcachedNode(r, cl, az)
		if err != nil {
			for _, a := range added {
				e.opts.Addresses.Release(a.endpoint)
			}
			cl.nodes = cl.nodes[:cur]
			return err
		}
		added = append(added, n)
	}
	for _, n := range cl.nodes {
		if slices.Contains(remove, n.id) {
			n.status = statusDeleting
		}
	}
	e.syncDiscovery(r, cl)
	e.runOperation(r, opScaleMemcached, cl.id, nil, func(ctx context.Context) { e.scaleMemcached(ctx, r, cl, cur) })
	return nil
}

// applyPendingMemcached applies cl's pending node count change in its
// maintenance window; the caller holds r.mu and cl is available. A change
// that no longer fits (the node quota was reached meanwhile) is dropped
// with an event saying why.
func (e *Emulator) applyPendingMemcached(r *region, cl *cacheCluster) {
	want, remove := cl.mc.pendingNodes, cl.mc.pendingRemove
	var azs []string
	var err error
	if cur := len(cl.nodes); want > cur {
		if azs, err = memcachedAZs(r.region, cl.mc.azMode, aws.String(cl.az), nil, want-cur); err == nil {
			err = e.checkNodeQuota(r, want-cur)
		}
	}
	if err == nil {
		cl.status = statusModifying
		if err = e.startMemcachedScale(r, cl, remove, azs); err == nil {
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Applying pending modifications of cache cluster %s in its maintenance window: %d nodes", cl.id, want)
			return
		}
		cl.status = statusAvailable
	}
	cl.mc.pendingNodes, cl.mc.pendingRemove = 0, nil
	e.record(r, types.SourceTypeCacheCluster, cl.id, "The pending change of cache cluster %s to %d nodes could not be applied in its maintenance window: %v", cl.id, want, err)
}

func engineIsMemcached(name string) bool { return name == "memcached" }

// scaleMemcached starts the cluster's nodes being added and stops those
// being removed, then bumps the config version; from is the node count
// before. No lock is held.
func (e *Emulator) scaleMemcached(ctx context.Context, r *region, cl *cacheCluster, from int) {
	r.mu.Lock()
	var launches []nodeLaunch
	var removing []*cacheNode
	for _, n := range cl.nodes {
		switch n.status {
		case statusCreating:
			launches = append(launches, e.launchFor(r, cl, n, nil))
		case statusDeleting:
			removing = append(removing, n)
		}
	}
	r.mu.Unlock()
	startErrs := make([]error, len(launches))
	for i, l := range launches {
		// A node an earlier run started before it was killed (adopted)
		// runs already: it only has to answer.
		if n, err := e.opts.Runtime.Inspect(ctx, l.spec.Name); err == nil && n.Running {
			startErrs[i] = engine.WaitReady(ctx, l.spec.Endpoint, e.admin.Pings)
			continue
		}
		startErrs[i] = e.startNode(ctx, l)
	}
	for _, n := range removing {
		if err := e.stopNode(ctx, n); err != nil {
			e.log.Error("stopping a removed memcached node", "node", n.name, "err", err)
		}
	}
	if stopping(ctx) {
		return // the next start finishes it (reconcileMemcached)
	}
	r.mu.Lock()
	defer e.unlock(r)
	kept := cl.nodes[:0]
	for _, n := range cl.nodes {
		n.recovering = false
		failed := false
		for i, l := range launches {
			if l.spec.Name == n.name && startErrs[i] != nil {
				failed = true
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to add cache node %s: %v", n.id, startErrs[i])
			}
		}
		switch {
		case n.status == statusDeleting:
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Removed cache node %s", n.id)
			delete(cl.mc.reboot, n.id)
			continue
		case failed:
			_ = e.opts.Runtime.Stop(context.WithoutCancel(ctx), n.name)
			e.opts.Addresses.Release(n.endpoint)
			continue
		case n.status == statusCreating:
			n.status = statusAvailable
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Added cache node %s in availability zone %s", n.id, n.az)
		}
		kept = append(kept, n)
	}
	cl.nodes = kept
	cl.mc.version++
	cl.status = statusAvailable
	e.syncDiscovery(r, cl)
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Finished modifying number of nodes from %d to %d", from, len(cl.nodes))
}

// rebootMemcached is RebootCacheCluster for a Memcached cluster: the named
// nodes restart one after the other, empty (memcached keeps no data), with
// the parameter values in force; the caller holds r.mu.
func (e *Emulator) rebootMemcached(r *region, cl *cacheCluster, ids []string) (*elasticache.RebootCacheClusterOutput, error) {
	if cl.status != statusAvailable {
		return nil, invalidClusterState("Cache cluster %s is not in available state (it is %s).", cl.id, cl.status)
	}
	if len(ids) == 0 {
		return nil, mustNotBeBlank("CacheNodeIdsToReboot")
	}
	var targets []*cacheNode
	for _, id := range ids {
		i := slices.IndexFunc(cl.nodes, func(n *cacheNode) bool { return n.id == id })
		if i < 0 {
			return nil, invalidParameterValue("Cache node %s does not exist in cache cluster %s.", id, cl.id)
		}
		targets = append(targets, cl.nodes[i])
	}
	var launches []nodeLaunch
	for _, n := range targets {
		n.status = nodeRebooting
		launches = append(launches, e.launchFor(r, cl, n, nil))
	}
	cl.status = statusRebooting
	e.syncDiscovery(r, cl)
	out := &elasticache.RebootCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
	e.runOperation(r, opReboot, cl.id, nil, func(ctx context.Context) {
		for i, l := range launches {
			err := e.opts.Runtime.Stop(ctx, l.spec.Name)
			if err == nil || isNotFound(err) {
				err = e.startNode(ctx, l)
			}
			if stopping(ctx) {
				return
			}
			r.mu.Lock()
			n := targets[i]
			if err != nil {
				e.log.Error("memcached node reboot failed", "cluster", cl.id, "node", n.id, "err", err)
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to reboot cache node %s: %v", n.id, err)
				n.down = true // the health monitor replaces it
			} else {
				delete(cl.mc.reboot, n.id)
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s restarted", n.id)
			}
			n.status = statusAvailable
			e.syncDiscovery(r, cl)
			e.unlock(r)
		}
		r.mu.Lock()
		defer e.unlock(r)
		cl.status = statusAvailable
		e.syncDiscovery(r, cl)
	})
	return out, nil
}

// deleteMemcachedCluster is DeleteCacheCluster for a Memcached cluster;
// the caller holds r.mu.
func (e *Emulator) deleteMemcachedCluster(r *region, cl *cacheCluster, in *elasticache.DeleteCacheClusterInput) (*elasticache.DeleteCacheClusterOutput, error) {
	if aws.ToString(in.FinalSnapshotIdentifier) != "" {
		return nil, invalidParameterCombination("Snapshots are not supported for the memcached engine; FinalSnapshotIdentifier is not allowed.")
	}
	cl.status = statusDeleting
	for _, n := range cl.nodes {
		n.status = statusDeleting
	}
	e.syncDiscovery(r, cl)
	out := &elasticache.DeleteCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
	nodes := slices.Clone(cl.nodes)
	e.runOperation(r, opDeleteCluster, cl.id, nil, func(ctx context.Context) {
		if err := e.stopNodes(ctx, nodes); err != nil {
			e.log.Error("stopping the nodes of a memcached cluster", "cluster", cl.id, "err", err)
		}
		r.mu.Lock()
		defer e.unlock(r)
		e.releaseMemcached(&cacheCluster{mc: cl.mc}) // the nodes' addresses went with stopNodes
		delete(r.clusters, cl.id)
		delete(r.tags, r.arn("cluster", cl.id))
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster deleted")
	})
	return out, nil
}

// reserveMemcached reserves the recorded configuration endpoints of r's
// Memcached clusters before anything is allocated (Restore).
func (e *Emulator) reserveMemcached(r *region) error {
	for _, cl := range r.clusters {
		if cl.mc != nil {
			if err := e.opts.Addresses.Reserve(cl.mc.cfgAddr); err != nil {
				return err
			}
		}
	}
	return nil
}

// reopenDiscovery opens the configuration endpoints of r's Memcached
// clusters at their recorded addresses before the API serves (Restore), so
// a cluster described available answers Auto Discovery.
func (e *Emulator) reopenDiscovery(r *region) error {
	for _, id := range sortedKeys(r.clusters) {
		if cl := r.clusters[id]; cl.mc != nil && cl.status != statusDeleting && cl.status != statusCreateFailed {
			if err := e.openDiscovery(r, cl); err != nil {
				return fmt.Errorf("emulator: reopening at its recorded address: %w", err)
			}
		}
	}
	return nil
}

// reconcileMemcached brings a Memcached cluster back after a restart: its
// configuration endpoint reopens at its address, nodes the earlier run
// was adding start, nodes it was removing go, nodes that do not run start
// again (empty), and a create or scaling left half-way ends.
func (e *Emulator) reconcileMemcached(ctx context.Context, r *region, cl *cacheCluster, fates map[string]nodeFate) {
	r.mu.Lock()
	// A delete the earlier run left is finished by finishDeletes.
	if cl.status == statusCreateFailed || cl.status == statusDeleting || r.clusters[cl.id] != cl {
		r.mu.Unlock()
		return
	}
	creating := cl.status == statusCreating
	scaling := false
	var launches []nodeLaunch
	for _, n := range cl.nodes {
		if !creating && (n.status == statusCreating || n.status == statusDeleting) {
			scaling = true // scaleMemcached starts or stops it
			continue
		}
		if !fates[n.name].running && n.status != statusDeleting {
			launches = append(launches, e.launchFor(r, cl, n, nil))
		}
	}
	r.mu.Unlock()
	if err := e.openDiscovery(r, cl); err != nil {
		e.log.Error("reopening a configuration endpoint", "cluster", cl.id, "err", err)
	}
	errs := make([]error, len(launches))
	for i, l := range launches {
		errs[i] = e.startNode(ctx, l)
	}
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	failed := false
	for _, n := range cl.nodes {
		if scaling && (n.status == statusCreating || n.status == statusDeleting) {
			continue
		}
		n.recovering = false
		for i, l := range launches {
			if l.spec.Name != n.name {
				continue
			}
			if errs[i] != nil {
				failed = true
				n.down = true // the health monitor replaces it
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to restart cache node %s: %v", n.id, errs[i])
			} else if !creating {
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache node %s restarted (empty: memcached keeps no data) after the emulator restarted", n.id)
			}
		}
		n.status = statusAvailable
	}
	switch {
	case creating && failed:
		cl.status = statusCreateFailed
	case creating:
		cl.mc.version++
		cl.status = statusAvailable
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster created")
	case scaling:
		cl.status = statusModifying
	default:
		cl.status = statusAvailable
	}
	e.syncDiscovery(r, cl)
	from := len(cl.nodes)
	e.unlock(r)
	if scaling {
		e.scaleMemcached(ctx, r, cl, from)
	}
}
