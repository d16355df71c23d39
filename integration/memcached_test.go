package integration

// Memcached clusters: Auto Discovery through the configuration endpoint,
// scaling, reboots, node replacement and parameter groups, against real
// memcached nodes.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/bradfitz/gomemcache/memcache"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/enginetest"
)

// discovered is a configuration as Auto Discovery returns it.
type discovered struct {
	version int
	nodes   []string // ip:port
}

// parseDiscovery parses the reply to "config get cluster" (header CONFIG)
// or "get AmazonElastiCache:cluster" (header VALUE), written from AWS's
// documented format: a header line "<CONFIG|VALUE> <key> 0 <length>\r\n",
// <length> bytes holding the config version and a LF, then the nodes as
// hostname|ip|port separated by spaces and a LF; then "\r\n" and "END\r\n".
func parseDiscovery(br *bufio.Reader, header string) (discovered, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return discovered{}, err
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != header || f[2] != "0" || !strings.HasSuffix(line, "\r\n") {
		return discovered{}, fmt.Errorf("header %q", line)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil {
		return discovered{}, err
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(br, body); err != nil {
		return discovered{}, err
	}
	if !strings.HasSuffix(string(body), "\n\r\n") {
		return discovered{}, fmt.Errorf("data block %q does not end in LF CR LF", body)
	}
	lines := strings.Split(strings.TrimSuffix(string(body[:n]), "\n"), "\n")
	if len(lines) != 2 {
		return discovered{}, fmt.Errorf("data block %q: want 2 lines", body)
	}
	var d discovered
	if d.version, err = strconv.Atoi(lines[0]); err != nil {
		return discovered{}, fmt.Errorf("config version %q", lines[0])
	}
	for _, entry := range strings.Split(lines[1], " ") {
		p := strings.Split(entry, "|")
		if len(p) != 3 || p[0] == "" || net.ParseIP(p[1]) == nil {
			return discovered{}, fmt.Errorf("node entry %q", entry)
		}
		d.nodes = append(d.nodes, net.JoinHostPort(p[1], p[2]))
	}
	if end, err := br.ReadString('\n'); err != nil || end != "END\r\n" {
		return discovered{}, fmt.Errorf("trailer %q, %v", end, err)
	}
	return d, nil
}

// discover asks the configuration endpoint with both commands on one
// connection and checks they agree.
func discover(t testing.TB, ep *types.Endpoint) discovered {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port)), 2*time.Second)
	if err != nil {
		t.Fatalf("dial the configuration endpoint: %v", err)
	}
	return discoverOn(t, conn)
}

// discoverOn is discover on a connection to the configuration endpoint,
// which it closes.
func discoverOn(t testing.TB, conn net.Conn) discovered {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	fmt.Fprint(conn, "config get cluster\r\n")
	d, err := parseDiscovery(br, "CONFIG")
	if err != nil {
		t.Fatalf("config get cluster: %v", err)
	}
	fmt.Fprint(conn, "get AmazonElastiCache:cluster\r\n")
	old, err := parseDiscovery(br, "VALUE")
	if err != nil {
		t.Fatalf("get AmazonElastiCache:cluster: %v", err)
	}
	if old.version != d.version || !slices.Equal(old.nodes, d.nodes) {
		t.Fatalf("the two discovery commands disagree: %+v vs %+v", d, old)
	}
	return d
}

// nodeAddrs are the endpoints of a cluster's nodes, by node id.
func nodeAddrs(cl types.CacheCluster) map[string]string {
	out := map[string]string{}
	for _, n := range cl.CacheNodes {
		out[aws.ToString(n.CacheNodeId)] = fmt.Sprintf("%s:%d", aws.ToString(n.Endpoint.Address), aws.ToInt32(n.Endpoint.Port))
	}
	return out
}

// sameNodes checks that discovery lists exactly the cluster's nodes.
func sameNodes(t testing.TB, d discovered, cl types.CacheCluster) {
	t.Helper()
	var want []string
	for _, a := range nodeAddrs(cl) {
		want = append(want, a)
	}
	got := slices.Clone(d.nodes)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("discovery lists %v, the cluster's nodes are %v", got, want)
	}
}

func mcClient(t testing.TB, addrs ...string) *memcache.Client {
	c := memcache.New(addrs...)
	c.Timeout = 2 * time.Second
	t.Cleanup(func() { c.Close() })
	return c
}

// modifyNodes changes the node count now and waits for the cluster.
func modifyNodes(t *testing.T, c *elasticache.Client, id string, n int32, remove ...string) types.CacheCluster {
	t.Helper()
	_, err := c.ModifyCacheCluster(ctxT(t, 10*time.Second), &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String(id),
		NumCacheNodes: aws.Int32(n), CacheNodeIdsToRemove: remove, ApplyImmediately: aws.Bool(true)})
	if err != nil {
		t.Fatalf("modify to %d nodes: %v", n, err)
	}
	cl := waitClusterAvailable(t, c, id)
	if len(cl.CacheNodes) != int(n) {
		t.Fatalf("%d nodes after scaling to %d", len(cl.CacheNodes), n)
	}
	return cl
}

// killMemcachedNode kills node id of cluster from outside the emulator.
func killMemcachedNode(t *testing.T, e *emu, cluster, id string) {
	t.Helper()
	for _, v := range emulatorNodes(t, e) {
		if v.CacheClusterID != cluster || v.CacheNodeID != id {
			continue
		}
		if e.runtime == "docker" {
			if out, err := exec.Command("docker", "kill", containerOf(t, v.Node)).CombinedOutput(); err != nil {
				t.Fatalf("docker kill: %v\n%s", err, out)
			}
			return
		}
		if err := syscall.Kill(v.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no node %s in cluster %s", id, cluster)
}

func emulatorNodes(t testing.TB, e *emu) []emulator.NodeView {
	return e.srv.Emulator().Nodes(ctxT(t, 10*time.Second))
}

// TestMemcachedCluster: a 3-node cluster found through Auto Discovery,
// keys spread over its nodes, scaled to 5 and back to 3 by removing named
// nodes (the config version growing), a node rebooted (empty, with a
// parameter change applied) and one killed (replaced at the same
// endpoint); parameter values in stats settings; bad input refused the
// AWS way with nothing changed.
func TestMemcachedCluster(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 3*time.Minute)
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{CacheParameterGroupName: aws.String("mc-params"),
		CacheParameterGroupFamily: aws.String("memcached1.6"), Description: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("mc-params"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("max_item_size"), ParameterValue: aws.String("2097152")},
			{ParameterName: aws.String("chunk_size"), ParameterValue: aws.String("32")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("mc"), Engine: aws.String("memcached"),
		CacheNodeType: aws.String("cache.t3.small"), NumCacheNodes: aws.Int32(3), AZMode: types.AZModeCrossAz,
		CacheParameterGroupName: aws.String("mc-params")}); err != nil {
		t.Fatalf("create: %v", err)
	}
	cl := waitClusterAvailable(t, c, "mc")
	if aws.ToString(cl.Engine) != "memcached" || aws.ToString(cl.EngineVersion) != "1.6.22" || cl.ConfigurationEndpoint == nil ||
		aws.ToInt32(cl.ConfigurationEndpoint.Port) != 11211 || aws.ToString(cl.PreferredAvailabilityZone) != "Multiple" {
		t.Fatalf("cluster %+v", cl)
	}
	if ids := slices.Sorted(func(yield func(string) bool) {
		for id := range nodeAddrs(cl) {
			yield(id)
		}
	}); !slices.Equal(ids, []string{"0001", "0002", "0003"}) {
		t.Fatalf("node ids %v", ids)
	}
	d := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d, cl)

	// A client hashing over the discovered nodes spreads keys over all.
	all := mcClient(t, d.nodes...)
	for i := range 60 {
		if err := all.Set(&memcache.Item{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range d.nodes {
		held := 0
		one := mcClient(t, addr)
		for i := range 60 {
			if _, err := one.Get(fmt.Sprintf("k%d", i)); err == nil {
				held++
			}
		}
		if held == 0 || held == 60 {
			t.Errorf("node %s holds %d of 60 keys; want them spread", addr, held)
		}
	}
	// Other commands on the configuration endpoint reach a node.
	cfgAddr := fmt.Sprintf("%s:%d", aws.ToString(cl.ConfigurationEndpoint.Address), aws.ToInt32(cl.ConfigurationEndpoint.Port))
	if it, err := mcClient(t, cfgAddr).Get("k1"); err != nil && err != memcache.ErrCacheMiss {
		t.Errorf("get through the configuration endpoint: %v, %v", it, err)
	}
	// The parameter group's values and the node type's memory are the
	// node's options.
	st, err := enginetest.MemcachedSettings(ctx, endpointOf(t, d.nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	// maxbytes: cache.t3.small's memory less memcached_connections_overhead.
	for k, want := range map[string]string{"item_size_max": "2097152", "chunk_size": "32", "maxbytes": strconv.Itoa((1471026299>>20 - 100) << 20)} {
		if st[k] != want {
			t.Errorf("stats settings %s = %q, want %q", k, st[k], want)
		}
	}

	cl = modifyNodes(t, c, "mc", 5)
	d5 := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d5, cl)
	if d5.version <= d.version {
		t.Fatalf("config version %d after adding nodes, was %d", d5.version, d.version)
	}
	cl = modifyNodes(t, c, "mc", 3, "0002", "0004")
	d3 := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d3, cl)
	if _, gone := nodeAddrs(cl)["0002"]; gone || d3.version <= d5.version {
		t.Fatalf("after removing 0002 and 0004: nodes %v, version %d (was %d)", nodeAddrs(cl), d3.version, d5.version)
	}

	// A parameter change waits for a reboot; the rebooted node is empty.
	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("mc-params"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("idle_timeout"), ParameterValue: aws.String("900")}}}); err != nil {
		t.Fatal(err)
	}
	cl = waitClusterAvailable(t, c, "mc")
	if s := aws.ToString(cl.CacheParameterGroup.ParameterApplyStatus); s != "pending-reboot" || len(cl.CacheParameterGroup.CacheNodeIdsToReboot) != 3 {
		t.Fatalf("after a parameter change: %s, to reboot %v", s, cl.CacheParameterGroup.CacheNodeIdsToReboot)
	}
	addrs := nodeAddrs(cl)
	first := mcClient(t, addrs["0001"])
	if err := first.Set(&memcache.Item{Key: "before-reboot", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RebootCacheCluster(ctx, &elasticache.RebootCacheClusterInput{CacheClusterId: aws.String("mc"), CacheNodeIdsToReboot: []string{"0001"}}); err != nil {
		t.Fatal(err)
	}
	cl = waitClusterAvailable(t, c, "mc")
	// A new client: the old one's pooled connection died with the node.
	if _, err := mcClient(t, addrs["0001"]).Get("before-reboot"); err != memcache.ErrCacheMiss {
		t.Errorf("get after the reboot = %v; want a miss (memcached keeps no data)", err)
	}
	if st, err := enginetest.MemcachedSettings(ctx, endpointOf(t, addrs["0001"])); err != nil || st["idle_timeout"] != "900" {
		t.Errorf("idle_timeout of the rebooted node = %q, %v; want 900", st["idle_timeout"], err)
	}
	if ids := cl.CacheParameterGroup.CacheNodeIdsToReboot; slices.Contains(ids, "0001") || len(ids) != 2 {
		t.Errorf("nodes to reboot after rebooting 0001: %v", ids)
	}

	// A node killed from outside comes back empty at the same endpoint.
	third := mcClient(t, addrs["0003"])
	if err := third.Set(&memcache.Item{Key: "before-kill", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	killMemcachedNode(t, e, "mc", "0003")
	eventually(t, time.Minute, func() error {
		if !strings.Contains(eventMessages(t, c, types.SourceTypeCacheCluster, "mc"), "Finished recovery for cache nodes 0003") {
			return fmt.Errorf("no recovery event yet")
		}
		_, err := mcClient(t, addrs["0003"]).Get("before-kill")
		if err != memcache.ErrCacheMiss {
			return fmt.Errorf("get on the replaced node: %v", err)
		}
		return nil
	})
	cl = waitClusterAvailable(t, c, "mc")
	if got := nodeAddrs(cl)["0003"]; got != addrs["0003"] {
		t.Fatalf("replaced node at %s, was %s", got, addrs["0003"])
	}
	sameNodes(t, discover(t, cl.ConfigurationEndpoint), cl)

	t.Run("BadInput", func(t *testing.T) { memcachedBadInput(t, c) })

	// ApplyImmediately false: the change waits.
	if _, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("mc"), NumCacheNodes: aws.Int32(4),
		ApplyImmediately: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	cl = waitClusterAvailable(t, c, "mc")
	if aws.ToInt32(cl.PendingModifiedValues.NumCacheNodes) != 4 || len(cl.CacheNodes) != 3 {
		t.Fatalf("pending %v, %d nodes", cl.PendingModifiedValues.NumCacheNodes, len(cl.CacheNodes))
	}
	if _, err := c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("mc")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		_, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("mc")})
		if err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
}

// memcachedBadInput: what AWS refuses for Memcached is refused the same
// way and changes nothing.
func memcachedBadInput(t *testing.T, c *elasticache.Client) {
	ctx := ctxT(t, time.Minute)
	before := describeMemcached(t, c, "mc")
	_, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("big"), Engine: aws.String("memcached"),
		CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(61)})
	expectError(t, err, "NodeQuotaForClusterExceeded", 400)
	_, err = c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("tok"), Engine: aws.String("memcached"),
		CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(1), AuthToken: aws.String("0123456789abcdef0123")})
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("mc"), SnapshotName: aws.String("mc-snap")})
	expectError(t, err, "SnapshotFeatureNotSupportedFault", 400)
	_, err = c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("mc-params"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("maxmemory-policy"), ParameterValue: aws.String("allkeys-lru")}}})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("mcrg"),
		ReplicationGroupDescription: aws.String("x"), Engine: aws.String("memcached"), CacheNodeType: aws.String("cache.t3.micro")})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("mc"), NumCacheNodes: aws.Int32(2),
		ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400) // which node goes must be named
	out, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{})
	if err != nil || len(out.CacheClusters) != 1 {
		t.Fatalf("clusters after refused requests: %v, %v", out, err)
	}
	if snaps, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{}); err != nil || len(snaps.Snapshots) != 0 {
		t.Fatalf("snapshots after a refused one: %v, %v", snaps, err)
	}
	params, err := c.DescribeCacheParameters(ctx, &elasticache.DescribeCacheParametersInput{CacheParameterGroupName: aws.String("mc-params"), Source: aws.String("user")})
	if err != nil || len(params.Parameters) != 3 {
		t.Fatalf("user parameters after a refused change: %v, %v", params, err)
	}
	if after := describeMemcached(t, c, "mc"); len(after.CacheNodes) != len(before.CacheNodes) || aws.ToString(after.CacheClusterStatus) != "available" {
		t.Fatalf("cluster changed by refused requests: %+v", after)
	}
}

func describeMemcached(t testing.TB, c *elasticache.Client, id string) types.CacheCluster {
	t.Helper()
	out, err := c.DescribeCacheClusters(ctxT(t, 10*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id), ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.CacheClusters[0]
}

// endpointOf turns host:port into an engine.Endpoint.
func endpointOf(t testing.TB, addr string) engine.Endpoint {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return engine.Endpoint{Host: host, Port: p}
}
