package emulator

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Snapshots with several node groups (cluster mode enabled): one RDB per
// shard, each taken from a node of that shard, and the shard's layout kept
// with it so DescribeSnapshots shows it and a restore can rebuild it.

// clusterSnapshotSource fills s from the cluster-mode group g and returns
// the cluster to back up for each node group: a healthy replica (the one
// SnapshottingClusterId names when it is in that shard, else the last one)
// to spare the primary, else the primary. preferReplica false takes the
// primaries (a final snapshot: the freshest data). The caller holds r.mu.
func (r *region) clusterSnapshotSource(s *snapshot, g *replicationGroup, preferReplica bool) []*cacheCluster {
	s.GroupID, s.GroupDesc, s.ClusterMode = g.id, g.description, true
	s.Engine, s.NodeType, s.ParamGroup, s.Port, s.AutoFailover = g.engine, g.nodeType, g.paramGroup, g.port, g.autoFailover
	s.Encrypted, s.KmsKeyID = g.settings.atRestEncryption, g.kmsKeyID
	s.Settings = snapshotWindow{g.settings.maintenanceWindow, g.settings.snapshotWindow, g.settings.snapshotRetention}
	s.SourceCreate = g.created
	s.SubnetGroup = r.clusters[g.nodeGroups[0].primary].subnetGroup
	s.NumNodes = len(g.memberClusters())
	var srcs []*cacheCluster
	for _, ng := range g.nodeGroups {
		cl := r.clusters[ng.primary]
		if preferReplica {
			if chosen := r.clusters[g.snapshotting]; chosen != nil && g.nodeGroupOf(chosen.id) == ng && chosen.nodes[0].healthy() {
				cl = chosen
			} else if reps := ng.healthyReplicas(r); len(reps) > 0 {
				cl = reps[len(reps)-1]
			}
		}
		sh := snapshotShard{
			ClusterID: cl.id, NodeGroupID: ng.id, NodeID: cl.nodes[0].id,
			Slots: engine.FormatSlotRanges(ng.slots), ReplicaCount: len(ng.members) - 1,
		}
		for _, m := range ng.members {
			az := ""
			if c := r.clusters[m]; c != nil {
				az = c.nodes[0].az
			}
			if m == ng.primary {
				sh.PrimaryAZ = az
			} else {
				sh.ReplicaAZs = append(sh.ReplicaAZs, az)
			}
		}
		s.Nodes = append(s.Nodes, sh)
		srcs = append(srcs, cl)
	}
	return srcs
}

// nodeGroupConfiguration is what DescribeSnapshots shows of node group n
// with ShowNodeGroupConfig: its slots, replica count and zones when the
// snapshot has several shards, else the one node group with every slot.
func (s *snapshot) nodeGroupConfiguration(n snapshotShard) *types.NodeGroupConfiguration {
	if !s.ClusterMode {
		return &types.NodeGroupConfiguration{
			NodeGroupId: aws.String(n.NodeGroupID), ReplicaCount: aws.Int32(int32(max(0, s.NumNodes-1))),
			Slots: aws.String("0-16383"),
		}
	}
	out := &types.NodeGroupConfiguration{
		NodeGroupId: aws.String(n.NodeGroupID), Slots: aws.String(n.Slots), ReplicaCount: aws.Int32(int32(n.ReplicaCount)),
		ReplicaAvailabilityZones: append([]string{}, n.ReplicaAZs...),
	}
	if n.PrimaryAZ != "" {
		out.PrimaryAvailabilityZone = aws.String(n.PrimaryAZ)
	}
	return out
}

// backupShards takes the RDB of every node group of job at once (each on
// its own node), filling sizes and created per shard, and returns the
// failures joined, each naming its node group when there are several.
func (e *Emulator) backupShards(ctx context.Context, job snapshotJob, sizes []int64, created []time.Time) error {
	s := job.s
	idx := make([]int, len(job.shards))
	for i := range idx {
		idx[i] = i
	}
	return forEach(idx, func(i int) error {
		sh := job.shards[i]
		var err error
		if sh.primary != nil {
			err = e.admin.CatchUp(ctx, *sh.primary, sh.node.endpoint)
		}
		if err == nil {
			sizes[i], err = e.saveRDB(ctx, sh.node, s.Nodes[i].Key, s)
		}
		created[i] = e.opts.Now().UTC()
		if err != nil && len(job.shards) > 1 {
			err = fmt.Errorf("node group %s: %w", s.Nodes[i].NodeGroupID, err)
		}
		return err
	})
}
