package emulator

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// Online replica scaling of cluster-mode-disabled groups: the group is
// "modifying" while replicas start (fully synced before it is "available"
// again) or stop. A replica is added by IncreaseReplicaCount or by
// CreateCacheCluster with a ReplicationGroupId (addReplicaCluster).

// scalableGroup finds a group whose replica count may change now; the
// caller holds r.mu.
// ReplicaConfiguration (cluster mode) is refused by the member audit.
func (r *region) scalableGroup(idParam *string, applyImmediately *bool) (*replicationGroup, error) {
	id, err := lookupID("ReplicationGroupId", idParam)
	if err != nil {
		return nil, err
	}
	if !aws.ToBool(applyImmediately) {
		return nil, invalidParameterValue("ApplyImmediately must be true: replica count changes are applied immediately.")
	}
	return r.group(id)
}

// IncreaseReplicaCount adds replicas to a group online.
func (e *Emulator) IncreaseReplicaCount(ctx context.Context, in *elasticache.IncreaseReplicaCountInput) (*elasticache.IncreaseReplicaCountOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.scalableGroup(in.ReplicationGroupId, in.ApplyImmediately)
	if err != nil {
		return nil, err
	}
	ng := g.nodeGroups[0]
	current := len(ng.members) - 1
	if in.NewReplicaCount == nil {
		return nil, mustNotBeBlank("NewReplicaCount")
	}
	want := int(*in.NewReplicaCount)
	if want <= current {
		return nil, invalidParameterValue("The new replica count (%d) must be greater than the current replica count (%d).", want, current)
	}
	if want > maxNodesPerShard-1 {
		return nil, invalidParameterValue("The new replica count (%d) must be at most %d.", want, maxNodesPerShard-1)
	}
	if err := e.checkNodeQuota(r, want-current); err != nil {
		return nil, err
	}
	primary := r.clusters[ng.primary]
	var added []*cacheCluster
	for n := 1; current+len(added) < want; n++ {
		id := memberID(g.id, n)
		if _, taken := r.clusters[id]; taken {
			continue
		}
		cl, err := e.newCluster(r, id, g.id, g.engine, g.port, availabilityZones(r.region)[(len(ng.members)+len(added))%3])
		if err != nil {
			for _, c := range added {
				e.opts.Addresses.Release(c.nodes[0].endpoint)
			}
			return nil, err
		}
		cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.settings = g.nodeType, g.paramGroup, primary.subnetGroup, g.settings
		cl.securityIDs = slices.Clone(primary.securityIDs)
		added = append(added, cl)
	}
	var launches []nodeLaunch
	for _, cl := range added {
		r.clusters[cl.id] = cl
		ng.members = append(ng.members, cl.id)
		launches = append(launches, e.launchFor(r, cl, cl.nodes[0], &primary.nodes[0].endpoint))
	}
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Increasing the number of replicas in node group %s from %d to %d", ng.id, current, want)
	out := &elasticache.IncreaseReplicaCountOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opAddReplica, g.id, nil, func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, l := range launches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.startNode(ctx, l)
				e.markNode(r, l, err)
			}()
		}
		wg.Wait()
		r.mu.Lock()
		defer e.unlock(r)
		ng.syncEndpoints(r)
		e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Finished modifying number of replicas in node group %s from %d to %d", ng.id, current, want)
	})
	return out, nil
}

// DecreaseReplicaCount removes replicas online: the named ones, or the
// newest down to NewReplicaCount.
func (e *Emulator) DecreaseReplicaCount(ctx context.Context, in *elasticache.DecreaseReplicaCountInput) (*elasticache.DecreaseReplicaCountOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.scalableGroup(in.ReplicationGroupId, in.ApplyImmediately)
	if err != nil {
		return nil, err
	}
	ng := g.nodeGroups[0]
	current := len(ng.members) - 1
	var remove []string
	switch {
	case in.NewReplicaCount != nil && len(in.ReplicasToRemove) > 0:
		return nil, invalidParameterCombination("Specify either NewReplicaCount or ReplicasToRemove, not both.")
	case len(in.ReplicasToRemove) > 0:
		for _, id := range in.ReplicasToRemove {
			id = strings.ToLower(id)
			if !slices.Contains(ng.members, id) {
				return nil, invalidParameterValue("Cache cluster %s is not a member of replication group %s.", id, g.id)
			}
			if id == ng.primary {
				return nil, invalidParameterValue("Cache cluster %s is the primary of replication group %s and cannot be removed.", id, g.id)
			}
			if !slices.Contains(remove, id) {
				remove = append(remove, id)
			}
		}
	case in.NewReplicaCount != nil:
		want := int(*in.NewReplicaCount)
		if want < 0 || want >= current {
			return nil, invalidParameterValue("The new replica count (%d) must be less than the current replica count (%d) and not negative.", want, current)
		}
		replicas := slices.DeleteFunc(slices.Clone(ng.members), func(id string) bool { return id == ng.primary })
		slices.Sort(replicas)
		remove = replicas[want:]
	default:
		return nil, mustNotBeBlank("NewReplicaCount")
	}
	left := current - len(remove)
	if g.autoFailover && left < 1 {
		return nil, invalidParameterValue("Must have at least 1 replica when cluster mode is disabled with auto failover enabled.")
	}
	var doomed []*cacheCluster
	for _, id := range remove {
		cl := r.clusters[id]
		cl.status, cl.nodes[0].status = statusDeleting, statusDeleting
		doomed = append(doomed, cl)
	}
	ng.syncEndpoints(r)
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Decreasing the number of replicas in node group %s from %d to %d", ng.id, current, left)
	out := &elasticache.DecreaseReplicaCountOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opRemoveReplicas, g.id, nil, func(ctx context.Context) {
		for _, cl := range doomed {
			if err := e.stopNode(ctx, cl.nodes[0]); err != nil {
				e.log.Error("stopping node", "cluster", cl.id, "err", err)
			}
		}
		r.mu.Lock()
		defer e.unlock(r)
		for _, cl := range doomed {
			ng.removeMember(cl.id)
			delete(r.clusters, cl.id)
			delete(r.tags, r.arn("cluster", cl.id))
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster deleted")
		}
		ng.syncEndpoints(r)
		e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Finished modifying number of replicas in node group %s from %d to %d", ng.id, current, left)
	})
	return out, nil
}

// addReplicaCluster adds cluster id as a new replica of group gid's primary;
// the caller holds r.mu.
func (e *Emulator) addReplicaCluster(r *region, id, gid string, in *elasticache.CreateCacheClusterInput) (*elasticache.CreateCacheClusterOutput, error) {
	g, err := r.group(gid)
	if err != nil {
		return nil, err
	}
	ng := g.nodeGroups[0]
	if len(ng.members) >= maxNodesPerShard {
		return nil, nodeQuotaForClusterExceeded(gid, len(ng.members), maxNodesPerShard)
	}
	primary := r.clusters[ng.primary]
	if err := checkReplicaInherits(g, primary, in); err != nil {
		return nil, err
	}
	az, err := preferredAZ(in.PreferredAvailabilityZone, in.PreferredAvailabilityZones)
	if err != nil {
		return nil, err
	}
	if az == "" {
		az = availabilityZones(r.region)[len(ng.members)%3]
	}
	cl, err := e.newCluster(r, id, gid, g.engine, g.port, az)
	if err != nil {
		return nil, err
	}
	cl.nodeType, cl.paramGroup, cl.subnetGroup = g.nodeType, g.paramGroup, primary.subnetGroup
	cl.securityIDs = append([]string{}, primary.securityIDs...)
	cl.settings = g.settings
	r.clusters[id] = cl
	ng.members = append(ng.members, id)
	g.status = statusModifying
	if len(in.Tags) > 0 {
		r.tags[r.arn("cluster", id)] = mergeTags(nil, in.Tags)
	}
	launch := e.launchFor(r, cl, cl.nodes[0], &primary.nodes[0].endpoint)
	e.runOperation(r, opAddReplica, id, nil, func(ctx context.Context) {
		err := e.startNode(ctx, launch)
		if stopping(ctx) {
			return // the next start finishes adding it (restore.go)
		}
		r.mu.Lock()
		defer e.unlock(r)
		g.status = statusAvailable
		if err != nil {
			e.log.Error("adding replica failed", "cluster", id, "group", gid, "err", err)
			cl.status, cl.nodes[0].status = statusCreateFailed, statusCreateFailed
			e.record(r, types.SourceTypeCacheCluster, id, "Failed to create cache cluster %s: %v", id, err)
			return
		}
		cl.status, cl.nodes[0].status = statusAvailable, statusAvailable
		ng.syncEndpoints(r)
		e.record(r, types.SourceTypeCacheCluster, id, "Added cache node %s in availability zone %s", cl.nodes[0].id, az)
		e.record(r, types.SourceTypeCacheCluster, id, "Cache cluster created")
		e.record(r, types.SourceTypeReplicationGroup, gid, "Added cache cluster %s to replication group %s", id, gid)
	})
	return &elasticache.CreateCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}, nil
}

// checkReplicaInherits refuses settings of a replica added to group g that
// differ from the group's: the replica takes the group's engine, node type,
// port, parameter and subnet groups and windows, so a different value would
// be accepted and ignored. The caller holds r.mu.
func checkReplicaInherits(g *replicationGroup, primary *cacheCluster, in *elasticache.CreateCacheClusterInput) error {
	version := ""
	if aws.ToString(in.EngineVersion) != "" {
		ev, err := resolveEngine(aws.String(g.engine.Engine), in.EngineVersion)
		if err != nil {
			return err
		}
		version = ev.Actual
	}
	differs := func(name string, given, group any) error {
		return invalidParameterCombination("%s %v does not match replication group %s (%v): a replica added to a group takes the group's.", name, given, g.id, group)
	}
	for _, m := range []struct{ name, given, group string }{
		{"Engine", aws.ToString(in.Engine), g.engine.Engine},
		{"EngineVersion", version, g.engine.Actual},
		{"CacheNodeType", aws.ToString(in.CacheNodeType), g.nodeType},
		{"CacheParameterGroupName", aws.ToString(in.CacheParameterGroupName), g.paramGroup},
		{"CacheSubnetGroupName", aws.ToString(in.CacheSubnetGroupName), primary.subnetGroup},
		{"PreferredMaintenanceWindow", aws.ToString(in.PreferredMaintenanceWindow), g.settings.maintenanceWindow},
		{"SnapshotWindow", aws.ToString(in.SnapshotWindow), g.settings.snapshotWindow},
		{"NotificationTopicArn", aws.ToString(in.NotificationTopicArn), g.settings.notificationTopic},
	} {
		if m.given != "" && !strings.EqualFold(m.given, m.group) {
			return differs(m.name, m.given, m.group)
		}
	}
	switch {
	case in.Port != nil && *in.Port != g.port:
		return differs("Port", *in.Port, g.port)
	case in.SnapshotRetentionLimit != nil && *in.SnapshotRetentionLimit != g.settings.snapshotRetention:
		return differs("SnapshotRetentionLimit", *in.SnapshotRetentionLimit, g.settings.snapshotRetention)
	case in.AutoMinorVersionUpgrade != nil && *in.AutoMinorVersionUpgrade != g.settings.autoMinorUpgrade:
		return differs("AutoMinorVersionUpgrade", *in.AutoMinorVersionUpgrade, g.settings.autoMinorUpgrade)
	case len(in.SecurityGroupIds) > 0 && !sameSet(in.SecurityGroupIds, primary.securityIDs):
		return differs("SecurityGroupIds", in.SecurityGroupIds, primary.securityIDs)
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
