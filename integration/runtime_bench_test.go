package integration

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// timeCreate creates a 3-node group with automatic failover and returns
// the time until DescribeReplicationGroups says available.
func timeCreate(b *testing.B, c *elasticache.Client, id string) time.Duration {
	ctx := context.Background()
	start := time.Now()
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("bench"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
	}); err != nil {
		b.Fatal(err)
	}
	for {
		out, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
		if err != nil {
			b.Fatal(err)
		}
		if aws.ToString(out.ReplicationGroups[0].Status) == "available" {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
}

// timeFailover kills the group's primary from outside under write load and
// returns the longest write outage the writer saw.
func timeFailover(b *testing.B, e *emu, id string) time.Duration {
	g := describeGroupB(b, e.client, id)
	pep := g.NodeGroups[0].PrimaryEndpoint
	w := startWriter(b, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	w.waitProgress(b, 200, 10*time.Second)
	killFromOutside(b, e, primaryOf(g))
	w.waitProgress(b, 200, time.Minute)
	w.halt()
	return w.outage
}

// BenchmarkRuntimes reports, for the docker runtime next to the process
// runtime in the same run, create→available of a 3-node group and the write
// outage after the primary is killed from outside (kill -9 / docker kill).
func BenchmarkRuntimes(b *testing.B) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		b.Skip("the Docker engine is not reachable")
	}
	if out, err := exec.Command("../scripts/build-offline-images").CombinedOutput(); err != nil {
		b.Fatalf("build-offline-images: %v\n%s", err, out)
	}
	results := map[string][2]time.Duration{}
	for _, rt := range []string{"process", "docker"} {
		e := startEmulatorWith(b, func(c *emulator.Config) { c.Runtime = rt })
		var creates, outages []time.Duration
		for i := 0; i < b.N; i++ {
			id := fmt.Sprintf("%s-%d", rt, i)
			creates = append(creates, timeCreate(b, e.client, id))
			outages = append(outages, timeFailover(b, e, id))
			waitAvailable(b, e.client, id)
			if _, err := e.client.DeleteReplicationGroup(context.Background(), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
				b.Fatal(err)
			}
			waitDeleted(b, e.client, id)
		}
		results[rt] = [2]time.Duration{percentile(creates, 50), percentile(outages, 50)}
		b.ReportMetric(ms(results[rt][0]), rt+"-create-p50-ms")
		b.ReportMetric(ms(results[rt][1]), rt+"-outage-p50-ms")
	}
	b.ReportMetric(float64(results["docker"][0])/float64(results["process"][0]), "create-docker/process")
	b.ReportMetric(float64(results["docker"][1])/float64(results["process"][1]), "outage-docker/process")
}
