package emulator

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Cluster mode enabled: a replication group that is a Redis Cluster. Its
// node groups (shards) each own hash slots and have a primary and up to
// five replicas; clients reach it through one configuration endpoint and
// follow MOVED/ASK to the nodes, which announce their host-reachable
// addresses. This file holds the model and the create request; forming the
// cluster is in cluster_form.go, resharding in resharding.go.

const (
	// maxNodeGroups is AWS's limit of shards per cluster-mode group.
	maxNodeGroups = 500
	// DefaultClusterNodeQuota is AWS's default quota of nodes per
	// cluster-mode group (NodeQuotaForClusterExceeded past it).
	DefaultClusterNodeQuota = 90
)

// configEndpoint is a cluster-mode group's configuration endpoint: a
// forwarder at an address that never changes, in front of every healthy
// node of the group. A cluster client connects there first, asks for the
// slot layout (CLUSTER SLOTS/SHARDS) and then talks to the nodes at the
// addresses they announce. It answers while any node is up.
type configEndpoint struct {
	g *replicationGroup
	// ep is nil until the create's operation (or a restore) opens it;
	// addr holds the reserved or recorded address meanwhile.
	ep   endpoint
	addr *engine.Endpoint
}

// address is where the endpoint listens, or will.
func (c *configEndpoint) address() (engine.Endpoint, bool) {
	switch {
	case c.ep != nil:
		return c.ep.Addr(), true
	case c.addr != nil:
		return *c.addr, true
	}
	return engine.Endpoint{}, false
}

// sync points the endpoint at every healthy member node; the caller holds r.mu.
func (c *configEndpoint) sync(r *region) {
	if c.ep == nil {
		return
	}
	var eps []engine.Endpoint
	for _, id := range c.g.memberClusters() {
		if cl := r.clusters[id]; cl != nil && cl.nodes[0].healthy() {
			eps = append(eps, cl.nodes[0].endpoint)
		}
	}
	c.ep.SetBackends(eps)
}

// describeCluster adds what a cluster-mode group shows on top of the
// common fields: the configuration endpoint, each node group's slots and
// the resharding progress. The caller holds r.mu.
func (g *replicationGroup) describeCluster(r *region, out *types.ReplicationGroup) {
	if a, ok := g.cfg.address(); ok {
		out.ConfigurationEndpoint = apiEndpoint(a)
	}
	for i, ng := range g.nodeGroups {
		out.NodeGroups[i].Slots = aws.String(engine.FormatSlotRanges(ng.slots))
	}
	if rs := g.resharding; rs != nil {
		out.PendingModifiedValues.Resharding = &types.ReshardingStatus{
			SlotMigration: &types.SlotMigration{ProgressPercentage: aws.Float64(rs.progress())},
		}
	}
}

// shardPlan is one node group of a cluster-mode create.
type shardPlan struct {
	id       string
	slots    []engine.SlotRange
	replicas int
	// azs are the primary's and each replica's zone; nil spreads them.
	azs []string
}

// clusterModeRequested reports whether a create asks for cluster mode:
// explicitly, with more than one node group, with slots, or with a
// cluster-enabled default parameter group.
func clusterModeRequested(in *elasticache.CreateReplicationGroupInput) bool {
	if in.ClusterMode == types.ClusterModeEnabled {
		return true
	}
	if aws.ToInt32(in.NumNodeGroups) > 1 || len(in.NodeGroupConfiguration) > 1 ||
		strings.HasSuffix(aws.ToString(in.CacheParameterGroupName), ".cluster.on") {
		return true
	}
	return slices.ContainsFunc(in.NodeGroupConfiguration, func(c types.NodeGroupConfiguration) bool { return aws.ToString(c.Slots) != "" })
}

var nodeGroupIDRE = regexp.MustCompile(`^[0-9]{1,4}$`)

// planShards validates the shard layout of a cluster-mode create and
// returns it; quota is the most nodes the group may have.
func planShards(in *elasticache.CreateReplicationGroupInput, quota int) ([]shardPlan, error) {
	switch {
	case in.ClusterMode == types.ClusterModeDisabled:
		return nil, invalidParameterCombination("ClusterMode disabled cannot be combined with more than one node group, slots or a cluster-enabled parameter group.")
	case in.ClusterMode == types.ClusterModeCompatible:
		return nil, notImplemented("ClusterMode compatible")
	case in.NumCacheClusters != nil:
		return nil, invalidParameterCombination("NumCacheClusters is not valid for a replication group with cluster mode enabled; use NumNodeGroups and ReplicasPerNodeGroup.")
	case len(in.PreferredCacheClusterAZs) > 0:
		return nil, invalidParameterCombination("PreferredCacheClusterAZs is not valid for a replication group with cluster mode enabled; use NodeGroupConfiguration.")
	case aws.ToString(in.PrimaryClusterId) != "":
		return nil, invalidParameterCombination("PrimaryClusterId is not valid for a replication group with cluster mode enabled.")
	case in.AutomaticFailoverEnabled != nil && !*in.AutomaticFailoverEnabled:
		return nil, invalidParameterCombination("AutomaticFailoverEnabled must be enabled for Redis OSS and Valkey (cluster mode enabled) replication groups.")
	}
	n := len(in.NodeGroupConfiguration)
	if in.NumNodeGroups != nil {
		if n > 0 && int(*in.NumNodeGroups) != n {
			return nil, invalidParameterCombination("NumNodeGroups (%d) and the number of NodeGroupConfiguration entries (%d) disagree.", *in.NumNodeGroups, n)
		}
		n = int(*in.NumNodeGroups)
	}
	if n == 0 {
		n = 1
	}
	if n < 1 {
		return nil, invalidParameterValue("The parameter NumNodeGroups must be at least 1.")
	}
	if n > maxNodeGroups {
		return nil, nodeGroupsPerReplicationGroupQuotaExceeded(maxNodeGroups)
	}
	replicas := 1
	if in.ReplicasPerNodeGroup != nil {
		replicas = int(*in.ReplicasPerNodeGroup)
	}
	if replicas < 0 || replicas > maxNodesPerShard-1 {
		return nil, invalidParameterValue("The parameter ReplicasPerNodeGroup must be between 0 and %d.", maxNodesPerShard-1)
	}
	even := evenSlots(n)
	shards := make([]shardPlan, n)
	seen := map[string]bool{}
	withSlots := 0
	total := 0
	for i := range shards {
		sp := shardPlan{id: nodeID(i + 1), slots: even[i], replicas: replicas}
		if i < len(in.NodeGroupConfiguration) {
			c := in.NodeGroupConfiguration[i]
			if err := applyNodeGroupConfiguration(&sp, c, in.ReplicasPerNodeGroup); err != nil {
				return nil, err
			}
			if aws.ToString(c.Slots) != "" {
				withSlots++
			}
		}
		if seen[sp.id] {
			return nil, invalidParameterValue("NodeGroupId %s is given more than once.", sp.id)
		}
		seen[sp.id] = true
		total += sp.replicas + 1
		shards[i] = sp
	}
	if withSlots != 0 && withSlots != n {
		return nil, invalidParameterValue("Slots must be given for every node group or for none.")
	}
	if withSlots == n {
		if err := checkSlotCoverage(shards); err != nil {
			return nil, err
		}
	}
	if total > quota {
		return nil, &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf(
			"The request would create %d nodes in one replication group; the quota is %d nodes per cluster.", total, quota))}
	}
	return shards, nil
}

// applyNodeGroupConfiguration takes one NodeGroupConfiguration entry into sp.
func applyNodeGroupConfiguration(sp *shardPlan, c types.NodeGroupConfiguration, replicasPerNodeGroup *int32) error {
	if aws.ToString(c.PrimaryOutpostArn) != "" || len(c.ReplicaOutpostArns) > 0 {
		return notImplemented("NodeGroupConfiguration outposts")
	}
	if id := aws.ToString(c.NodeGroupId); id != "" {
		if !nodeGroupIDRE.MatchString(id) {
			return invalidParameterValue("Invalid NodeGroupId %q: it must be 1 to 4 digits.", id)
		}
		sp.id = fmt.Sprintf("%04s", id)
	}
	if c.ReplicaCount != nil {
		if *c.ReplicaCount < 0 || *c.ReplicaCount > maxNodesPerShard-1 {
			return invalidParameterValue("The parameter ReplicaCount must be between 0 and %d.", maxNodesPerShard-1)
		}
		sp.replicas = int(*c.ReplicaCount)
	}
	if s := aws.ToString(c.Slots); s != "" {
		ranges, err := engine.ParseSlotRanges(s)
		if err != nil || len(ranges) == 0 {
			return invalidParameterValue("Invalid Slots %q for node group %s: give ranges like 0-5460, separated by commas, within 0-16383.", s, sp.id)
		}
		sp.slots = ranges
	}
	if az := aws.ToString(c.PrimaryAvailabilityZone); az != "" || len(c.ReplicaAvailabilityZones) > 0 {
		if az == "" || len(c.ReplicaAvailabilityZones) != sp.replicas {
			return invalidParameterValue("NodeGroupConfiguration for node group %s must give the primary's availability zone and one for each of its %d replicas.", sp.id, sp.replicas)
		}
		sp.azs = append([]string{az}, c.ReplicaAvailabilityZones...)
	}
	return nil
}

// checkSlotCoverage refuses slot ranges that overlap or leave a slot
// without a node group: every one of the 16384 slots has exactly one owner.
func checkSlotCoverage(shards []shardPlan) error {
	owner := make([]string, engine.ClusterSlots)
	for _, sp := range shards {
		for _, rg := range sp.slots {
			for s := rg.Start; s <= rg.End; s++ {
				if owner[s] != "" {
					return invalidParameterValue("The slots of node groups %s and %s overlap (slot %d).", owner[s], sp.id, s)
				}
				owner[s] = sp.id
			}
		}
	}
	if i := slices.Index(owner, ""); i >= 0 {
		return invalidParameterValue("The node groups' slots must cover all %d hash slots; slot %d has no node group.", engine.ClusterSlots, i)
	}
	return nil
}

// evenSlots splits the hash slots over n node groups as AWS does: equal
// contiguous ranges, the first ones one slot larger when it does not
// divide evenly (two give 0-8191 and 8192-16383).
func evenSlots(n int) [][]engine.SlotRange {
	out := make([][]engine.SlotRange, n)
	start := 0
	for i := range n {
		size := engine.ClusterSlots / n
		if i < engine.ClusterSlots%n {
			size++
		}
		out[i] = []engine.SlotRange{{Start: start, End: start + size - 1}}
		start += size
	}
	return out
}

// shardMemberID is the id of member n (1-based) of node group ng in a
// cluster-mode group: <group>-0001-001.
func shardMemberID(groupID, ngID string, n int) string {
	return fmt.Sprintf("%s-%s-%03d", groupID, ngID, n)
}

// clusterEnabled reports whether a parameter group turns cluster mode on.
func (pg *paramGroup) clusterEnabled() bool {
	return strings.HasSuffix(pg.name, ".cluster.on")
}

// resolveClusterParamGroup is resolveParamGroup for a cluster-mode group:
// the parameter group must enable cluster mode; empty means the family's
// default.<family>.cluster.on. The caller holds r.mu.
func (r *region) resolveClusterParamGroup(name *string, ev engineVersion) (string, error) {
	if aws.ToString(name) == "" {
		return "default." + ev.Family + ".cluster.on", nil
	}
	pg, ok := r.paramGroups[*name]
	if !ok {
		return "", paramGroupNotFound(*name)
	}
	if pg.family != ev.Family {
		return "", invalidParameterCombination("The parameter group %s belongs to family %s, which does not match engine %s %s (family %s).", pg.name, pg.family, ev.Engine, ev.Version, ev.Family)
	}
	if !pg.clusterEnabled() {
		return "", invalidParameterCombination("Cluster mode is enabled for this replication group, but the parameter group %s does not enable it (cluster-enabled is no); use %s.", pg.name, "default."+ev.Family+".cluster.on")
	}
	return pg.name, nil
}
