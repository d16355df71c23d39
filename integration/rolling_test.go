package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// nodeStep is one ModifyReplicationGroup/ModifyCacheCluster node change and
// what the members show once it is done.
type nodeStep struct {
	engine, version, nodeType string
	wantEngine, wantVersion   string
}

// upgradePath is the path: node type up then down, then engine
// upgrades 6.2 → 7.0 → 7.1 → Valkey 7.2 → 8.0.
var upgradePath = []nodeStep{
	{nodeType: "cache.r7g.large", wantEngine: "redis", wantVersion: "6.2.6"},
	{nodeType: "cache.m6g.large", wantEngine: "redis", wantVersion: "6.2.6"},
	{version: "7.0", wantEngine: "redis", wantVersion: "7.0.7"},
	{version: "7.1", wantEngine: "redis", wantVersion: "7.1.0"},
	{engine: "valkey", version: "7.2", wantEngine: "valkey", wantVersion: "7.2.6"},
	{version: "8.0", wantEngine: "valkey", wantVersion: "8.0.1"},
}

// memberValues reads every member's engine, version and node type, as
// "engine version type" by cluster id.
func memberValues(t testing.TB, c *elasticache.Client, ids ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		cl := describeCacheCluster(t, c, id)
		out[id] = aws.ToString(cl.Engine) + " " + aws.ToString(cl.EngineVersion) + " " + aws.ToString(cl.CacheNodeType)
	}
	return out
}

func describeCacheCluster(t testing.TB, c *elasticache.Client, id string) types.CacheCluster {
	t.Helper()
	out, err := c.DescribeCacheClusters(ctxT(t, 10*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id), ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatalf("describe cluster %s: %v", id, err)
	}
	return out.CacheClusters[0]
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// TestRollingNodeChangesOfGroup: under a write load through the primary
// endpoint, a 3-node group scales its node type up and down and upgrades
// its engine 6.2 → 7.0 → 7.1 → Valkey 7.2 → 8.0, online: no acknowledged
// write is lost, every node's maxmemory follows the node type, and the
// described values change only when each change is done.
func TestRollingNodeChangesOfGroup(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("roll"), ReplicationGroupDescription: aws.String("rolling"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(3),
		AutomaticFailoverEnabled: aws.Bool(true), EngineVersion: aws.String("6.2"),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "roll")
	g := describeGroup(t, c, "roll")
	members := g.MemberClusters
	pep := g.NodeGroups[0].PrimaryEndpoint
	w := startWriter(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	w.waitProgress(t, 300, 10*time.Second)
	expectMaxmemory(t, c, "roll", awsMaxmemory["cache.t4g.micro"]*75/100/nodeMemoryScale)

	nodeType := "cache.t4g.micro"
	for _, step := range upgradePath {
		before := memberValues(t, c, members...)
		out, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
			ReplicationGroupId: aws.String("roll"), ApplyImmediately: aws.Bool(true),
			Engine: optional(step.engine), EngineVersion: optional(step.version), CacheNodeType: optional(step.nodeType),
		})
		if err != nil {
			t.Fatalf("modify %+v: %v", step, err)
		}
		if got := aws.ToString(out.ReplicationGroup.Status); got != "modifying" {
			t.Fatalf("status after modify %+v = %q, want modifying", step, got)
		}
		if after := memberValues(t, c, members...); !equalMaps(before, after) {
			t.Fatalf("members changed before the change was done: %v, then %v", before, after)
		}
		waitAvailable(t, c, "roll")
		if step.nodeType != "" {
			nodeType = step.nodeType
		}
		want := step.wantEngine + " " + step.wantVersion + " " + nodeType
		for id, got := range memberValues(t, c, members...) {
			if got != want {
				t.Fatalf("after %+v member %s shows %q, want %q", step, id, got, want)
			}
		}
		expectMaxmemory(t, c, "roll", awsMaxmemory[nodeType]*75/100/nodeMemoryScale)
		w.waitProgress(t, 100, 10*time.Second)
	}
	g = describeGroup(t, c, "roll")
	if got := aws.ToString(g.CacheNodeType); got != nodeType {
		t.Fatalf("group node type %q, want %q", got, nodeType)
	}
	if got := aws.ToString(g.Engine); got != "valkey" {
		t.Fatalf("group engine %q, want valkey", got)
	}
	// The admin API says what each node was started as and what it runs.
	for id, v := range adminNodes(t, e.url) {
		if v.EngineVersion != "valkey 8.0.1" || v.Server == "" {
			t.Fatalf("admin view of %s: started as %q, runs %q; want valkey 8.0.1 and the server's own version", id, v.EngineVersion, v.Server)
		}
		t.Logf("%s: started as %s, runs %s", id, v.EngineVersion, v.Server)
	}
	w.halt()
	primary := redisClient(t, aws.ToString(pep.Address), aws.ToInt32(pep.Port))
	if lost := w.lost(t, primary); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost over %d rolling changes (first %v)", len(lost), len(upgradePath), lost[:min(5, len(lost))])
	}
	msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "roll")
	for _, want := range []string{
		"Modifying cache node type from cache.t4g.micro to cache.r7g.large of replication group roll",
		"Finished modifying engine version from Redis OSS 7.1.0 to Valkey 7.2.6 of replication group roll",
	} {
		if !strings.Contains(msgs, want) {
			t.Fatalf("no event %q in:\n%s", want, msgs)
		}
	}
	t.Logf("%d writes acknowledged, none lost; longest write outage %v over %d rolling changes", w.ackedCount(), w.outage, len(upgradePath))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
