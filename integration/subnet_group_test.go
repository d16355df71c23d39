package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestSubnetGroups: create, use, modify and delete a cache subnet group,
// with the AWS errors for misuse.
func TestSubnetGroups(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	out, err := c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("App-Subnets"), CacheSubnetGroupDescription: aws.String("app"),
		SubnetIds: []string{"subnet-0aaa", "subnet-0bbb"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.CacheSubnetGroup.CacheSubnetGroupName) != "app-subnets" || len(out.CacheSubnetGroup.Subnets) != 2 ||
		out.CacheSubnetGroup.Subnets[0].SubnetAvailabilityZone == nil {
		t.Fatalf("subnet group %+v", out.CacheSubnetGroup)
	}
	_, err = c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("app-subnets"), CacheSubnetGroupDescription: aws.String("again"), SubnetIds: []string{"subnet-0aaa"}})
	expectError(t, err, "CacheSubnetGroupAlreadyExists", 400)
	_, err = c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("bad"), CacheSubnetGroupDescription: aws.String("d"), SubnetIds: []string{"sg-123"}})
	expectError(t, err, "InvalidSubnet", 400)

	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("sn"), CacheSubnetGroupName: aws.String("app-subnets")})
	_, err = c.DeleteCacheSubnetGroup(ctx, &elasticache.DeleteCacheSubnetGroupInput{CacheSubnetGroupName: aws.String("app-subnets")})
	expectError(t, err, "CacheSubnetGroupInUse", 400)

	mod, err := c.ModifyCacheSubnetGroup(ctx, &elasticache.ModifyCacheSubnetGroupInput{CacheSubnetGroupName: aws.String("app-subnets"), SubnetIds: []string{"subnet-0ccc"}})
	if err != nil || len(mod.CacheSubnetGroup.Subnets) != 1 || aws.ToString(mod.CacheSubnetGroup.Subnets[0].SubnetIdentifier) != "subnet-0ccc" {
		t.Fatalf("modify %+v %v", mod, err)
	}
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("sn")}); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, c, "sn")
	if _, err := c.DeleteCacheSubnetGroup(ctx, &elasticache.DeleteCacheSubnetGroupInput{CacheSubnetGroupName: aws.String("app-subnets")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeCacheSubnetGroups(ctx, &elasticache.DescribeCacheSubnetGroupsInput{CacheSubnetGroupName: aws.String("app-subnets")})
	expectError(t, err, "CacheSubnetGroupNotFoundFault", 400) // 400 per the model's AWSQueryError trait
}
