package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// startManyNodes starts an emulator with n single-node clusters, all
// available, and returns its data dir and its Shutdown. The caller shuts it
// down; a test that fails before does so at cleanup.
func startManyNodes(t testing.TB, n int) (dataDir string, shutdown func(context.Context) error) {
	t.Helper()
	cfg := testConfig(t)
	srv, err := emulator.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	var once sync.Once
	shutdown = func(ctx context.Context) error {
		err := errors.New("already shut down")
		once.Do(func() { err = srv.Shutdown(ctx) })
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = shutdown(ctx)
	})
	c := newClient(srv.URL(), "us-east-1")
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("many-%03d", i)
			if _, err := c.CreateCacheCluster(ctxT(t, 30*time.Second), &elasticache.CreateCacheClusterInput{
				CacheClusterId: aws.String(id), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
			}); err != nil {
				t.Errorf("create %s: %v", id, err)
				return
			}
			waitClusterAvailable(t, c, id)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return cfg.DataDir, shutdown
}

// assertAllStopped fails the test for any node server (or container) of
// dataDir still there. (Whether the endpoints answer is not asked: another
// test binary may have been handed the same addresses since.)
func assertAllStopped(t testing.TB, dataDir string) {
	t.Helper()
	if left := nodeServers(t, dataDir, false); len(left) > 0 {
		t.Errorf("%d node servers (or containers) of the data dir left after Shutdown: %v", len(left), left)
	}
}

// TestShutdownPastDeadline: a Shutdown whose deadline has passed still
// stops every node (killing instead of waiting for a graceful exit), and
// says that the deadline passed instead of reporting success.
func TestShutdownPastDeadline(t *testing.T) {
	nodes := 20
	if testRuntime() == "docker" {
		nodes = 8 // container starts take seconds each on a loaded machine
	}
	dataDir, shutdown := startManyNodes(t, nodes)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	begin := time.Now()
	err := shutdown(ctx)
	t.Logf("%s runtime: Shutdown of %d nodes past its deadline took %s: %v", testRuntime(), nodes, time.Since(begin).Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline = %v; want an error wrapping context.DeadlineExceeded", err)
	}
	assertAllStopped(t, dataDir)
}

// BenchmarkShutdown40Nodes reports how long Shutdown takes to stop 40
// nodes, against stopping a single node measured in the same run: close to
// 1× when nodes stop in parallel, about 40× one after the other.
func BenchmarkShutdown40Nodes(b *testing.B) {
	const many = 40
	timeShutdown := func(n int) time.Duration {
		b.StopTimer()
		dataDir, shutdown := startManyNodes(b, n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.StartTimer()
		begin := time.Now()
		if err := shutdown(ctx); err != nil {
			b.Fatalf("Shutdown of %d nodes: %v", n, err)
		}
		took := time.Since(begin)
		b.StopTimer()
		assertAllStopped(b, dataDir)
		return took
	}
	var manyT, oneT []time.Duration
	for i := 0; i < b.N; i++ {
		manyT = append(manyT, timeShutdown(many))
		oneT = append(oneT, timeShutdown(1))
	}
	p50, p50one := percentile(manyT, 50), percentile(oneT, 50)
	b.ReportMetric(ms(p50), "40-nodes-p50-ms")
	b.ReportMetric(ms(p50one), "1-node-p50-ms")
	b.ReportMetric(float64(p50)/float64(p50one), "40-nodes/1-node")
}
