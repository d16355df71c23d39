package integration

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// percentile returns the p-th percentile (0–100) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCreateReplicationGroup3Nodes measures create→available of a
// 3-node group through the API (polling DescribeReplicationGroups as a
// client would), against a baseline measured in the same run: starting the
// same three redis-server nodes and their replication directly through the
// runtime, with no API or control plane in between.
func BenchmarkCreateReplicationGroup3Nodes(b *testing.B) {
	e := startEmulator(b)
	ctx := context.Background()
	c := e.client
	var viaAPI, direct []time.Duration

	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-baseline", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	pool, err := engine.NewAddressPool(fmt.Sprintf("127.%d.99.2", addressOctet()))
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		viaAPI = append(viaAPI, timeCreate(b, c, id))

		b.StopTimer()
		if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
			b.Fatal(err)
		}
		waitDeleted(b, c, id)
		direct = append(direct, startGroupDirect(b, rt, pool, i))
		b.StartTimer()
	}
	b.StopTimer()
	p50, p50d := percentile(viaAPI, 50), percentile(direct, 50)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(percentile(viaAPI, 90)), "p90-ms")
	b.ReportMetric(ms(p50d), "direct-p50-ms")
	b.ReportMetric(float64(p50)/float64(p50d), "api/direct")
}

// startGroupDirect starts a primary and two replicas through the runtime,
// waits for both replication links, stops them, and returns the time to
// ready: the floor the API path is compared with.
func startGroupDirect(b *testing.B, rt *process.Runtime, pool *engine.AddressPool, i int) time.Duration {
	start := time.Now()
	stop := startGroupDirectKept(b, rt, pool, fmt.Sprintf("d%d", i))
	took := time.Since(start)
	stop()
	return took
}

// startGroupDirectKept starts a primary and two replicas through the
// runtime (the replicas in parallel once the primary runs), waits for both
// replication links, and returns the function that stops them.
func startGroupDirectKept(b *testing.B, rt *process.Runtime, pool *engine.AddressPool, prefix string) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var eps []engine.Endpoint
	for range 3 {
		ep, err := pool.Allocate(6379)
		if err != nil {
			b.Fatal(err)
		}
		eps = append(eps, ep)
	}
	names := []string{prefix + "-1", prefix + "-2", prefix + "-3"}
	stop = func() {
		for j, n := range names {
			rt.Stop(context.Background(), n)
			pool.Release(eps[j])
		}
	}
	if _, err := rt.Start(ctx, engine.NodeSpec{Name: names[0], Engine: "redis", Endpoint: eps[0]}); err != nil {
		b.Error(err)
		return stop
	}
	var wg sync.WaitGroup
	for j := 1; j < 3; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rt.Start(ctx, engine.NodeSpec{Name: names[j], Engine: "redis", Endpoint: eps[j], ReplicaOf: &eps[0]}); err != nil {
				b.Error(err)
				return
			}
			if err := engine.WaitReady(ctx, eps[j], rt.Admin().Pings, rt.Admin().ReplicationLinkUp); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	return stop
}

// BenchmarkStartToFirstRequest measures emulator start → first answered API
// request, against starting one bare redis-server node in the same run.
func BenchmarkStartToFirstRequest(b *testing.B) {
	var toFirst, node []time.Duration
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-start", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	for i := 0; i < b.N; i++ {
		start := time.Now()
		srv, err := emulator.Start(context.Background(), emulator.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir(), AddressBase: "127.0.98.2"})
		if err != nil {
			b.Fatal(err)
		}
		c := newClient(srv.URL(), "us-east-1")
		if _, err := c.DescribeCacheEngineVersions(context.Background(), &elasticache.DescribeCacheEngineVersionsInput{}); err != nil {
			b.Fatal(err)
		}
		toFirst = append(toFirst, time.Since(start))
		b.StopTimer()
		srv.Shutdown(context.Background())

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ep := engine.Endpoint{Host: "127.0.98.200", Port: 6379}
		t0 := time.Now()
		if _, err := rt.Start(ctx, engine.NodeSpec{Name: fmt.Sprintf("n%d", i), Engine: "redis", Endpoint: ep}); err != nil {
			b.Fatal(err)
		}
		node = append(node, time.Since(t0))
		rt.Stop(ctx, fmt.Sprintf("n%d", i))
		cancel()
		b.StartTimer()
	}
	p50, p50n := percentile(toFirst, 50), percentile(node, 50)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p50n), "redis-start-p50-ms")
	b.ReportMetric(float64(p50)/float64(p50n), "emulator/redis-start")
}
