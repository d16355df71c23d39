package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// nodeMemoryScale is the emulator's documented factor between AWS's
// memory of a node type and the maxmemory its nodes get (README).
const nodeMemoryScale = 16

// awsMaxmemory is AWS's maxmemory of a few node types (the node-type
// specific parameters of the Redis OSS parameter reference).
var awsMaxmemory = map[string]int64{
	"cache.t4g.micro": 536870912,
	"cache.r7g.large": 14037181030,
	"cache.m6g.large": 6854542746,
}

// expectMaxmemory polls every member node of a group until CONFIG GET
// maxmemory answers want.
func expectMaxmemory(t testing.TB, c *elasticache.Client, group string, want int64) {
	t.Helper()
	for id, rc := range memberClients(t, c, group) {
		eventually(t, 5*time.Second, func() error {
			got, err := rc.ConfigGet(context.Background(), "maxmemory").Result()
			if err != nil || got["maxmemory"] != fmt.Sprint(want) {
				return fmt.Errorf("%s: CONFIG GET maxmemory = %v (%v), want %d", id, got, err, want)
			}
			return nil
		})
	}
}

// TestNodeTypes: every node's maxmemory follows its node type (AWS's memory
// less the default 25% reserved, scaled down), ListAllowedNodeTypeModifications
// lists the catalog's larger and smaller types, and a node type AWS does not
// have is refused with its error, creating nothing.
func TestNodeTypes(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)

	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("sized"),
		CacheNodeType: aws.String("cache.r7g.large"), NumCacheClusters: aws.Int32(2)})
	expectMaxmemory(t, c, "sized", awsMaxmemory["cache.r7g.large"]*75/100/nodeMemoryScale)
	cl := createStandalone(t, c, "tiny") // cache.t4g.micro
	got, err := cl.ConfigGet(ctx, "maxmemory").Result()
	if want := fmt.Sprint(awsMaxmemory["cache.t4g.micro"] * 75 / 100 / nodeMemoryScale); err != nil || got["maxmemory"] != want {
		t.Errorf("cache.t4g.micro maxmemory = %v (%v), want %s", got, err, want)
	}

	mods, err := c.ListAllowedNodeTypeModifications(ctx, &elasticache.ListAllowedNodeTypeModificationsInput{ReplicationGroupId: aws.String("sized")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mods.ScaleUpModifications, "cache.r7g.xlarge") || !slices.Contains(mods.ScaleDownModifications, "cache.m6g.large") ||
		slices.Contains(mods.ScaleUpModifications, "cache.r6gd.xlarge") || slices.Contains(mods.ScaleUpModifications, "cache.r8g.large") {
		t.Errorf("cache.r7g.large (Redis OSS) may scale up to %v, down to %v", mods.ScaleUpModifications, mods.ScaleDownModifications)
	}

	for _, bad := range []string{"cache.r6g.medium", "cache.nope.large", "r6g.large"} {
		_, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("badtype"),
			ReplicationGroupDescription: aws.String("d"), CacheNodeType: aws.String(bad)})
		expectError(t, err, "InvalidParameterValue", 400)
		if !strings.Contains(err.Error(), "Invalid Cache Node Type: "+bad+".") {
			t.Errorf("CreateReplicationGroup %s: %v", bad, err)
		}
		_, err = c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("badtype"), CacheNodeType: aws.String(bad), Engine: aws.String("redis")})
		expectError(t, err, "InvalidParameterValue", 400)
		_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("badtype"),
			ReplicationGroupDescription: aws.String("d"), CacheNodeType: aws.String(bad), NumNodeGroups: aws.Int32(2)})
		expectError(t, err, "InvalidParameterValue", 400)
	}
	// A Valkey-only type for Redis OSS.
	_, err = c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("badtype"), CacheNodeType: aws.String("cache.r8g.large"), Engine: aws.String("redis")})
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("badtype")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)
	_, err = c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("badtype")})
	expectError(t, err, "CacheClusterNotFound", 404)
}

// TestDataTiering: an r6gd (data tiering) node type needs
// DataTieringEnabled=true on a replication group, the flag needs such a
// node type, a standalone cluster cannot use one, and a data tiering group
// scales only to another data tiering node type, with AWS's errors and
// nothing created or changed. A group created right reports DataTiering
// enabled, and its snapshot too; its nodes hold their data in memory, with
// the node type's maxmemory.
func TestDataTiering(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	in := func(id, nodeType string, tiering *bool) *elasticache.CreateReplicationGroupInput {
		return &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("tiering"),
			CacheNodeType: aws.String(nodeType), EngineVersion: aws.String("7.1"), DataTieringEnabled: tiering}
	}
	_, err := c.CreateReplicationGroup(ctx, in("no-flag", "cache.r6gd.xlarge", nil))
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateReplicationGroup(ctx, in("wrong-type", "cache.t4g.micro", aws.Bool(true)))
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("solo"),
		CacheNodeType: aws.String("cache.r6gd.xlarge"), Engine: aws.String("redis"), EngineVersion: aws.String("7.1")})
	expectError(t, err, "InvalidParameterCombination", 400)
	if out, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{}); err != nil || len(out.ReplicationGroups) != 0 {
		t.Fatalf("groups after refused creates: %d (%v)", len(out.ReplicationGroups), err)
	}

	if _, err := c.CreateReplicationGroup(ctx, in("tiered", "cache.r6gd.xlarge", aws.Bool(true))); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "tiered")
	if g := describeGroup(t, c, "tiered"); g.DataTiering != "enabled" {
		t.Fatalf("DataTiering = %q, want enabled", g.DataTiering)
	}
	expectMaxmemory(t, c, "tiered", 28261849702*3/4/nodeMemoryScale)
	mods, err := c.ListAllowedNodeTypeModifications(ctx, &elasticache.ListAllowedNodeTypeModificationsInput{ReplicationGroupId: aws.String("tiered")})
	if err != nil {
		t.Fatal(err)
	}
	for _, nt := range append(mods.ScaleUpModifications, mods.ScaleDownModifications...) {
		if !strings.Contains(nt, ".r6gd.") {
			t.Errorf("allowed modification %s of a data tiering group", nt)
		}
	}
	_, err = c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("tiered"),
		CacheNodeType: aws.String("cache.r7g.xlarge"), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterCombination", 400)
	if g := describeGroup(t, c, "tiered"); aws.ToString(g.Status) != "available" || aws.ToString(g.CacheNodeType) != "cache.r6gd.xlarge" {
		t.Fatalf("after a refused scaling: %s %s", aws.ToString(g.Status), aws.ToString(g.CacheNodeType))
	}
	snap, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("tiered"), SnapshotName: aws.String("tiered-snap")})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Snapshot.DataTiering != "enabled" {
		t.Fatalf("snapshot DataTiering = %q, want enabled", snap.Snapshot.DataTiering)
	}
}
