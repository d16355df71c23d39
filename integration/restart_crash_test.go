package integration

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// Node address ranges of the binaries of these tests, of their own: the
// per-emulator blocks of the in-process tests count up from 127.0.101 and
// the soak test starts at 127.0.240.
const (
	adoptAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.232.2"
	opsAddressEnv   = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.234.2"
)

// stopBinary stops the emulator binary with SIGTERM and checks that it
// exits cleanly and that no node server of dataDir runs afterwards.
func stopBinary(t *testing.T, cmd *exec.Cmd, dataDir string) {
	t.Helper()
	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	t.Logf("SIGTERM stop took %v", time.Since(begin).Round(time.Millisecond))
	if left := nodeServers(t, dataDir, true); len(left) > 0 {
		t.Errorf("node servers of the data dir still running after the SIGTERM stop: %v", left)
	}
}

// killBinary kills the emulator binary with SIGKILL.
func killBinary(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// TestRestartAfterKill9AdoptsNodes: after a kill -9 of the binary the next
// start on the same data dir adopts the running nodes: the same processes
// (or containers), their data, a client connection opened straight to a
// node before the kill still open, every resource as it was and available
// at every poll from the first one, no node server without a record.
func TestRestartAfterKill9AdoptsNodes(t *testing.T) {
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	ctx := ctxT(t, 10*time.Minute)

	cmd := startBinary(t, bin, dataDir, port, adoptAddressEnv)
	set := createRestartResources(t, c, 10_000)
	before := captureWorld(t, c)
	instances := recordedInstances(t, url)
	running := runningInstances(t, dataDir)
	if bad := orphans(t, url, dataDir); bad != "" {
		t.Fatalf("before the kill: %s", bad)
	}

	// A connection straight to rs-c's node, one connection (CLIENT ID
	// tells it is the same one after the restart).
	ep := waitClusterAvailable(t, c, "rs-c").CacheNodes[0].Endpoint
	direct := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port)),
		DialTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { direct.Close() })
	conn := direct.Conn()
	t.Cleanup(func() { conn.Close() })
	connID, err := conn.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx, "before-kill", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// A connection through rs-a's reader endpoint: on the process runtime
	// a replica itself accepted it, so it outlives the emulator too.
	rsA := describeGroup(t, c, "rs-a")
	reader := rsA.NodeGroups[0].ReaderEndpoint
	rconn, _, err := readerReaches(ctx, reader, memberRunIDs(t, rsA))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rconn.Close() })
	readerConnID, err := rconn.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}

	killBinary(t, cmd)
	begin := time.Now()
	cmd = startBinary(t, bin, dataDir, port, adoptAddressEnv)
	watch := watchStatuses(c)
	t.Logf("%s runtime: the restart after kill -9 served after %v", testRuntime(), time.Since(begin).Round(time.Millisecond))

	if got, err := conn.ClientID(ctx).Result(); err != nil || got != connID {
		t.Errorf("the connection opened before the kill: CLIENT ID %d (%v), want %d (the same connection)", got, err, connID)
	}
	if got, err := conn.Get(ctx, "before-kill").Result(); err != nil || got != "kept" {
		t.Errorf("GET before-kill on the connection opened before the kill = %q (%v)", got, err)
	}
	if err := conn.Set(ctx, "after-restart", "1", 0).Err(); err != nil {
		t.Errorf("SET on the connection opened before the kill: %v", err)
	}
	if err := conn.Del(ctx, "before-kill", "after-restart").Err(); err != nil {
		t.Errorf("DEL on the connection opened before the kill: %v", err)
	}
	if testRuntime() == "process" {
		if got, err := rconn.ClientID(ctx).Result(); err != nil || got != readerConnID {
			t.Errorf("the connection through the reader endpoint opened before the kill: CLIENT ID %d (%v), want %d", got, err, readerConnID)
		}
	}
	// The reader endpoint reaches a replica, never the primary, after the
	// restart as before.
	members := memberRunIDs(t, rsA)
	reached := 0
	eventually(t, 10*time.Second, func() error {
		rc, m, err := readerReaches(ctx, reader, members)
		if err != nil {
			return err // a connect in the moment the address moves on
		}
		rc.Close()
		if m == primaryOf(rsA) {
			t.Fatalf("the reader endpoint reaches the primary %s after the restart", m)
		}
		if reached++; reached < 3 {
			return fmt.Errorf("reached %d times", reached)
		}
		return nil
	})
	sameNodes := func(when string) {
		t.Helper()
		if after := recordedInstances(t, url); !maps.Equal(after, instances) {
			t.Errorf("nodes %s %v, want the same processes/containers as before the kill %v", when, after, instances)
		}
		if after := runningInstances(t, dataDir); !maps.Equal(after, running) {
			t.Errorf("node servers running %s %v, want those before the kill %v", when, slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(running)))
		}
	}
	sameNodes("right after the restart")
	// Once the health monitor has looked at the adopted nodes, they are
	// still the same: a node it took for dead and replaced would show.
	waitHealthChecks(t, redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port)), 1)
	sameNodes("after a health check")
	if bad := orphans(t, url, dataDir); bad != "" {
		t.Errorf("after the restart: %s", bad)
	}
	if added := compareWorlds(t, before, captureWorld(t, c)); len(added) > 0 {
		t.Logf("events added by the restart:\n%s", strings.Join(added, "\n"))
	}
	checkRestartData(t, c, set)
	polls, first := watch.stop()
	if first != "" {
		t.Errorf("after the restart a poll saw a transitional status: %s", first)
	}
	t.Logf("%d polls after the restart, every one all available: %v", polls, first == "")
	stopBinary(t, cmd, dataDir)
}

// TestRestartDuringOperations kills the binary (kill -9) right after each
// of these calls returned and restarts it: CreateReplicationGroup,
// CreateSnapshot of a group holding ELASTICACHE_LOCAL_TEST_SNAPSHOT_MB
// megabytes (default 50), TestFailover, IncreaseReplicaCount and
// DecreaseReplicaCount. After every restart nothing stays in a
// transitional status, no node server runs without a record, and the
// operation's end is what AWS would show: the create finished, the
// snapshot available (its data restores) or failed with an event, one
// primary after the failover, a consistent member list whose nodes run.
func TestRestartDuringOperations(t *testing.T) {
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	ctx := ctxT(t, 20*time.Minute)
	cmd := startBinary(t, bin, dataDir, port, opsAddressEnv)

	restart := func(step string) {
		t.Helper()
		killBinary(t, cmd)
		begin := time.Now()
		cmd = startBinary(t, bin, dataDir, port, opsAddressEnv)
		waitSettled(t, c, 3*time.Minute)
		t.Logf("%s: everything settled %v after the restart", step, time.Since(begin).Round(time.Millisecond))
		eventually(t, 30*time.Second, func() error {
			if bad := orphans(t, url, dataDir); bad != "" {
				return errors.New(bad)
			}
			return nil
		})
	}

	// (1) An interrupted create finishes.
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("op-create"), ReplicationGroupDescription: aws.String("interrupted create"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	restart("create")
	if n := consistentGroup(t, c, url, "op-create"); n != 3 {
		t.Errorf("the interrupted create of op-create has %d members, want 3", n)
	}

	// (2) An interrupted snapshot becomes available or failed with an event.
	mb := envInt("ELASTICACHE_LOCAL_TEST_SNAPSHOT_MB", 50)
	// A node type whose maxmemory (627 MiB) holds the data written.
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("op-snap"), NumCacheClusters: aws.Int32(1),
		CacheNodeType: aws.String("cache.r7g.large")})
	fillMegabytes(t, primaryClient(t, c, "op-snap"), mb)
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("op-snap"), SnapshotName: aws.String("op-snap-1")}); err != nil {
		t.Fatal(err)
	}
	restart("snapshot")
	switch st := snapshotStatuses(t, c)["op-snap-1"]; st {
	case "available":
		t.Logf("the interrupted snapshot of %d MB completed", mb)
		restoreFrom(t, c, "op-snap-restored", "op-snap-1", mb)
	case "failed":
		msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "op-snap")
		if !strings.Contains(msgs, "op-snap-1") || !strings.Contains(strings.ToLower(msgs), "fail") {
			t.Errorf("the interrupted snapshot failed without an event saying so; events of op-snap:\n%s", msgs)
		}
		t.Logf("the interrupted snapshot of %d MB failed", mb)
	default:
		t.Errorf("the interrupted snapshot op-snap-1 is %q", st)
	}
	if n, err := primaryClient(t, c, "op-snap").DBSize(ctx).Result(); err != nil || n != int64(mb) {
		t.Errorf("op-snap holds %d keys (%v) after the restart, want %d", n, err, mb)
	}

	// (3) An interrupted failover ends with one primary.
	haGroup(t, c, "op-ha", 3)
	pc := primaryClient(t, c, "op-ha")
	fill(t, pc, 1000)
	if n, err := pc.Wait(ctx, 2, 10*time.Second).Result(); err != nil || n != 2 {
		t.Fatalf("WAIT for both replicas: %d (%v)", n, err)
	}
	if _, err := c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("op-ha"), NodeGroupId: aws.String("0001")}); err != nil {
		t.Fatal(err)
	}
	restart("failover")
	consistentGroup(t, c, url, "op-ha")
	expectKeys(t, primaryClient(t, c, "op-ha"), 1000)

	// (4) and (5): interrupted replica count changes.
	for _, step := range []struct {
		name     string
		call     func() error
		was, now int
	}{
		{"increase", func() error {
			_, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{ReplicationGroupId: aws.String("op-ha"),
				NewReplicaCount: aws.Int32(3), ApplyImmediately: aws.Bool(true)})
			return err
		}, 3, 4},
		{"decrease", func() error {
			_, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{ReplicationGroupId: aws.String("op-ha"),
				NewReplicaCount: aws.Int32(1), ApplyImmediately: aws.Bool(true)})
			return err
		}, 0, 2},
	} {
		was := consistentGroup(t, c, url, "op-ha")
		if step.was != 0 && was != step.was {
			t.Fatalf("%s: op-ha has %d members before, want %d", step.name, was, step.was)
		}
		if err := step.call(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		restart(step.name)
		n := consistentGroup(t, c, url, "op-ha")
		if n != was && n != step.now {
			t.Errorf("%s interrupted: op-ha has %d members, want %d (not done) or %d (done)", step.name, n, was, step.now)
		}
		t.Logf("%s interrupted: op-ha has %d members (was %d)", step.name, n, was)
		expectKeys(t, primaryClient(t, c, "op-ha"), 1000)
	}
	stopBinary(t, cmd, dataDir)
}

// consistentGroup checks a group after a restart and returns its member
// count: available; the same members in MemberClusters, its node group and
// DescribeCacheClusters, every one available; exactly one primary, which
// the nodes themselves agree on (one node says primary, every other one is
// a replica with its link up) and which the primary endpoint reaches.
func consistentGroup(t *testing.T, c *elasticache.Client, url, id string) int {
	t.Helper()
	g, members := consistentMembers(t, c, url, id)
	pep := g.NodeGroups[0].PrimaryEndpoint
	role, err := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port)).Do(ctxT(t, 10*time.Second), "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("group %s: ROLE through the primary endpoint = %v (%v), want master", id, role, err)
	}
	return len(members)
}

// consistentMembers is consistentGroup without the ROLE through the
// primary endpoint (a plaintext client's; TLS groups check it their
// way): it returns the group and its sorted members.
func consistentMembers(t *testing.T, c *elasticache.Client, url, id string) (types.ReplicationGroup, []string) {
	t.Helper()
	g := describeGroup(t, c, id)
	if s := aws.ToString(g.Status); s != "available" {
		t.Fatalf("group %s is %s", id, s)
	}
	members := slices.Sorted(slices.Values(g.MemberClusters))
	var listed []string
	primaries := 0
	for _, m := range g.NodeGroups[0].NodeGroupMembers {
		listed = append(listed, aws.ToString(m.CacheClusterId))
		if aws.ToString(m.CurrentRole) == "primary" {
			primaries++
		}
	}
	sort.Strings(listed)
	out, err := c.DescribeCacheClusters(ctxT(t, 10*time.Second), &elasticache.DescribeCacheClustersInput{MaxRecords: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	var clusters []string
	for _, cl := range out.CacheClusters {
		if aws.ToString(cl.ReplicationGroupId) != id {
			continue
		}
		clusters = append(clusters, aws.ToString(cl.CacheClusterId))
		if s := aws.ToString(cl.CacheClusterStatus); s != "available" {
			t.Errorf("group %s: member %s is %s", id, aws.ToString(cl.CacheClusterId), s)
		}
	}
	sort.Strings(clusters)
	if !slices.Equal(members, listed) || !slices.Equal(members, clusters) {
		t.Errorf("group %s: MemberClusters %v, node group members %v, clusters of the group %v", id, members, listed, clusters)
	}
	if primaries != 1 {
		t.Errorf("group %s lists %d primaries", id, primaries)
	}
	primary := primaryOf(g)
	eventually(t, 30*time.Second, func() error {
		nodes := adminNodes(t, url)
		for _, m := range members {
			v, ok := nodes[m]
			switch {
			case !ok:
				return fmt.Errorf("group %s: member %s has no node", id, m)
			case v.Status != "available":
				return fmt.Errorf("group %s: node of %s is %s", id, m, v.Status)
			case m == primary && v.Role != "primary":
				return fmt.Errorf("group %s: the listed primary %s says %s", id, m, v.Role)
			case m != primary && (v.Role != "replica" || !v.LinkUp):
				return fmt.Errorf("group %s: replica %s says %s, link up %v", id, m, v.Role, v.LinkUp)
			}
		}
		return nil
	})
	return g, members
}

// fillMegabytes writes mb values of 1 MiB (keys blob:0...) through c,
// pipelined. Each value is random bytes (which an RDB cannot compress)
// under its own key prefix.
func fillMegabytes(t *testing.T, c *redis.Client, mb int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Minute)
	random := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(random)
	begin := time.Now()
	for start := 0; start < mb; start += 16 {
		pipe := c.Pipeline()
		for i := start; i < min(start+16, mb); i++ {
			v := slices.Clone(random)
			copy(v, fmt.Sprintf("blob-%08d", i))
			pipe.Set(ctx, fmt.Sprintf("blob:%d", i), v, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("writing %d MB: %v", mb, err)
		}
	}
	t.Logf("wrote %d MB in %v", mb, time.Since(begin).Round(time.Millisecond))
}
