package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/s3store/s3test"
)

// TestClusterSnapshotRestore: a snapshot of a 3-shard cluster-mode group
// has one RDB per shard, each listed with its slots, taken from the shard's
// replica; it restores into a group with the snapshot's layout (the
// default) and into one with 5 shards, every key served by the shard owning
// its slot. A final snapshot comes from the primaries. A
// cluster-mode-disabled group cannot take such a snapshot, and none is
// taken while the group reshards.
func TestClusterSnapshotRestore(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 5*time.Minute)
	const n = 50_000
	src := createClusterGroup(t, c, "csrc", 3, 1)
	cc := clusterClient(t, src)
	fillCluster(t, cc, "k", n)
	if err := cc.Set(ctx, "{tag}:ttl", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}

	out, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("csrc"), SnapshotName: aws.String("cs1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(out.Snapshot.NodeSnapshots); got != 3 {
		t.Errorf("CreateSnapshot lists %d node snapshots, want 3", got)
	}
	snap := waitSnapshot(t, c, "cs1")
	checkShardSnapshot(t, snap, src)

	// A cluster-mode-disabled group cannot hold it.
	_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("flat"), ReplicationGroupDescription: aws.String("d"), SnapshotName: aws.String("cs1"),
	})
	expectError(t, err, "InvalidParameterCombination", 400)

	// The snapshot's layout by default: same shards, same slots.
	same := restoreCluster(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("csame"), SnapshotName: aws.String("cs1")}, n+1)
	if got, want := shardSlots(same), shardSlots(src); got != want {
		t.Errorf("restored layout %s, want the snapshot's %s", got, want)
	}
	for _, ng := range same.NodeGroups {
		if len(ng.NodeGroupMembers) != 2 {
			t.Errorf("node group %s has %d members, want 2 (the snapshot's replica count)", aws.ToString(ng.NodeGroupId), len(ng.NodeGroupMembers))
		}
	}
	sameCC := clusterClient(t, same)
	checkClusterKeys(t, sameCC, "k", n)
	if ttl, err := sameCC.TTL(ctx, "{tag}:ttl").Result(); err != nil || ttl <= 0 {
		t.Errorf("TTL of {tag}:ttl after the restore = %v, %v", ttl, err)
	}

	// A final snapshot is taken from every shard's primary.
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{
		ReplicationGroupId: aws.String("csame"), FinalSnapshotIdentifier: aws.String("csame-final"),
	}); err != nil {
		t.Fatal(err)
	}
	final := waitSnapshot(t, c, "csame-final")
	if len(final.NodeSnapshots) != 3 {
		t.Fatalf("final snapshot has %d node snapshots, want 3", len(final.NodeSnapshots))
	}
	for i, ns := range final.NodeSnapshots {
		if want := fmt.Sprintf("csame-%04d-001", i+1); aws.ToString(ns.CacheClusterId) != want {
			t.Errorf("final snapshot of node group %s taken from %s, want the primary %s", aws.ToString(ns.NodeGroupId), aws.ToString(ns.CacheClusterId), want)
		}
	}
	waitDeleted(t, c, "csame")

	// Another shard count: the keys are spread by slot.
	five := restoreCluster(t, c, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("cfive"), SnapshotName: aws.String("cs1"),
		NumNodeGroups: aws.Int32(5), ReplicasPerNodeGroup: aws.Int32(0),
	}, n+1)
	if len(five.NodeGroups) != 5 {
		t.Fatalf("restored into %d node groups, want 5", len(five.NodeGroups))
	}
	fiveCC := clusterClient(t, five)
	checkClusterKeys(t, fiveCC, "k", n)
	if got := masterKeys(t, fiveCC); got != n+1 {
		t.Errorf("the 5 primaries hold %d keys, want %d", got, n+1)
	}

	// No snapshot while a resharding runs (the group is modifying); the
	// group is emptied first so that the resharding is quick.
	if err := fiveCC.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyReplicationGroupShardConfiguration(ctx, &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("cfive"), NodeGroupCount: aws.Int32(6), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("cfive"), SnapshotName: aws.String("cs-resharding")})
	expectError(t, err, "InvalidReplicationGroupState", 400)
	waitAvailable(t, c, "cfive")
}

// TestClusterSnapshotFromS3: the shards' RDBs of a snapshot, exported to a
// bucket as two objects, seed a 3-shard group through SnapshotArns.
func TestClusterSnapshotFromS3(t *testing.T) {
	t.Parallel()
	endpoint, access, secret := s3test.StartMinIO(t)
	e := startEmulatorWith(t, func(c *emulator.Config) {
		c.S3Endpoint, c.S3AccessKey, c.S3SecretKey = endpoint, access, secret
		c.SnapshotBucket = "ec-snapshots"
	})
	c := e.client
	ctx := ctxT(t, 5*time.Minute)
	const n = 20_000
	src := createClusterGroup(t, c, "s3src", 2, 0)
	fillCluster(t, clusterClient(t, src), "k", n)
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("s3src"), SnapshotName: aws.String("two")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "two")
	if _, err := c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{
		SourceSnapshotName: aws.String("two"), TargetSnapshotName: aws.String("exported"), TargetBucket: aws.String("ec-snapshots"),
	}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "two") // copying until both objects are exported
	g := restoreCluster(t, c, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("froms3"), NumNodeGroups: aws.Int32(3), ReplicasPerNodeGroup: aws.Int32(1),
		SnapshotArns: []string{"arn:aws:s3:::ec-snapshots/exported-0001.rdb", "arn:aws:s3:::ec-snapshots/exported-0002.rdb"},
	}, n)
	checkClusterKeys(t, clusterClient(t, g), "k", n)
}

// checkShardSnapshot checks the node snapshots of a cluster-mode group's
// snapshot against the group: one per shard, from its replica, with the
// shard's slots and replica count.
func checkShardSnapshot(t *testing.T, snap types.Snapshot, g types.ReplicationGroup) {
	t.Helper()
	if aws.ToInt32(snap.NumNodeGroups) != int32(len(g.NodeGroups)) || snap.AutomaticFailover != types.AutomaticFailoverStatusEnabled ||
		!strings.HasSuffix(aws.ToString(snap.CacheParameterGroupName), ".cluster.on") {
		t.Errorf("snapshot: NumNodeGroups %d, AutomaticFailover %s, parameter group %s", aws.ToInt32(snap.NumNodeGroups), snap.AutomaticFailover, aws.ToString(snap.CacheParameterGroupName))
	}
	if len(snap.NodeSnapshots) != len(g.NodeGroups) {
		t.Fatalf("%d node snapshots for %d node groups", len(snap.NodeSnapshots), len(g.NodeGroups))
	}
	for i, ns := range snap.NodeSnapshots {
		ng := g.NodeGroups[i]
		cfg := ns.NodeGroupConfiguration
		switch {
		case aws.ToString(ns.NodeGroupId) != aws.ToString(ng.NodeGroupId):
			t.Errorf("node snapshot %d is of node group %s, want %s", i, aws.ToString(ns.NodeGroupId), aws.ToString(ng.NodeGroupId))
		case aws.ToString(ns.CacheClusterId) != fmt.Sprintf("%s-%s-002", aws.ToString(g.ReplicationGroupId), aws.ToString(ng.NodeGroupId)):
			t.Errorf("node group %s was backed up from %s, want its replica", aws.ToString(ng.NodeGroupId), aws.ToString(ns.CacheClusterId))
		case aws.ToString(ns.CacheNodeId) != "0001" || aws.ToString(ns.CacheSize) == "" || ns.SnapshotCreateTime == nil:
			t.Errorf("node snapshot %d: node %q size %q created %v", i, aws.ToString(ns.CacheNodeId), aws.ToString(ns.CacheSize), ns.SnapshotCreateTime)
		case cfg == nil || aws.ToString(cfg.Slots) != aws.ToString(ng.Slots) || aws.ToInt32(cfg.ReplicaCount) != int32(len(ng.NodeGroupMembers)-1) ||
			aws.ToString(cfg.PrimaryAvailabilityZone) == "":
			t.Errorf("node snapshot %d configuration %+v, want slots %s", i, cfg, aws.ToString(ng.Slots))
		}
	}
}

// restoreCluster creates a cluster-mode group from a snapshot or RDB
// objects, waits until it is available, and logs how long the restore of
// keys took: all of it, and the load of the data alone (between the
// restore's two events).
func restoreCluster(t *testing.T, c *elasticache.Client, in *elasticache.CreateReplicationGroupInput, keys int) types.ReplicationGroup {
	t.Helper()
	id := aws.ToString(in.ReplicationGroupId)
	in.ReplicationGroupDescription = aws.String("restored")
	in.ClusterMode = types.ClusterModeEnabled
	if in.SnapshotName == nil {
		in.CacheNodeType, in.Engine = aws.String("cache.t3.micro"), aws.String("redis")
	}
	began := time.Now()
	if _, err := c.CreateReplicationGroup(ctxT(t, 10*time.Second), in); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	waitAvailable(t, c, id)
	took := time.Since(began)
	load := restoreLoadTime(t, c, id)
	t.Logf("%s: %d keys restored in %v (create to available), loaded in %v (%.0f keys/s)", id, keys, took.Round(time.Millisecond),
		load.Round(time.Millisecond), float64(keys)/load.Seconds())
	g := describeGroup(t, c, id)
	if !aws.ToBool(g.ClusterEnabled) {
		t.Fatalf("%s is not cluster-mode enabled", id)
	}
	return g
}

// restoreLoadTime is the time between the events that open and close the
// data load of a restore.
func restoreLoadTime(t *testing.T, c *elasticache.Client, id string) time.Duration {
	t.Helper()
	out, err := c.DescribeEvents(ctxT(t, 5*time.Second), &elasticache.DescribeEventsInput{
		SourceIdentifier: aws.String(id), SourceType: types.SourceTypeReplicationGroup,
	})
	if err != nil {
		t.Fatal(err)
	}
	var from, to time.Time
	for _, ev := range out.Events {
		switch msg := aws.ToString(ev.Message); {
		case strings.HasPrefix(msg, "Restoring replication group"):
			from = aws.ToTime(ev.Date)
		case strings.HasPrefix(msg, "Restored "):
			to = aws.ToTime(ev.Date)
		}
	}
	if from.IsZero() || to.IsZero() {
		t.Fatalf("events of %s lack the restore's start or end: %+v", id, out.Events)
	}
	return to.Sub(from)
}

// shardSlots renders the layout of a group: node group ids and slots.
func shardSlots(g types.ReplicationGroup) string {
	var parts []string
	for _, ng := range g.NodeGroups {
		parts = append(parts, fmt.Sprintf("%s:%s", aws.ToString(ng.NodeGroupId), aws.ToString(ng.Slots)))
	}
	return strings.Join(parts, " ")
}

// masterKeys is the number of keys on the primaries of the cluster.
func masterKeys(t *testing.T, cc *redis.ClusterClient) int {
	t.Helper()
	var mu sync.Mutex
	total := 0
	err := cc.ForEachMaster(ctxT(t, 10*time.Second), func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		defer mu.Unlock()
		total += int(n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}
