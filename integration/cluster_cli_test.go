package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Cluster-mode groups driven by the tools people use: the AWS CLI creates
// and reshards, redis-cli -c and redis-py's RedisCluster talk to the
// cluster through its configuration endpoint and follow it to the nodes,
// which must announce addresses reachable from the host.

const (
	redisCLI = "/usr/bin/redis-cli"
	// python3 is Debian's, which has python3-redis; another python3 may
	// come first on PATH without it.
	python3 = "/usr/bin/python3"
)

// requireTool skips locally when a tool scripts/install-deps installs is
// missing, saying which; in CI (CI=true) it fails, because there the
// script has run. check reports whether the tool is usable.
func requireTool(t *testing.T, what, pkg string, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI (%v): scripts/install-deps must install Debian's %s", what, err, pkg)
		}
		t.Skipf("SKIPPED: %s is not installed (%v); run scripts/install-deps, which installs Debian's %s", what, err, pkg)
	}
}

func requireRedisCLI(t *testing.T) {
	requireTool(t, redisCLI, "redis-tools", func() error { _, err := os.Stat(redisCLI); return err })
}

func requireRedisPy(t *testing.T) {
	requireTool(t, "redis-py (import redis.cluster)", "python3-redis", func() error {
		out, err := exec.Command(python3, "-c", "import redis.cluster").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
}

// runRedisCLI runs redis-cli -c against addr and returns its trimmed output.
func runRedisCLI(t *testing.T, ctx context.Context, host string, port int32, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "-h", host, "-p", strconv.Itoa(int(port))}, args...)
	out, err := exec.CommandContext(ctx, redisCLI, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", full, err, out)
	}
	return strings.TrimSpace(string(out))
}

// cliGroup is the part of describe-replication-groups these tests read.
type cliGroup struct {
	Status                string
	ConfigurationEndpoint struct {
		Address string
		Port    int32
	}
	NodeGroups []struct {
		NodeGroupId string
		Slots       string
	}
}

func describeCLI(t *testing.T, ctx context.Context, url, id string) cliGroup {
	t.Helper()
	var desc struct{ ReplicationGroups []cliGroup }
	out := runAWS(t, ctx, url, "describe-replication-groups", "--replication-group-id", id)
	if err := json.Unmarshal(out, &desc); err != nil || len(desc.ReplicationGroups) != 1 {
		t.Fatalf("describe output: %v\n%s", err, out)
	}
	return desc.ReplicationGroups[0]
}

// keyPerShard returns, for every node group of g, a key whose hash slot
// the node group owns.
func keyPerShard(t *testing.T, g cliGroup) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ng := range g.NodeGroups {
		ranges, err := engine.ParseSlotRanges(ng.Slots)
		if err != nil {
			t.Fatalf("slots %q of %s: %v", ng.Slots, ng.NodeGroupId, err)
		}
		for i := 0; out[ng.NodeGroupId] == ""; i++ {
			key := fmt.Sprintf("cli:%d", i)
			s := engine.HashSlot(key)
			if slices.ContainsFunc(ranges, func(r engine.SlotRange) bool { return s >= r.Start && s <= r.End }) {
				out[ng.NodeGroupId] = key
			}
		}
	}
	return out
}

// TestClusterCLIScenario: the AWS CLI creates a 3-shard group with the
// cluster-enabled parameter group, redis-cli -c writes and reads a key on
// every shard through the configuration endpoint, the CLI reshards to 4
// shards online, and every key is still there.
func TestClusterCLIScenario(t *testing.T) {
	t.Parallel()
	requireAWSCLI(t)
	requireRedisCLI(t)
	e := startEmulator(t)
	ctx := ctxT(t, 5*time.Minute)

	runAWS(t, ctx, e.url, "create-replication-group",
		"--replication-group-id", "clic", "--replication-group-description", "cluster via the CLI",
		"--engine", "redis", "--cache-node-type", "cache.t4g.micro",
		"--num-node-groups", "3", "--replicas-per-node-group", "1",
		"--cache-parameter-group-name", "default.redis7.cluster.on")
	runAWS(t, ctx, e.url, "wait", "replication-group-available", "--replication-group-id", "clic")
	g := describeCLI(t, ctx, e.url, "clic")
	cfg := g.ConfigurationEndpoint
	if g.Status != "available" || len(g.NodeGroups) != 3 || cfg.Address == "" || cfg.Port == 0 {
		t.Fatalf("group = %+v", g)
	}
	keys := keyPerShard(t, g)
	for ng, key := range keys {
		if out := runRedisCLI(t, ctx, cfg.Address, cfg.Port, "SET", key, "v-"+ng); out != "OK" {
			t.Fatalf("SET %s (node group %s) answered %q", key, ng, out)
		}
	}
	for ng, key := range keys {
		if out := runRedisCLI(t, ctx, cfg.Address, cfg.Port, "GET", key); out != "v-"+ng {
			t.Fatalf("GET %s (node group %s) = %q", key, ng, out)
		}
	}
	// More data, so the resharding moves keys.
	cc := clusterClient(t, describeGroup(t, e.client, "clic"))
	fillCluster(t, cc, "bulk", 5000)

	runAWS(t, ctx, e.url, "modify-replication-group-shard-configuration",
		"--replication-group-id", "clic", "--node-group-count", "4", "--apply-immediately")
	runAWS(t, ctx, e.url, "wait", "replication-group-available", "--replication-group-id", "clic")
	g = describeCLI(t, ctx, e.url, "clic")
	if len(g.NodeGroups) != 4 {
		t.Fatalf("node groups after resharding to 4: %+v", g.NodeGroups)
	}
	for ng, key := range keys {
		if out := runRedisCLI(t, ctx, cfg.Address, cfg.Port, "GET", key); out != "v-"+ng {
			t.Fatalf("after resharding GET %s = %q", key, out)
		}
	}
	// The new node group serves keys too.
	fresh := keyPerShard(t, g)["0004"]
	runRedisCLI(t, ctx, cfg.Address, cfg.Port, "SET", fresh, "new")
	if out := runRedisCLI(t, ctx, cfg.Address, cfg.Port, "GET", fresh); out != "new" {
		t.Fatalf("GET %s on the new node group = %q", fresh, out)
	}
	checkClusterKeys(t, cc, "bulk", 5000)
}

// redisPyScript connects redis-py's RedisCluster to the configuration
// endpoint (argv 1 and 2), writes and reads 1000 keys, and prints what it
// found as JSON: the keys read back wrong and the nodes it discovered.
const redisPyScript = `
import json, sys
from redis.cluster import RedisCluster
rc = RedisCluster(host=sys.argv[1], port=int(sys.argv[2]), socket_timeout=10)
for i in range(1000):
    rc.set("py:%d" % i, str(i))
bad = [i for i in range(1000) if rc.get("py:%d" % i) != str(i).encode()]
nodes = [{"addr": "%s:%d" % (n.host, n.port), "type": n.server_type} for n in rc.get_nodes()]
print(json.dumps({"bad": bad, "nodes": nodes}))
`

// TestClusterCLIRedisPy: redis-py's cluster client, given only the
// configuration endpoint, discovers every node at an address it can reach
// from the host and reads back what it wrote.
func TestClusterCLIRedisPy(t *testing.T) {
	t.Parallel()
	requireRedisPy(t)
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "py", 3, 1)
	cfg := g.ConfigurationEndpoint
	ctx := ctxT(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, python3, "-c", redisPyScript, aws.ToString(cfg.Address), strconv.Itoa(int(aws.ToInt32(cfg.Port))))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PYTHONNOUSERSITE=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("redis-py: %v\n%s", err, stderr.String())
	}
	var res struct {
		Bad   []int
		Nodes []struct{ Addr, Type string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("redis-py output: %v\n%s", err, stdout.String())
	}
	if len(res.Bad) != 0 {
		t.Fatalf("redis-py read %d keys back wrong: %v", len(res.Bad), res.Bad[:min(10, len(res.Bad))])
	}
	members := map[string]bool{}
	for _, v := range adminNodes(t, e.url) {
		if v.ReplicationGroupID == "py" {
			members[v.Endpoint] = true
		}
	}
	var found []string
	primaries := 0
	for _, n := range res.Nodes {
		found = append(found, n.Addr)
		host, _ := hostPort(t, n.Addr)
		if ip := net.ParseIP(host).To4(); ip == nil || ip[0] != 127 {
			t.Errorf("redis-py discovered node %s (%s): not a host-reachable 127.x address", n.Addr, n.Type)
			continue
		}
		if !members[n.Addr] {
			t.Errorf("redis-py discovered %s (%s), which is no node of the group", n.Addr, n.Type)
		}
		if n.Type == "primary" {
			primaries++
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: 2 * time.Second, MaxRetries: -1})
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Errorf("node %s that redis-py discovered does not answer from the host: %v", n.Addr, err)
		}
		rc.Close()
	}
	slices.Sort(found)
	if primaries != 3 {
		t.Errorf("redis-py found %d primaries, want one per shard: %v", primaries, res.Nodes)
	}
	// redis-py learns the replicas from CLUSTER SLOTS, which lists a
	// replica only once the cluster knows its replication offset: the
	// group is available only then.
	if len(res.Nodes) != len(members) {
		t.Errorf("redis-py discovered %d of the %d nodes: %v", len(res.Nodes), len(members), found)
	}
	t.Logf("redis-py wrote and read 1000 keys through %s:%d and discovered %d of the %d nodes: %v",
		aws.ToString(cfg.Address), aws.ToInt32(cfg.Port), len(res.Nodes), len(members), found)
	// What redis-py wrote, go-redis reads.
	cc := clusterClient(t, g)
	for _, i := range []int{0, 1, 499, 999} {
		if v, err := cc.Get(ctx, fmt.Sprintf("py:%d", i)).Result(); err != nil || v != strconv.Itoa(i) {
			t.Errorf("py:%d through go-redis = %q, %v", i, v, err)
		}
	}
}
