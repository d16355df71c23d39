package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestReplicaInheritsGroupSettings: a cache cluster added to a group takes
// the group's settings, so a request asking for other ones is refused
// (InvalidParameterCombination, nothing created) instead of accepted and
// ignored; the group's own values are accepted.
func TestReplicaInheritsGroupSettings(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("inherit"), ReplicationGroupDescription: aws.String("i"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(1), Port: aws.Int32(6380),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitAvailable(t, c, "inherit")
	for member, in := range map[string]*elasticache.CreateCacheClusterInput{
		"CacheNodeType":          {CacheNodeType: aws.String("cache.r7g.large")},
		"Port":                   {Port: aws.Int32(6379)},
		"EngineVersion":          {EngineVersion: aws.String("6.2")},
		"SnapshotRetentionLimit": {SnapshotRetentionLimit: aws.Int32(3)},
		"SecurityGroupIds":       {SecurityGroupIds: []string{"sg-0123"}},
	} {
		in.CacheClusterId, in.ReplicationGroupId = aws.String("inherit-x"), aws.String("inherit")
		_, err := c.CreateCacheCluster(ctx, in)
		if code, _ := apiError(t, err); code != "InvalidParameterCombination" {
			t.Fatalf("replica with another %s: %v, want InvalidParameterCombination", member, err)
		}
		_, err = c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: in.CacheClusterId})
		expectError(t, err, "CacheClusterNotFound", 404)
	}
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("inherit-r"), ReplicationGroupId: aws.String("inherit"),
		CacheNodeType: aws.String("cache.t4g.micro"), Port: aws.Int32(6380), Engine: aws.String("redis"),
	}); err != nil {
		t.Fatalf("replica with the group's settings: %v", err)
	}
	waitClusterAvailable(t, c, "inherit-r")
}
