package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine/docker"
)

// What users do to a node (long scripts, a password or a disabled default
// user) must not make the emulator take it for dead: it would kill it and,
// without a replica, restart it empty.

// busyScript keeps the server busy for ARGV[1] microseconds.
const busyScript = `local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
repeat
	local t = redis.call('TIME')
until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
return 1`

// nodeInstance identifies the running process or container of a cluster's
// node: a replaced node has another one.
func nodeInstance(t testing.TB, e *emu, cluster string) string {
	t.Helper()
	v, ok := adminNodes(t, e.url)[cluster]
	if !ok {
		t.Fatalf("no node for %s", cluster)
	}
	if e.runtime == "docker" {
		return containerOf(t, v.Node)
	}
	if v.PID == 0 {
		t.Fatalf("no pid for %s", cluster)
	}
	return strconv.Itoa(v.PID)
}

// containerOf returns the id of the running container of a node, found by
// its label as a user would with docker ps.
func containerOf(t testing.TB, node string) string {
	t.Helper()
	id, err := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "label="+docker.LabelNodeName+"="+node).Output()
	if err != nil || len(strings.TrimSpace(string(id))) == 0 {
		t.Fatalf("no container for node %s: %v", node, err)
	}
	return strings.TrimSpace(string(id))
}

// pingsServed is how many PINGs the node has received (answered or refused
// with an error), from INFO commandstats.
func pingsServed(ctx context.Context, c *redis.Client) (int, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		stats, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_ping:")
		if !ok {
			continue
		}
		n := 0
		for _, kv := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "calls" || k == "rejected_calls" || k == "failed_calls" {
				x, _ := strconv.Atoi(v)
				n += x
			}
		}
		return n, nil
	}
	return 0, nil
}

// waitHealthChecks waits until the node behind c has received n more PINGs
// (the health monitor's checks) than when called, so that a test knows the
// monitor had every chance to act on what the test did before.
func waitHealthChecks(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	start, err := pingsServed(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		got, err := pingsServed(ctx, c)
		if err != nil {
			return err
		}
		if got-start < n {
			return fmt.Errorf("%d health checks so far, want %d", got-start, n)
		}
		return nil
	})
}

// fill writes n keys through c (expectKeys checks them).
func fill(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(context.Background(), "key:"+strconv.Itoa(i), i, 0)
	}
	if _, err := pipe.Exec(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// expectKeys checks that the node behind c holds the n keys fill wrote.
func expectKeys(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	got, err := c.DBSize(ctxT(t, 10*time.Second)).Result()
	if err != nil || got != int64(n) {
		t.Fatalf("DBSIZE = %d (%v), want %d: the node lost its keys", got, err, n)
	}
}

// expectNotRecovered checks that the clusters had no recovery event.
func expectNotRecovered(t *testing.T, e *emu, clusters ...string) {
	t.Helper()
	for _, cl := range clusters {
		if msgs := eventMessages(t, e.client, types.SourceTypeCacheCluster, cl); strings.Contains(msgs, "Recovering cache nodes") {
			t.Fatalf("%s was recovered (replaced) though it was alive:\n%s", cl, msgs)
		}
	}
}

// standaloneWithKeys creates a one-node cluster holding n keys and returns a
// client on it and the identity of its node.
func standaloneWithKeys(t *testing.T, e *emu, id string, n int) (*redis.Client, string) {
	t.Helper()
	c := createStandalone(t, e.client, id)
	fill(t, c, n)
	return c, nodeInstance(t, e, id)
}

// nodeClient opens a client on a cluster's node as one of its users.
func nodeClient(t testing.TB, e *emu, cluster, user, password string) *redis.Client {
	t.Helper()
	v := adminNodes(t, e.url)[cluster]
	c := redis.NewClient(&redis.Options{Addr: v.Endpoint, Username: user, Password: password, DialTimeout: 2 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBusyScriptDoesNotReplaceNode: a node running a long Lua script is
// alive, and a cluster without replicas must keep its node and its keys:
// under lua-time-limit (5 s, as on AWS) the node answers nothing at all,
// past it BUSY to everything else.
func TestBusyScriptDoesNotReplaceNode(t *testing.T) {
	e := startEmulator(t)
	const keys = 100
	c, before := standaloneWithKeys(t, e, "busy", keys)
	ctx := ctxT(t, time.Minute)
	// Long enough for health checks to miss several times in a row.
	if err := c.Eval(ctx, busyScript, nil, 3_000_000).Err(); err != nil {
		t.Fatalf("the silent script did not finish: %v (the node was killed under it?)", err)
	}

	// A lower limit makes the node answer BUSY soon.
	if err := c.ConfigSet(ctx, "lua-time-limit", "50").Err(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Eval(ctx, busyScript, nil, 1_500_000).Err() }()
	// Another client sees the node busy, as the health monitor does.
	ep := waitClusterAvailable(t, e.client, "busy").CacheNodes[0].Endpoint
	other := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
	eventually(t, 10*time.Second, func() error {
		if err := other.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "BUSY") {
			return fmt.Errorf("PING during the script: %v, want BUSY", err)
		}
		return nil
	})
	if err := <-done; err != nil {
		t.Fatalf("the BUSY script did not finish: %v (the node was killed under it?)", err)
	}
	waitHealthChecks(t, c, 2)
	expectKeys(t, c, keys)
	if after := nodeInstance(t, e, "busy"); after != before {
		t.Fatalf("node replaced: %s, then %s", before, after)
	}
	expectNotRecovered(t, e, "busy")
}

// TestUserPasswordKeepsControlPlane: a user sets requirepass on the nodes
// of a group (the default user now needs a password). The emulator's own
// connections and replication do not use that user: no node is replaced,
// no key is lost, and a failover and a snapshot still work.
func TestUserPasswordKeepsControlPlane(t *testing.T) {
	e := startEmulator(t)
	g := haGroup(t, e.client, "locked", 2)
	old := primaryOf(g)
	members := g.MemberClusters
	const keys = 100
	pep := g.NodeGroups[0].PrimaryEndpoint
	fill(t, redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port)), keys)
	before := map[string]string{}
	for _, m := range members {
		before[m] = nodeInstance(t, e, m)
	}
	ctx := ctxT(t, 2*time.Minute)
	clients := map[string]*redis.Client{}
	for _, m := range members {
		if err := nodeClient(t, e, m, "", "").ConfigSet(ctx, "requirepass", "xyz").Err(); err != nil {
			t.Fatal(err)
		}
		clients[m] = nodeClient(t, e, m, "", "xyz")
	}
	for _, m := range members {
		waitHealthChecks(t, clients[m], 2)
	}

	if _, err := e.client.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("locked"), NodeGroupId: aws.String("0001")}); err != nil {
		t.Fatalf("TestFailover: %v", err)
	}
	waitRecovered(t, e, "locked", old)
	for _, m := range members {
		expectKeys(t, clients[m], keys)
		if after := nodeInstance(t, e, m); after != before[m] {
			t.Fatalf("node %s replaced: %s, then %s", m, before[m], after)
		}
	}
	expectNotRecovered(t, e, members...)

	// Replication still flows from the new primary to the old one.
	newPrimary := nodeClient(t, e, primaryOf(describeGroup(t, e.client, "locked")), "", "xyz")
	if err := newPrimary.Set(ctx, "after", "failover", 0).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		v, err := clients[old].Get(ctx, "after").Result()
		if v != "failover" {
			return fmt.Errorf("GET after on the old primary, now a replica: %q, %v", v, err)
		}
		return nil
	})

	if _, err := e.client.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("locked"), SnapshotName: aws.String("locked-snap")}); err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	waitSnapshot(t, e.client, "locked-snap")
}

// TestDefaultUserDisabled: a user switches the default user off (and works
// as a user of their own). The node stays, with its keys, and the control
// plane still reaches it (a snapshot of it works).
func TestDefaultUserDisabled(t *testing.T) {
	e := startEmulator(t)
	const keys = 100
	c, before := standaloneWithKeys(t, e, "acl", keys)
	ctx := ctxT(t, time.Minute)
	if err := c.Do(ctx, "ACL", "SETUSER", "alice", "on", ">secret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	// Switching the default user off may close this very connection.
	if err := c.Do(ctx, "ACL", "SETUSER", "default", "off").Err(); err != nil && !errors.Is(err, redis.ErrClosed) && !strings.Contains(err.Error(), "EOF") {
		t.Fatal(err)
	}
	alice := nodeClient(t, e, "acl", "alice", "secret")
	if err := nodeClient(t, e, "acl", "", "").Ping(ctx).Err(); err == nil {
		t.Fatal("the default user still works")
	}
	waitHealthChecks(t, alice, 2)
	expectKeys(t, alice, keys)
	if after := nodeInstance(t, e, "acl"); after != before {
		t.Fatalf("node replaced: %s, then %s", before, after)
	}
	expectNotRecovered(t, e, "acl")
	if _, err := e.client.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("acl"), SnapshotName: aws.String("acl-snap")}); err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	waitSnapshot(t, e.client, "acl-snap")
}
