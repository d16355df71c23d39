package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// TestNodeQuota: with a quota of 3 nodes per account and region, creates
// and replica increases that would pass it answer AWS's
// NodeQuotaForCustomerExceeded and change nothing; up to the quota they
// succeed, and another region has a quota of its own.
func TestNodeQuota(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.NodeQuota = 3 })
	c := e.client
	ctx := ctxT(t, 2*time.Minute)

	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("quota-a"), ReplicationGroupDescription: aws.String("q"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		t.Fatalf("create within the quota: %v", err)
	}
	waitAvailable(t, c, "quota-a")

	// 2 + 2 > 3.
	_, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("quota-b"), ReplicationGroupDescription: aws.String("q"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	})
	expectError(t, err, "NodeQuotaForCustomerExceeded", 400)
	_, err = c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("quota-b")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)

	// Up to the quota exactly: one more replica.
	if _, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
		ReplicationGroupId: aws.String("quota-a"), NewReplicaCount: aws.Int32(2), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatalf("increase to the quota: %v", err)
	}
	waitAvailable(t, c, "quota-a")

	_, err = c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
		ReplicationGroupId: aws.String("quota-a"), NewReplicaCount: aws.Int32(3), ApplyImmediately: aws.Bool(true),
	})
	expectError(t, err, "NodeQuotaForCustomerExceeded", 400)
	if g := describeGroup(t, c, "quota-a"); len(g.MemberClusters) != 3 || aws.ToString(g.Status) != "available" {
		t.Fatalf("after a refused increase: %d members, %s", len(g.MemberClusters), aws.ToString(g.Status))
	}

	for _, in := range []*elasticache.CreateCacheClusterInput{
		{CacheClusterId: aws.String("quota-standalone"), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis")},
		{CacheClusterId: aws.String("quota-replica"), ReplicationGroupId: aws.String("quota-a")},
	} {
		_, err = c.CreateCacheCluster(ctx, in)
		expectError(t, err, "NodeQuotaForCustomerExceeded", 400)
		_, err = c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: in.CacheClusterId})
		expectError(t, err, "CacheClusterNotFound", 404)
	}

	// The quota is per region.
	west := newClient(e.url, "us-west-2")
	if _, err := west.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("quota-west"), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
	}); err != nil {
		t.Fatalf("create in another region: %v", err)
	}
	waitClusterAvailable(t, west, "quota-west")
}

// TestPerClusterNodeQuotas: the per-cluster quotas (--cluster-node-quota,
// --memcached-node-quota) refuse a cluster-mode group or a Memcached
// cluster of more nodes with NodeQuotaForClusterExceeded, creating nothing.
func TestPerClusterNodeQuotas(t *testing.T) {
	t.Parallel()
	e := startEmulatorWith(t, func(c *emulator.Config) { c.ClusterNodeQuota, c.MemcachedNodeQuota = 3, 2 })
	c := e.client
	ctx := ctxT(t, time.Minute)
	_, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("mc-quota"),
		Engine: aws.String("memcached"), CacheNodeType: aws.String("cache.t3.small"), NumCacheNodes: aws.Int32(3)})
	expectError(t, err, "NodeQuotaForClusterExceeded", 400)
	_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("cm-quota"),
		ReplicationGroupDescription: aws.String("q"), CacheNodeType: aws.String("cache.t4g.micro"),
		NumNodeGroups: aws.Int32(2), ReplicasPerNodeGroup: aws.Int32(1), CacheParameterGroupName: aws.String("default.redis7.cluster.on")})
	expectError(t, err, "NodeQuotaForClusterExceeded", 400)
	out, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{})
	if err != nil || len(out.CacheClusters) != 0 {
		t.Fatalf("after refused creates: %d clusters (%v)", len(out.CacheClusters), err)
	}
}
