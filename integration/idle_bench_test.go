package integration

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// envDuration reads a duration (e.g. "5m") from the environment, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// procCPU returns the CPU time process pid has used: the sum over its
// threads of the time on a CPU in /proc/<pid>/task/*/schedstat, counted in
// nanoseconds (utime and stime in /proc/<pid>/stat count 10 ms ticks, too
// coarse for idle processes).
func procCPU(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("unexpected %s: %q", path, b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected %s: %q", path, b)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// cpuOf sums the CPU time of pids.
func cpuOf(b *testing.B, pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		sum += d
	}
	return sum
}

// selfCPU is the CPU time this process (the in-process emulator) has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBareRedis starts n redis-server processes of binary bin with their
// default configuration (only the address and working directory given) and
// returns their pids; they are killed at cleanup. With groupSize above 1
// they form groups of that many, a primary and its replicas (--replicaof,
// waited for until in sync): the same topology as the managed groups, with
// nothing else. base is the address range's third octet.
func startBareRedis(b *testing.B, bin string, n, groupSize, base int) []int {
	// A range of the test octet's own (see addressOctet), above the blocks
	// the emulators of this binary take, so that benchmarks run side by
	// side in other checkouts do not share addresses.
	pool, err := engine.NewAddressPool(fmt.Sprintf("127.%d.%d.2", addressOctet(), base))
	if err != nil {
		b.Fatal(err)
	}
	ctx := ctxT(b, 10*time.Minute)
	var pids []int
	var primary engine.Endpoint
	var replicas []engine.Endpoint
	for i := range n {
		ep, err := pool.Allocate(6379)
		if err != nil {
			b.Fatal(err)
		}
		args := []string{"--bind", ep.Host, "--port", strconv.Itoa(ep.Port), "--dir", b.TempDir()}
		replica := groupSize > 1 && i%groupSize != 0
		if replica {
			args = append(args, "--replicaof", primary.Host, strconv.Itoa(primary.Port))
		} else {
			primary = ep
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := engine.WaitReady(ctx, ep, engine.Admin{}.Pings); err != nil {
			b.Fatal(err)
		}
		if replica {
			replicas = append(replicas, ep)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	// Waited for together: each primary's first sync waits out Redis's
	// default repl-diskless-sync-delay (5 s).
	for _, ep := range replicas {
		if err := engine.WaitReady(ctx, ep, engine.Admin{}.ReplicationLinkUp); err != nil {
			b.Fatal(err)
		}
	}
	return pids
}

// BenchmarkIdleCPUPerNode reports what an idle managed node costs in CPU —
// its redis-server plus its share of the emulator (health checks, endpoint
// forwarders) — against a bare redis-server of the same binary with its
// default configuration, as many of them, measured over the same window:
// managed/bare (goal ≤ 1.2). ELASTICACHE_LOCAL_BENCH_IDLE_GROUPS (default
// 10), ELASTICACHE_LOCAL_BENCH_IDLE_GROUP_SIZE (nodes per group, default 3;
// 1 leaves replication out, so the emulator's own share shows alone) and
// ELASTICACHE_LOCAL_BENCH_IDLE_WINDOW (default 10s) set the scale and the
// window, ELASTICACHE_LOCAL_BENCH_IDLE_ROTATION the reader endpoints'
// rotation (the emulator's default when unset); ELASTICACHE_LOCAL_BENCH_IDLE_CPUPROFILE=file writes a CPU profile
// of the emulator over the windows.
//
//	go test ./integration -run '^$' -bench IdleCPUPerNode -benchtime 1x
func BenchmarkIdleCPUPerNode(b *testing.B) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		b.Skip("needs /proc")
	}
	if testRuntime() != "process" {
		b.Skip("node CPU is read from the process runtime's pids")
	}
	groups := envInt("ELASTICACHE_LOCAL_BENCH_IDLE_GROUPS", 10)
	size := envInt("ELASTICACHE_LOCAL_BENCH_IDLE_GROUP_SIZE", 3)
	window := envDuration("ELASTICACHE_LOCAL_BENCH_IDLE_WINDOW", 10*time.Second)
	rotation := envDuration("ELASTICACHE_LOCAL_BENCH_IDLE_ROTATION", emulator.DefaultReaderEndpointRotation)
	e := startEmulatorWith(b, func(cfg *emulator.Config) { cfg.ReaderEndpointRotation = rotation })
	ctx := ctxT(b, 10*time.Minute)
	ids := make([]string, groups)
	for i := range ids {
		ids[i] = fmt.Sprintf("idle-%d", i)
		if _, err := e.client.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(ids[i]), ReplicationGroupDescription: aws.String("idle"),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(int32(size)), AutomaticFailoverEnabled: aws.Bool(size > 1),
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids {
		waitAvailable(b, e.client, id)
	}
	available := time.Now()
	var nodePIDs, primaryPIDs, replicaPIDs []int
	for _, v := range adminNodes(b, e.url) {
		if v.PID == 0 {
			b.Fatalf("no pid for %s", v.CacheClusterID)
		}
		nodePIDs = append(nodePIDs, v.PID)
		if v.Role == "replica" {
			replicaPIDs = append(replicaPIDs, v.PID)
		} else {
			primaryPIDs = append(primaryPIDs, v.PID)
		}
	}
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-idle", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	barePIDs := startBareRedis(b, rt.Binary(), len(nodePIDs), 1, 250)
	var topoPIDs []int // the same groups, bare
	if size > 1 {
		topoPIDs = startBareRedis(b, rt.Binary(), len(nodePIDs), size, 249)
	}

	// Idle means settled: the first rotation of each reader endpoint after
	// its group was made available (the create's own connections through
	// it count as use) is over before the window opens.
	if rotation < time.Minute { // a longer one is not due within the benchmark
		time.Sleep(time.Until(available.Add(2*rotation + time.Second)))
	}

	if path := os.Getenv("ELASTICACHE_LOCAL_BENCH_IDLE_CPUPROFILE"); path != "" {
		// What the emulator does while idle (the profiler's own ticks add
		// to the emulator's figure: leave it unset to measure).
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	var primaries, replicas, emu, bare, topo time.Duration
	b.ResetTimer()
	for range b.N {
		// The emulator's CPU is read right around the window, so the
		// reads of the nodes' figures in /proc (this process's work, not
		// the emulator's) stay out of it.
		p0, r0, b0, t0 := cpuOf(b, primaryPIDs), cpuOf(b, replicaPIDs), cpuOf(b, barePIDs), cpuOf(b, topoPIDs)
		e0 := selfCPU(b)
		time.Sleep(window) // the measurement window: nothing happens but idling
		e1 := selfCPU(b)
		p1, r1, b1, t1 := cpuOf(b, primaryPIDs), cpuOf(b, replicaPIDs), cpuOf(b, barePIDs), cpuOf(b, topoPIDs)
		primaries, replicas, emu, bare, topo = primaries+p1-p0, replicas+r1-r0, emu+e1-e0, bare+b1-b0, topo+t1-t0
	}
	b.StopTimer()
	perSecond := func(d time.Duration, n int) float64 {
		if n == 0 {
			return 0
		}
		return ms(d) / float64(n) / (window.Seconds() * float64(b.N))
	}
	nodes := primaries + replicas
	b.ReportMetric(perSecond(nodes, len(nodePIDs)), "node-ms/s")
	b.ReportMetric(perSecond(primaries, len(primaryPIDs)), "primary-ms/s")
	b.ReportMetric(perSecond(replicas, len(replicaPIDs)), "replica-ms/s")
	b.ReportMetric(perSecond(emu, len(nodePIDs)), "emulator-ms/s/node")
	b.ReportMetric(perSecond(bare, len(barePIDs)), "bare-ms/s")
	// All of it in cores: what the nodes and the emulator take of the
	// machine together (the goal for 300 nodes is under half a core).
	b.ReportMetric(float64(nodes+emu)/(window.Seconds()*float64(b.N))/1e9, "cores")
	if bare > 0 {
		b.ReportMetric(float64(nodes+emu)/float64(bare), "managed/bare")
	}
	// Against bare servers replicating the same way: what managing them
	// adds, replication's own cost (REPLCONF ACK every second, fixed in
	// Redis) left out on both sides.
	if topo > 0 {
		b.ReportMetric(perSecond(topo, len(topoPIDs)), "bare-replicated-ms/s")
		b.ReportMetric(float64(nodes+emu)/float64(topo), "managed/bare-replicated")
	}
}
