package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// The TLS restart tests' node address ranges, of their own (see
// restart_crash_test.go for the others').
const (
	tlsGracefulAddressBase = "127.0.212.2"
	tlsKillAddressEnv      = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.214.2"
	tlsRotateAddressEnv    = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.216.2"
)

// TestTLSRestartGraceful: after Shutdown and a Start on the same data dir,
// the TLS group with its rotated AUTH token and the TLS group with a user
// group come back: the same CA (the client's pool of before verifies
// them), the current token only, the reader still read-only, the data of
// before, and Describe as before.
func TestTLSRestartGraceful(t *testing.T) {
	cfg := testConfig(t)
	cfg.AddressBase = tlsGracefulAddressBase
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := newInProcess(t, cfg)
	srv, err := p.start(nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := newClient(srv.URL(), "us-east-1")
	f := setupTLSRestart(t, c, srv.URL())

	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if left := nodeServers(t, cfg.DataDir, true); len(left) > 0 {
		t.Fatalf("node servers still running after Shutdown: %v", left)
	}
	begin := time.Now()
	if srv, err = p.start(nil); err != nil {
		t.Fatalf("restart: %v", err)
	}
	trSettled(t, c, srv.URL(), cfg.DataDir)
	t.Logf("%s runtime: everything settled %v after the restart", testRuntime(), time.Since(begin).Round(time.Millisecond))
	f.check(t, c, tokenB, true, true)
}

// TestTLSRestartAfterKill9: after a kill -9 of the binary, with the nodes
// running on, the next start adopts the TLS nodes (the same processes or
// containers, a TLS connection opened before still open), reaches them
// (its health checks arrive, a TestFailover of each group works over
// TLS), and tokens and users are what they were.
func TestTLSRestartAfterKill9(t *testing.T) {
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	cmd := startBinary(t, bin, dataDir, port, tlsKillAddressEnv)
	f := setupTLSRestart(t, c, url)
	instances, running := recordedInstances(t, url), runningInstances(t, dataDir)
	if bad := orphans(t, url, dataDir); bad != "" {
		t.Fatalf("before the kill: %s", bad)
	}
	// A TLS connection straight to tr-auth's primary node (a group
	// endpoint may be served by the emulator itself, which the kill ends).
	opts := tlsOptions(nodeEndpoint(t, c, primaryOfGroup(t, c, trAuthGroup)), f.pool, tokenB)
	opts.PoolSize = 1
	direct := redis.NewClient(opts)
	t.Cleanup(func() { direct.Close() })
	conn := direct.Conn()
	t.Cleanup(func() { conn.Close() })
	connID, err := conn.ClientID(ctxT(t, 5*time.Second)).Result()
	if err != nil {
		t.Fatal(err)
	}

	killBinary(t, cmd)
	begin := time.Now()
	cmd = startBinary(t, bin, dataDir, port, tlsKillAddressEnv)
	watch := watchStatuses(c)
	trSettled(t, c, url, dataDir)
	t.Logf("%s runtime: everything settled %v after the restart", testRuntime(), time.Since(begin).Round(time.Millisecond))
	if got, err := conn.ClientID(ctxT(t, 5*time.Second)).Result(); err != nil || got != connID {
		t.Errorf("the TLS connection opened before the kill: CLIENT ID %d (%v), want %d", got, err, connID)
	}
	sameNodes := func(when string) {
		t.Helper()
		if after := recordedInstances(t, url); !maps.Equal(after, instances) {
			t.Errorf("nodes %s %v, want those before the kill %v", when, after, instances)
		}
		if after := runningInstances(t, dataDir); !maps.Equal(after, running) {
			t.Errorf("node servers %s %v, want those before the kill %v", when, slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(running)))
		}
	}
	sameNodes("right after the restart")
	// The health monitor reaches the adopted TLS nodes (its PINGs arrive)
	// and takes none of them for dead.
	for _, id := range []string{trAuthGroup, trRBACGroup} {
		for _, m := range describeGroup(t, c, id).MemberClusters {
			waitHealthChecks(t, trGroupClient(t, id, nodeEndpoint(t, c, m), f.pool, tokenB), 1)
		}
	}
	sameNodes("after health checks")
	polls, first := watch.stop()
	t.Logf("%d polls after the restart; first transitional status: %q", polls, first)
	f.check(t, c, tokenB, true, true)

	// A failover of each group works over TLS after the restart, losing
	// no acknowledged write, and the nodes keep their users.
	for _, id := range []string{trAuthGroup, trRBACGroup} {
		g := describeGroup(t, c, id)
		pass := tokenB
		if id == trRBACGroup {
			pass = trDefaultPass
		}
		w := startWriterWith(t, tlsOptions(g.NodeGroups[0].PrimaryEndpoint, f.pool, pass))
		w.waitProgress(t, 100, 10*time.Second)
		if _, err := c.TestFailover(ctxT(t, 10*time.Second), &elasticache.TestFailoverInput{
			ReplicationGroupId: aws.String(id), NodeGroupId: aws.String("0001")}); err != nil {
			t.Fatalf("TestFailover %s: %v", id, err)
		}
		eventually(t, time.Minute, func() error {
			now := describeGroup(t, c, id)
			if p := primaryOf(now); p == primaryOf(g) || aws.ToString(now.Status) != "available" {
				return fmt.Errorf("%s: primary %s, %s", id, p, aws.ToString(now.Status))
			}
			return nil
		})
		w.waitProgress(t, 100, 30*time.Second)
		w.halt()
		if lost := w.lost(t, trGroupClient(t, id, g.NodeGroups[0].PrimaryEndpoint, f.pool, tokenB)); len(lost) > 0 {
			t.Errorf("%s: %d acknowledged writes lost in the failover over TLS: %v", id, len(lost), lost[:min(10, len(lost))])
		}
	}
	trSettled(t, c, url, dataDir)
	f.check(t, c, tokenB, true, false)
	stopBinary(t, cmd, dataDir)
}

// TestTLSRestartDuringRotation kills the binary (kill -9) right after a
// ModifyReplicationGroup changing the AUTH token (ROTATE, then SET, twice;
// tr-solo's too, by ModifyCacheCluster) and a ModifyUserGroup removing or adding back the read-only user, then
// starts it again. In the first two rounds the kill follows the calls at
// once; in the last two one group's replica is paused first, so the kill
// lands while that group's push has reached its primary but not its
// replica (and the other change waits behind it). After each restart both
// groups are available with nothing pending, every node accepts exactly
// the tokens the records say (the old and the new one after a ROTATE, the
// new one after a SET) and has exactly the user group's users, no node
// server runs without a record, and Describe shows what the modify
// answered. Once a group or cluster shows available again its nodes have
// the new token.
func TestTLSRestartDuringRotation(t *testing.T) {
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	// A paused replica is not taken for dead while a round lasts.
	env := []string{tlsRotateAddressEnv, "ELASTICACHE_LOCAL_HEALTH_MISSES=300"}
	cmd := startBinary(t, bin, dataDir, port, env...)
	f := setupTLSRestart(t, c, url)

	rounds := []struct {
		strategy types.AuthTokenUpdateStrategyType
		token    string
		accepted []string // besides token
		// paused is the group whose replica is paused during the round.
		paused string
	}{
		{types.AuthTokenUpdateStrategyTypeRotate, tokenC, []string{tokenB}, ""},
		{types.AuthTokenUpdateStrategyTypeSet, tokenC, nil, ""},
		{types.AuthTokenUpdateStrategyTypeRotate, tokenD, []string{tokenC}, trAuthGroup},
		{types.AuthTokenUpdateStrategyTypeSet, tokenD, nil, trRBACGroup},
	}
	reader, current := true, tokenB
	for i, round := range rounds {
		ctx := ctxT(t, 10*time.Second)
		modifyToken := func() {
			out, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String(trAuthGroup),
				AuthToken: aws.String(round.token), AuthTokenUpdateStrategy: round.strategy, ApplyImmediately: aws.Bool(true)})
			if err != nil {
				t.Fatalf("round %d: %s: %v", i+1, round.strategy, err)
			}
			f.described[trAuthGroup] = trSecurity(*out.ReplicationGroup)
			f.described[trSolo] = trModifySolo(t, c, round.token, round.strategy)
		}
		modifyUsers := func() {
			change := &elasticache.ModifyUserGroupInput{UserGroupId: aws.String(trUserGroup)}
			if reader {
				change.UserIdsToRemove = []string{"tr-reader"}
			} else {
				change.UserIdsToAdd = []string{"tr-reader"}
			}
			if _, err := c.ModifyUserGroup(ctx, change); err != nil {
				t.Fatalf("round %d: ModifyUserGroup: %v", i+1, err)
			}
		}
		var paused string
		if round.paused != "" {
			paused = trReplicaOf(t, c, round.paused)
			adminFault(t, url, paused, "pause")
		}
		pausedInst := recordedInstances(t, url)[paused]
		var pausedEP *types.Endpoint
		if paused != "" {
			pausedEP = nodeEndpoint(t, c, paused)
		}
		// The change of the paused group first, waiting until its
		// primary has it: its push then hangs on the paused replica.
		if round.paused == trRBACGroup {
			modifyUsers()
			trWaitPrimary(t, c, f, trRBACGroup, func(node *types.Endpoint) bool {
				return rbacReply(rbacAs(t, node, f.pool, "reader", trReaderPass), "PING") == map[bool]string{true: "WRONGPASS", false: "OK"}[reader]
			})
			modifyToken()
		} else {
			modifyToken()
			if round.paused == trAuthGroup {
				trWaitPrimary(t, c, f, trAuthGroup, func(node *types.Endpoint) bool { return pingWith(node, f.pool, round.token) == nil })
			}
			modifyUsers()
		}
		killBinary(t, cmd)
		t.Logf("round %d (%s): unfinished at the kill: %s", i+1, round.strategy, trRecordedOperations(t, dataDir))
		if paused != "" {
			trResume(t, pausedInst)
			t.Logf("round %d: the paused replica %s, resumed, before the restart has %s", i+1, paused, trReplicaState(t, f, round.paused, pausedEP, round.token, reader))
		}
		reader, current = !reader, round.token

		begin := time.Now()
		cmd = startBinary(t, bin, dataDir, port, env...)
		watch := trWatchPending(c)
		// Once the group shows available, as the SDK's waiter sees it,
		// its token change is on every node.
		waitAvailable(t, c, trAuthGroup)
		for _, m := range describeGroup(t, c, trAuthGroup).MemberClusters {
			if err := pingWith(nodeEndpoint(t, c, m), f.pool, round.token); err != nil {
				t.Errorf("round %d: %s is available but its member %s refuses the new token: %v", i+1, trAuthGroup, m, err)
			}
		}
		solo := waitClusterAvailable(t, c, trSolo)
		if err := pingWith(solo.CacheNodes[0].Endpoint, f.pool, round.token); err != nil {
			t.Errorf("round %d: %s is available but refuses the new token: %v", i+1, trSolo, err)
		}
		trSettled(t, c, url, dataDir)
		if polls, bad := watch.stop(); bad != "" {
			t.Errorf("round %d: after the restart, %s (of %d polls)", i+1, bad, polls)
		}
		t.Logf("round %d (%s): everything settled %v after the restart", i+1, round.strategy, time.Since(begin).Round(time.Millisecond))
		f.check(t, c, current, reader, true, round.accepted...)
		if t.Failed() {
			t.FailNow()
		}
	}
	stopBinary(t, cmd, dataDir)
}

// trWatchPending watches tr-auth and tr-solo for one shown available
// while its AUTH token change is still pending (its nodes may not all have
// the token yet).
func trWatchPending(c *elasticache.Client) *statusWatch {
	return watchPolls(func(ctx context.Context) string {
		groups, gerr := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(trAuthGroup)})
		if gerr == nil {
			g := groups.ReplicationGroups[0]
			if p := g.PendingModifiedValues; aws.ToString(g.Status) == "available" && p != nil && p.AuthTokenStatus != "" {
				return fmt.Sprintf("%s was available with AuthTokenStatus %s", trAuthGroup, p.AuthTokenStatus)
			}
		}
		clusters, cerr := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(trSolo)})
		if cerr == nil {
			cl := clusters.CacheClusters[0]
			if p := cl.PendingModifiedValues; aws.ToString(cl.CacheClusterStatus) == "available" && p != nil && p.AuthTokenStatus != "" {
				return fmt.Sprintf("%s was available with AuthTokenStatus %s", trSolo, p.AuthTokenStatus)
			}
		}
		return ""
	})
}

// trReplicaOf is a member of a group other than its primary.
func trReplicaOf(t *testing.T, c *elasticache.Client, id string) string {
	t.Helper()
	g := describeGroup(t, c, id)
	for _, m := range g.MemberClusters {
		if m != primaryOf(g) {
			return m
		}
	}
	t.Fatalf("group %s has no replica", id)
	return ""
}

// trWaitPrimary waits until the node of a group's primary satisfies has.
func trWaitPrimary(t *testing.T, c *elasticache.Client, f *tlsFixture, id string, has func(*types.Endpoint) bool) {
	t.Helper()
	node := nodeEndpoint(t, c, primaryOfGroup(t, c, id))
	eventually(t, 10*time.Second, func() error {
		if !has(node) {
			return fmt.Errorf("the primary of %s does not have the change yet", id)
		}
		return nil
	})
}

// trResume resumes a node paused through the admin API while no emulator
// runs: SIGCONT to its process group, or docker unpause.
func trResume(t *testing.T, inst string) {
	t.Helper()
	if testRuntime() == "docker" {
		if out, err := exec.Command("docker", "unpause", inst).CombinedOutput(); err != nil {
			t.Fatalf("docker unpause %s: %v\n%s", inst, err, out)
		}
		return
	}
	var pid int
	if _, err := fmt.Sscan(inst, &pid); err != nil || pid <= 0 {
		t.Fatalf("no process id for the paused node: %q", inst)
	}
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %d: %v", pid, err)
	}
}

// trReplicaState says whether a replica paused during a round had the
// round's change when it was resumed: the new token (tr-auth) or the
// reader's new state (tr-rbac; reader is whether it was there before).
func trReplicaState(t *testing.T, f *tlsFixture, group string, node *types.Endpoint, token string, reader bool) string {
	t.Helper()
	if group == trAuthGroup {
		return fmt.Sprintf("the new token: %v", pingWith(node, f.pool, token))
	}
	return fmt.Sprintf("the reader (there before: %v): %s", reader, rbacReply(rbacAs(t, node, f.pool, "reader", trReaderPass), "PING"))
}

// trRecordedOperations lists the operations the state files of dataDir
// record as unfinished ("kind target, ...").
func trRecordedOperations(t *testing.T, dataDir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "state", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Operations []state.Operation `json:"operations"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, op := range rec.Operations {
			ops = append(ops, op.Kind+" "+op.Target)
		}
	}
	if len(ops) == 0 {
		return "nothing"
	}
	return strings.Join(ops, ", ")
}
