package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Node address ranges of the restart benchmarks, of their own (other
// tests' binaries use 127.0.120–121, 127.0.140 and 127.0.232 up): 50
// groups take about 250 addresses (nodes and endpoints), so each range
// spans two /24s.
const (
	kill9BenchAddressEnv   = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.160.2"
	emptyBenchAddressEnv   = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.163.2"
	sigtermBenchAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.164.2"
	rdbLoadAddressBase     = "127.0.167.2"
)

// restartValueSize is the size of the values the SIGTERM benchmark writes:
// 64 KiB, so a pipeline of 64 carries 4 MiB.
const restartValueSize = 64 << 10

// buildBenchBinary compiles cmd/elasticache-local (buildBinary is for tests).
func buildBenchBinary(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "elasticache-local")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/elasticache-local").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchPort is a free loopback port for an emulator's API.
func benchPort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// launchBinary starts the emulator binary on dataDir and returns it with
// the moment just before its exec; a binary still running when the
// benchmark ends is killed then.
func launchBinary(b *testing.B, bin, dataDir string, port int, env ...string) (*exec.Cmd, time.Time) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("ELASTICACHE_LOCAL_LISTEN=127.0.0.1:%d", port),
		"ELASTICACHE_LOCAL_DATA_DIR="+dataDir,
		"ELASTICACHE_LOCAL_RUNTIME="+testRuntime(),
		"ELASTICACHE_LOCAL_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, begin
}

// waitServing polls the health endpoint every millisecond until it
// answers 200 and returns the time since begin.
func waitServing(b *testing.B, port int, begin time.Time) time.Duration {
	url := fmt.Sprintf("http://127.0.0.1:%d/_elasticache/health", port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(begin)
			}
			err = fmt.Errorf("health answered %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			b.Fatalf("the emulator on port %d did not serve within a minute: %v", port, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitAllAvailable polls DescribeReplicationGroups and DescribeCacheClusters
// until they list groups groups and 3*groups clusters, every group, cluster
// and node available, and returns the time since begin. Clusters count
// too: a group whose members are being started again may still say
// available (see BenchmarkRestartAfterSIGTERM).
func waitAllAvailable(b *testing.B, c *elasticache.Client, groups int, begin time.Time, within time.Duration) time.Duration {
	deadline := time.Now().Add(within)
	for {
		err := allAvailable(c, groups)
		if err == nil {
			return time.Since(begin)
		}
		if errors.Is(err, errFailed) || time.Now().After(deadline) {
			b.Fatalf("not all available within %v: %v", within, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// errFailed marks a status no wait ends: create-failed and the like.
var errFailed = errors.New("failed for good")

// allAvailable says what of groups groups of three is not available (nil
// when everything is).
func allAvailable(c *elasticache.Client, groups int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	gp := elasticache.NewDescribeReplicationGroupsPaginator(c, &elasticache.DescribeReplicationGroupsInput{MaxRecords: aws.Int32(100)})
	for gp.HasMorePages() {
		out, err := gp.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, g := range out.ReplicationGroups {
			if s := aws.ToString(g.Status); s != "available" {
				if strings.Contains(s, "failed") {
					return fmt.Errorf("group %s is %s: %w", aws.ToString(g.ReplicationGroupId), s, errFailed)
				}
				return fmt.Errorf("group %s is %s", aws.ToString(g.ReplicationGroupId), s)
			}
			n++
		}
	}
	if n != groups {
		return fmt.Errorf("%d groups listed, want %d", n, groups)
	}
	n = 0
	cp := elasticache.NewDescribeCacheClustersPaginator(c, &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true), MaxRecords: aws.Int32(100)})
	for cp.HasMorePages() {
		out, err := cp.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, cl := range out.CacheClusters {
			if s := aws.ToString(cl.CacheClusterStatus); s != "available" {
				return fmt.Errorf("cluster %s is %s", aws.ToString(cl.CacheClusterId), s)
			}
			for _, node := range cl.CacheNodes {
				if s := aws.ToString(node.CacheNodeStatus); s != "available" {
					return fmt.Errorf("node of cluster %s is %s", aws.ToString(cl.CacheClusterId), s)
				}
			}
			n++
		}
	}
	if n != 3*groups {
		return fmt.Errorf("%d clusters listed, want %d", n, 3*groups)
	}
	return nil
}

// createBenchGroups creates n groups of three nodes (rb-0 …), ten at a
// time, each ten available before the next: fifty creates at once time out
// in the Docker daemon of a loaded machine (create-failed).
func createBenchGroups(b *testing.B, c *elasticache.Client, n int) []string {
	var ids []string
	begin := time.Now()
	for i := range n {
		id := fmt.Sprintf("rb-%d", i)
		if _, err := c.CreateReplicationGroup(ctxT(b, time.Minute), &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("restart bench"),
			// The largest node type: its maxmemory holds any data set the
			// benchmark is asked for.
			CacheNodeType: aws.String("cache.r7g.16xlarge"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
		}); err != nil {
			b.Fatalf("create %s: %v", id, err)
		}
		ids = append(ids, id)
		if len(ids)%10 == 0 || len(ids) == n {
			waitAllAvailable(b, c, len(ids), time.Now(), 10*time.Minute)
		}
	}
	b.Logf("%d groups of 3 created and available in %v", n, time.Since(begin).Round(time.Millisecond))
	return ids
}

// reapBenchNodes stops, when the benchmark ends, every node server of
// dataDir still running (one that failed between a kill -9 and its final
// stop leaves them), by process id or container id.
func reapBenchNodes(b *testing.B, dataDir string) {
	b.Cleanup(func() {
		for inst := range runningInstances(b, dataDir) {
			if testRuntime() == "docker" {
				_ = exec.Command("docker", "rm", "-f", inst).Run()
				continue
			}
			if pid, err := strconv.Atoi(inst); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// sigtermBinary stops the binary with SIGTERM (every node saves its data
// and stops) and returns how long until it exited, cleanly.
func sigtermBinary(b *testing.B, cmd *exec.Cmd) time.Duration {
	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("exit after SIGTERM: %v", err)
	}
	return time.Since(begin)
}

// BenchmarkRestartAfterKill9 runs the real binary with
// ELASTICACHE_LOCAL_BENCH_RESTART_GROUPS groups of three nodes (default 50:
// 150 nodes), kills it with SIGKILL and starts it again on the same data
// dir, which adopts the running nodes. It reports exec → API serving
// (health 200) and exec → every group, cluster and node described
// available, against a start of the same binary on an empty data dir
// measured in the same run (goal: serving within 1 s with 150 adopted
// nodes). The nodes must be the same processes (or containers) after the
// restart.
//
//	go test ./integration -run '^$' -bench RestartAfterKill9 -benchtime 3x
func BenchmarkRestartAfterKill9(b *testing.B) {
	groups := envInt("ELASTICACHE_LOCAL_BENCH_RESTART_GROUPS", 50)
	bin := buildBenchBinary(b)
	dataDir := b.TempDir()
	reapBenchNodes(b, dataDir)
	port := benchPort(b)
	c := newClient(fmt.Sprintf("http://127.0.0.1:%d", port), "us-east-1")

	cmd, begin := launchBinary(b, bin, dataDir, port, kill9BenchAddressEnv)
	waitServing(b, port, begin)
	createBenchGroups(b, c, groups)
	nodes := runningInstances(b, dataDir)
	if len(nodes) != 3*groups {
		b.Fatalf("%d node servers run, want %d", len(nodes), 3*groups)
	}

	var fresh, serving, available []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// Baseline: the same binary starting on an empty data dir.
		emptyPort := benchPort(b)
		empty, begin := launchBinary(b, bin, b.TempDir(), emptyPort, emptyBenchAddressEnv)
		fresh = append(fresh, waitServing(b, emptyPort, begin))
		sigtermBinary(b, empty)

		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		_ = cmd.Wait()
		b.StartTimer()
		cmd, begin = launchBinary(b, bin, dataDir, port, kill9BenchAddressEnv)
		serving = append(serving, waitServing(b, port, begin))
		available = append(available, waitAllAvailable(b, c, groups, begin, 5*time.Minute))
		b.StopTimer()
		// Adopted, not started again: the very same node servers run.
		if after := runningInstances(b, dataDir); len(after) != len(nodes) {
			b.Errorf("run %d: %d node servers after the restart, want the %d from before", i, len(after), len(nodes))
		} else {
			for inst := range after {
				if !nodes[inst] {
					b.Errorf("run %d: node server %s after the restart was not running before the kill", i, inst)
				}
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	// Killed, its nodes reaped at cleanup: the graceful stop is
	// BenchmarkRestartAfterSIGTERM's to measure (on docker, 150 nodes
	// could outlast the binary's 30 s stop deadline on a loaded machine).
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	f, s, a := percentile(fresh, 50), percentile(serving, 50), percentile(available, 50)
	b.ReportMetric(float64(3*groups), "nodes")
	b.ReportMetric(ms(s), "serving-p50-ms")
	b.ReportMetric(ms(percentile(serving, 100)), "serving-max-ms")
	b.ReportMetric(ms(a), "all-available-p50-ms")
	b.ReportMetric(ms(f), "empty-start-p50-ms")
	b.ReportMetric(float64(s)/float64(f), "serving/empty-start")
	b.ReportMetric(float64(a)/float64(f), "all-available/empty-start")
}

// fillGroup writes keys values of restartValueSize random bytes (which an
// RDB cannot compress) through c, 64 SETs per pipeline; every value starts
// with its key so that no two are equal.
func fillGroup(ctx context.Context, c *redis.Client, group string, keys int, random []byte) error {
	for start := 0; start < keys; start += 64 {
		pipe := c.Pipeline()
		for i := start; i < min(start+64, keys); i++ {
			k := fmt.Sprintf("%s:%d", group, i)
			v := slices.Clone(random)
			copy(v, k)
			pipe.Set(ctx, k, v, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("filling %s: %w", group, err)
		}
	}
	return nil
}

// waitAllHold waits until the emulator describes want nodes and every one
// holds keys keys, and returns the time since begin.
func waitAllHold(b *testing.B, c *elasticache.Client, want, keys int, begin time.Time) time.Duration {
	var addrs []string
	pages := elasticache.NewDescribeCacheClustersPaginator(c, &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true), MaxRecords: aws.Int32(100)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctxT(b, time.Minute))
		if err != nil {
			b.Fatalf("DescribeCacheClusters: %v", err)
		}
		for _, cl := range out.CacheClusters {
			for _, n := range cl.CacheNodes {
				addrs = append(addrs, net.JoinHostPort(aws.ToString(n.Endpoint.Address), strconv.Itoa(int(aws.ToInt32(n.Endpoint.Port)))))
			}
		}
	}
	if len(addrs) != want {
		b.Fatalf("%d nodes described, want %d", len(addrs), want)
	}
	for _, addr := range addrs {
		eventually(b, 5*time.Minute, func() error {
			n, err := dbSize(context.Background(), addr)
			if err != nil || n != int64(keys) {
				return fmt.Errorf("node %s holds %d keys (%v), want %d", addr, n, err, keys)
			}
			return nil
		})
	}
	return time.Since(begin)
}

// dbSize asks the server at addr for DBSIZE on a connection of its own: a
// client kept across attempts would, after a few refused dials (a server
// not listening yet), stop dialing for a second.
func dbSize(ctx context.Context, addr string) (int64, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	return rc.DBSize(ctx).Result()
}

// keptRDBs copies every dump.rdb the stopped emulator kept in dataDir
// (one per node) into a directory of its own under a new temporary
// directory and returns those directories and the bytes copied.
func keptRDBs(b *testing.B, dataDir string) ([]string, int64) {
	found, err := filepath.Glob(filepath.Join(dataDir, "nodes", "*", "dump.rdb"))
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	var dirs []string
	var total int64
	for i, src := range found {
		dir := filepath.Join(root, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "dump.rdb"))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatalf("copying %s: %v", src, err)
		}
		total += n
		dirs = append(dirs, dir)
	}
	return dirs, total
}

// loadRDBsDirect starts one redis-server per directory (each holding a
// dump.rdb), all at once, and returns the time until every one answers
// PING and DBSIZE says keys: the engine's own load of the same data with
// no emulator in between. The servers are killed before it returns.
func loadRDBsDirect(b *testing.B, dirs []string, keys int) time.Duration {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed")
	}
	pool, err := engine.NewAddressPool(rdbLoadAddressBase)
	if err != nil {
		b.Fatal(err)
	}
	eps := make([]engine.Endpoint, len(dirs))
	for i := range dirs {
		if eps[i], err = pool.Allocate(6379); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	begin := time.Now()
	for i, dir := range dirs {
		cmd := exec.Command(bin, "--bind", eps[i].Host, "--port", strconv.Itoa(eps[i].Port), "--dir", dir,
			"--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dirs))
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := dbSize(ctx, eps[i].Addr())
				if err == nil && n == int64(keys) {
					return
				}
				if err == nil {
					err = fmt.Errorf("DBSIZE %d, want %d", n, keys)
				}
				if ctx.Err() != nil {
					errs[i] = fmt.Errorf("redis-server on %s: %w", dirs[i], err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
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

// BenchmarkRestartAfterSIGTERM runs the real binary with
// ELASTICACHE_LOCAL_BENCH_RESTART_GROUPS groups of three nodes (default 8)
// holding ELASTICACHE_LOCAL_BENCH_RESTART_MB MiB in all (default 256, 64
// KiB values written through the primary endpoints), stops it with SIGTERM
// (every node saves its data) and starts it again on the same data dir
// (every node loads it). It reports the stop and the reload (exec → every
// node holding every key) in seconds per GiB of the dataset (each of the
// three nodes of a group saves and loads its own copy), exec → serving and
// exec → every group available. Baselines measured in the same run while
// the emulator is stopped: writing the bytes of the kept RDB files
// sequentially (fsync'd) for the stop, and redis-server processes loading
// copies of the same RDB files directly, all at once, for the reload.
//
//	go test ./integration -run '^$' -bench RestartAfterSIGTERM -benchtime 3x
func BenchmarkRestartAfterSIGTERM(b *testing.B) {
	groups := envInt("ELASTICACHE_LOCAL_BENCH_RESTART_GROUPS", 8)
	mib := envInt("ELASTICACHE_LOCAL_BENCH_RESTART_MB", 256)
	keys := (mib*(1<<20)/restartValueSize + groups - 1) / groups // per group
	gib := float64(groups*keys*restartValueSize) / (1 << 30)
	bin := buildBenchBinary(b)
	dataDir := b.TempDir()
	reapBenchNodes(b, dataDir)
	port := benchPort(b)
	c := newClient(fmt.Sprintf("http://127.0.0.1:%d", port), "us-east-1")

	cmd, begin := launchBinary(b, bin, dataDir, port, sigtermBenchAddressEnv)
	waitServing(b, port, begin)
	ids := createBenchGroups(b, c, groups)
	random := make([]byte, restartValueSize)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(random)
	fillStart := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		rc := primaryClient(b, c, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fillGroup(ctxT(b, 10*time.Minute), rc, id, keys, random)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	waitAllHold(b, c, 3*groups, keys, fillStart)
	b.Logf("%d groups hold %d keys of %d KiB each (%.0f MiB in all), written and replicated in %v",
		groups, keys, restartValueSize>>10, gib*1024, time.Since(fillStart).Round(time.Millisecond))

	var stops, disk, serving, available, loaded, direct []time.Duration
	var rdbBytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stops = append(stops, sigtermBinary(b, cmd))
		b.StopTimer()
		if left := nodeServers(b, dataDir, true); len(left) > 0 {
			b.Fatalf("node servers still running after the SIGTERM stop: %v", left)
		}
		dirs, n := keptRDBs(b, dataDir)
		if len(dirs) != 3*groups {
			b.Fatalf("%d dump.rdb files kept after the stop, want %d", len(dirs), 3*groups)
		}
		rdbBytes = n
		disk = append(disk, sequentialWrite(b, dataDir, n))
		direct = append(direct, loadRDBsDirect(b, dirs, keys))
		for _, dir := range dirs {
			_ = os.RemoveAll(dir)
		}
		b.StartTimer()

		cmd, begin = launchBinary(b, bin, dataDir, port, sigtermBenchAddressEnv)
		serving = append(serving, waitServing(b, port, begin))
		// Data first: right after the start a group may say available
		// while its members are not even started again.
		loaded = append(loaded, waitAllHold(b, c, 3*groups, keys, begin))
		available = append(available, waitAllAvailable(b, c, groups, begin, 10*time.Minute))
	}
	b.StopTimer()
	sigtermBinary(b, cmd)

	stop, l, d := percentile(stops, 50), percentile(loaded, 50), percentile(direct, 50)
	b.ReportMetric(float64(3*groups), "nodes")
	b.ReportMetric(gib*1024, "dataset-MiB")
	b.ReportMetric(float64(rdbBytes)/(1<<20), "rdb-files-MiB")
	b.ReportMetric(ms(stop), "stop-p50-ms")
	b.ReportMetric(stop.Seconds()/gib, "stop-s/GiB")
	b.ReportMetric(float64(stop)/float64(percentile(disk, 50)), "stop/disk-write")
	b.ReportMetric(ms(percentile(serving, 50)), "serving-p50-ms")
	b.ReportMetric(ms(percentile(available, 50)), "all-available-p50-ms")
	b.ReportMetric(ms(l), "all-loaded-p50-ms")
	b.ReportMetric(l.Seconds()/gib, "reload-s/GiB")
	b.ReportMetric(ms(d), "redis-load-p50-ms")
	b.ReportMetric(float64(l)/float64(d), "reload/redis-load")
}
