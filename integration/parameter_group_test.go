package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestParameterGroups: the calls Terraform's aws_elasticache_parameter_group
// makes, and the values reaching the nodes for real (CONFIG GET).
func TestParameterGroups(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("app"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("app params"),
	}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("app"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("again")})
	expectError(t, err, "CacheParameterGroupAlreadyExists", 400)
	_, err = c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("bad"), CacheParameterGroupFamily: aws.String("redis99"), Description: aws.String("d")})
	expectError(t, err, "InvalidParameterValue", 400)

	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("app"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("maxmemory-policy"), ParameterValue: aws.String("allkeys-lru")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("app"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("maxmemory-policy"), ParameterValue: aws.String("sometimes")}}})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("default.redis7"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("timeout"), ParameterValue: aws.String("30")}}})
	expectError(t, err, "InvalidParameterValue", 400)

	user, err := c.DescribeCacheParameters(ctx, &elasticache.DescribeCacheParametersInput{CacheParameterGroupName: aws.String("app"), Source: aws.String("user")})
	if err != nil || len(user.Parameters) != 1 || aws.ToString(user.Parameters[0].ParameterValue) != "allkeys-lru" {
		t.Fatalf("user parameters %+v %v", user, err)
	}

	// A group using it starts its nodes with the value; a change reaches them.
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("pg"), CacheParameterGroupName: aws.String("app"), NumCacheClusters: aws.Int32(2)})
	p := primaryClient(t, c, "pg")
	configIs := func(name, want string) {
		t.Helper()
		eventually(t, 5*time.Second, func() error {
			got, err := p.ConfigGet(context.Background(), name).Result()
			if err != nil || got[name] != want {
				return fmt.Errorf("CONFIG GET %s = %v (%v), want %q", name, got, err, want)
			}
			return nil
		})
	}
	configIs("maxmemory-policy", "allkeys-lru")
	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("app"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("notify-keyspace-events"), ParameterValue: aws.String("Ex")}}}); err != nil {
		t.Fatal(err)
	}
	configIs("notify-keyspace-events", "xE")
	if _, err := c.ResetCacheParameterGroup(ctx, &elasticache.ResetCacheParameterGroupInput{CacheParameterGroupName: aws.String("app"), ResetAllParameters: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	configIs("maxmemory-policy", "volatile-lru")

	_, err = c.DeleteCacheParameterGroup(ctx, &elasticache.DeleteCacheParameterGroupInput{CacheParameterGroupName: aws.String("app")})
	expectError(t, err, "InvalidCacheParameterGroupState", 400)
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("pg")}); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, c, "pg")
	if _, err := c.DeleteCacheParameterGroup(ctx, &elasticache.DeleteCacheParameterGroupInput{CacheParameterGroupName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeCacheParameterGroups(ctx, &elasticache.DescribeCacheParameterGroupsInput{CacheParameterGroupName: aws.String("app")})
	expectError(t, err, "CacheParameterGroupNotFound", 404)
	defs, err := c.DescribeEngineDefaultParameters(ctx, &elasticache.DescribeEngineDefaultParametersInput{CacheParameterGroupFamily: aws.String("valkey8")})
	if err != nil || len(defs.EngineDefaults.Parameters) == 0 {
		t.Fatalf("engine defaults %+v %v", defs, err)
	}
}
