package integration

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestReplicationGroupLifecycle is the README scenario through the Go SDK:
// create a 3-node group, wait with the SDK waiter, write on the primary
// endpoint and read it back on every replica, then delete and wait.
func TestReplicationGroupLifecycle(t *testing.T) {
	e := startEmulator(t)
	ctx := ctxT(t, 2*time.Minute)
	c := e.client

	out, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId:          aws.String("Orders"),
		ReplicationGroupDescription: aws.String("orders cache"),
		Engine:                      aws.String("redis"),
		CacheNodeType:               aws.String("cache.t4g.micro"),
		NumCacheClusters:            aws.Int32(3),
		AutomaticFailoverEnabled:    aws.Bool(true),
		Tags:                        []types.Tag{{Key: aws.String("team"), Value: aws.String("checkout")}},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got := aws.ToString(out.ReplicationGroup.Status); got != "creating" {
		t.Fatalf("status after create = %q, want creating", got)
	}
	if got := aws.ToString(out.ReplicationGroup.ReplicationGroupId); got != "orders" {
		t.Fatalf("id = %q, want it stored lower-case", got)
	}
	waitAvailable(t, c, "orders")

	desc, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("orders")})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	g := desc.ReplicationGroups[0]
	if want := []string{"orders-001", "orders-002", "orders-003"}; !slices.Equal(g.MemberClusters, want) {
		t.Fatalf("members = %v, want %v", g.MemberClusters, want)
	}
	if got, want := aws.ToString(g.ARN), "arn:aws:elasticache:us-east-1:000000000000:replicationgroup:orders"; got != want {
		t.Fatalf("ARN = %s, want %s", got, want)
	}
	if g.AutomaticFailover != types.AutomaticFailoverStatusEnabled || aws.ToBool(g.ClusterEnabled) || g.ClusterMode != types.ClusterModeDisabled {
		t.Fatalf("failover/cluster flags = %v/%v/%v", g.AutomaticFailover, aws.ToBool(g.ClusterEnabled), g.ClusterMode)
	}
	if len(g.NodeGroups) != 1 || aws.ToString(g.NodeGroups[0].NodeGroupId) != "0001" {
		t.Fatalf("node groups = %+v", g.NodeGroups)
	}
	ng := g.NodeGroups[0]
	if ng.PrimaryEndpoint == nil || ng.ReaderEndpoint == nil || aws.ToInt32(ng.PrimaryEndpoint.Port) != 6379 {
		t.Fatalf("endpoints: primary %+v reader %+v (want the requested default port 6379)", ng.PrimaryEndpoint, ng.ReaderEndpoint)
	}
	roles := map[string]int{}
	for _, m := range ng.NodeGroupMembers {
		roles[aws.ToString(m.CurrentRole)]++
		if aws.ToString(m.CacheNodeId) != "0001" || m.ReadEndpoint == nil {
			t.Fatalf("member %+v", m)
		}
	}
	if roles["primary"] != 1 || roles["replica"] != 2 {
		t.Fatalf("roles = %v, want 1 primary and 2 replicas", roles)
	}

	primary := redisClient(t, aws.ToString(ng.PrimaryEndpoint.Address), aws.ToInt32(ng.PrimaryEndpoint.Port))
	if err := primary.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on primary endpoint: %v", err)
	}
	for _, m := range ng.NodeGroupMembers {
		rc := redisClient(t, aws.ToString(m.ReadEndpoint.Address), aws.ToInt32(m.ReadEndpoint.Port))
		eventually(t, 5*time.Second, func() error {
			v, err := rc.Get(ctx, "k").Result()
			if err != nil || v != "v" {
				return fmt.Errorf("GET k on %s = %q, %v", aws.ToString(m.CacheClusterId), v, err)
			}
			return nil
		})
	}

	cc, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("orders-002"), ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatalf("describe cache clusters: %v", err)
	}
	cl := cc.CacheClusters[0]
	if aws.ToString(cl.ReplicationGroupId) != "orders" || len(cl.CacheNodes) != 1 || cl.CacheNodes[0].Endpoint == nil || aws.ToString(cl.CacheClusterStatus) != "available" {
		t.Fatalf("cache cluster %+v", cl)
	}

	tags, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: g.ARN})
	if err != nil || len(tags.TagList) != 1 || aws.ToString(tags.TagList[0].Key) != "team" {
		t.Fatalf("tags = %+v, %v", tags, err)
	}

	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("orders")}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitDeleted(t, c, "orders")
	_, err = c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("orders")})
	expectError(t, err, "ReplicationGroupNotFoundFault", http.StatusNotFound)
	_, err = c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("orders-001")})
	expectError(t, err, "CacheClusterNotFound", http.StatusNotFound)
	if err := primary.Ping(ctx).Err(); err == nil {
		t.Fatalf("the primary node still answers after the group was deleted")
	}

	events, err := c.DescribeEvents(ctx, &elasticache.DescribeEventsInput{SourceType: types.SourceTypeReplicationGroup, SourceIdentifier: aws.String("orders")})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	var msgs []string
	for _, ev := range events.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{"Replication group orders created", "Replication group orders deleted"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("events %q lack %q", msgs, want)
		}
	}
}

// TestBadInputLeavesStateUnchanged sends requests the real service rejects
// and checks the AWS code, the HTTP status and that nothing changed.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	e := startEmulator(t)
	ctx := ctxT(t, 2*time.Minute)
	c := e.client
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("base"), ReplicationGroupDescription: aws.String("d"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitAvailable(t, c, "base")
	before := snapshotState(t, ctx, c)

	valid := func(mut func(*elasticache.CreateReplicationGroupInput)) *elasticache.CreateReplicationGroupInput {
		in := &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String("fresh"), ReplicationGroupDescription: aws.String("d"),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
		}
		mut(in)
		return in
	}
	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"invalid id (double hyphen)", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.ReplicationGroupId = aws.String("bad--id") }))
			return err
		}, "InvalidParameterValue", 400},
		{"invalid id (starts with digit)", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.ReplicationGroupId = aws.String("1abc") }))
			return err
		}, "InvalidParameterValue", 400},
		{"invalid id (too long)", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) {
				in.ReplicationGroupId = aws.String(strings.Repeat("a", 41))
			}))
			return err
		}, "InvalidParameterValue", 400},
		{"duplicate id", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.ReplicationGroupId = aws.String("BASE") }))
			return err
		}, "ReplicationGroupAlreadyExists", 400},
		{"automatic failover with one node", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) {
				in.NumCacheClusters = aws.Int32(1)
				in.AutomaticFailoverEnabled = aws.Bool(true)
			}))
			return err
		}, "InvalidParameterCombination", 400},
		{"Multi-AZ without failover", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.MultiAZEnabled = aws.Bool(true) }))
			return err
		}, "InvalidParameterCombination", 400},
		{"too many nodes", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.NumCacheClusters = aws.Int32(7) }))
			return err
		}, "InvalidParameterValue", 400},
		{"unknown parameter group", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.CacheParameterGroupName = aws.String("nope") }))
			return err
		}, "CacheParameterGroupNotFound", 404},
		{"unknown engine version", func() error {
			_, err := c.CreateReplicationGroup(ctx, valid(func(in *elasticache.CreateReplicationGroupInput) { in.EngineVersion = aws.String("9.9") }))
			return err
		}, "InvalidParameterCombination", 400},
		{"unknown group", func() error {
			_, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("ghost")})
			return err
		}, "ReplicationGroupNotFoundFault", 404},
		{"delete unknown group", func() error {
			_, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("ghost")})
			return err
		}, "ReplicationGroupNotFoundFault", 404},
		{"delete a group's primary cluster", func() error {
			_, err := c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("base-001")})
			return err
		}, "InvalidCacheClusterState", 400},
		{"MaxRecords out of range", func() error {
			_, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{MaxRecords: aws.Int32(5)})
			return err
		}, "InvalidParameterValue", 400},
		{"tags on an unknown cluster", func() error {
			_, err := c.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{
				ResourceName: aws.String("arn:aws:elasticache:us-east-1:000000000000:cluster:ghost"),
				Tags:         []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
			return err
		}, "CacheClusterNotFound", 404},
		{"automatic failover on a one-node group via modify", func() error {
			_, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("base"), MultiAZEnabled: aws.Bool(true)})
			return err
		}, "InvalidParameterCombination", 400},
	}
	t.Run("missing required id (raw request; the SDK checks it client-side)", func(t *testing.T) {
		resp, err := http.PostForm(e.url, url.Values{
			"Action": {"CreateReplicationGroup"}, "Version": {"2015-02-02"},
			"ReplicationGroupDescription": {"d"}, "CacheNodeType": {"cache.t4g.micro"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error struct{ Type, Code, Message string }
		}
		if err := xml.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 || body.Error.Code != "MissingParameter" || body.Error.Type != "Sender" {
			t.Fatalf("got %d %+v, want 400 MissingParameter Sender", resp.StatusCode, body.Error)
		}
		if after := snapshotState(t, ctx, c); after != before {
			t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, tc.call(), tc.code, tc.status)
			if after := snapshotState(t, ctx, c); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshotState summarises what a client can see, to prove a rejected
// request changed nothing.
func snapshotState(t *testing.T, ctx context.Context, c *elasticache.Client) string {
	t.Helper()
	groups, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{})
	if err != nil {
		t.Fatalf("describe groups: %v", err)
	}
	clusters, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{})
	if err != nil {
		t.Fatalf("describe clusters: %v", err)
	}
	var b strings.Builder
	for _, g := range groups.ReplicationGroups {
		fmt.Fprintf(&b, "%s:%s:%v:%s:%s;", aws.ToString(g.ReplicationGroupId), aws.ToString(g.Status), g.MemberClusters, g.AutomaticFailover, g.MultiAZ)
	}
	for _, cl := range clusters.CacheClusters {
		fmt.Fprintf(&b, "%s:%s;", aws.ToString(cl.CacheClusterId), aws.ToString(cl.CacheClusterStatus))
	}
	return b.String()
}
