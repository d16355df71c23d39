package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
)

// writer writes key:i = i through an endpoint as fast as it can and
// records which writes were acknowledged and the longest time without an
// acknowledged write: the outage a client sees, whether its commands failed
// or its client library quietly waited and redialled.
type writer struct {
	// client is swapped by useClient while the writer runs.
	client atomic.Pointer[redis.Client]
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	acked    []int
	failures int
	lastErr  error
	outage   time.Duration // longest gap between acknowledged writes
	lastAck  time.Time
}

func startWriter(t testing.TB, addr string, port int32) *writer {
	return startWriterWith(t, &redis.Options{Addr: fmt.Sprintf("%s:%d", addr, port)})
}

// startWriterWith is startWriter with client options of one's own (TLS,
// a password); it sets the writer's short timeouts and single connection.
func startWriterWith(t testing.TB, opts *redis.Options) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(w.halt)
	w.useClient(t, opts)
	go w.run()
	return w
}

// useClient makes the writer go on through a new client of opts (with the
// writer's short timeouts and single connection), as an application moves
// its clients to TLS.
func (w *writer) useClient(t testing.TB, opts *redis.Options) {
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 200*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	opts.MaxRetries, opts.PoolSize = -1, 1
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() }) // after halt: cleanups run last-in first
	w.client.Store(c)
}

func (w *writer) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := w.client.Load().Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err()
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, i)
			if !w.lastAck.IsZero() {
				w.outage = max(w.outage, now.Sub(w.lastAck))
			}
			w.lastAck = now
		} else {
			w.failures++
			w.lastErr = err
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(time.Millisecond) // a failing client backs off a little
		}
	}
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// ackedCount is how many writes were acknowledged so far.
func (w *writer) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitProgress waits until n more writes are acknowledged.
func (w *writer) waitProgress(t testing.TB, n int, d time.Duration) {
	t.Helper()
	base := w.ackedCount()
	eventually(t, d, func() error {
		if got := w.ackedCount() - base; got < n {
			return fmt.Errorf("only %d writes acknowledged", got)
		}
		return nil
	})
}

// lost returns the acknowledged keys missing through c.
func (w *writer) lost(t testing.TB, c *redis.Client) []int {
	t.Helper()
	w.mu.Lock()
	acked := slices.Clone(w.acked)
	w.mu.Unlock()
	keys := make([]string, len(acked))
	number := make(map[string]int, len(acked))
	for i, k := range acked {
		keys[i] = fmt.Sprintf("key:%d", k)
		number[keys[i]] = k
	}
	var missing []int
	for _, k := range missingKeys(t, c, keys) {
		missing = append(missing, number[k])
	}
	return missing
}

// haGroup creates an available group with automatic failover.
func haGroup(t *testing.T, c *elasticache.Client, id string, nodes int32) types.ReplicationGroup {
	t.Helper()
	if _, err := c.CreateReplicationGroup(ctxT(t, 10*time.Second), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("ha"),
		// cache.t4g.medium: its maxmemory (148 MiB) holds the 64 MiB
		// TestFailoverBadInput writes.
		CacheNodeType: aws.String("cache.t4g.medium"), NumCacheClusters: aws.Int32(nodes),
		AutomaticFailoverEnabled: aws.Bool(true),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitAvailable(t, c, id)
	return describeGroup(t, c, id)
}

func primaryOf(g types.ReplicationGroup) string {
	for _, m := range g.NodeGroups[0].NodeGroupMembers {
		if aws.ToString(m.CurrentRole) == "primary" {
			return aws.ToString(m.CacheClusterId)
		}
	}
	return ""
}

// adminNodes reads the admin API's node view.
func adminNodes(t testing.TB, url string) map[string]emulator.NodeView {
	t.Helper()
	resp, err := http.Get(url + emulator.AdminNodesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var views []emulator.NodeView
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil {
		t.Fatal(err)
	}
	out := map[string]emulator.NodeView{}
	for _, v := range views {
		out[v.CacheClusterID] = v
	}
	return out
}

func adminFault(t testing.TB, url, cluster, action string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+emulator.AdminNodesPath+"/"+cluster+"/"+action, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(emulator.AdminHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("%s %s: HTTP %d", action, cluster, resp.StatusCode)
	}
}

// waitRecovered waits until the group is available again with a primary
// other than old, and every member (the failed one included) is a replica
// or primary with its link up.
func waitRecovered(t *testing.T, e *emu, id, old string) types.ReplicationGroup {
	t.Helper()
	var g types.ReplicationGroup
	eventually(t, 30*time.Second, func() error {
		g = describeGroup(t, e.client, id)
		if aws.ToString(g.Status) != "available" {
			return fmt.Errorf("group %s", aws.ToString(g.Status))
		}
		if p := primaryOf(g); p == old || p == "" {
			return fmt.Errorf("primary is still %q", p)
		}
		nodes := adminNodes(t, e.url)
		for _, m := range g.MemberClusters {
			v := nodes[m]
			if v.Status != "available" || (v.Role == "replica" && !v.LinkUp) || v.Role == "unreachable" {
				return fmt.Errorf("member %s: %+v", m, v)
			}
		}
		if nodes[old].Role != "replica" {
			return fmt.Errorf("the failed node %s is %q, want it back as a replica", old, nodes[old].Role)
		}
		return nil
	})
	return g
}

// unplannedFailover fails the primary with fail() under write load and
// checks the group heals: writes go on through the unchanged primary
// endpoint, a replica is primary, the failed node is back as a replica.
// reasons are how the failover and recovery events may say why the node
// was replaced (which check failed); one of them must be given.
func unplannedFailover(t *testing.T, reasons []string, fail func(e *emu, primary string)) {
	e := startEmulator(t)
	g := haGroup(t, e.client, "orders", 3)
	old := primaryOf(g)
	pep := g.NodeGroups[0].PrimaryEndpoint
	w := startWriter(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	w.waitProgress(t, 200, 10*time.Second)

	fail(e, old)
	g = waitRecovered(t, e, "orders", old)
	w.waitProgress(t, 200, 10*time.Second)
	w.halt()
	if got := g.NodeGroups[0].PrimaryEndpoint; aws.ToString(got.Address) != aws.ToString(pep.Address) || aws.ToInt32(got.Port) != aws.ToInt32(pep.Port) {
		t.Fatalf("primary endpoint moved from %v to %v", pep, got)
	}
	msgs := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "orders")
	// AWS's wording first, then why: which check failed, for how long. The
	// first of reasons the events give (a crash shows as either).
	reason := reasons[0]
	for _, r := range reasons {
		if strings.Contains(msgs, "failed its health checks: "+r) {
			reason = r
			break
		}
	}
	why := old + " failed its health checks: " + reason
	want := "Failover from primary node " + old + " to replica node " + primaryOf(g) + " completed: primary " + why
	if !strings.Contains(msgs, want) || !strings.Contains(msgs, "(failing for ") && !strings.Contains(msgs, "(at its first failed check)") {
		t.Fatalf("group events lack %q (failing for ... / at its first failed check):\n%s", want, msgs)
	}
	cmsgs := eventMessages(t, e.client, types.SourceTypeCacheCluster, old)
	if !strings.Contains(cmsgs, "Recovering cache nodes 0001: "+why) || !strings.Contains(cmsgs, "Finished recovery for cache nodes 0001: a new node started in ") {
		t.Fatalf("events of %s lack the recovery and its reason %q:\n%s", old, why, cmsgs)
	}
	// The failed server's log outlives its replacement (engine.LogKeeper).
	kept := engine.LogKeeper{Dir: filepath.Join(e.dataDir, engine.KeptLogsDir)}.KeptLog(adminNodes(t, e.url)[old].Node, 1)
	if b, err := os.ReadFile(kept); err != nil || !strings.Contains(string(b), "Ready to accept connections") {
		t.Fatalf("the failed node's log was not kept in %s: %v\n%s", kept, err, b)
	}
	// The repaired node resyncs: it holds what the new primary holds.
	newPrimary := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	rep := adminNodes(t, e.url)[old]
	repClient := redisClient(t, strings.Split(rep.Endpoint, ":")[0], aws.ToInt32(pep.Port))
	eventually(t, 10*time.Second, func() error {
		a, _ := newPrimary.DBSize(context.Background()).Result()
		b, _ := repClient.DBSize(context.Background()).Result()
		if a != b || a == 0 {
			return fmt.Errorf("primary has %d keys, the repaired replica %d", a, b)
		}
		return nil
	})
	t.Logf("longest write outage %v, %d failed writes, %d acknowledged writes lost of %d", w.outage, w.failures, len(w.lost(t, newPrimary)), w.ackedCount())
}

// TestFailoverAfterKill: the primary dies from outside the emulator (kill
// -9 of its process, or docker kill of its container), as a crash would.
func TestFailoverAfterKill(t *testing.T) {
	// The runtime reports the exit, or (docker, whose daemon takes a
	// moment) the node's own address refuses the check first.
	crashed := []string{"the runtime reports it not running", "nothing listens on its address any more: its server exited"}
	unplannedFailover(t, crashed, func(e *emu, primary string) { killFromOutside(t, e, primary) })
}

// killFromOutside kills a node the way a user or a crash would, without
// asking the emulator.
func killFromOutside(t testing.TB, e *emu, cluster string) {
	t.Helper()
	v := adminNodes(t, e.url)[cluster]
	if e.runtime == "docker" {
		if out, err := exec.Command("docker", "kill", containerOf(t, v.Node)).CombinedOutput(); err != nil {
			t.Fatalf("docker kill %s: %v\n%s", v.Node, err, out)
		}
		return
	}
	if v.PID == 0 {
		t.Fatalf("no pid for %s", cluster)
	}
	if err := syscall.Kill(v.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverAfterPause: the primary hangs (SIGSTOP through the admin API).
func TestFailoverAfterPause(t *testing.T) {
	unplannedFailover(t, []string{"no answer to "}, func(e *emu, primary string) { adminFault(t, e.url, primary, "pause") })
}

// TestTestFailoverLosesNoWrite: a planned failover under write load loses
// no acknowledged write.
func TestTestFailoverLosesNoWrite(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	g := haGroup(t, c, "orders", 3)
	old := primaryOf(g)
	pep := g.NodeGroups[0].PrimaryEndpoint
	w := startWriter(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	w.waitProgress(t, 500, 10*time.Second)

	out, err := c.TestFailover(ctxT(t, 10*time.Second), &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("orders"), NodeGroupId: aws.String("0001")})
	if err != nil {
		t.Fatalf("TestFailover: %v", err)
	}
	if got := aws.ToString(out.ReplicationGroup.Status); got != "modifying" {
		t.Fatalf("status after TestFailover = %q, want modifying", got)
	}
	g = waitRecovered(t, e, "orders", old)
	w.waitProgress(t, 500, 10*time.Second)
	w.halt()
	newPrimary := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	if lost := w.lost(t, newPrimary); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost in a planned failover (first %v)", len(lost), lost[:min(5, len(lost))])
	}
	msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "orders")
	first := strings.Index(msgs, "Test Failover API called for node group 0001")
	second := strings.Index(msgs, "Failover from primary node "+old+" to replica node "+primaryOf(g)+" completed")
	if first < 0 || second < first {
		t.Fatalf("events out of order or missing:\n%s", msgs)
	}
	t.Logf("%d writes acknowledged, none lost; longest outage %v", w.ackedCount(), w.outage)
}

// TestManualPromotion: ModifyReplicationGroup --primary-cluster-id.
func TestManualPromotion(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	if _, err := c.CreateReplicationGroup(ctxT(t, 10*time.Second), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("manual"), ReplicationGroupDescription: aws.String("m"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "manual")
	if _, err := c.ModifyReplicationGroup(ctxT(t, 10*time.Second), &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("manual"), PrimaryClusterId: aws.String("manual-003"), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatalf("promote: %v", err)
	}
	g := waitRecovered(t, e, "manual", "manual-001")
	if p := primaryOf(g); p != "manual-003" {
		t.Fatalf("primary = %s, want manual-003", p)
	}
	nodes := adminNodes(t, e.url)
	if nodes["manual-003"].Role != "primary" || nodes["manual-001"].Role != "replica" || nodes["manual-002"].Role != "replica" {
		t.Fatalf("roles as the nodes report them: %+v", nodes)
	}
}

// TestReplicaCountOnline: Increase/DecreaseReplicaCount with data intact.
func TestReplicaCountOnline(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	g := haGroup(t, c, "scale", 2)
	pep := g.NodeGroups[0].PrimaryEndpoint
	p := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	for i := range 1000 {
		if err := p.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
		ReplicationGroupId: aws.String("scale"), NewReplicaCount: aws.Int32(3), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatalf("increase: %v", err)
	}
	waitAvailable(t, c, "scale")
	g = describeGroup(t, c, "scale")
	if len(g.MemberClusters) != 4 {
		t.Fatalf("members after increase: %v", g.MemberClusters)
	}
	for _, m := range g.NodeGroups[0].NodeGroupMembers {
		rc := redisClient(t, aws.ToString(m.ReadEndpoint.Address), aws.ToInt32(m.ReadEndpoint.Port))
		if n, err := rc.DBSize(ctx).Result(); err != nil || n != 1000 {
			t.Fatalf("%s holds %d keys (%v), want 1000", aws.ToString(m.CacheClusterId), n, err)
		}
	}

	_, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
		ReplicationGroupId: aws.String("scale"), NewReplicaCount: aws.Int32(0), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", http.StatusBadRequest)
	if got := describeGroup(t, c, "scale"); len(got.MemberClusters) != 4 || aws.ToString(got.Status) != "available" {
		t.Fatalf("a rejected decrease changed the group: %v %s", got.MemberClusters, aws.ToString(got.Status))
	}
	if _, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
		ReplicationGroupId: aws.String("scale"), ReplicasToRemove: []string{"scale-002"}, ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatalf("decrease: %v", err)
	}
	waitAvailable(t, c, "scale")
	g = describeGroup(t, c, "scale")
	if slices.Contains(g.MemberClusters, "scale-002") || len(g.MemberClusters) != 3 {
		t.Fatalf("members after decrease: %v", g.MemberClusters)
	}
	if n, err := p.DBSize(ctx).Result(); err != nil || n != 1000 {
		t.Fatalf("primary holds %d keys after decrease", n)
	}
}

// TestFailoverBadInput: the AWS errors, with state unchanged.
func TestFailoverBadInput(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("plain"), ReplicationGroupDescription: aws.String("no failover"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "plain")
	haGroup(t, c, "ha", 2)
	before := snapshotState(t, ctx, c)

	_, err := c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("plain"), NodeGroupId: aws.String("0001")})
	expectError(t, err, "InvalidReplicationGroupState", 400)
	_, err = c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("ha"), NodeGroupId: aws.String("0002")})
	expectError(t, err, "NodeGroupNotFoundFault", 404)
	_, err = c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("ghost"), NodeGroupId: aws.String("0001")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)
	_, err = c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
		ReplicationGroupId: aws.String("ha"), NewReplicaCount: aws.Int32(0), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
		ReplicationGroupId: aws.String("ha"), ReplicasToRemove: []string{"ha-001"}, ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
		ReplicationGroupId: aws.String("ha"), NewReplicaCount: aws.Int32(6), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400)
	if after := snapshotState(t, ctx, c); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}

	// During another change (a snapshot of 64 MB keeps the group
	// "snapshotting" for a while) TestFailover is refused.
	p := primaryClient(t, c, "ha")
	val := strings.Repeat("x", 64<<10)
	for i := range 1024 {
		if err := p.Set(ctx, fmt.Sprintf("big:%d", i), val, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("ha"), SnapshotName: aws.String("busy")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("ha"), NodeGroupId: aws.String("0001")})
	expectError(t, err, "InvalidReplicationGroupState", 400)
	waitSnapshot(t, c, "busy")
	if g := describeGroup(t, c, "ha"); primaryOf(g) != "ha-001" {
		t.Fatalf("a refused TestFailover changed the primary to %s", primaryOf(g))
	}
}

// TestTestFailoverQuota: past the quota of calls in a rolling 24 hours,
// TestFailover answers APICallRateForCustomerExceeded.
func TestTestFailoverQuota(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.TestFailoverQuota = 1 })
	g := haGroup(t, e.client, "quota", 2)
	ctx := ctxT(t, time.Minute)
	if _, err := e.client.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("quota"), NodeGroupId: aws.String("0001")}); err != nil {
		t.Fatalf("first TestFailover: %v", err)
	}
	waitRecovered(t, e, "quota", primaryOf(g))
	_, err := e.client.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("quota"), NodeGroupId: aws.String("0001")})
	expectError(t, err, "APICallRateForCustomerExceeded", 400)
}

// TestRepairInPlaceWithoutFailover: without automatic failover a dead
// primary is replaced in place (same cluster and endpoint), empty as on AWS
// without persistence, and the replica follows it again.
func TestRepairInPlaceWithoutFailover(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("nofo"), ReplicationGroupDescription: aws.String("no failover"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "nofo")
	g := describeGroup(t, c, "nofo")
	pep := g.NodeGroups[0].PrimaryEndpoint
	p := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	if err := p.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	adminFault(t, e.url, "nofo-001", "kill")
	eventually(t, 20*time.Second, func() error {
		msgs := eventMessages(t, c, types.SourceTypeCacheCluster, "nofo-001")
		if !strings.Contains(msgs, "Finished recovery for cache nodes 0001") {
			return fmt.Errorf("not recovered yet:\n%s", msgs)
		}
		if g := describeGroup(t, c, "nofo"); aws.ToString(g.Status) != "available" || primaryOf(g) != "nofo-001" {
			return fmt.Errorf("group %s, primary %s", aws.ToString(g.Status), primaryOf(g))
		}
		return nil
	})
	if err := p.Set(ctx, "after", "1", 0).Err(); err != nil {
		t.Fatalf("write through the primary endpoint after repair: %v", err)
	}
	if n, err := p.Exists(ctx, "before").Result(); err != nil || n != 0 {
		t.Fatalf("the repaired primary should come back empty: exists(before)=%d %v", n, err)
	}
	replica := adminNodes(t, e.url)["nofo-002"]
	rc := redisClient(t, strings.Split(replica.Endpoint, ":")[0], aws.ToInt32(pep.Port))
	eventually(t, 10*time.Second, func() error {
		if v, err := rc.Get(ctx, "after").Result(); err != nil || v != "1" {
			return fmt.Errorf("replica has after=%q (%v)", v, err)
		}
		return nil
	})
}
