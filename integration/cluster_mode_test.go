package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// createClusterGroup creates a cluster-mode group of shards × (1+replicas)
// nodes and waits until it is available.
func createClusterGroup(t testing.TB, c *elasticache.Client, id string, shards, replicas int32, ngc ...types.NodeGroupConfiguration) types.ReplicationGroup {
	t.Helper()
	in := &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId:          aws.String(id),
		ReplicationGroupDescription: aws.String("cluster mode"),
		CacheNodeType:               aws.String("cache.t3.micro"),
		Engine:                      aws.String("redis"),
		CacheParameterGroupName:     aws.String("default.redis7.cluster.on"),
		AutomaticFailoverEnabled:    aws.Bool(true),
	}
	if len(ngc) > 0 {
		in.NodeGroupConfiguration = ngc
	} else {
		in.NumNodeGroups, in.ReplicasPerNodeGroup = aws.Int32(shards), aws.Int32(replicas)
	}
	if _, err := c.CreateReplicationGroup(ctxT(t, 10*time.Second), in); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	waitAvailable(t, c, id)
	return describeGroup(t, c, id)
}

// clusterClient is a go-redis ClusterClient on a group's configuration
// endpoint, as an application would open it.
func clusterClient(t testing.TB, g types.ReplicationGroup) *redis.ClusterClient {
	t.Helper()
	if g.ConfigurationEndpoint == nil {
		t.Fatalf("group %s has no configuration endpoint", aws.ToString(g.ReplicationGroupId))
	}
	addr := fmt.Sprintf("%s:%d", aws.ToString(g.ConfigurationEndpoint.Address), aws.ToInt32(g.ConfigurationEndpoint.Port))
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, DialTimeout: 2 * time.Second, MaxRedirects: 16})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// fillCluster writes key:0..n-1 through cc, pipelined per node.
func fillCluster(t testing.TB, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	const batch = 2000
	for i := 0; i < n; i += batch {
		_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < min(n, i+batch); j++ {
				p.Set(ctx, fmt.Sprintf("%s:%d", prefix, j), j, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("writing keys %d..: %v", i, err)
		}
	}
}

// checkClusterKeys reads key:0..n-1 back and fails on any missing or wrong one.
func checkClusterKeys(t testing.TB, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	const batch = 2000
	for i := 0; i < n; i += batch {
		cmds := make([]*redis.StringCmd, 0, batch)
		_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < min(n, i+batch); j++ {
				cmds = append(cmds, p.Get(ctx, fmt.Sprintf("%s:%d", prefix, j)))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("reading keys %d..: %v", i, err)
		}
		for k, cmd := range cmds {
			if v, err := cmd.Result(); err != nil || v != fmt.Sprint(i+k) {
				t.Fatalf("key %s:%d = %q, %v", prefix, i+k, v, err)
			}
		}
	}
}

// slotCounts are the slots of each node group, as Describe shows them.
func slotCounts(t testing.TB, g types.ReplicationGroup) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ng := range g.NodeGroups {
		ranges, err := engine.ParseSlotRanges(aws.ToString(ng.Slots))
		if err != nil {
			t.Fatalf("node group %s slots %q: %v", aws.ToString(ng.NodeGroupId), aws.ToString(ng.Slots), err)
		}
		out[aws.ToString(ng.NodeGroupId)] = engine.SlotCount(ranges)
	}
	return out
}

func TestClusterModeCreateAndDescribe(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "shards", 3, 1)
	if !aws.ToBool(g.ClusterEnabled) || g.ClusterMode != types.ClusterModeEnabled {
		t.Fatalf("ClusterEnabled = %v, ClusterMode = %q", aws.ToBool(g.ClusterEnabled), g.ClusterMode)
	}
	if len(g.NodeGroups) != 3 {
		t.Fatalf("node groups = %d, want 3", len(g.NodeGroups))
	}
	wantSlots := []string{"0-5461", "5462-10922", "10923-16383"}
	for i, ng := range g.NodeGroups {
		id := fmt.Sprintf("%04d", i+1)
		if aws.ToString(ng.NodeGroupId) != id || aws.ToString(ng.Slots) != wantSlots[i] {
			t.Errorf("node group %d = %s slots %s, want %s %s", i, aws.ToString(ng.NodeGroupId), aws.ToString(ng.Slots), id, wantSlots[i])
		}
		if ng.PrimaryEndpoint != nil || ng.ReaderEndpoint != nil {
			t.Errorf("node group %s has primary/reader endpoints; a cluster-mode group has only the configuration endpoint", id)
		}
		var members []string
		for _, m := range ng.NodeGroupMembers {
			members = append(members, aws.ToString(m.CacheClusterId))
		}
		want := []string{"shards-" + id + "-001", "shards-" + id + "-002"}
		if !slices.Equal(members, want) {
			t.Errorf("members of %s = %v, want %v", id, members, want)
		}
	}
	if len(g.MemberClusters) != 6 {
		t.Errorf("member clusters = %v", g.MemberClusters)
	}
	cc := clusterClient(t, g)
	fillCluster(t, cc, "k", 20000)
	checkClusterKeys(t, cc, "k", 20000)
	// Every node is a real cluster node: the layout the nodes report is
	// the one Describe shows, at addresses reachable from here.
	shards, err := cc.ClusterShards(ctxT(t, 5*time.Second)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 {
		t.Fatalf("CLUSTER SHARDS = %d shards", len(shards))
	}
	for _, sh := range shards {
		if len(sh.Nodes) != 2 {
			t.Errorf("shard %v has %d nodes", sh.Slots, len(sh.Nodes))
		}
		for _, n := range sh.Nodes {
			rc := redisClient(t, n.Endpoint, int32(n.Port))
			if err := rc.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
				t.Errorf("node %s:%d announced by the cluster does not answer from the host: %v", n.Endpoint, n.Port, err)
			}
		}
	}
	// The cluster-mode member caches show their node endpoints.
	cl, err := e.client.DescribeCacheClusters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("shards-0002-001"), ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if ep := cl.CacheClusters[0].CacheNodes[0].Endpoint; ep == nil || aws.ToString(ep.Address) == "" {
		t.Errorf("member has no node endpoint: %+v", cl.CacheClusters[0].CacheNodes[0])
	}
	// Delete removes every node.
	if _, err := e.client.DeleteReplicationGroup(ctxT(t, 5*time.Second), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("shards")}); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, e.client, "shards")
}

func TestClusterModeCreateErrors(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	base := func() *elasticache.CreateReplicationGroupInput {
		return &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String("bad"), ReplicationGroupDescription: aws.String("d"),
			CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
			NumNodeGroups: aws.Int32(2),
		}
	}
	cases := []struct {
		name   string
		tweak  func(*elasticache.CreateReplicationGroupInput)
		code   string
		status int
	}{
		{"NumCacheClusters", func(in *elasticache.CreateReplicationGroupInput) { in.NumCacheClusters = aws.Int32(2) }, "InvalidParameterCombination", 400},
		{"non-cluster parameter group", func(in *elasticache.CreateReplicationGroupInput) {
			in.CacheParameterGroupName = aws.String("default.redis7")
		}, "InvalidParameterCombination", 400},
		{"too many shards", func(in *elasticache.CreateReplicationGroupInput) { in.NumNodeGroups = aws.Int32(501) }, "NodeGroupsPerReplicationGroupQuotaExceeded", 400},
		{"too many nodes", func(in *elasticache.CreateReplicationGroupInput) {
			in.NumNodeGroups, in.ReplicasPerNodeGroup = aws.Int32(16), aws.Int32(5)
		}, "NodeQuotaForClusterExceeded", 400},
		{"overlapping slots", func(in *elasticache.CreateReplicationGroupInput) {
			in.NumNodeGroups = nil
			in.NodeGroupConfiguration = []types.NodeGroupConfiguration{{Slots: aws.String("0-9000")}, {Slots: aws.String("8000-16383")}}
		}, "InvalidParameterValue", 400},
		{"slot gap", func(in *elasticache.CreateReplicationGroupInput) {
			in.NumNodeGroups = nil
			in.NodeGroupConfiguration = []types.NodeGroupConfiguration{{Slots: aws.String("0-8000")}, {Slots: aws.String("8002-16383")}}
		}, "InvalidParameterValue", 400},
		{"failover off", func(in *elasticache.CreateReplicationGroupInput) { in.AutomaticFailoverEnabled = aws.Bool(false) }, "InvalidParameterCombination", 400},
	}
	for _, tc := range cases {
		in := base()
		tc.tweak(in)
		_, err := e.client.CreateReplicationGroup(ctxT(t, 5*time.Second), in)
		t.Run(tc.name, func(t *testing.T) { expectError(t, err, tc.code, tc.status) })
	}
	out, err := e.client.DescribeReplicationGroups(ctxT(t, 5*time.Second), &elasticache.DescribeReplicationGroupsInput{})
	if err != nil || len(out.ReplicationGroups) != 0 {
		t.Fatalf("a refused create left groups: %v %v", out, err)
	}
	// Resharding a cluster-mode-disabled group is refused.
	if _, err := e.client.CreateReplicationGroup(ctxT(t, 5*time.Second), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("plain"), ReplicationGroupDescription: aws.String("d"),
		CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, e.client, "plain")
	_, err = e.client.ModifyReplicationGroupShardConfiguration(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("plain"), NodeGroupCount: aws.Int32(2), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidParameterCombination", 400)
}

// loadClient runs readers and writers through a ClusterClient until
// stopped and counts what the application would see: errors, and the
// keys acknowledged.
type loadClient struct {
	cc     *redis.ClusterClient
	prefix string
	stop   chan struct{}
	wg     sync.WaitGroup
	errs   atomic.Int64
	ops    atomic.Int64
	mu     sync.Mutex
	acked  []int
	last   error
}

func startLoad(t testing.TB, cc *redis.ClusterClient, prefix string, readPrefix string, readN int) *loadClient {
	l := &loadClient{cc: cc, prefix: prefix, stop: make(chan struct{})}
	ctx := context.Background()
	l.wg.Add(2)
	go func() { // writer
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			err := cc.Set(ctx, fmt.Sprintf("%s:%d", prefix, i), i, 0).Err()
			l.count(err)
			if err == nil {
				l.mu.Lock()
				l.acked = append(l.acked, i)
				l.mu.Unlock()
			}
		}
	}()
	go func() { // reader
		defer l.wg.Done()
		for i := 0; ; i = (i + 7919) % readN {
			select {
			case <-l.stop:
				return
			default:
			}
			v, err := cc.Get(ctx, fmt.Sprintf("%s:%d", readPrefix, i)).Result()
			if err == nil && v != fmt.Sprint(i) {
				err = fmt.Errorf("key %s:%d = %q", readPrefix, i, v)
			}
			l.count(err)
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *loadClient) count(err error) {
	l.ops.Add(1)
	if err != nil {
		l.errs.Add(1)
		l.mu.Lock()
		l.last = err
		l.mu.Unlock()
	}
}

func (l *loadClient) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// reshard runs ModifyReplicationGroupShardConfiguration and waits for
// available, recording every progress percentage it saw.
func reshard(t *testing.T, c *elasticache.Client, in *elasticache.ModifyReplicationGroupShardConfigurationInput) []float64 {
	t.Helper()
	in.ApplyImmediately = aws.Bool(true)
	out, err := c.ModifyReplicationGroupShardConfiguration(ctxT(t, 10*time.Second), in)
	if err != nil {
		t.Fatalf("resharding: %v", err)
	}
	if s := aws.ToString(out.ReplicationGroup.Status); s != "modifying" {
		t.Fatalf("status after the call = %q, want modifying", s)
	}
	var seen []float64
	eventually(t, 3*time.Minute, func() error {
		g := describeGroup(t, c, aws.ToString(in.ReplicationGroupId))
		if pm := g.PendingModifiedValues; pm != nil && pm.Resharding != nil && pm.Resharding.SlotMigration != nil {
			p := aws.ToFloat64(pm.Resharding.SlotMigration.ProgressPercentage)
			if len(seen) == 0 || seen[len(seen)-1] != p {
				seen = append(seen, p)
			}
		}
		if s := aws.ToString(g.Status); s != "available" {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
	return seen
}

func TestClusterModeOnlineResharding(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "reshard", 3, 1)
	cc := clusterClient(t, g)
	const keys = 200000
	fillCluster(t, cc, "k", keys)

	// Scale out to 4 while clients read and write.
	load := startLoad(t, cc, "w", "k", keys)
	seen := reshard(t, e.client, &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("reshard"), NodeGroupCount: aws.Int32(4)})
	load.halt()
	t.Logf("scale out: %d client operations, %d errors (last %v), progress seen %v", load.ops.Load(), load.errs.Load(), load.last, seen)
	if load.errs.Load() != 0 {
		t.Errorf("clients saw %d errors during the scale out (last: %v)", load.errs.Load(), load.last)
	}
	if len(seen) == 0 || seen[len(seen)-1] < 100 && len(seen) < 2 {
		t.Errorf("progress percentages seen: %v", seen)
	}
	g = describeGroup(t, e.client, "reshard")
	counts := slotCounts(t, g)
	if len(counts) != 4 {
		t.Fatalf("node groups after scale out: %v", counts)
	}
	for id, n := range counts {
		if n < 4096 || n > 4096 {
			t.Errorf("node group %s holds %d slots, want 4096", id, n)
		}
	}
	if g.PendingModifiedValues != nil && g.PendingModifiedValues.Resharding != nil {
		t.Errorf("resharding still pending after available: %+v", g.PendingModifiedValues.Resharding)
	}
	checkClusterKeys(t, cc, "k", keys)
	for _, i := range load.acked {
		if v, err := cc.Get(ctxT(t, 5*time.Second), fmt.Sprintf("w:%d", i)).Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("acknowledged write w:%d = %q, %v", i, v, err)
		}
	}

	// Scale in to 2 by naming the node groups to remove.
	reshard(t, e.client, &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("reshard"), NodeGroupCount: aws.Int32(2), NodeGroupsToRemove: []string{"0001", "0003"}})
	g = describeGroup(t, e.client, "reshard")
	counts = slotCounts(t, g)
	if len(counts) != 2 || counts["0002"] != 8192 || counts["0004"] != 8192 {
		t.Fatalf("after scale in: %v", counts)
	}
	if len(g.MemberClusters) != 4 {
		t.Errorf("members after scale in: %v", g.MemberClusters)
	}
	// The removed nodes are gone: a client refreshes its view of the
	// cluster (as on AWS, where their DNS names go away).
	cc.ReloadState(ctxT(t, 5*time.Second))
	checkClusterKeys(t, cc, "k", keys)

	// An even layout has nothing to rebalance.
	_, err := e.client.ModifyReplicationGroupShardConfiguration(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("reshard"), NodeGroupCount: aws.Int32(2), ApplyImmediately: aws.Bool(true)})
	expectError(t, err, "InvalidReplicationGroupState", 400)
	events, err := e.client.DescribeEvents(ctxT(t, 5*time.Second), &elasticache.DescribeEventsInput{SourceIdentifier: aws.String("reshard"), SourceType: types.SourceTypeReplicationGroup})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, ev := range events.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, "from 3 to 4") && strings.HasPrefix(m, "Finished") }) {
		t.Errorf("no event for the finished scale out: %q", msgs)
	}
}

func TestClusterModeRebalance(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "uneven", 0, 0,
		types.NodeGroupConfiguration{NodeGroupId: aws.String("0001"), Slots: aws.String("0-12000"), ReplicaCount: aws.Int32(0)},
		types.NodeGroupConfiguration{NodeGroupId: aws.String("0002"), Slots: aws.String("12001-16383"), ReplicaCount: aws.Int32(0)})
	if c := slotCounts(t, g); c["0001"] != 12001 || c["0002"] != 4383 {
		t.Fatalf("slots as configured: %v", c)
	}
	cc := clusterClient(t, g)
	fillCluster(t, cc, "k", 30000)
	reshard(t, e.client, &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("uneven"), NodeGroupCount: aws.Int32(2)})
	if c := slotCounts(t, describeGroup(t, e.client, "uneven")); c["0001"] != 8192 || c["0002"] != 8192 {
		t.Fatalf("slots after rebalance: %v", c)
	}
	checkClusterKeys(t, cc, "k", 30000)
}

// TestClusterModeScaleInMustFit: a scale-in whose data would not fit in
// the node groups that stay (their maxmemory) ends without moving
// anything: the layout is unchanged, every key still there, and an event
// says why.
func TestClusterModeScaleInMustFit(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "tight", 3, 0)
	cc := clusterClient(t, g)
	ctx := ctxT(t, time.Minute)
	value := strings.Repeat("x", 1000)
	_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 15000 {
			p.Set(ctx, fmt.Sprintf("big:%d", i), value, 0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each primary may hold a little more than it does now: two of them
	// cannot hold all three's data.
	err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		var mem int64
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				fmt.Sscan(v, &mem)
			}
		}
		return n.ConfigSet(ctx, "maxmemory", fmt.Sprint(mem+(1<<20))).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	before := slotCounts(t, describeGroup(t, e.client, "tight"))
	reshard(t, e.client, &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("tight"), NodeGroupCount: aws.Int32(2), NodeGroupsToRetain: []string{"0001", "0002"}})
	after := slotCounts(t, describeGroup(t, e.client, "tight"))
	if len(after) != 3 || after["0001"] != before["0001"] || after["0003"] != before["0003"] {
		t.Fatalf("layout changed by a scale-in that does not fit: %v → %v", before, after)
	}
	msgs := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "tight")
	if !strings.Contains(msgs, "does not fit") {
		t.Errorf("no event says the data does not fit: %s", msgs)
	}
	for i := range 15000 {
		if i%1000 != 0 {
			continue
		}
		if v, err := cc.Get(ctx, fmt.Sprintf("big:%d", i)).Result(); err != nil || v != value {
			t.Fatalf("big:%d: %v", i, err)
		}
	}
}
