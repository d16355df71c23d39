package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// catalogParam is one row of the emulator's parameter catalog file.
type catalogParam struct {
	name, defaultValue, apply string
}

// readParamCatalog reads the parameters of family from the emulator's
// catalog (emulator/catalog/parameters_redis.tsv), the data the emulator
// embeds.
func readParamCatalog(t *testing.T, family string) []catalogParam {
	t.Helper()
	f, err := os.Open("../emulator/catalog/parameters_redis.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []catalogParam
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if strings.HasPrefix(sc.Text(), "#") || len(c) != 10 {
			continue
		}
		for _, fam := range strings.Split(c[1], ",") {
			if fam == family {
				out = append(out, catalogParam{name: c[0], defaultValue: c[2], apply: c[8]})
			}
		}
	}
	return out
}

// differentLocally are the catalog parameters whose value on a local node
// differs from AWS's by design: maxclients is bounded by the process's file
// descriptors, cluster-preferred-endpoint-type tls-dynamic means ip without
// TLS (and the emulator's endpoints are addresses), activedefrag depends on
// the binary (TestParameterGroupOnNodes).
var differentLocally = map[string]bool{"maxclients": true, "cluster-preferred-endpoint-type": true, "activedefrag": true}

// TestParameterCatalogOnEngine holds each family's parameter catalog
// against the real engine: a node started with the family's default group
// has every parameter the emulator applies, with AWS's default (CONFIG GET
// *), and every other parameter of the catalog the engine knows has AWS's
// default too; client-output-buffer-limit is composed of AWS's parts.
func TestParameterCatalogOnEngine(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	for _, fam := range []struct{ family, engine, version string }{
		{"redis4.0", "redis", "4.0.10"}, {"redis5.0", "redis", "5.0.6"}, {"redis6.x", "redis", "6.2"},
		{"redis7", "redis", "7.1"}, {"valkey7", "valkey", "7.2"}, {"valkey8", "valkey", "8.0"},
	} {
		id := "cat-" + strings.ReplaceAll(fam.family, ".", "-")
		if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String(id),
			CacheNodeType: aws.String("cache.t3.small"), Engine: aws.String(fam.engine), EngineVersion: aws.String(fam.version)}); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		ep := waitClusterAvailable(t, c, id).CacheNodes[0].Endpoint
		node := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
		live, err := node.ConfigGet(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		params := readParamCatalog(t, fam.family)
		if len(params) < 50 {
			t.Fatalf("%s: %d parameters in the catalog", fam.family, len(params))
		}
		applied := 0
		for _, p := range params {
			got, known := live[p.name]
			switch {
			case (p.apply == "engine" || p.apply == "defrag") && !known:
				t.Errorf("%s: %s is applied to the engine, which does not know it", fam.family, p.name)
			case known && !differentLocally[p.name] && got != p.defaultValue:
				t.Errorf("%s: %s is %q on the node, AWS's default is %q", fam.family, p.name, got, p.defaultValue)
			case known:
				applied++
			}
		}
		out := live["client-output-buffer-limit"]
		if !strings.Contains(out, "normal 0 0 0") || !strings.Contains(out, "pubsub 33554432 8388608 60") {
			t.Errorf("%s: client-output-buffer-limit %q", fam.family, out)
		}
		if want := fmt.Sprint(int64(1471026299) * 75 / 100 / nodeMemoryScale); live["maxmemory"] != want {
			t.Errorf("%s: maxmemory %s, want %s", fam.family, live["maxmemory"], want)
		}
		t.Logf("%s: %d of %d catalog parameters checked on the node", fam.family, applied, len(params))
	}
}

// TestParameterGroupOnNodes: a parameter group with reserved-memory-percent,
// activedefrag and maxmemory-policy set, applied to a replication group:
// the values are live on every node and maxmemory follows the node type and
// the reserved percentage, also when it changes; a requires-reboot change
// leaves the members pending-reboot until RebootCacheCluster; bad input
// answers AWS's errors and changes nothing.
func TestParameterGroupOnNodes(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{CacheParameterGroupName: aws.String("tuned"),
		CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("tuned")}); err != nil {
		t.Fatal(err)
	}
	modify := func(nv ...string) error {
		in := &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("tuned")}
		for i := 0; i < len(nv); i += 2 {
			in.ParameterNameValues = append(in.ParameterNameValues, types.ParameterNameValue{ParameterName: aws.String(nv[i]), ParameterValue: aws.String(nv[i+1])})
		}
		_, err := c.ModifyCacheParameterGroup(ctx, in)
		return err
	}
	if err := modify("reserved-memory-percent", "50", "activedefrag", "yes", "maxmemory-policy", "allkeys-lfu"); err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("tuned"), CacheParameterGroupName: aws.String("tuned"),
		CacheNodeType: aws.String("cache.r7g.large"), NumCacheClusters: aws.Int32(3)})
	nodes := memberClients(t, c, "tuned")
	expectOnNodes := func(name, want string) {
		t.Helper()
		for id, n := range nodes {
			eventually(t, 5*time.Second, func() error {
				got, err := n.ConfigGet(context.Background(), name).Result()
				if err != nil || got[name] != want {
					return fmt.Errorf("%s: CONFIG GET %s = %v (%v), want %q", id, name, got, err, want)
				}
				return nil
			})
		}
	}
	expectOnNodes("maxmemory-policy", "allkeys-lfu")
	// Replicas sync the first time with it off (emulator/nodes.go
	// eagerFirstFlush) and have AWS's value once they are available.
	expectOnNodes("replica-lazy-flush", "yes")
	expectMaxmemory(t, c, "tuned", awsMaxmemory["cache.r7g.large"]*50/100/nodeMemoryScale)
	for id, n := range nodes {
		expectDefrag(t, id, n)
	}

	// reserved-memory-percent is immediate: every node's maxmemory follows.
	if err := modify("reserved-memory-percent", "10"); err != nil {
		t.Fatal(err)
	}
	expectMaxmemory(t, c, "tuned", awsMaxmemory["cache.r7g.large"]*90/100/nodeMemoryScale)

	// Bad input changes nothing.
	before := userParams(t, c, "tuned")
	for _, bad := range []struct{ name, value, code string }{
		{"reserved-memory-percent", "101", "InvalidParameterValue"},
		{"maxmemory-policy", "sometimes", "InvalidParameterValue"},
		{"maxclients", "100", "InvalidParameterValue"},
		{"cluster-enabled", "yes", "InvalidParameterValue"},
		{"no-such-parameter", "1", "InvalidParameterValue"},
		{"hash-max-ziplist-entries", "10", "InvalidParameterValue"}, // not in redis7
		{"databases", "32", "InvalidCacheParameterGroupState"},      // in use
	} {
		expectError(t, modify("timeout", "30", bad.name, bad.value), bad.code, 400)
	}
	if after := userParams(t, c, "tuned"); after != before {
		t.Fatalf("refused changes changed the group: %s → %s", before, after)
	}
	expectOnNodes("timeout", "0")

	// A requires-reboot parameter waits for a reboot.
	expectOnNodes("acl-pubsub-default", "allchannels")
	if err := modify("acl-pubsub-default", "resetchannels"); err != nil {
		t.Fatal(err)
	}
	for id := range nodes {
		if s := applyStatus(t, c, id); s != "pending-reboot" {
			t.Errorf("%s: ParameterApplyStatus %s after a requires-reboot change, want pending-reboot", id, s)
		}
	}
	expectOnNodes("acl-pubsub-default", "allchannels")
	if _, err := c.RebootCacheCluster(ctx, &elasticache.RebootCacheClusterInput{CacheClusterId: aws.String("tuned-002"), CacheNodeIdsToReboot: []string{"0001"}}); err != nil {
		t.Fatal(err)
	}
	waitClusterAvailable(t, c, "tuned-002")
	if s := applyStatus(t, c, "tuned-002"); s != "in-sync" {
		t.Errorf("tuned-002: ParameterApplyStatus %s after the reboot", s)
	}
	if s := applyStatus(t, c, "tuned-003"); s != "pending-reboot" {
		t.Errorf("tuned-003 (not rebooted): ParameterApplyStatus %s", s)
	}
	rebooted := memberClients(t, c, "tuned")["tuned-002"]
	if got, err := rebooted.ConfigGet(ctx, "acl-pubsub-default").Result(); err != nil || got["acl-pubsub-default"] != "resetchannels" {
		t.Errorf("after the reboot acl-pubsub-default = %v (%v)", got, err)
	}
	// Moving to a group whose requires-reboot values differ (the default
	// group: allchannels) leaves the rebooted member pending-reboot again.
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("tuned"),
		CacheParameterGroupName: aws.String("default.redis7"), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if s := applyStatus(t, c, "tuned-002"); s != "pending-reboot" {
		t.Errorf("tuned-002 moved to default.redis7: ParameterApplyStatus %s", s)
	}
	expectMaxmemory(t, c, "tuned", awsMaxmemory["cache.r7g.large"]*75/100/nodeMemoryScale)

	out, err := c.DescribeCacheParameters(ctx, &elasticache.DescribeCacheParametersInput{CacheParameterGroupName: aws.String("tuned")})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range out.CacheNodeTypeSpecificParameters {
		for _, v := range p.CacheNodeTypeSpecificValues {
			if aws.ToString(p.ParameterName) == "maxmemory" && aws.ToString(v.CacheNodeType) == "cache.r7g.large" {
				found = aws.ToString(v.Value) == fmt.Sprint(awsMaxmemory["cache.r7g.large"])
			}
		}
	}
	if !found {
		t.Error("DescribeCacheParameters has no maxmemory of cache.r7g.large among the node-type specific parameters")
	}
}

// expectDefrag checks activedefrag yes on a node, or that the node's binary
// refuses it because it was built without active defragmentation (Debian's
// redis-server), the one case where the emulator cannot apply it.
func expectDefrag(t *testing.T, id string, n *redis.Client) {
	t.Helper()
	ctx := ctxT(t, 5*time.Second)
	got, err := n.ConfigGet(ctx, "activedefrag").Result()
	if err == nil && got["activedefrag"] == "yes" {
		return
	}
	err = n.ConfigSet(ctx, "activedefrag", "yes").Err()
	if err == nil || !strings.Contains(err.Error(), "Active defragmentation cannot be enabled") {
		t.Errorf("%s: activedefrag %v, and the node does not refuse it for its build: %v", id, got, err)
	}
}

// userParams renders a group's user parameters, to compare.
func userParams(t *testing.T, c *elasticache.Client, name string) string {
	t.Helper()
	out, err := c.DescribeCacheParameters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheParametersInput{CacheParameterGroupName: aws.String(name), Source: aws.String("user")})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range out.Parameters {
		fmt.Fprintf(&b, "%s=%s ", aws.ToString(p.ParameterName), aws.ToString(p.ParameterValue))
	}
	return b.String()
}

// applyStatus is a cache cluster's ParameterApplyStatus.
func applyStatus(t *testing.T, c *elasticache.Client, id string) string {
	t.Helper()
	out, err := c.DescribeCacheClusters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id)})
	if err != nil || len(out.CacheClusters) != 1 || out.CacheClusters[0].CacheParameterGroup == nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return aws.ToString(out.CacheClusters[0].CacheParameterGroup.ParameterApplyStatus)
}
