package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// rollingAddressEnv is the node address range of TestRollingResumesAfterKill9's
// binary, of its own.
const rollingAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.110.2"

// TestRollingNodeChangeOfStandaloneCluster: a standalone cluster scales its
// node type and upgrades its engine with its node replaced in place: the
// short outage is reported in an event and no acknowledged write is lost.
func TestRollingNodeChangeOfStandaloneCluster(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("solo"), Engine: aws.String("redis"), EngineVersion: aws.String("7.0"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheNodes: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	cl := waitClusterAvailable(t, c, "solo")
	ep := cl.CacheNodes[0].Endpoint
	w := startWriter(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
	w.waitProgress(t, 300, 10*time.Second)
	for _, step := range []nodeStep{
		{nodeType: "cache.m6g.large", wantEngine: "redis", wantVersion: "7.0.7"},
		{engine: "valkey", version: "8.0", wantEngine: "valkey", wantVersion: "8.0.1"},
	} {
		before := memberValues(t, c, "solo")
		out, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("solo"),
			ApplyImmediately: aws.Bool(true), Engine: optional(step.engine), EngineVersion: optional(step.version),
			CacheNodeType: optional(step.nodeType)})
		if err != nil {
			t.Fatalf("modify %+v: %v", step, err)
		}
		if got := aws.ToString(out.CacheCluster.CacheClusterStatus); got != "modifying" {
			t.Fatalf("status %q after modify, want modifying", got)
		}
		if after := memberValues(t, c, "solo"); !equalMaps(before, after) {
			t.Fatalf("described values changed before the change was done: %v, then %v", before, after)
		}
		waitClusterAvailable(t, c, "solo")
		if got, want := memberValues(t, c, "solo")["solo"], step.wantEngine+" "+step.wantVersion+" cache.m6g.large"; got != want {
			t.Fatalf("after %+v: %q, want %q", step, got, want)
		}
		mm, err := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port)).ConfigGet(ctx, "maxmemory").Result()
		if want := fmt.Sprint(awsMaxmemory["cache.m6g.large"] * 75 / 100 / nodeMemoryScale); err != nil || mm["maxmemory"] != want {
			t.Fatalf("after %+v: maxmemory %v (%v), want %s", step, mm, err, want)
		}
		w.waitProgress(t, 100, 10*time.Second)
	}
	w.halt()
	if lost := w.lost(t, redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes lost (first %v)", len(lost), lost[:min(5, len(lost))])
	}
	msgs := eventMessages(t, c, types.SourceTypeCacheCluster, "solo")
	if !strings.Contains(msgs, "Cache node 0001 replacement complete: the node was unavailable for ") {
		t.Fatalf("no event reports the outage:\n%s", msgs)
	}
	t.Logf("%d writes acknowledged, none lost; longest write outage %v over 2 replacements", w.ackedCount(), w.outage)
}

// TestPendingNodeChangeAppliedInWindow: without ApplyImmediately a node
// change waits in PendingModifiedValues until the maintenance window on
// the emulator's (injected) clock; a later call with ApplyImmediately=true
// applies what is pending at once.
func TestPendingNodeChangeAppliedInWindow(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)} // a Wednesday
	e := startEmulatorWith(t, func(c *emulator.Config) { c.Now = clock.Now })
	c := e.client
	ctx := ctxT(t, time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("later"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true), EngineVersion: aws.String("7.0"),
		PreferredMaintenanceWindow: aws.String("wed:03:00-wed:04:00")})
	members := describeGroup(t, c, "later").MemberClusters
	pending := func() string {
		p := describeCacheCluster(t, c, members[0]).PendingModifiedValues
		return aws.ToString(p.EngineVersion) + "/" + aws.ToString(p.CacheNodeType)
	}
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("later"),
		EngineVersion: aws.String("7.1"), ApplyImmediately: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "later")
	if got := pending(); got != "7.1.0/" {
		t.Fatalf("pending %q, want 7.1.0/", got)
	}
	emu := e.srv.Emulator()
	emu.TickMaintenance(ctx) // 01:00: before the window
	if got := aws.ToString(describeGroup(t, c, "later").Status); got != "available" {
		t.Fatalf("status %q before the window, want available", got)
	}
	clock.Set(time.Date(2026, 12, 2, 3, 10, 0, 0, time.UTC))
	emu.TickMaintenance(ctx)
	if got := aws.ToString(describeGroup(t, c, "later").Status); got != "modifying" {
		t.Fatalf("status %q in the window, want modifying", got)
	}
	waitAvailable(t, c, "later")
	for id, got := range memberValues(t, c, members...) {
		if got != "redis 7.1.0 cache.t4g.micro" {
			t.Fatalf("member %s after the window: %q", id, got)
		}
	}
	if got := pending(); got != "/" {
		t.Fatalf("pending %q after the window, want nothing", got)
	}

	// Pending, then applied by a later ApplyImmediately=true.
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("later"),
		CacheNodeType: aws.String("cache.r7g.large")}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "later")
	if got := pending(); got != "/cache.r7g.large" {
		t.Fatalf("pending %q, want /cache.r7g.large", got)
	}
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("later"),
		ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "later")
	for id, got := range memberValues(t, c, members...) {
		if got != "redis 7.1.0 cache.r7g.large" {
			t.Fatalf("member %s after ApplyImmediately: %q", id, got)
		}
	}
	if got := pending(); got != "/" {
		t.Fatalf("pending %q after ApplyImmediately, want nothing", got)
	}
}

// TestNodeChangeBadInput: a downgrade, a move back from Valkey, an unknown
// version, a major upgrade keeping a custom parameter group of the old
// family, and a second modification while one runs answer AWS's errors
// and change nothing.
func TestNodeChangeBadInput(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{CacheParameterGroupName: aws.String("mine6"),
		CacheParameterGroupFamily: aws.String("redis6.x"), Description: aws.String("custom")}); err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("bad"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true), EngineVersion: aws.String("6.2"),
		CacheParameterGroupName: aws.String("mine6"), CacheNodeType: aws.String("cache.t4g.small")})
	fillMegabytes(t, primaryClient(t, c, "bad"), 30) // more than a cache.t4g.micro's 24 MiB
	members := describeGroup(t, c, "bad").MemberClusters
	before := memberValues(t, c, members...)
	modify := func(in *elasticache.ModifyReplicationGroupInput) error {
		in.ReplicationGroupId, in.ApplyImmediately = aws.String("bad"), aws.Bool(true)
		_, err := c.ModifyReplicationGroup(ctx, in)
		return err
	}
	for _, tc := range []struct {
		name string
		in   *elasticache.ModifyReplicationGroupInput
		code string
	}{
		{"downgrade", &elasticache.ModifyReplicationGroupInput{EngineVersion: aws.String("6.0")}, "InvalidParameterCombination"},
		{"custom group of the old family", &elasticache.ModifyReplicationGroupInput{EngineVersion: aws.String("7.1")}, "InvalidParameterCombination"},
		{"group of another family", &elasticache.ModifyReplicationGroupInput{EngineVersion: aws.String("7.1"), CacheParameterGroupName: aws.String("default.redis6.x")}, "InvalidParameterCombination"},
		{"memcached", &elasticache.ModifyReplicationGroupInput{Engine: aws.String("memcached")}, "InvalidParameterCombination"},
		{"scale-down the data does not fit", &elasticache.ModifyReplicationGroupInput{CacheNodeType: aws.String("cache.t4g.micro")}, "InvalidParameterCombination"},
		{"unknown node type", &elasticache.ModifyReplicationGroupInput{CacheNodeType: aws.String("cache.x9.huge")}, "InvalidParameterValue"},
	} {
		err := modify(tc.in)
		if code, _ := apiError(t, err); code != tc.code {
			t.Errorf("%s: error %v, want %s", tc.name, err, tc.code)
		}
	}
	// The engine catalog's own answer (resolveEngine, shared with the
	// creates) for a version it does not know.
	err := modify(&elasticache.ModifyReplicationGroupInput{EngineVersion: aws.String("7.4")})
	if err == nil {
		t.Errorf("unknown version 7.4 accepted")
	}
	// Valkey, then back to Redis OSS: refused.
	if err := modify(&elasticache.ModifyReplicationGroupInput{Engine: aws.String("valkey"), EngineVersion: aws.String("7.2"),
		CacheParameterGroupName: aws.String("default.valkey7")}); err != nil {
		t.Fatal(err)
	}
	// A second modification while the first runs.
	err = modify(&elasticache.ModifyReplicationGroupInput{CacheNodeType: aws.String("cache.m7g.large")})
	if code, _ := apiError(t, err); code != "InvalidReplicationGroupState" {
		t.Errorf("a second modification while one runs: %v, want InvalidReplicationGroupState", err)
	}
	if got := memberValues(t, c, members...); !equalMaps(before, got) {
		t.Errorf("refused or unfinished changes changed the members: %v, then %v", before, got)
	}
	waitAvailable(t, c, "bad")
	after := memberValues(t, c, members...)
	for id, got := range after {
		if got != "valkey 7.2.6 cache.t4g.small" {
			t.Errorf("member %s after the upgrade to Valkey: %q", id, got)
		}
	}
	err = modify(&elasticache.ModifyReplicationGroupInput{Engine: aws.String("redis"), EngineVersion: aws.String("7.1")})
	if code, _ := apiError(t, err); code != "InvalidParameterCombination" {
		t.Errorf("Valkey back to Redis OSS: %v, want InvalidParameterCombination", err)
	}
	if got := memberValues(t, c, members...); !equalMaps(after, got) {
		t.Errorf("a refused change changed the members: %v, then %v", after, got)
	}
}

// TestRollingResumesAfterKill9: the emulator is killed (kill -9) while an
// engine upgrade replaces a group's nodes; the next start finishes it:
// every member runs the new version, the data is intact, nothing stays
// modifying, no node runs without a record.
func TestRollingResumesAfterKill9(t *testing.T) {
	t.Parallel() // its binary has an address range of its own
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	ctx := ctxT(t, 3*time.Minute)
	cmd := startBinary(t, bin, dataDir, port, rollingAddressEnv)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("resume"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true), EngineVersion: aws.String("6.2")})
	members := describeGroup(t, c, "resume").MemberClusters
	restartData(t, primaryClient(t, c, "resume"), "resume", 2000)
	want, err := dataChecksum(ctx, primaryClient(t, c, "resume"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("resume"),
		EngineVersion: aws.String("7.1"), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// Kill it once the first node is replaced: the change is half done.
	eventually(t, 30*time.Second, func() error {
		for _, m := range members {
			if strings.Contains(eventMessages(t, c, types.SourceTypeCacheCluster, m), "replacement complete") {
				return nil
			}
		}
		return errors.New("no node replaced yet")
	})
	if msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "resume"); strings.Contains(msgs, "Finished modifying") {
		t.Fatalf("the upgrade finished before the kill: nothing was left to resume")
	}
	killBinary(t, cmd)
	cmd = startBinary(t, bin, dataDir, port, rollingAddressEnv)
	waitSettled(t, c, 2*time.Minute)
	for id, got := range memberValues(t, c, members...) {
		if got != "redis 7.1.0 cache.t4g.micro" {
			t.Errorf("member %s after the resumed upgrade: %q", id, got)
		}
	}
	expectGroupData(t, c, "resume", want)
	eventually(t, 30*time.Second, func() error {
		if bad := orphans(t, url, dataDir); bad != "" {
			return errors.New(bad)
		}
		return nil
	})
	stopBinary(t, cmd, dataDir)
}

// TestRollingNodeChangeOfClusterModeGroup: a cluster-mode group of 2 shards
// × 1 replica moves to Valkey 7.2 on a larger node type, shard by shard
// (the replica, a planned CLUSTER FAILOVER, the old primary): every key
// written before is there, every member shows the new values.
func TestRollingNodeChangeOfClusterModeGroup(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	g := createClusterGroup(t, c, "rollcm", 2, 1)
	cc := clusterClient(t, g)
	fillCluster(t, cc, "cm", 5000)
	if _, err := c.ModifyReplicationGroup(ctxT(t, 10*time.Second), &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("rollcm"), ApplyImmediately: aws.Bool(true),
		Engine: aws.String("valkey"), EngineVersion: aws.String("7.2"), CacheNodeType: aws.String("cache.m6g.large"),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "rollcm")
	for id, got := range memberValues(t, c, describeGroup(t, c, "rollcm").MemberClusters...) {
		if got != "valkey 7.2.6 cache.m6g.large" {
			t.Errorf("member %s: %q", id, got)
		}
	}
	checkClusterKeys(t, cc, "cm", 5000)
	if msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "rollcm"); strings.Count(msgs, "Failover from primary node") != 2 {
		t.Errorf("want one planned failover per shard, events:\n%s", msgs)
	}
}
