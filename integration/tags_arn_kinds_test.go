package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestTagsEveryARNKind adds, lists and removes tags on one resource of every
// ARN kind the emulator issues, all named "tagged" (the group's member is
// tagged-001) so tags that leaked from one kind to another of the same name
// would show; a missing resource of each kind answers that kind's NotFound.
func TestTagsEveryARNKind(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	pg, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("tagged"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("tags")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("tagged"), CacheSubnetGroupDescription: aws.String("tags"), SubnetIds: []string{"subnet-0aaa"}})
	if err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("tagged"), NumCacheClusters: aws.Int32(1)})
	groups, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	clusters, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("tagged-001")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("tagged"), SnapshotName: aws.String("tagged")}); err != nil {
		t.Fatal(err)
	}
	snap := waitSnapshot(t, c, "tagged")

	for _, tc := range []struct {
		kind     string
		arn      *string
		notFound string
	}{
		{"replicationgroup", groups.ReplicationGroups[0].ARN, (&types.ReplicationGroupNotFoundFault{}).ErrorCode()},
		{"cluster", clusters.CacheClusters[0].ARN, (&types.CacheClusterNotFoundFault{}).ErrorCode()},
		{"snapshot", snap.ARN, (&types.SnapshotNotFoundFault{}).ErrorCode()},
		{"parametergroup", pg.CacheParameterGroup.ARN, (&types.CacheParameterGroupNotFoundFault{}).ErrorCode()},
		{"subnetgroup", sg.CacheSubnetGroup.ARN, (&types.CacheSubnetGroupNotFoundFault{}).ErrorCode()},
	} {
		arn := aws.ToString(tc.arn)
		parts := strings.Split(arn, ":")
		if len(parts) != 7 || parts[5] != tc.kind {
			t.Fatalf("%s ARN = %q", tc.kind, arn)
		}
		if _, err := c.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{ResourceName: tc.arn,
			Tags: []types.Tag{{Key: aws.String("kind"), Value: aws.String(tc.kind)}, {Key: aws.String("keep"), Value: aws.String("yes")}}}); err != nil {
			t.Fatalf("AddTagsToResource %s: %v", arn, err)
		}
		if got, want := tagsOf(t, c, tc.arn), "kind="+tc.kind+",keep=yes"; got != want {
			t.Fatalf("tags of %s = %q, want %q", arn, got, want)
		}
		if _, err := c.RemoveTagsFromResource(ctx, &elasticache.RemoveTagsFromResourceInput{ResourceName: tc.arn, TagKeys: []string{"kind"}}); err != nil {
			t.Fatalf("RemoveTagsFromResource %s: %v", arn, err)
		}
		if got := tagsOf(t, c, tc.arn); got != "keep=yes" {
			t.Fatalf("tags of %s after the remove = %q, want keep=yes", arn, got)
		}
		_, err := c.RemoveTagsFromResource(ctx, &elasticache.RemoveTagsFromResourceInput{ResourceName: tc.arn, TagKeys: []string{"kind"}})
		if code, _ := apiError(t, err); code != (&types.TagNotFoundFault{}).ErrorCode() {
			t.Fatalf("removing a missing tag from %s: %v", arn, err)
		}
		missing := aws.String(strings.Join(parts[:6], ":") + ":ghost")
		_, err = c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: missing})
		if code, _ := apiError(t, err); code != tc.notFound {
			t.Fatalf("ListTagsForResource %s: %v, want %s", aws.ToString(missing), err, tc.notFound)
		}
	}
}
