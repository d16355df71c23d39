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

// BenchmarkFailoverKill9 measures, per run, the write outage seen by a
// client writing through the primary endpoint when the primary's process is
// killed with SIGKILL, and the acknowledged writes lost (replication is
// asynchronous, as on AWS). The reference is the health-check interval: the
// outage of a crash noticed only at the next check. The runtime reports the
// exit as it happens and the endpoint holds its address meanwhile, so
// outage/check-interval well under 1 shows detection costs nothing.
func BenchmarkFailoverKill9(b *testing.B) {
	e := startEmulator(b)
	ctx := context.Background()
	var outages []time.Duration
	lost, acked, worst := 0, 0, 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := fmt.Sprintf("fo-%d", i)
		if _, err := e.client.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("bench"),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
		}); err != nil {
			b.Fatal(err)
		}
		waitAvailable(b, e.client, id)
		g := describeGroupB(b, e.client, id)
		old := primaryOf(g)
		pep := g.NodeGroups[0].PrimaryEndpoint
		w := startWriter(b, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
		w.waitProgress(b, 200, 10*time.Second)
		b.StartTimer()

		killFromOutside(b, e, old)
		// Recovered for the client: writes flow again through the endpoint.
		w.waitProgress(b, 200, 30*time.Second)
		b.StopTimer()
		w.halt()
		outages = append(outages, w.outage)
		client := redisClient(b, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
		lostKeys := w.lost(b, client)
		l := len(lostKeys)
		if l > 0 {
			b.Logf("run %d: %d acknowledged writes lost (key:%d to key:%d of %d)", i, l, lostKeys[0], lostKeys[l-1], w.ackedCount())
		}
		lost += l
		worst = max(worst, l)
		acked += w.ackedCount()
		waitAvailable(b, e.client, id)
		if _, err := e.client.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
			b.Fatal(err)
		}
		waitDeleted(b, e.client, id)
		b.StartTimer()
	}
	b.StopTimer()
	interval := 100 * time.Millisecond // the emulator's default health-check interval
	p50 := percentile(outages, 50)
	b.ReportMetric(ms(p50), "outage-p50-ms")
	b.ReportMetric(ms(percentile(outages, 90)), "outage-p90-ms")
	b.ReportMetric(float64(p50)/float64(interval), "outage/check-interval")
	b.ReportMetric(float64(lost), "acked-writes-lost")
	b.ReportMetric(float64(acked), "acked-writes")
	b.ReportMetric(float64(worst), "acked-writes-lost-worst-kill")
}

func describeGroupB(b *testing.B, c *elasticache.Client, id string) types.ReplicationGroup {
	out, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
	if err != nil {
		b.Fatal(err)
	}
	return out.ReplicationGroups[0]
}
