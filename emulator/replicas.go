package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Online replica scaling: the group is "modifying" while replicas start
// (fully synced before it is "available" again) or stop. A replica is
// added by IncreaseReplicaCount or by CreateCacheCluster with a
// ReplicationGroupId (addReplicaCluster).
//
// In a cluster-mode group every node group (shard) scales: NewReplicaCount
// applies to each, ReplicaConfiguration names node groups one by one, and
// ReplicasToRemove may name members of any shard. A new member starts as a
// lone cluster node and formCluster attaches it to its shard's primary (a
// Redis Cluster refuses REPLICAOF); a removed one is stopped and the others
// CLUSTER FORGET it, or they would keep listing it to clients as a failed
// replica.

// scalableGroup finds a group whose replica count may change now; the
// caller holds r.mu. A cluster-mode group must be available: a resharding
// or failover in flight reads the shards' members without the lock.
func (r *region) scalableGroup(idParam *string, applyImmediately *bool) (*replicationGroup, error) {
	id, err := lookupID("ReplicationGroupId", idParam)
	if err != nil {
		return nil, err
	}
	if !aws.ToBool(applyImmediately) {
		return nil, invalidParameterValue("ApplyImmediately must be true: replica count changes are applied immediately.")
	}
	g, err := r.group(id)
	if err == nil && g.clusterMode && g.status != statusAvailable {
		return nil, invalidGroupState("Replication group %s is not in available state (it is %s).", id, g.status)
	}
	return g, err
}

// replicaChange is what a replica count change does to one node group.
type replicaChange struct {
	ng       *nodeGroup
	from, to int // replica counts
	// azs are the zones of every node of the node group, primary first
	// (ConfigureShard.PreferredAvailabilityZones); nil spreads new ones.
	azs []string
}

// shardConfigs resolves ReplicaConfiguration to the node groups it names,
// checking each NewReplicaCount with valid; the caller holds r.mu.
func shardConfigs(g *replicationGroup, cfg []types.ConfigureShard, valid func(ng *nodeGroup, current, want int) error) ([]replicaChange, error) {
	var out []replicaChange
	for i, c := range cfg {
		id := aws.ToString(c.NodeGroupId)
		if id == "" {
			return nil, mustNotBeBlank(fmt.Sprintf("ReplicaConfiguration.member.%d.NodeGroupId", i+1))
		}
		if c.NewReplicaCount == nil {
			return nil, mustNotBeBlank(fmt.Sprintf("ReplicaConfiguration.member.%d.NewReplicaCount", i+1))
		}
		if len(c.PreferredOutpostArns) > 0 {
			return nil, notImplemented("ReplicaConfiguration PreferredOutpostArns")
		}
		if nodeGroupIDRE.MatchString(id) {
			id = fmt.Sprintf("%04s", id)
		}
		var ng *nodeGroup
		for _, x := range g.nodeGroups {
			if x.id == id {
				ng = x
			}
		}
		if ng == nil {
			return nil, nodeGroupNotFound(id, g.id)
		}
		if slices.ContainsFunc(out, func(ch replicaChange) bool { return ch.ng == ng }) {
			return nil, invalidParameterValue("ReplicaConfiguration names node group %s more than once.", id)
		}
		current, want := len(ng.members)-1, int(*c.NewReplicaCount)
		if err := valid(ng, current, want); err != nil {
			return nil, err
		}
		if azs := c.PreferredAvailabilityZones; len(azs) > 0 && len(azs) != want+1 {
			return nil, invalidParameterValue("PreferredAvailabilityZones of node group %s has %d entries; it must have NewReplicaCount + 1 (%d), one for the primary and one for each replica.", id, len(azs), want+1)
		}
		out = append(out, replicaChange{ng: ng, from: current, to: want, azs: c.PreferredAvailabilityZones})
	}
	return out, nil
}

// increasePlan checks an IncreaseReplicaCount against g and returns the
// node groups that grow; the caller holds r.mu.
func increasePlan(g *replicationGroup, in *elasticache.IncreaseReplicaCountInput) ([]replicaChange, error) {
	valid := func(ng *nodeGroup, current, want int) error {
		switch {
		case want > maxNodesPerShard-1:
			return invalidParameterValue("The new replica count (%d) must be at most %d.", want, maxNodesPerShard-1)
		case want <= current:
			return invalidParameterValue("The new replica count (%d) must be greater than the current replica count (%d) of node group %s.", want, current, ng.id)
		}
		return nil
	}
	switch {
	case in.NewReplicaCount != nil && len(in.ReplicaConfiguration) > 0:
		return nil, invalidParameterCombination("Specify either NewReplicaCount or ReplicaConfiguration, not both.")
	case len(in.ReplicaConfiguration) > 0:
		return shardConfigs(g, in.ReplicaConfiguration, valid)
	case in.NewReplicaCount == nil:
		return nil, mustNotBeBlank("NewReplicaCount")
	}
	// NewReplicaCount: every node group below it grows to it.
	want := int(*in.NewReplicaCount)
	var out []replicaChange
	most := 0
	for _, ng := range g.nodeGroups {
		current := len(ng.members) - 1
		most = max(most, current)
		if want > current || !g.clusterMode {
			if err := valid(ng, current, want); err != nil {
				return nil, err
			}
			out = append(out, replicaChange{ng: ng, from: current, to: want})
		}
	}
	if len(out) == 0 {
		return nil, invalidParameterValue("The new replica count (%d) must be greater than the current replica count (%d).", want, most)
	}
	return out, nil
}

// IncreaseReplicaCount adds replicas to a group online.
func (e *Emulator) IncreaseReplicaCount(ctx context.Context, in *elasticache.IncreaseReplicaCountInput) (*elasticache.IncreaseReplicaCountOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.scalableGroup(in.ReplicationGroupId, in.ApplyImmediately)
	if err != nil {
		return nil, err
	}
	changes, err := increasePlan(g, in)
	if err != nil {
		return nil, err
	}
	adding := 0
	for _, ch := range changes {
		adding += ch.to - ch.from
	}
	if g.clusterMode {
		if have := len(g.memberClusters()); have+adding > e.opts.ClusterNodeQuota {
			return nil, &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf(
				"The request would give replication group %s %d nodes; the quota is %d nodes per cluster.", g.id, have+adding, e.opts.ClusterNodeQuota))}
		}
	}
	if err := e.checkNodeQuota(r, adding); err != nil {
		return nil, err
	}
	added := map[*nodeGroup][]*cacheCluster{}
	var all []*cacheCluster
	for _, ch := range changes {
		primary := r.clusters[ch.ng.primary]
		for n := 1; ch.from+len(added[ch.ng]) < ch.to; n++ {
			id := memberID(g.id, n)
			if g.clusterMode {
				id = shardMemberID(g.id, ch.ng.id, n)
			}
			if _, taken := r.clusters[id]; taken {
				continue
			}
			pos := len(ch.ng.members) + len(added[ch.ng])
			az := availabilityZones(r.region)[pos%3]
			if len(ch.azs) > pos && ch.azs[pos] != "" {
				az = ch.azs[pos]
			}
			cl, err := e.newCluster(r, id, g.id, g.engine, g.port, az)
			if err != nil {
				e.releaseNodes(all)
				return nil, err
			}
			cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.settings = g.nodeType, g.paramGroup, primary.subnetGroup, g.settings
			cl.securityIDs = slices.Clone(primary.securityIDs)
			added[ch.ng] = append(added[ch.ng], cl)
			all = append(all, cl)
		}
	}
	// Validation is over: from here on the request changes state.
	var launches []nodeLaunch
	for _, ch := range changes {
		primary := r.clusters[ch.ng.primary]
		for _, cl := range added[ch.ng] {
			r.clusters[cl.id] = cl
			ch.ng.members = append(ch.ng.members, cl.id)
			launches = append(launches, e.launchFor(r, cl, cl.nodes[0], &primary.nodes[0].endpoint))
		}
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Increasing the number of replicas in node group %s from %d to %d", ch.ng.id, ch.from, ch.to)
	}
	g.status = statusModifying
	out := &elasticache.IncreaseReplicaCountOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opAddReplica, g.id, nil, func(ctx context.Context) {
		var failure error
		if g.clusterMode {
			failure = e.startClusterReplicas(ctx, r, g, launches)
			if stopping(ctx) {
				return // the next start finishes it (reconcileClusterNodes)
			}
		} else {
			// A replica that failed to start is marked so by startNodes;
			// the others' change still finishes.
			_ = e.startNodes(ctx, r, launches)
		}
		r.mu.Lock()
		defer e.unlock(r)
		for _, ch := range changes {
			ch.ng.syncEndpoints(r)
			if failure != nil {
				e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to modify number of replicas in node group %s from %d to %d: %v", ch.ng.id, ch.from, ch.to, failure)
				continue
			}
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Finished modifying number of replicas in node group %s from %d to %d", ch.ng.id, ch.from, ch.to)
		}
		e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
	})
	return out, nil
}

// startClusterReplicas starts the new members of a cluster-mode group and
// forms them into its cluster as replicas of their shards' primaries; it
// returns once each has synced. Members whose node did not start are
// create-failed (markNode) and left out of the cluster.
func (e *Emulator) startClusterReplicas(ctx context.Context, r *region, g *replicationGroup, launches []nodeLaunch) error {
	err := e.startNodes(ctx, r, launches)
	if stopping(ctx) {
		return err
	}
	if ferr := e.formCluster(ctx, r, g); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if err != nil {
		e.log.Error("adding replicas to a cluster", "group", g.id, "err", err)
	}
	return err
}

// decreasePlan checks a DecreaseReplicaCount against g and returns the
// members to remove, by node group; the caller holds r.mu.
func decreasePlan(g *replicationGroup, in *elasticache.DecreaseReplicaCountInput) (map[*nodeGroup][]string, error) {
	given := 0
	for _, set := range []bool{in.NewReplicaCount != nil, len(in.ReplicasToRemove) > 0, len(in.ReplicaConfiguration) > 0} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, invalidParameterCombination("Specify only one of NewReplicaCount, ReplicasToRemove and ReplicaConfiguration.")
	}
	remove := map[*nodeGroup][]string{}
	// newest removes the replicas of ng past the first want, the newest
	// (highest numbered) first.
	newest := func(ng *nodeGroup, want int) {
		replicas := slices.DeleteFunc(slices.Clone(ng.members), func(id string) bool { return id == ng.primary })
		slices.Sort(replicas)
		remove[ng] = replicas[want:]
	}
	switch {
	case len(in.ReplicasToRemove) > 0:
		for _, id := range in.ReplicasToRemove {
			id = strings.ToLower(id)
			ng := g.nodeGroupOf(id)
			if ng == nil {
				return nil, invalidParameterValue("Cache cluster %s is not a member of replication group %s.", id, g.id)
			}
			if id == ng.primary {
				return nil, invalidParameterValue("Cache cluster %s is the primary of replication group %s and cannot be removed.", id, g.id)
			}
			if !slices.Contains(remove[ng], id) {
				remove[ng] = append(remove[ng], id)
			}
		}
	case len(in.ReplicaConfiguration) > 0:
		changes, err := shardConfigs(g, in.ReplicaConfiguration, func(ng *nodeGroup, current, want int) error {
			if want < 0 || want >= current {
				return invalidParameterValue("The new replica count (%d) of node group %s must be less than its current replica count (%d) and not negative.", want, ng.id, current)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, ch := range changes {
			newest(ch.ng, ch.to)
		}
	case in.NewReplicaCount != nil:
		want := int(*in.NewReplicaCount)
		most := 0
		for _, ng := range g.nodeGroups {
			current := len(ng.members) - 1
			most = max(most, current)
			if want < 0 || (want >= current && !g.clusterMode) {
				return nil, invalidParameterValue("The new replica count (%d) must be less than the current replica count (%d) and not negative.", want, current)
			}
			if want < current {
				newest(ng, want)
			}
		}
		if len(remove) == 0 {
			return nil, invalidParameterValue("The new replica count (%d) must be less than the current replica count (%d) and not negative.", want, most)
		}
	default:
		return nil, mustNotBeBlank("NewReplicaCount")
	}
	if !g.clusterMode {
		ng := g.nodeGroups[0]
		if left := len(ng.members) - 1 - len(remove[ng]); g.autoFailover && left < 1 {
			return nil, invalidParameterValue("Must have at least 1 replica when cluster mode is disabled with auto failover enabled.")
		}
	}
	return remove, nil
}

// DecreaseReplicaCount removes replicas online: the named ones, or the
// newest down to NewReplicaCount (in every node group, or in those
// ReplicaConfiguration names).
func (e *Emulator) DecreaseReplicaCount(ctx context.Context, in *elasticache.DecreaseReplicaCountInput) (*elasticache.DecreaseReplicaCountOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.scalableGroup(in.ReplicationGroupId, in.ApplyImmediately)
	if err != nil {
		return nil, err
	}
	remove, err := decreasePlan(g, in)
	if err != nil {
		return nil, err
	}
	type shrink struct {
		ng       *nodeGroup
		from, to int
	}
	var shrinks []shrink
	var doomed []*cacheCluster
	for _, ng := range g.nodeGroups { // in node group order, for the events
		if len(remove[ng]) == 0 {
			continue
		}
		from := len(ng.members) - 1
		shrinks = append(shrinks, shrink{ng, from, from - len(remove[ng])})
		for _, id := range remove[ng] {
			cl := r.clusters[id]
			cl.status, cl.nodes[0].status = statusDeleting, statusDeleting
			doomed = append(doomed, cl)
		}
		ng.syncEndpoints(r)
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Decreasing the number of replicas in node group %s from %d to %d", ng.id, from, from-len(remove[ng]))
	}
	g.status = statusModifying
	out := &elasticache.DecreaseReplicaCountOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opRemoveReplicas, g.id, nil, func(ctx context.Context) {
		var forget []string
		unknown := false
		if g.clusterMode {
			forget, unknown = e.clusterIDs(ctx, doomed)
		}
		for _, cl := range doomed {
			if err := e.stopNode(ctx, cl.nodes[0]); err != nil {
				e.log.Error("stopping node", "cluster", cl.id, "err", err)
			}
		}
		r.mu.Lock()
		for _, cl := range doomed {
			g.nodeGroupOf(cl.id).removeMember(cl.id)
			delete(r.clusters, cl.id)
			delete(r.tags, r.arn("cluster", cl.id))
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster deleted")
		}
		for _, s := range shrinks {
			s.ng.syncEndpoints(r)
		}
		e.unlock(r)
		if g.clusterMode {
			e.forgetRemoved(ctx, r, g, forget, unknown)
		}
		r.mu.Lock()
		defer e.unlock(r)
		e.runOperation(r, opSettle, g.id, nil, func(ctx context.Context) { e.availableWhenServing(ctx, r, g) })
		for _, s := range shrinks {
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Finished modifying number of replicas in node group %s from %d to %d", s.ng.id, s.from, s.to)
		}
	})
	return out, nil
}

// clusterIDs reads the Redis Cluster node ids of nodes about to be
// removed; unknown is set when a node did not answer (it is down).
func (e *Emulator) clusterIDs(ctx context.Context, cls []*cacheCluster) (ids []string, unknown bool) {
	for _, cl := range cls {
		id, err := e.admin.ClusterMyID(ctx, cl.nodes[0].endpoint)
		if err != nil {
			unknown = true
			continue
		}
		ids = append(ids, id)
	}
	return ids, unknown
}

// forgetRemoved makes the remaining members of g forget the removed
// nodes ids, once those are stopped (a running node would announce itself
// again). When some removed node's id could not be read, formCluster
// finds every node that is no member and forgets it. No lock is held.
func (e *Emulator) forgetRemoved(ctx context.Context, r *region, g *replicationGroup, ids []string, unknown bool) {
	if unknown {
		if err := e.formCluster(ctx, r, g); err != nil {
			e.log.Warn("re-forming the cluster after removing replicas", "group", g.id, "err", err)
		}
		return
	}
	var stay []engine.Endpoint
	for _, m := range e.clusterMembers(r, g) {
		stay = append(stay, m.ep)
	}
	_ = forEach(stay, func(ep engine.Endpoint) error {
		for _, id := range ids {
			if err := e.admin.ClusterForget(ctx, ep, id); err != nil {
				e.log.Debug("cluster forget", "node", ep.Addr(), "forget", id, "err", err)
			}
		}
		return nil
	})
}

// addReplicaCluster adds cluster id as a new replica of group gid's primary;
// the caller holds r.mu.
func (e *Emulator) addReplicaCluster(r *region, id, gid string, in *elasticache.CreateCacheClusterInput) (*elasticache.CreateCacheClusterOutput, error) {
	g, err := r.group(gid)
	if err != nil {
		return nil, err
	}
	if g.clusterMode {
		return nil, invalidParameterCombination("A cache cluster cannot be added to replication group %s: it has cluster mode enabled; use IncreaseReplicaCount.", gid)
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
