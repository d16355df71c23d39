package emulator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// Online resharding of a cluster-mode group (ModifyReplicationGroupShardConfiguration):
// scale out (new node groups take slots), scale in (removed node groups give
// theirs away) and rebalance (same count, even slots). Slots move live with
// Redis Cluster's own protocol (engine.Admin.MoveSlot), so clients keep
// working throughout; the layout reached is committed to the node groups'
// slots as moves finish (reshard_run.go), so a resharding cut off by a
// restart moves only what is left.

// resharding is the plan of a resharding in progress.
type resharding struct {
	// target is the slots each node group ends with (none for a node
	// group being removed), by node group id.
	target map[string][]engine.SlotRange
	remove []string
	// keys and moved count the keys to move and those moved.
	keys, moved int64
	from        int
}

// progress is the percentage AWS shows in
// PendingModifiedValues.Resharding.SlotMigration.ProgressPercentage.
func (rs *resharding) progress() float64 {
	if rs.keys <= 0 {
		return 0
	}
	return min(100, 100*float64(rs.moved)/float64(rs.keys))
}

func (rs *resharding) record() *state.Resharding {
	if rs == nil {
		return nil
	}
	out := &state.Resharding{Target: map[string]string{}, Remove: slices.Clone(rs.remove), Keys: rs.keys, Moved: rs.moved, From: rs.from}
	for id, slots := range rs.target {
		out.Target[id] = engine.FormatSlotRanges(slots)
	}
	return out
}

func reshardingFromRecord(rec *state.Resharding) *resharding {
	if rec == nil {
		return nil
	}
	rs := &resharding{target: map[string][]engine.SlotRange{}, remove: rec.Remove, keys: rec.Keys, moved: rec.Moved, from: rec.From}
	for id, s := range rec.Target {
		rs.target[id], _ = engine.ParseSlotRanges(s)
	}
	return rs
}

// ModifyReplicationGroupShardConfiguration reshards a cluster-mode group
// online. It answers "modifying" at once; the group is available again
// once every slot is where the new layout puts it.
func (e *Emulator) ModifyReplicationGroupShardConfiguration(ctx context.Context, in *elasticache.ModifyReplicationGroupShardConfigurationInput) (*elasticache.ModifyReplicationGroupShardConfigurationOutput, error) {
	id, err := lookupID("ReplicationGroupId", in.ReplicationGroupId)
	if err != nil {
		return nil, err
	}
	if in.NodeGroupCount == nil {
		return nil, mustNotBeBlank("NodeGroupCount")
	}
	if in.ApplyImmediately == nil || !*in.ApplyImmediately {
		return nil, invalidParameterValue("ApplyImmediately must be true: a resharding cannot wait for the maintenance window.")
	}
	count := int(*in.NodeGroupCount)
	if count < 1 {
		return nil, invalidParameterValue("The parameter NodeGroupCount must be at least 1.")
	}
	if count > maxNodeGroups {
		return nil, nodeGroupsPerReplicationGroupQuotaExceeded(maxNodeGroups)
	}
	if len(in.NodeGroupsToRemove) > 0 && len(in.NodeGroupsToRetain) > 0 {
		return nil, invalidParameterCombination("Specify either NodeGroupsToRemove or NodeGroupsToRetain, not both.")
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.group(id)
	if err != nil {
		return nil, err
	}
	if !g.clusterMode {
		return nil, invalidParameterCombination("Replication group %s does not have cluster mode enabled: its node group count cannot be modified.", id)
	}
	if g.status != statusAvailable {
		return nil, invalidGroupState("Replication group %s is not in available state (it is %s).", id, g.status)
	}
	plan, err := e.planResharding(r, g, count, in)
	if err != nil {
		return nil, err
	}
	// Validation is over: apply.
	newNodes, err := e.addNodeGroups(r, g, plan.add, plan.azs)
	if err != nil {
		return nil, err
	}
	g.resharding = plan.rs
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Modifying number of node groups (shards) of replication group %s from %d to %d", g.id, plan.rs.from, count)
	var launches []nodeLaunch
	for _, cl := range newNodes {
		launches = append(launches, e.launchFor(r, cl, cl.nodes[0], nil))
	}
	out := &elasticache.ModifyReplicationGroupShardConfigurationOutput{ReplicationGroup: ptr(g.describe(r))}
	e.runOperation(r, opReshard, g.id, nil, func(ctx context.Context) { e.reshard(ctx, r, g, launches) })
	return out, nil
}

// reshardPlan is a validated resharding request.
type reshardPlan struct {
	rs *resharding
	// add are the ids of the new node groups, azs their zones by id.
	add []string
	azs map[string][]string
}

// planResharding checks the request against g and computes the layout it
// leads to; the caller holds r.mu.
func (e *Emulator) planResharding(r *region, g *replicationGroup, count int, in *elasticache.ModifyReplicationGroupShardConfigurationInput) (reshardPlan, error) {
	n := len(g.nodeGroups)
	have := map[string]*nodeGroup{}
	for _, ng := range g.nodeGroups {
		have[ng.id] = ng
	}
	norm := func(id string) string { return fmt.Sprintf("%04s", id) }
	plan := reshardPlan{rs: &resharding{from: n}, azs: map[string][]string{}}
	var keep []string
	switch {
	case count < n:
		var remove []string
		switch {
		case len(in.NodeGroupsToRemove) > 0:
			for _, id := range in.NodeGroupsToRemove {
				remove = append(remove, norm(id))
			}
		case len(in.NodeGroupsToRetain) > 0:
			retain := map[string]bool{}
			for _, id := range in.NodeGroupsToRetain {
				if have[norm(id)] == nil {
					return plan, nodeGroupNotFound(id, g.id)
				}
				retain[norm(id)] = true
			}
			for _, ng := range g.nodeGroups {
				if !retain[ng.id] {
					remove = append(remove, ng.id)
				}
			}
		default:
			return plan, invalidParameterValue("Scaling in from %d to %d node groups needs NodeGroupsToRemove or NodeGroupsToRetain.", n, count)
		}
		slices.Sort(remove)
		remove = slices.Compact(remove)
		for _, id := range remove {
			if have[id] == nil {
				return plan, nodeGroupNotFound(id, g.id)
			}
		}
		if n-len(remove) != count {
			return plan, invalidParameterValue("Removing %d of %d node groups does not leave NodeGroupCount (%d).", len(remove), n, count)
		}
		plan.rs.remove = remove
		for _, ng := range g.nodeGroups {
			if !slices.Contains(remove, ng.id) {
				keep = append(keep, ng.id)
			}
		}
	case len(in.NodeGroupsToRemove) > 0 || len(in.NodeGroupsToRetain) > 0:
		return plan, invalidParameterCombination("NodeGroupsToRemove and NodeGroupsToRetain are only valid when NodeGroupCount is less than the current number of node groups (%d).", n)
	default:
		for _, ng := range g.nodeGroups {
			keep = append(keep, ng.id)
		}
	}
	// New node groups: the ids ReshardingConfiguration names that do not
	// exist yet, then the next free numbers; their zones as given.
	for _, rc := range in.ReshardingConfiguration {
		id := aws.ToString(rc.NodeGroupId)
		if id != "" && !nodeGroupIDRE.MatchString(id) {
			return plan, invalidParameterValue("Invalid NodeGroupId %q in ReshardingConfiguration: it must be 1 to 4 digits.", id)
		}
		if id != "" {
			plan.azs[norm(id)] = rc.PreferredAvailabilityZones
		}
	}
	for _, rc := range in.ReshardingConfiguration {
		if id := norm(aws.ToString(rc.NodeGroupId)); aws.ToString(rc.NodeGroupId) != "" && have[id] == nil && len(keep)+len(plan.add) < count && !slices.Contains(plan.add, id) {
			plan.add = append(plan.add, id)
		}
	}
	for next := 1; len(keep)+len(plan.add) < count; next++ {
		if id := nodeID(next); have[id] == nil && !slices.Contains(plan.add, id) {
			plan.add = append(plan.add, id)
		}
	}
	final := append(slices.Clone(keep), plan.add...)
	replicas := maxNodesPerShard
	for _, ng := range g.nodeGroups {
		replicas = min(replicas, len(ng.members)-1)
	}
	nodes := 0
	for _, id := range keep {
		nodes += len(have[id].members)
	}
	nodes += len(plan.add) * (replicas + 1)
	if nodes > e.opts.ClusterNodeQuota {
		return plan, &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf(
			"The request would give replication group %s %d nodes; the quota is %d nodes per cluster.", g.id, nodes, e.opts.ClusterNodeQuota))}
	}
	if err := e.checkNodeQuota(r, len(plan.add)*(replicas+1)); err != nil {
		return plan, err
	}
	current := map[string][]engine.SlotRange{}
	for _, ng := range g.nodeGroups {
		current[ng.id] = ng.slots
	}
	if count == n && balanced(current, final) {
		return plan, invalidGroupState("The slots of replication group %s are already evenly distributed over its %d node groups: nothing to rebalance.", g.id, n)
	}
	plan.rs.target = targetLayout(current, final)
	return plan, nil
}

// balanced reports whether the node groups in ids hold all slots between
// them, each within one slot of an even share.
func balanced(current map[string][]engine.SlotRange, ids []string) bool {
	share := engine.ClusterSlots / len(ids)
	total := 0
	for _, id := range ids {
		c := engine.SlotCount(current[id])
		if c < share || c > share+1 {
			return false
		}
		total += c
	}
	return total == engine.ClusterSlots
}

// targetLayout spreads the slots evenly over the node groups in final,
// moving as few as possible: each keeps what it has up to its share (its
// lowest slots), and the rest (the excess and the slots of node groups
// not in final) fills the node groups below their share, in order.
func targetLayout(current map[string][]engine.SlotRange, final []string) map[string][]engine.SlotRange {
	owner := make([]string, engine.ClusterSlots)
	for id, ranges := range current {
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				owner[s] = id
			}
		}
	}
	// Shares: the node groups holding the most slots get the remainder.
	byHeld := slices.Clone(final)
	slices.SortStableFunc(byHeld, func(a, b string) int { return engine.SlotCount(current[b]) - engine.SlotCount(current[a]) })
	share := map[string]int{}
	for i, id := range byHeld {
		share[id] = engine.ClusterSlots / len(final)
		if i < engine.ClusterSlots%len(final) {
			share[id]++
		}
	}
	kept := map[string]int{}
	var pool []int
	for s, id := range owner {
		if _, in := share[id]; in && kept[id] < share[id] {
			kept[id]++
			continue
		}
		pool = append(pool, s)
		owner[s] = ""
	}
	for _, id := range final {
		for kept[id] < share[id] && len(pool) > 0 {
			owner[pool[0]] = id
			pool = pool[1:]
			kept[id]++
		}
	}
	out := map[string][]engine.SlotRange{}
	for s, id := range owner {
		rs := out[id]
		if n := len(rs); n > 0 && rs[n-1].End == s-1 {
			rs[n-1].End = s
		} else {
			rs = append(rs, engine.SlotRange{Start: s, End: s})
		}
		out[id] = rs
	}
	for id := range current {
		if _, ok := out[id]; !ok {
			out[id] = nil // removed: ends with no slots
		}
	}
	return out
}

// addNodeGroups creates the members of new node groups (not started);
// each has as many replicas as the smallest node group, as on AWS. The
// caller holds r.mu.
func (e *Emulator) addNodeGroups(r *region, g *replicationGroup, ids []string, azs map[string][]string) ([]*cacheCluster, error) {
	replicas := maxNodesPerShard
	for _, ng := range g.nodeGroups {
		replicas = min(replicas, len(ng.members)-1)
	}
	ref := r.clusters[g.nodeGroups[0].primary]
	var created []*cacheCluster
	var groups []*nodeGroup
	for gi, id := range ids {
		ng := &nodeGroup{id: id, cfg: g.cfg}
		for n := 1; n <= replicas+1; n++ {
			mid := shardMemberID(g.id, id, n)
			if _, taken := r.clusters[mid]; taken {
				e.releaseNodes(created)
				return nil, cacheClusterAlreadyExists(mid)
			}
			az := availabilityZones(r.region)[(gi+n)%3]
			if z := azs[id]; len(z) >= n && z[n-1] != "" {
				az = z[n-1]
			}
			cl, err := e.newCluster(r, mid, g.id, g.engine, g.port, az)
			if err != nil {
				e.releaseNodes(created)
				return nil, err
			}
			cl.nodeType, cl.paramGroup, cl.settings = g.nodeType, g.paramGroup, ref.settings
			cl.subnetGroup, cl.securityIDs = ref.subnetGroup, slices.Clone(ref.securityIDs)
			created = append(created, cl)
			ng.members = append(ng.members, mid)
		}
		ng.primary = ng.members[0]
		groups = append(groups, ng)
	}
	for _, cl := range created {
		r.clusters[cl.id] = cl
	}
	g.nodeGroups = append(g.nodeGroups, groups...)
	return created, nil
}

// releaseNodes gives back the addresses of clusters never installed.
func (e *Emulator) releaseNodes(cls []*cacheCluster) {
	for _, cl := range cls {
		e.opts.Addresses.Release(cl.nodes[0].endpoint)
	}
}

// reshardingEvent words the end of a resharding.
func reshardingEvent(g *replicationGroup, from int, failure error) string {
	if failure != nil {
		return fmt.Sprintf("Failed to modify number of node groups (shards) of replication group %s: %s", g.id, strings.TrimSuffix(failure.Error(), "."))
	}
	return fmt.Sprintf("Finished modifying number of node groups (shards) of replication group %s from %d to %d", g.id, from, len(g.nodeGroups))
}
