package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/docker"
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

// timeDockerDirect creates and starts n containers of the docker runtime's
// default Redis image straight through the Docker API, all at once, on the
// host's network as the runtime's nodes are, and returns the time until
// every one answers PING: what the Docker daemon itself takes for the
// containers of a group, the docker runtime's floor. The containers are
// removed before it returns.
func timeDockerDirect(b *testing.B, cli *client.Client, round, n int) time.Duration {
	ctx := ctxT(b, 2*time.Minute)
	pool, err := engine.NewAddressPool(fmt.Sprintf("127.%d.248.2", addressOctet()))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	defer func() {
		for _, id := range ids {
			if id != "" {
				_ = cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true})
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		ep, err := pool.Allocate(6379)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &container.Config{Image: docker.DefaultRedisImage, Cmd: []string{
				"--bind", ep.Host, "--port", strconv.Itoa(ep.Port), "--save", "", "--appendonly", "no"}}
			hc := &container.HostConfig{NetworkMode: network.NetworkHost}
			resp, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, fmt.Sprintf("elasticache-local-bench-direct-%d-%d-%d", addressOctet(), round, i))
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = resp.ID
			if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
				errs[i] = err
				return
			}
			errs[i] = engine.WaitReady(ctx, ep, engine.Admin{}.Pings)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return took
}

// BenchmarkRuntimes reports, for the docker runtime next to the process
// runtime in the same run, create→available of a 3-node group and the write
// outage after the primary is killed from outside (kill -9 / docker kill),
// and the docker runtime's create against its floor: the same three
// containers created and started straight through the Docker API
// (create-docker/docker-direct).
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
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	var direct []time.Duration
	for i := 0; i < b.N; i++ {
		direct = append(direct, timeDockerDirect(b, cli, i, 3))
	}
	b.ReportMetric(ms(percentile(direct, 50)), "docker-direct-p50-ms")
	b.ReportMetric(float64(results["docker"][0])/float64(percentile(direct, 50)), "create-docker/docker-direct")
	b.ReportMetric(float64(results["docker"][0])/float64(results["process"][0]), "create-docker/process")
	b.ReportMetric(float64(results["docker"][1])/float64(results["process"][1]), "outage-docker/process")
}
