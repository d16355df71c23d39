package integration

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestTerraformProviderCalls sends the calls the Terraform AWS provider
// (5.x) makes for the README's configuration, with the members it sets, in
// its order: parameter group, subnet group, replication group (create, wait,
// read back the group, its first member with node info and its tags), an
// update of the description and the replica count, a tag change, and the
// destroy with its wait for ReplicationGroupNotFoundFault. Terraform itself
// cannot be installed on the project's machines, so this is what checks the
// README's configuration.
func TestTerraformProviderCalls(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	managed := aws.String("Managed by Terraform") // the provider's default description
	tags := []types.Tag{{Key: aws.String("env"), Value: aws.String("local")}}

	// aws_elasticache_parameter_group: create, then its parameters in a
	// modify, then read back the user-set ones.
	pg, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("cache-params"), CacheParameterGroupFamily: aws.String("redis7"),
		Description: managed, Tags: tags,
	})
	if err != nil {
		t.Fatalf("CreateCacheParameterGroup: %v", err)
	}
	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("cache-params"),
		ParameterNameValues:     []types.ParameterNameValue{{ParameterName: aws.String("maxmemory-policy"), ParameterValue: aws.String("allkeys-lru")}},
	}); err != nil {
		t.Fatalf("ModifyCacheParameterGroup: %v", err)
	}
	params, err := c.DescribeCacheParameters(ctx, &elasticache.DescribeCacheParametersInput{
		CacheParameterGroupName: aws.String("cache-params"), Source: aws.String("user"),
	})
	if err != nil || len(params.Parameters) != 1 || aws.ToString(params.Parameters[0].ParameterValue) != "allkeys-lru" {
		t.Fatalf("DescribeCacheParameters Source=user = %+v, %v", params, err)
	}
	if _, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: pg.CacheParameterGroup.ARN}); err != nil {
		t.Fatalf("ListTagsForResource of the parameter group: %v", err)
	}

	// aws_elasticache_subnet_group.
	sg, err := c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("cache-subnets"), CacheSubnetGroupDescription: managed,
		SubnetIds: []string{"subnet-0123456789abcdef0"}, Tags: tags,
	})
	if err != nil {
		t.Fatalf("CreateCacheSubnetGroup: %v", err)
	}
	if _, err := c.DescribeCacheSubnetGroups(ctx, &elasticache.DescribeCacheSubnetGroupsInput{CacheSubnetGroupName: aws.String("cache-subnets")}); err != nil {
		t.Fatalf("DescribeCacheSubnetGroups: %v", err)
	}
	if _, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: sg.CacheSubnetGroup.ARN}); err != nil {
		t.Fatalf("ListTagsForResource of the subnet group: %v", err)
	}

	// aws_elasticache_replication_group: the create the provider sends for
	// the README's resource (it sets these members whether or not the
	// configuration names them), then its wait and its read.
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("cache"), ReplicationGroupDescription: aws.String("cache"),
		AutoMinorVersionUpgrade: aws.Bool(true), CacheNodeType: aws.String("cache.t4g.micro"),
		Engine: aws.String("redis"), EngineVersion: aws.String("7.1"), Port: aws.Int32(6379),
		CacheParameterGroupName: aws.String("cache-params"), CacheSubnetGroupName: aws.String("cache-subnets"),
		AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(false), NumCacheClusters: aws.Int32(2),
		TransitEncryptionEnabled: aws.Bool(false), AtRestEncryptionEnabled: aws.Bool(false),
		SnapshotRetentionLimit: aws.Int32(0), Tags: tags,
	}); err != nil {
		t.Fatalf("CreateReplicationGroup: %v", err)
	}
	waitAvailable(t, c, "cache")
	g := describeGroup(t, c, "cache")
	ng := g.NodeGroups[0]
	if ng.PrimaryEndpoint == nil || ng.ReaderEndpoint == nil || aws.ToInt32(ng.PrimaryEndpoint.Port) != 6379 ||
		g.AutomaticFailover != types.AutomaticFailoverStatusEnabled || len(g.MemberClusters) != 2 {
		t.Fatalf("the group as the provider reads it: %+v", g)
	}
	first, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{
		CacheClusterId: aws.String(g.MemberClusters[0]), ShowCacheNodeInfo: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("DescribeCacheClusters of the first member: %v", err)
	}
	cl := first.CacheClusters[0]
	if v := aws.ToString(cl.EngineVersion); v != "7.1.0" || aws.ToString(cl.CacheParameterGroup.CacheParameterGroupName) != "cache-params" ||
		aws.ToString(cl.CacheSubnetGroupName) != "cache-subnets" || len(cl.CacheNodes) != 1 {
		t.Fatalf("the first member as the provider reads it (engine_version_actual, parameter and subnet group, nodes): %+v", cl)
	}
	listed, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: g.ARN})
	if err != nil || len(listed.TagList) != 1 || aws.ToString(listed.TagList[0].Key) != "env" {
		t.Fatalf("ListTagsForResource of the group = %+v, %v", listed, err)
	}

	// An apply that changes the description, then num_cache_clusters 2 → 3,
	// then the tags.
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("cache"), ApplyImmediately: aws.Bool(true),
		ReplicationGroupDescription: aws.String("cache, changed"),
	}); err != nil {
		t.Fatalf("ModifyReplicationGroup (description): %v", err)
	}
	waitAvailable(t, c, "cache")
	if _, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
		ReplicationGroupId: aws.String("cache"), ApplyImmediately: aws.Bool(true), NewReplicaCount: aws.Int32(2),
	}); err != nil {
		t.Fatalf("IncreaseReplicaCount: %v", err)
	}
	waitAvailable(t, c, "cache")
	if g := describeGroup(t, c, "cache"); len(g.MemberClusters) != 3 || aws.ToString(g.Description) != "cache, changed" {
		t.Fatalf("after the apply: %d members, description %q", len(g.MemberClusters), aws.ToString(g.Description))
	}
	if _, err := c.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{ResourceName: g.ARN,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("cache")}}}); err != nil {
		t.Fatalf("AddTagsToResource: %v", err)
	}
	if _, err := c.RemoveTagsFromResource(ctx, &elasticache.RemoveTagsFromResourceInput{ResourceName: g.ARN, TagKeys: []string{"env"}}); err != nil {
		t.Fatalf("RemoveTagsFromResource: %v", err)
	}

	// destroy: the group (waiting until it is not found), then the subnet
	// and parameter groups it used.
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("cache")}); err != nil {
		t.Fatalf("DeleteReplicationGroup: %v", err)
	}
	waitDeleted(t, c, "cache")
	_, err = c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("cache")})
	var nf *types.ReplicationGroupNotFoundFault
	if !errors.As(err, &nf) {
		t.Fatalf("describe after the delete: %v, want ReplicationGroupNotFoundFault", err)
	}
	if _, err := c.DeleteCacheSubnetGroup(ctx, &elasticache.DeleteCacheSubnetGroupInput{CacheSubnetGroupName: aws.String("cache-subnets")}); err != nil {
		t.Fatalf("DeleteCacheSubnetGroup: %v", err)
	}
	if _, err := c.DeleteCacheParameterGroup(ctx, &elasticache.DeleteCacheParameterGroupInput{CacheParameterGroupName: aws.String("cache-params")}); err != nil {
		t.Fatalf("DeleteCacheParameterGroup: %v", err)
	}
}
