package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// TestMemcachedPendingAppliedInWindow: a node count change made without
// ApplyImmediately waits in PendingModifiedValues until the cluster's
// maintenance window comes on the emulator's clock, then the nodes are
// added and Auto Discovery lists them.
func TestMemcachedPendingAppliedInWindow(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)} // a Wednesday
	e := startEmulatorWith(t, func(c *emulator.Config) { c.Now = clock.Now })
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("mc-later"),
		Engine: aws.String("memcached"), CacheNodeType: aws.String("cache.t3.small"), NumCacheNodes: aws.Int32(1),
		PreferredMaintenanceWindow: aws.String("wed:03:00-wed:04:00")}); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitClusterAvailable(t, c, "mc-later")
	if _, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("mc-later"),
		NumCacheNodes: aws.Int32(2), ApplyImmediately: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	emu := e.srv.Emulator()
	emu.TickMaintenance(ctx) // 01:00: before the window
	cl := waitClusterAvailable(t, c, "mc-later")
	if aws.ToInt32(cl.PendingModifiedValues.NumCacheNodes) != 2 || len(cl.CacheNodes) != 1 {
		t.Fatalf("before the window: pending %v, %d nodes", cl.PendingModifiedValues.NumCacheNodes, len(cl.CacheNodes))
	}
	clock.Set(time.Date(2026, 12, 2, 3, 10, 0, 0, time.UTC))
	emu.TickMaintenance(ctx)
	if got := aws.ToString(describeMemcached(t, c, "mc-later").CacheClusterStatus); got != "modifying" {
		t.Fatalf("status %q in the window, want modifying", got)
	}
	cl = waitClusterAvailable(t, c, "mc-later")
	if cl.PendingModifiedValues.NumCacheNodes != nil || len(cl.CacheNodes) != 2 {
		t.Fatalf("after the window: pending %v, %d nodes", cl.PendingModifiedValues.NumCacheNodes, len(cl.CacheNodes))
	}
	sameNodes(t, discover(t, cl.ConfigurationEndpoint), cl)
}
