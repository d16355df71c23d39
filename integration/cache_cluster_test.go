package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// waitClusterAvailable uses the SDK's cache-cluster-available waiter.
func waitClusterAvailable(t testing.TB, c *elasticache.Client, id string) types.CacheCluster {
	t.Helper()
	w := elasticache.NewCacheClusterAvailableWaiter(c, func(o *elasticache.CacheClusterAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	in := &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id), ShowCacheNodeInfo: aws.Bool(true)}
	out, err := w.WaitForOutput(ctxT(t, time.Minute), in, time.Minute)
	if err != nil {
		t.Fatalf("waiting for cluster %s: %v", id, err)
	}
	return out.CacheClusters[0]
}

func describeGroup(t testing.TB, c *elasticache.Client, id string) types.ReplicationGroup {
	t.Helper()
	out, err := c.DescribeReplicationGroups(ctxT(t, 10*time.Second), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return out.ReplicationGroups[0]
}

func eventMessages(t *testing.T, c *elasticache.Client, st types.SourceType, id string) string {
	t.Helper()
	out, err := c.DescribeEvents(ctxT(t, 10*time.Second), &elasticache.DescribeEventsInput{SourceType: st, SourceIdentifier: aws.String(id)})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	var msgs []string
	for _, ev := range out.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	return strings.Join(msgs, "\n")
}

// TestStandaloneCacheCluster: create, use, modify, reboot (really restarts
// the node: data without persistence is gone) and delete a single-node cluster.
func TestStandaloneCacheCluster(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("sessions"), Engine: aws.String("valkey"), CacheNodeType: aws.String("cache.t4g.micro"),
		NumCacheNodes: aws.Int32(1), Port: aws.Int32(6380),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	cl := waitClusterAvailable(t, c, "sessions")
	if aws.ToString(cl.Engine) != "valkey" || aws.ToString(cl.CacheParameterGroup.CacheParameterGroupName) != "default.valkey8" {
		t.Fatalf("engine %s, parameter group %s", aws.ToString(cl.Engine), aws.ToString(cl.CacheParameterGroup.CacheParameterGroupName))
	}
	ep := cl.CacheNodes[0].Endpoint
	if aws.ToInt32(ep.Port) != 6380 {
		t.Fatalf("port %d, want the requested 6380", aws.ToInt32(ep.Port))
	}
	rc := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
	if err := rc.Set(ctx, "s", "1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	if _, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{
		CacheClusterId: aws.String("sessions"), PreferredMaintenanceWindow: aws.String("mon:01:00-mon:02:00"), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatalf("modify: %v", err)
	}
	cl = waitClusterAvailable(t, c, "sessions")
	if aws.ToString(cl.PreferredMaintenanceWindow) != "mon:01:00-mon:02:00" {
		t.Fatalf("maintenance window %s", aws.ToString(cl.PreferredMaintenanceWindow))
	}
	_, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("sessions"), PreferredMaintenanceWindow: aws.String("someday")})
	expectError(t, err, "InvalidParameterValue", http.StatusBadRequest)

	out, err := c.RebootCacheCluster(ctx, &elasticache.RebootCacheClusterInput{CacheClusterId: aws.String("sessions"), CacheNodeIdsToReboot: []string{"0001"}})
	if err != nil {
		t.Fatalf("reboot: %v", err)
	}
	if got := aws.ToString(out.CacheCluster.CacheClusterStatus); got != "rebooting cache cluster nodes" {
		t.Fatalf("status after reboot = %q", got)
	}
	waitClusterAvailable(t, c, "sessions")
	if n, err := rc.Exists(ctx, "s").Result(); err != nil || n != 0 {
		t.Fatalf("after a reboot without persistence the key should be gone: exists=%d err=%v", n, err)
	}
	if msgs := eventMessages(t, c, types.SourceTypeCacheCluster, "sessions"); !strings.Contains(msgs, "Cache node 0001 restarted") {
		t.Fatalf("events lack the restart:\n%s", msgs)
	}

	if _, err := c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("sessions")}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	w := elasticache.NewCacheClusterDeletedWaiter(c, func(o *elasticache.CacheClusterDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("sessions")}, time.Minute); err != nil {
		t.Fatalf("waiting for delete: %v", err)
	}
}

// TestGroupMembership: adopt a standalone cluster (with its data) as the
// primary of a new group, add a replica with CreateCacheCluster, reboot a
// replica (it resyncs), remove it, and delete the group keeping the primary.
func TestGroupMembership(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("seed"), Engine: aws.String("redis"), CacheNodeType: aws.String("cache.t4g.micro"),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	seed := waitClusterAvailable(t, c, "seed")
	ep := seed.CacheNodes[0].Endpoint
	primary := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
	for i := range 100 {
		if err := primary.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("grown"), ReplicationGroupDescription: aws.String("from seed"),
		PrimaryClusterId: aws.String("seed"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		t.Fatalf("create with PrimaryClusterId: %v", err)
	}
	waitAvailable(t, c, "grown")
	g := describeGroup(t, c, "grown")
	if !slices.Equal(g.MemberClusters, []string{"grown-002", "seed"}) && !slices.Equal(g.MemberClusters, []string{"grown-001", "seed"}) {
		t.Fatalf("members %v", g.MemberClusters)
	}
	pep := g.NodeGroups[0].PrimaryEndpoint
	viaEndpoint := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	if n, err := viaEndpoint.DBSize(ctx).Result(); err != nil || n != 100 {
		t.Fatalf("the primary endpoint reaches %d keys (%v), want the adopted cluster's 100", n, err)
	}

	// Add a replica to the group.
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("grown-extra"), ReplicationGroupId: aws.String("grown"),
	}); err != nil {
		t.Fatalf("add replica: %v", err)
	}
	if got := aws.ToString(describeGroup(t, c, "grown").Status); got != "modifying" {
		t.Fatalf("group status while adding a replica = %q, want modifying", got)
	}
	extra := waitClusterAvailable(t, c, "grown-extra")
	waitAvailable(t, c, "grown")
	xep := extra.CacheNodes[0].Endpoint
	replica := redisClient(t, aws.ToString(xep.Address), aws.ToInt32(xep.Port))
	if n, err := replica.DBSize(ctx).Result(); err != nil || n != 100 {
		t.Fatalf("new replica holds %d keys (%v), want 100", n, err)
	}
	if len(describeGroup(t, c, "grown").MemberClusters) != 3 {
		t.Fatalf("members after add: %v", describeGroup(t, c, "grown").MemberClusters)
	}

	// Reboot the replica: it restarts and resyncs from the primary.
	if _, err := c.RebootCacheCluster(ctx, &elasticache.RebootCacheClusterInput{CacheClusterId: aws.String("grown-extra"), CacheNodeIdsToReboot: []string{"0001"}}); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	waitClusterAvailable(t, c, "grown-extra")
	if n, err := replica.DBSize(ctx).Result(); err != nil || n != 100 {
		t.Fatalf("rebooted replica holds %d keys (%v), want 100 after resync", n, err)
	}

	// Remove the replica again.
	if _, err := c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("grown-extra")}); err != nil {
		t.Fatalf("delete replica: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if g := describeGroup(t, c, "grown"); len(g.MemberClusters) != 2 || aws.ToString(g.Status) != "available" {
			return fmt.Errorf("group %s members %v", aws.ToString(g.Status), g.MemberClusters)
		}
		return nil
	})

	// Delete the group but keep the primary as a standalone cluster.
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("grown"), RetainPrimaryCluster: aws.Bool(true)}); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	waitDeleted(t, c, "grown")
	left := waitClusterAvailable(t, c, "seed")
	if left.ReplicationGroupId != nil {
		t.Fatalf("retained primary still names group %s", aws.ToString(left.ReplicationGroupId))
	}
	if n, err := primary.DBSize(ctx).Result(); err != nil || n != 100 {
		t.Fatalf("retained primary holds %d keys (%v), want 100", n, err)
	}
	all, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{})
	if err != nil || len(all.CacheClusters) != 1 {
		t.Fatalf("clusters after delete: %+v %v", all, err)
	}
}
