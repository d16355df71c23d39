package integration

// Benchmarks of cluster mode against the same redis-server processes
// driven with redis-cli --cluster, as a user would run Redis Cluster
// without the emulator: how much faster the API's online resharding moves
// keys than redis-cli's rebalance, and what creating a cluster-mode group
// costs over forming the cluster by hand. Both sides of a comparison run
// in the same run on the same machine; nothing is asserted on times.
//
//	go test ./integration -run '^$' -bench BenchmarkCluster -benchtime 1x
//
// ELASTICACHE_LOCAL_BENCH_CLUSTER_KEYS sets the keys loaded before a
// resharding (default 1,000,000; e.g. 50000 for a quick run). Everything
// started here (emulator nodes and direct processes) lives in
// 127.0.170.0/24–127.0.174.0/24, which no other test uses.

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
)

// reshardRun is what one resharding cost and what its client saw.
type reshardRun struct {
	moved  int           // loaded keys whose slot changed owner
	took   time.Duration // the move itself (API call → available; redis-cli rebalance)
	total  time.Duration // from the 4th node's start to the end of the move
	ops    int64
	errs   int64
	last   error
	p99    time.Duration
	maxLat time.Duration
}

func (r reshardRun) rate() float64 { return float64(r.moved) / r.took.Seconds() }

// BenchmarkClusterReshardVsRedisCLI scales a 3-shard, replica-less cluster
// holding ELASTICACHE_LOCAL_BENCH_CLUSTER_KEYS small keys out to 4 shards
// while a ClusterClient reads and writes, once through
// ModifyReplicationGroupShardConfiguration (timed from the call to
// available, which includes starting the new node) and once on an
// identical cluster of bare redis-server processes formed with redis-cli
// --cluster create, the 4th added with add-node and the keys moved with
// redis-cli --cluster rebalance --cluster-use-empty-masters (timed alone;
// "total" adds the 4th process's start and add-node). It reports keys
// moved per second (the loaded keys whose slot changed owner), the
// client's errors and p99 latency during the move, and the ratios
// (goal: keys/s at least 1.5× redis-cli's).
func BenchmarkClusterReshardVsRedisCLI(b *testing.B) {
	cli, server := clusterBenchTools(b)
	keys := envInt("ELASTICACHE_LOCAL_BENCH_CLUSTER_KEYS", 1_000_000)
	hist := slotHistogram("k", keys)
	e := startEmulatorWith(b, func(c *emulator.Config) { c.AddressBase = "127.0.170.2" })
	pool, err := engine.NewAddressPool("127.0.171.2")
	if err != nil {
		b.Fatal(err)
	}
	var ours, theirs []reshardRun
	for i := 0; i < b.N; i++ {
		ours = append(ours, reshardThroughAPI(b, e, fmt.Sprintf("reshard-%d", i), keys, hist))
		theirs = append(theirs, reshardWithRedisCLI(b, cli, server, pool, keys, hist))
	}
	o, t := sumRuns(ours), sumRuns(theirs)
	b.Logf("emulator: %d keys in %s (%.0f keys/s), %d ops, %d errors (last %v), p99 %s, max %s",
		o.moved, o.took.Round(time.Millisecond), o.rate(), o.ops, o.errs, o.last, o.p99, o.maxLat)
	b.Logf("redis-cli: %d keys in %s (%.0f keys/s; %s with the 4th node's start and add-node), %d ops, %d errors (last %v), p99 %s, max %s",
		t.moved, t.took.Round(time.Millisecond), t.rate(), t.total.Round(time.Millisecond), t.ops, t.errs, t.last, t.p99, t.maxLat)
	b.ReportMetric(o.rate(), "keys/s")
	b.ReportMetric(t.rate(), "cli-keys/s")
	b.ReportMetric(o.rate()/t.rate(), "keys/s-vs-cli")
	b.ReportMetric(float64(t.total)/float64(o.total), "total-speedup-vs-cli")
	b.ReportMetric(float64(o.errs), "client-errors")
	b.ReportMetric(float64(t.errs), "cli-client-errors")
	b.ReportMetric(ms(o.p99), "client-p99-ms")
	b.ReportMetric(ms(t.p99), "cli-client-p99-ms")
	b.ReportMetric(float64(o.p99)/float64(t.p99), "p99-vs-cli")
}

// reshardThroughAPI creates a 3 × 0 cluster-mode group, loads keys and
// scales it out to 4 node groups under client load.
func reshardThroughAPI(b *testing.B, e *emu, id string, keys int, hist []int) reshardRun {
	b.StopTimer()
	defer b.StartTimer()
	g := createClusterGroup(b, e.client, id, 3, 0)
	cc := clusterClient(b, g)
	lat := &latencyHook{}
	cc.AddHook(lat)
	fillCluster(b, cc, "k", keys)
	before := slotMasters(b, cc)

	load := startLoad(b, cc, "w", "k", keys)
	lat.on.Store(true)
	b.StartTimer()
	begin := time.Now()
	if _, err := e.client.ModifyReplicationGroupShardConfiguration(ctxT(b, 10*time.Second), &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String(id), NodeGroupCount: aws.Int32(4), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		b.Fatalf("resharding %s: %v", id, err)
	}
	untilAvailable(b, e.client, id, 10*time.Minute)
	took := time.Since(begin)
	b.StopTimer()
	lat.on.Store(false)
	load.halt()
	run := reshardRun{took: took, total: took, ops: load.ops.Load(), errs: load.errs.Load(), last: load.last}
	run.p99, run.maxLat = lat.summary()
	run.moved = movedKeys(hist, before, slotMasters(b, cc))
	if _, err := e.client.DeleteReplicationGroup(ctxT(b, 10*time.Second), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
		b.Fatal(err)
	}
	waitDeleted(b, e.client, id)
	return run
}

// reshardWithRedisCLI does the same with bare redis-server processes and
// redis-cli --cluster, as its documentation does it.
func reshardWithRedisCLI(b *testing.B, cli, server string, pool *engine.AddressPool, keys int, hist []int) reshardRun {
	b.StopTimer()
	defer b.StartTimer()
	ctx := ctxT(b, 15*time.Minute)
	first := startDirectNodes(b, server, pool, 3)
	defer first.stop()
	args := append([]string{"--cluster", "create"}, first.addrs()...)
	runCLI(b, ctx, cli, append(args, "--cluster-replicas", "0", "--cluster-yes")...)
	if err := (engine.Admin{}).ClusterConsistent(ctx, first.eps); err != nil {
		b.Fatal(err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: first.addrs()[:1], DialTimeout: 2 * time.Second, MaxRedirects: 16})
	b.Cleanup(func() { cc.Close() })
	lat := &latencyHook{}
	cc.AddHook(lat)
	fillCluster(b, cc, "k", keys)
	before := slotMasters(b, cc)

	load := startLoad(b, cc, "w", "k", keys)
	lat.on.Store(true)
	b.StartTimer()
	begin := time.Now()
	fourth := startDirectNodes(b, server, pool, 1)
	defer fourth.stop()
	runCLI(b, ctx, cli, "--cluster", "add-node", fourth.addrs()[0], first.addrs()[0])
	// rebalance refuses a cluster whose nodes do not agree yet.
	if err := (engine.Admin{}).ClusterConsistent(ctx, append(first.eps, fourth.eps...)); err != nil {
		b.Fatal(err)
	}
	moveBegin := time.Now()
	runCLI(b, ctx, cli, "--cluster", "rebalance", first.addrs()[0], "--cluster-use-empty-masters")
	run := reshardRun{took: time.Since(moveBegin), total: time.Since(begin)}
	b.StopTimer()
	lat.on.Store(false)
	load.halt()
	run.ops, run.errs, run.last = load.ops.Load(), load.errs.Load(), load.last
	run.p99, run.maxLat = lat.summary()
	run.moved = movedKeys(hist, before, slotMasters(b, cc))
	return run
}

// sumRuns adds runs up; the latencies are the worst run's.
func sumRuns(runs []reshardRun) reshardRun {
	var s reshardRun
	for _, r := range runs {
		s.moved += r.moved
		s.took += r.took
		s.total += r.total
		s.ops += r.ops
		s.errs += r.errs
		if r.last != nil {
			s.last = r.last
		}
		s.p99, s.maxLat = max(s.p99, r.p99), max(s.maxLat, r.maxLat)
	}
	return s
}

// BenchmarkClusterCreateVsDirect measures create→available of a 3-shard ×
// 1-replica cluster-mode group through the API against, in the same run,
// the same six redis-server processes started directly and formed with
// redis-cli --cluster create --cluster-replicas 1 until every node reports
// cluster_state:ok (goal: API ≤ 1.3× that) and, as available means on the
// API side, until every node also lists every replica in CLUSTER SLOTS;
// and against merely starting the six processes until they answer PING.
func BenchmarkClusterCreateVsDirect(b *testing.B) {
	cli, server := clusterBenchTools(b)
	e := startEmulatorWith(b, func(c *emulator.Config) { c.AddressBase = "127.0.172.2" })
	formedPool, err := engine.NewAddressPool("127.0.173.2")
	if err != nil {
		b.Fatal(err)
	}
	barePool, err := engine.NewAddressPool("127.0.174.2")
	if err != nil {
		b.Fatal(err)
	}
	var api, formed, formedListed, bare []time.Duration
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("create-%d", i)
		begin := time.Now()
		if _, err := e.client.CreateReplicationGroup(ctxT(b, 10*time.Second), &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("bench"),
			CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
			CacheParameterGroupName: aws.String("default.redis7.cluster.on"), AutomaticFailoverEnabled: aws.Bool(true),
			NumNodeGroups: aws.Int32(3), ReplicasPerNodeGroup: aws.Int32(1),
		}); err != nil {
			b.Fatal(err)
		}
		untilAvailable(b, e.client, id, 2*time.Minute)
		api = append(api, time.Since(begin))

		b.StopTimer()
		if _, err := e.client.DeleteReplicationGroup(ctxT(b, 10*time.Second), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}); err != nil {
			b.Fatal(err)
		}
		waitDeleted(b, e.client, id)
		ok, listed := formWithRedisCLI(b, cli, server, formedPool)
		formed, formedListed = append(formed, ok), append(formedListed, listed)
		begin = time.Now()
		nodes := startDirectNodes(b, server, barePool, 6)
		bare = append(bare, time.Since(begin))
		nodes.stop()
		b.StartTimer()
	}
	b.StopTimer()
	p50, p50f, p50l, p50b := percentile(api, 50), percentile(formed, 50), percentile(formedListed, 50), percentile(bare, 50)
	b.Logf("create→available p50: API %s; redis-cli formed %s (every replica in CLUSTER SLOTS: %s); 6 bare processes %s", p50, p50f, p50l, p50b)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p50f), "cli-formed-p50-ms")
	b.ReportMetric(ms(p50l), "cli-listed-p50-ms")
	b.ReportMetric(ms(p50b), "bare-start-p50-ms")
	b.ReportMetric(float64(p50)/float64(p50f), "api/cli-formed")
	b.ReportMetric(float64(p50)/float64(p50l), "api/cli-listed")
	b.ReportMetric(float64(p50)/float64(p50b), "api/bare-start")
}

// formWithRedisCLI starts six cluster nodes, forms them with redis-cli
// --cluster create --cluster-replicas 1 and returns the time until every
// node reports cluster_state:ok, and until, besides, every node lists the
// three replicas in CLUSTER SLOTS (what the API waits for before available:
// cluster clients read the nodes from there); the nodes stop before it
// returns.
func formWithRedisCLI(b *testing.B, cli, server string, pool *engine.AddressPool) (ok, listed time.Duration) {
	ctx := ctxT(b, 2*time.Minute)
	begin := time.Now()
	nodes := startDirectNodes(b, server, pool, 6)
	defer nodes.stop()
	args := append([]string{"--cluster", "create"}, nodes.addrs()...)
	runCLI(b, ctx, cli, append(args, "--cluster-replicas", "1", "--cluster-yes")...)
	for _, check := range []engine.Check{engine.Admin{}.ClusterOK, replicasListed(3)} {
		var wg sync.WaitGroup
		for _, ep := range nodes.eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := engine.WaitReady(ctx, ep, check); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok == 0 {
			ok = time.Since(begin)
		}
	}
	return ok, time.Since(begin)
}

// replicasListed is a check that holds once the node lists n replicas in
// CLUSTER SLOTS.
func replicasListed(n int) engine.Check {
	return func(ctx context.Context, ep engine.Endpoint) error {
		rc := redis.NewClient(&redis.Options{Addr: ep.Addr(), MaxRetries: -1})
		defer rc.Close()
		slots, err := rc.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		listed := 0
		for _, s := range slots {
			listed += max(0, len(s.Nodes)-1)
		}
		if listed < n {
			return fmt.Errorf("%s lists %d of %d replicas in CLUSTER SLOTS", ep.Addr(), listed, n)
		}
		return nil
	}
}

// clusterBenchTools returns the paths of redis-cli and redis-server, or
// skips the benchmark.
func clusterBenchTools(b *testing.B) (cli, server string) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		b.Skip("no redis-cli:", err)
	}
	server, err = exec.LookPath("redis-server")
	if err != nil {
		b.Skip("no redis-server:", err)
	}
	return cli, server
}

// runCLI runs redis-cli with args and fails the benchmark on an error.
func runCLI(b *testing.B, ctx context.Context, cli string, args ...string) {
	b.Helper()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		b.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
}

// directNodes are redis-server processes started without the emulator,
// configured as the process runtime configures its nodes (no persistence,
// the emulator's cluster-node-timeout, their own address announced).
type directNodes struct {
	pool *engine.AddressPool
	eps  []engine.Endpoint
	cmds []*exec.Cmd
	once sync.Once
}

// startDirectNodes starts n redis-server processes as cluster nodes, all
// at once, and waits until each answers PING. They stop at cleanup at the
// latest.
func startDirectNodes(b *testing.B, server string, pool *engine.AddressPool, n int) *directNodes {
	d := &directNodes{pool: pool}
	b.Cleanup(d.stop)
	for range n {
		ep, err := pool.Allocate(6379)
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(server, "--bind", ep.Host, "--port", strconv.Itoa(ep.Port), "--dir", b.TempDir(),
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--cluster-enabled", "yes", "--cluster-config-file", engine.ClusterConfigFile,
			"--cluster-node-timeout", strconv.Itoa(engine.DefaultClusterNodeTimeout),
			// Bus and replication connections leave from 127.0.0.1 unless
			// told otherwise: peers must learn the node's own address (and
			// protected mode would refuse a replica connecting from it).
			"--cluster-announce-ip", ep.Host, "--replica-announce-ip", ep.Host, "--bind-source-addr", ep.Host)
		d.eps = append(d.eps, ep)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		d.cmds = append(d.cmds, cmd)
	}
	ctx := ctxT(b, time.Minute)
	var wg sync.WaitGroup
	for _, ep := range d.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := engine.WaitReady(ctx, ep, engine.Admin{}.Pings); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return d
}

func (d *directNodes) addrs() []string {
	out := make([]string, len(d.eps))
	for i, ep := range d.eps {
		out[i] = ep.Addr()
	}
	return out
}

// stop kills the processes and gives their addresses back; once.
func (d *directNodes) stop() {
	d.once.Do(func() {
		for _, cmd := range d.cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		for _, ep := range d.eps {
			d.pool.Release(ep)
		}
	})
}

// untilAvailable polls DescribeReplicationGroups every 5 ms until the
// group is available: the SDK waiter's back-off would blur the timing.
func untilAvailable(b *testing.B, c *elasticache.Client, id string, d time.Duration) {
	b.Helper()
	ctx := ctxT(b, d)
	for {
		out, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
		if err != nil {
			b.Fatalf("waiting for %s available: %v", id, err)
		}
		if aws.ToString(out.ReplicationGroups[0].Status) == "available" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slotHistogram counts the keys prefix:0..n-1 (fillCluster's) of each slot.
func slotHistogram(prefix string, n int) []int {
	hist := make([]int, engine.ClusterSlots)
	for i := range n {
		hist[engine.HashSlot(prefix+":"+strconv.Itoa(i))]++
	}
	return hist
}

// slotMasters returns the node id serving each slot, from CLUSTER SLOTS.
func slotMasters(b *testing.B, cc *redis.ClusterClient) []string {
	slots, err := cc.ClusterSlots(ctxT(b, 10*time.Second)).Result()
	if err != nil {
		b.Fatal(err)
	}
	owner := make([]string, engine.ClusterSlots)
	for _, s := range slots {
		for slot := s.Start; slot <= s.End && len(s.Nodes) > 0; slot++ {
			owner[slot] = s.Nodes[0].ID
		}
	}
	return owner
}

// movedKeys counts the keys of hist whose slot changed owner.
func movedKeys(hist []int, before, after []string) int {
	n := 0
	for s, c := range hist {
		if before[s] != after[s] {
			n += c
		}
	}
	return n
}

// latencyHook records, while on, how long each command of a ClusterClient
// takes as the application sees it: redirections and retries included.
type latencyHook struct {
	on atomic.Bool
	mu sync.Mutex
	ds []time.Duration
}

func (l *latencyHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *latencyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !l.on.Load() {
			return next(ctx, cmd)
		}
		begin := time.Now()
		err := next(ctx, cmd)
		d := time.Since(begin)
		l.mu.Lock()
		l.ds = append(l.ds, d)
		l.mu.Unlock()
		return err
	}
}

func (l *latencyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// summary returns the p99 and the longest of the latencies recorded.
func (l *latencyHook) summary() (p99, worst time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) == 0 {
		return 0, 0
	}
	return percentile(l.ds, 99), percentile(l.ds, 100)
}
