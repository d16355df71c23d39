package integration

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// BenchmarkCreate100Groups creates 100 groups of 3 nodes (300 nodes, AWS's
// default node quota per region) with 100 concurrent CreateReplicationGroup
// calls and reports create→available per group (p50/p90/p100, each group
// timed from its own call), the time until all are available, and the
// failovers and node recoveries the events show (each one a node the
// emulator took for failed while it was starting: must be 0). The baseline,
// measured in the same run: the same 300 redis-server nodes started and
// synced directly through the runtime, all at once (a primary, then its two
// replicas, for every group in parallel).
//
// ELASTICACHE_LOCAL_BENCH_CREATE_GROUPS sets the group count (default 100).
// Process runtime only; run with -benchtime 1x.
func BenchmarkCreate100Groups(b *testing.B) {
	if testRuntime() != "process" {
		b.Skip("300 nodes are created on the process runtime")
	}
	groups := envInt("ELASTICACHE_LOCAL_BENCH_CREATE_GROUPS", 100)
	e := startEmulatorWith(b, func(c *emulator.Config) {
		// 300 nodes and 200 group endpoints: a range of its own.
		c.AddressBase = fmt.Sprintf("127.%d.200.2", addressOctet())
	})
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-create-scale", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	pool, err := engine.NewAddressPool(fmt.Sprintf("127.%d.150.2", addressOctet()))
	if err != nil {
		b.Fatal(err)
	}

	var api, direct []time.Duration
	var apiAll, directAll, apiCPU, directCPU time.Duration
	falseFailovers := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate which side goes first, so neither always runs on the
		// machine the other just loaded.
		sides := []func(){
			func() {
				cpu := cpuTime(b)
				per, all, evs := createGroupsAtOnce(b, e, fmt.Sprintf("scale%d", i), groups)
				apiCPU += cpuTime(b) - cpu
				api, apiAll = append(api, per...), max(apiAll, all)
				falseFailovers += len(evs)
				if len(evs) > 0 {
					b.Errorf("false failovers while creating %d groups (%d):\n%s", groups, len(evs), strings.Join(evs, "\n"))
				}
			},
			func() {
				cpu := cpuTime(b)
				per, all := startGroupsDirectAtOnce(b, rt, pool, i, groups)
				directCPU += cpuTime(b) - cpu
				direct, directAll = append(direct, per...), max(directAll, all)
			},
		}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			side()
		}
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(api, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(api, 90)), "p90-ms")
	b.ReportMetric(ms(percentile(api, 100)), "p100-ms")
	b.ReportMetric(ms(apiAll), "all-available-ms")
	b.ReportMetric(ms(percentile(direct, 50)), "direct-p50-ms")
	b.ReportMetric(ms(percentile(direct, 100)), "direct-p100-ms")
	b.ReportMetric(float64(percentile(api, 100))/float64(percentile(direct, 100)), "api/direct-p100")
	b.ReportMetric(float64(falseFailovers), "false-failovers")
	b.ReportMetric(apiCPU.Seconds()/float64(b.N), "api-cpu-s")
	b.ReportMetric(directCPU.Seconds()/float64(b.N), "direct-cpu-s")
}

// cpuTime is the CPU time (user and system) this process and its reaped
// children have used so far: the in-process emulator, the client, the
// runtime, and the nodes a side stopped before returning (so a side's
// figure covers its nodes from start to stop).
func cpuTime(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// createGroupsAtOnce sends n CreateReplicationGroup calls at once, polls
// DescribeReplicationGroups (every group in one paginated call, as a
// console would, every 100 ms) until all are available, and returns each group's
// create→available, the time until the last one, and the failover and
// recovery events seen, counted once every group is available and again
// after a short quiet hold. It deletes the groups before returning.
func createGroupsAtOnce(b *testing.B, e *emu, prefix string, n int) ([]time.Duration, time.Duration, []string) {
	c := e.client
	ids := make([]string, n)
	sent := make([]time.Time, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			sent[i] = time.Now()
			if _, err := c.CreateReplicationGroup(ctxT(b, time.Minute), &elasticache.CreateReplicationGroupInput{
				ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("bench"),
				CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
			}); err != nil {
				b.Errorf("create %s: %v", id, err)
			}
		}()
	}
	start := time.Now()
	close(release)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	took := map[string]time.Duration{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(took) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d groups available after 2 min", len(took), n)
		}
		p := elasticache.NewDescribeReplicationGroupsPaginator(c, &elasticache.DescribeReplicationGroupsInput{MaxRecords: aws.Int32(100)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctxT(b, 30*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for _, g := range page.ReplicationGroups {
				id := aws.ToString(g.ReplicationGroupId)
				if _, seen := took[id]; seen || !strings.HasPrefix(id, prefix+"-") {
					continue
				}
				switch aws.ToString(g.Status) {
				case "available":
					var i int
					fmt.Sscanf(strings.TrimPrefix(id, prefix+"-"), "%d", &i)
					took[id] = now.Sub(sent[i])
				case "creating":
				default:
					b.Fatalf("%s is %s", id, aws.ToString(g.Status))
				}
			}
		}
		// Every 100 ms: a DescribeReplicationGroups of 100 groups costs
		// the emulator and the client several ms of CPU, which a tighter
		// poll would take from the creates it measures.
		time.Sleep(100 * time.Millisecond)
	}
	all := time.Since(start)
	per := make([]time.Duration, 0, n)
	for _, d := range took {
		per = append(per, d)
	}
	// A node judged failed while it was starting may be replaced a moment
	// after its group shows available: look again after a few health
	// rounds of quiet.
	time.Sleep(3 * time.Second)
	evs := failoverEvents(b, c)

	for _, id := range ids {
		if _, err := c.DeleteReplicationGroup(ctxT(b, time.Minute), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids {
		waitDeleted(b, c, id)
	}
	return per, all, evs
}

// startGroupsDirectAtOnce starts n groups of three redis-server nodes
// (startGroupDirect each, all in parallel) and returns each group's time
// from the common start to both replicas in sync, and the time until the
// last one.
func startGroupsDirectAtOnce(b *testing.B, rt *process.Runtime, pool *engine.AddressPool, round, n int) ([]time.Duration, time.Duration) {
	per := make([]time.Duration, n)
	var wg sync.WaitGroup
	release := make(chan struct{})
	var mu sync.Mutex
	var stops []func()
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			start := time.Now()
			stop := startGroupDirectKept(b, rt, pool, fmt.Sprintf("s%d-%d", round, g))
			per[g] = time.Since(start)
			mu.Lock()
			stops = append(stops, stop)
			mu.Unlock()
		}()
	}
	start := time.Now()
	close(release)
	wg.Wait()
	all := time.Since(start)
	var stopping sync.WaitGroup
	for _, stop := range stops {
		stopping.Go(stop)
	}
	stopping.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return per, all
}
