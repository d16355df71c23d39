package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// BenchmarkRollingReplacement measures the write outage a client writing
// through the primary endpoint sees while a 3-node group's node type
// changes (every node replaced, the primary role handed over with a
// planned failover), and while a standalone cluster's node is replaced in
// place. The baseline, in the same run and on the same group, is a planned
// failover alone (ModifyReplicationGroup PrimaryClusterId): the part of a
// rolling replacement clients cannot avoid. Acknowledged writes lost are
// counted (there must be none).
func BenchmarkRollingReplacement(b *testing.B) {
	e := startEmulator(b)
	c := e.client
	ctx := context.Background()
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("bench-roll"), ReplicationGroupDescription: aws.String("bench"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("bench-solo"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheNodes: aws.Int32(1)}); err != nil {
		b.Fatal(err)
	}
	waitAvailable(b, c, "bench-roll")
	solo := waitClusterAvailable(b, c, "bench-solo").CacheNodes[0].Endpoint
	g := describeGroupB(b, c, "bench-roll")
	pep := g.NodeGroups[0].PrimaryEndpoint
	types := []string{"cache.m7g.large", "cache.t4g.micro"}

	// measure runs change under a fresh writer on addr:port and returns the
	// longest gap between acknowledged writes, and the writes lost.
	measure := func(addr *string, port *int32, change func()) (time.Duration, int) {
		w := startWriter(b, aws.ToString(addr), aws.ToInt32(port))
		w.waitProgress(b, 200, 10*time.Second)
		change()
		w.waitProgress(b, 200, 30*time.Second)
		w.halt()
		return w.outage, len(w.lost(b, redisClient(b, aws.ToString(addr), aws.ToInt32(port))))
	}
	var rolling, failovers, standalone []time.Duration
	lost := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		out, l := measure(pep.Address, pep.Port, func() {
			g := describeGroupB(b, c, "bench-roll")
			target := ""
			for _, m := range g.NodeGroups[0].NodeGroupMembers {
				if aws.ToString(m.CurrentRole) == "replica" {
					target = aws.ToString(m.CacheClusterId)
					break
				}
			}
			if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("bench-roll"),
				PrimaryClusterId: aws.String(target), ApplyImmediately: aws.Bool(true)}); err != nil {
				b.Fatal(err)
			}
			waitAvailable(b, c, "bench-roll")
		})
		failovers, lost = append(failovers, out), lost+l
		b.StartTimer()
		out, l = measure(pep.Address, pep.Port, func() {
			if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("bench-roll"),
				CacheNodeType: aws.String(types[i%2]), ApplyImmediately: aws.Bool(true)}); err != nil {
				b.Fatal(err)
			}
			waitAvailable(b, c, "bench-roll")
		})
		rolling, lost = append(rolling, out), lost+l
		out, l = measure(solo.Address, solo.Port, func() {
			if _, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("bench-solo"),
				CacheNodeType: aws.String(types[i%2]), ApplyImmediately: aws.Bool(true)}); err != nil {
				b.Fatal(err)
			}
			waitClusterAvailable(b, c, "bench-solo")
		})
		standalone, lost = append(standalone, out), lost+l
	}
	b.StopTimer()
	b.Logf("outages: rolling %v, planned failover %v, standalone %v", rolling, failovers, standalone)
	p50, base := percentile(rolling, 50), percentile(failovers, 50)
	b.ReportMetric(ms(p50), "rolling-outage-p50-ms")
	b.ReportMetric(ms(percentile(rolling, 90)), "rolling-outage-p90-ms")
	b.ReportMetric(ms(base), "planned-failover-outage-p50-ms")
	b.ReportMetric(float64(p50)/float64(max(base, time.Millisecond)), "rolling/planned-failover")
	b.ReportMetric(ms(percentile(standalone, 50)), "standalone-outage-p50-ms")
	b.ReportMetric(float64(lost), "acked-writes-lost")
}
