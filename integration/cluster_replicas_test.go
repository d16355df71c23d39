package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
)

// Replica counts of a cluster-mode group change online, per shard: new
// replicas join the cluster as replicas of their shard's primary and hold
// its data; removed ones are gone from the cluster too, not left behind as
// failed nodes that clients would be told about.

// changeReplicas runs an Increase or Decrease call that must answer
// "modifying", then waits for the group to be available and the cluster
// to agree with Describe; it returns the group.
func changeReplicas(t *testing.T, e *emu, id string, call func(ctx context.Context) (*types.ReplicationGroup, error)) types.ReplicationGroup {
	t.Helper()
	g, err := call(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("replica change: %v", err)
	}
	if s := aws.ToString(g.Status); s != "modifying" {
		t.Fatalf("status after the call = %q, want modifying", s)
	}
	waitAvailable(t, e.client, id)
	var out types.ReplicationGroup
	eventually(t, 20*time.Second, func() error {
		out = describeGroup(t, e.client, id)
		_, err := checkShardRoles(t, e, out)
		return err
	})
	return out
}

// checkReplicasHoldData waits until every replica holds at least the
// keys prefix:0..n-1 that its shard owns (the data written before the
// change; the load keeps adding more).
func checkReplicasHoldData(t *testing.T, e *emu, g types.ReplicationGroup, prefix string, n int) {
	t.Helper()
	primaries, err := checkShardRoles(t, e, g)
	if err != nil {
		t.Fatal(err)
	}
	owner := slotOwners(t, g)
	want := map[string]int64{}
	for i := range n {
		want[owner[engine.HashSlot(fmt.Sprintf("%s:%d", prefix, i))]]++
	}
	nodes := adminNodes(t, e.url)
	for _, ng := range g.NodeGroups {
		ngID := aws.ToString(ng.NodeGroupId)
		for _, m := range ng.NodeGroupMembers {
			id := aws.ToString(m.CacheClusterId)
			if id == primaries[ngID] {
				continue
			}
			eventually(t, 20*time.Second, func() error {
				c := redis.NewClient(&redis.Options{Addr: nodes[id].Endpoint, MaxRetries: -1})
				defer c.Close()
				got, err := c.DBSize(context.Background()).Result()
				if err != nil || got < want[ngID] {
					return fmt.Errorf("replica %s holds %d keys (%v), want at least the %d of its shard", id, got, err, want[ngID])
				}
				return nil
			})
		}
	}
}

func TestClusterReplicaCount(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	g := createClusterGroup(t, c, "scale", 3, 1)
	cc := clusterClient(t, g)
	const keys = 20000
	fillCluster(t, cc, "k", keys)
	load := startShardLoad(t, cc, slotOwners(t, g))
	load.waitProgress(t, 100, 20*time.Second)

	// NewReplicaCount applies to every shard.
	g = changeReplicas(t, e, "scale", func(ctx context.Context) (*types.ReplicationGroup, error) {
		out, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
			ReplicationGroupId: aws.String("scale"), NewReplicaCount: aws.Int32(2), ApplyImmediately: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		return out.ReplicationGroup, nil
	})
	for ng, ids := range sortedMembers(g) {
		want := []string{"scale-" + ng + "-001", "scale-" + ng + "-002", "scale-" + ng + "-003"}
		if !slices.Equal(ids, want) {
			t.Errorf("members of %s = %v, want %v", ng, ids, want)
		}
	}
	checkReplicasHoldData(t, e, g, "k", keys)

	// ReplicaConfiguration grows one shard, in the zones it names.
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1c"}
	g = changeReplicas(t, e, "scale", func(ctx context.Context) (*types.ReplicationGroup, error) {
		out, err := c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{
			ReplicationGroupId: aws.String("scale"), ApplyImmediately: aws.Bool(true),
			ReplicaConfiguration: []types.ConfigureShard{{NodeGroupId: aws.String("0001"), NewReplicaCount: aws.Int32(3), PreferredAvailabilityZones: zones}}})
		if err != nil {
			return nil, err
		}
		return out.ReplicationGroup, nil
	})
	if n := len(sortedMembers(g)["0001"]); n != 4 {
		t.Fatalf("0001 has %d members after growing it to 3 replicas", n)
	}
	for _, ng := range g.NodeGroups {
		for _, m := range ng.NodeGroupMembers {
			if aws.ToString(m.CacheClusterId) == "scale-0001-004" && aws.ToString(m.PreferredAvailabilityZone) != "us-east-1c" {
				t.Errorf("scale-0001-004 is in %s, want us-east-1c", aws.ToString(m.PreferredAvailabilityZone))
			}
		}
	}
	checkReplicasHoldData(t, e, g, "k", keys)

	// ReplicasToRemove names members of different shards.
	removed := []string{"scale-0002-003", "scale-0003-002"}
	gone := adminNodes(t, e.url)
	g = changeReplicas(t, e, "scale", func(ctx context.Context) (*types.ReplicationGroup, error) {
		out, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
			ReplicationGroupId: aws.String("scale"), ReplicasToRemove: removed, ApplyImmediately: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		return out.ReplicationGroup, nil
	})
	for _, id := range removed {
		if slices.Contains(g.MemberClusters, id) {
			t.Errorf("%s is still a member: %v", id, g.MemberClusters)
		}
		_, err := c.DescribeCacheClusters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id)})
		expectError(t, err, "CacheClusterNotFound", 404)
		rc := redis.NewClient(&redis.Options{Addr: gone[id].Endpoint, DialTimeout: time.Second, MaxRetries: -1})
		if err := rc.Ping(context.Background()).Err(); err == nil {
			t.Errorf("the node of removed %s still answers", id)
		}
		rc.Close()
	}

	// NewReplicaCount shrinks the shards above it and leaves the others.
	g = changeReplicas(t, e, "scale", func(ctx context.Context) (*types.ReplicationGroup, error) {
		out, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
			ReplicationGroupId: aws.String("scale"), NewReplicaCount: aws.Int32(1), ApplyImmediately: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		return out.ReplicationGroup, nil
	})
	want := map[string][]string{
		"0001": {"scale-0001-001", "scale-0001-002"},
		"0002": {"scale-0002-001", "scale-0002-002"},
		"0003": {"scale-0003-001", "scale-0003-003"},
	}
	for ng, ids := range sortedMembers(g) {
		if !slices.Equal(ids, want[ng]) {
			t.Errorf("members of %s = %v, want %v", ng, ids, want[ng])
		}
	}

	// A shard may have no replica in cluster mode.
	g = changeReplicas(t, e, "scale", func(ctx context.Context) (*types.ReplicationGroup, error) {
		out, err := c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{
			ReplicationGroupId: aws.String("scale"), ApplyImmediately: aws.Bool(true),
			ReplicaConfiguration: []types.ConfigureShard{{NodeGroupId: aws.String("3"), NewReplicaCount: aws.Int32(0)}}})
		if err != nil {
			return nil, err
		}
		return out.ReplicationGroup, nil
	})
	if ids := sortedMembers(g)["0003"]; !slices.Equal(ids, []string{"scale-0003-001"}) {
		t.Errorf("members of 0003 = %v, want only its primary", ids)
	}
	load.halt()
	checkClusterKeys(t, cc, "k", keys)
	acked := load.checkAcked(t, cc)
	var perShard []string
	for _, id := range []string{"0001", "0002", "0003"} {
		a, errs := load.snapshot(id)
		perShard = append(perShard, fmt.Sprintf("%s: %d acked, %d errors", id, a, errs))
		if errs != 0 {
			t.Errorf("shard %s saw %d write errors while replicas changed (last %v)", id, errs, load.shards[id].last)
		}
	}
	t.Logf("five replica changes under load: %s; %d acknowledged writes, none lost", strings.Join(perShard, "; "), acked)
	msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "scale")
	for _, m := range []string{
		"Finished modifying number of replicas in node group 0002 from 1 to 2",
		"Finished modifying number of replicas in node group 0001 from 2 to 3",
		"Finished modifying number of replicas in node group 0003 from 1 to 0",
	} {
		if !strings.Contains(msgs, m) {
			t.Errorf("events lack %q:\n%s", m, msgs)
		}
	}
}

func TestClusterReplicaCountErrors(t *testing.T) {
	t.Parallel()
	e := startEmulatorWith(t, func(cfg *emulator.Config) { cfg.NodeQuota = 5 })
	c := e.client
	createClusterGroup(t, c, "bad", 2, 1)
	inc := func(in *elasticache.IncreaseReplicaCountInput) error {
		in.ReplicationGroupId, in.ApplyImmediately = aws.String("bad"), aws.Bool(true)
		_, err := c.IncreaseReplicaCount(ctxT(t, 5*time.Second), in)
		return err
	}
	dec := func(in *elasticache.DecreaseReplicaCountInput) error {
		in.ReplicationGroupId, in.ApplyImmediately = aws.String("bad"), aws.Bool(true)
		_, err := c.DecreaseReplicaCount(ctxT(t, 5*time.Second), in)
		return err
	}
	shard := func(id string, n int32, zones ...string) []types.ConfigureShard {
		return []types.ConfigureShard{{NodeGroupId: aws.String(id), NewReplicaCount: aws.Int32(n), PreferredAvailabilityZones: zones}}
	}
	cases := []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"unknown node group", inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0009", 2)}), "NodeGroupNotFoundFault", 404},
		{"more than 5 replicas", inc(&elasticache.IncreaseReplicaCountInput{NewReplicaCount: aws.Int32(6)}), "InvalidParameterValue", 400},
		{"more than 5 in one shard", inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0001", 6)}), "InvalidParameterValue", 400},
		{"both ways", inc(&elasticache.IncreaseReplicaCountInput{NewReplicaCount: aws.Int32(2), ReplicaConfiguration: shard("0001", 2)}), "InvalidParameterCombination", 400},
		{"not an increase", inc(&elasticache.IncreaseReplicaCountInput{NewReplicaCount: aws.Int32(1)}), "InvalidParameterValue", 400},
		{"shard not increased", inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0002", 1)}), "InvalidParameterValue", 400},
		{"zones for every node", inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0001", 2, "us-east-1a")}), "InvalidParameterValue", 400},
		{"node group twice", inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: append(shard("0001", 2), shard("1", 3)...)}), "InvalidParameterValue", 400},
		{"no count", inc(&elasticache.IncreaseReplicaCountInput{}), "InvalidParameterValue", 400},
		{"remove unknown node group", dec(&elasticache.DecreaseReplicaCountInput{ReplicaConfiguration: shard("0009", 0)}), "NodeGroupNotFoundFault", 404},
		{"remove a primary", dec(&elasticache.DecreaseReplicaCountInput{ReplicasToRemove: []string{"bad-0002-001"}}), "InvalidParameterValue", 400},
		{"remove a stranger", dec(&elasticache.DecreaseReplicaCountInput{ReplicasToRemove: []string{"other-0001-002"}}), "InvalidParameterValue", 400},
		{"remove two ways", dec(&elasticache.DecreaseReplicaCountInput{ReplicasToRemove: []string{"bad-0002-002"}, NewReplicaCount: aws.Int32(0)}), "InvalidParameterCombination", 400},
		{"not a decrease", dec(&elasticache.DecreaseReplicaCountInput{NewReplicaCount: aws.Int32(1)}), "InvalidParameterValue", 400},
		{"negative", dec(&elasticache.DecreaseReplicaCountInput{ReplicaConfiguration: shard("0001", -1)}), "InvalidParameterValue", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectError(t, tc.err, tc.code, tc.status) })
	}
	// Nothing changed; the region's node quota counts the new replicas
	// of every shard; a change while another runs is refused.
	if n := len(describeGroup(t, c, "bad").MemberClusters); n != 4 {
		t.Fatalf("a refused call changed the members: %d", n)
	}
	expectError(t, inc(&elasticache.IncreaseReplicaCountInput{NewReplicaCount: aws.Int32(2)}), "NodeQuotaForCustomerExceeded", 400)
	if err := inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0001", 2)}); err != nil {
		t.Fatal(err)
	}
	expectError(t, dec(&elasticache.DecreaseReplicaCountInput{NewReplicaCount: aws.Int32(0)}), "InvalidReplicationGroupState", 400)
	expectError(t, inc(&elasticache.IncreaseReplicaCountInput{ReplicaConfiguration: shard("0002", 2)}), "InvalidReplicationGroupState", 400)
	waitAvailable(t, c, "bad")
	if n := len(describeGroup(t, c, "bad").MemberClusters); n != 5 {
		t.Fatalf("members after growing 0001 to 2 replicas: %d, want 5", n)
	}
}
