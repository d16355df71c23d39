package integration

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/bradfitz/gomemcache/memcache"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// BenchmarkMemcachedCluster3Nodes: create→available of a 3-node Memcached
// cluster through the API (p50) against the same 3 memcached nodes started
// in parallel through the runtime directly, in the same run. A node
// endpoint is the memcached process itself (1.0x by construction); the
// configuration endpoint, which hands a connection to a node after its
// first command, is measured against a node directly: set+get round trips
// on one connection, their ratio reported as cfg/direct.
func BenchmarkMemcachedCluster3Nodes(b *testing.B) {
	e := startEmulator(b)
	c := e.client
	ctx := context.Background()
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-mc-baseline", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	pool, err := engine.NewAddressPool("127.0.24.2")
	if err != nil {
		b.Fatal(err)
	}
	var viaAPI, direct []time.Duration
	var cfgOps, nodeOps time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-mc-%d", i)
		begin := time.Now()
		if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String(id), Engine: aws.String("memcached"),
			CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(3)}); err != nil {
			b.Fatal(err)
		}
		cl := waitClusterAvailable(b, c, id)
		viaAPI = append(viaAPI, time.Since(begin))

		b.StopTimer()
		cfg := fmt.Sprintf("%s:%d", aws.ToString(cl.ConfigurationEndpoint.Address), aws.ToInt32(cl.ConfigurationEndpoint.Port))
		node := nodeAddrs(cl)["0001"]
		// Alternating rounds, so load on the machine hits both alike.
		for range 5 {
			cfgOps += roundTrips(b, cfg, 400)
			nodeOps += roundTrips(b, node, 400)
		}
		if _, err := c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String(id)}); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, startMemcachedDirect(b, rt, pool, i))
		b.StartTimer()
	}
	b.StopTimer()
	p50, p50d := percentile(viaAPI, 50), percentile(direct, 50)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p50d), "direct-p50-ms")
	b.ReportMetric(float64(p50)/float64(p50d), "api/direct")
	b.ReportMetric(float64(nodeOps)/float64(cfgOps), "cfg/direct")
}

// roundTrips times n set+get pairs on one connection to addr.
func roundTrips(b *testing.B, addr string, n int) time.Duration {
	mc := memcache.New(addr)
	mc.MaxIdleConns = 1
	defer mc.Close()
	if err := mc.Set(&memcache.Item{Key: "warm", Value: []byte("x")}); err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte("value")}); err != nil {
			b.Fatal(err)
		}
		if _, err := mc.Get(k); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(begin)
}

// startMemcachedDirect starts 3 memcached nodes through the runtime in
// parallel, stops them, and returns the time until all answered.
func startMemcachedDirect(b *testing.B, rt *process.Runtime, pool *engine.AddressPool, i int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	begin := time.Now()
	for j := range 3 {
		ep, err := pool.Allocate(11211)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("mc%d-%d", i, j)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[j] = rt.Start(ctx, engine.NodeSpec{Name: name, Engine: engine.EngineMemcached, Endpoint: ep})
		}()
		defer func() { _ = rt.Stop(context.Background(), name); pool.Release(ep) }()
	}
	wg.Wait()
	took := time.Since(begin)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return took
}
