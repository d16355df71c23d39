package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

// snapshotStatuses lists the snapshots of c by name → status.
func snapshotStatuses(t testing.TB, c *elasticache.Client) map[string]string {
	t.Helper()
	out, err := c.DescribeSnapshots(ctxT(t, 10*time.Second), &elasticache.DescribeSnapshotsInput{})
	if err != nil {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	got := map[string]string{}
	for _, s := range out.Snapshots {
		got[aws.ToString(s.SnapshotName)] = aws.ToString(s.SnapshotStatus)
	}
	return got
}

// waitSnapshotGone polls until DescribeSnapshots no longer finds name.
func waitSnapshotGone(t testing.TB, c *elasticache.Client, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		_, err := c.DescribeSnapshots(context.Background(), &elasticache.DescribeSnapshotsInput{SnapshotName: aws.String(name)})
		if err == nil {
			return fmt.Errorf("snapshot %q still listed", name)
		}
		if code, _ := apiError(t, err); code != "SnapshotNotFoundFault" {
			return err
		}
		return nil
	})
}

// restoreSnapshot restores a snapshot into a new cluster and returns a
// client on its node.
func restoreSnapshot(t *testing.T, c *elasticache.Client, snapshot, clusterID string) *redis.Client {
	t.Helper()
	if _, err := c.CreateCacheCluster(ctxT(t, 10*time.Second), &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String(clusterID), SnapshotName: aws.String(snapshot),
	}); err != nil {
		t.Fatalf("restore %q: %v", snapshot, err)
	}
	ep := waitClusterAvailable(t, c, clusterID).CacheNodes[0].Endpoint
	return redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
}

// restoreAndGet restores a snapshot into a new cluster and returns the value
// of key there: a snapshot listed available must restore.
func restoreAndGet(t *testing.T, c *elasticache.Client, snapshot, clusterID, key string) string {
	t.Helper()
	v, err := restoreSnapshot(t, c, snapshot, clusterID).Get(ctxT(t, 10*time.Second), key).Result()
	if err != nil {
		t.Fatalf("restored from %q: GET %s: %v", snapshot, key, err)
	}
	return v
}

// TestSnapshotNamesStayInTheirPlace: a snapshot name never reaches a
// storage path as such. "." and ".." are snapshots like any other: deleting
// them deletes exactly their objects, not the region's or another region's
// snapshots. A long non-ASCII name the file system could not hold as one
// name is stored (not answered 200 then failed). Names AWS refuses are
// refused with InvalidParameterValue, and nothing is created.
func TestSnapshotNamesStayInTheirPlace(t *testing.T) {
	dataDir := ""
	e := startEmulatorWith(t, func(c *emulator.Config) { dataDir = c.DataDir })
	c, west := e.client, newClient(e.url, "us-west-2")
	ctx := ctxT(t, 2*time.Minute)
	for _, cl := range []*elasticache.Client{c, west} {
		if err := createStandalone(t, cl, "src").Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	snap := func(n string) {
		t.Helper()
		if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String(n)}); err != nil {
			t.Fatalf("CreateSnapshot %q: %v", n, err)
		}
		waitSnapshot(t, c, n)
	}
	names := []string{"keep", ".", "..", "with space", "~tilde"}
	for _, n := range names {
		snap(n)
	}
	if _, err := west.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String("west")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, west, "west")

	deleted := map[string]bool{}
	for _, n := range []string{".", ".."} {
		if _, err := c.DeleteSnapshot(ctx, &elasticache.DeleteSnapshotInput{SnapshotName: aws.String(n)}); err != nil {
			t.Fatalf("DeleteSnapshot %q: %v", n, err)
		}
		waitSnapshotGone(t, c, n)
		deleted[n] = true
		listed := snapshotStatuses(t, c)
		for _, other := range names {
			if st := listed[other]; !deleted[other] && st != "available" {
				t.Fatalf("after deleting %q, snapshot %q is %q", n, other, st)
			}
		}
		if st := snapshotStatuses(t, west)["west"]; st != "available" {
			t.Fatalf("after deleting %q, the other region's snapshot is %q", n, st)
		}
	}
	// Every remaining snapshot still has its data: each restores.
	for i, n := range []string{"keep", "with space", "~tilde"} {
		if v := restoreAndGet(t, c, n, fmt.Sprintf("restored-%d", i), "k"); v != "v" {
			t.Fatalf("restored from %q: k = %q", n, v)
		}
	}
	// A name of 255 characters (AWS's limit) that is longer than a file
	// name may be is stored too.
	long := strings.Repeat("\u00e9", 255) // 510 bytes
	snap(long)
	if v := restoreAndGet(t, c, long, "restored-long", "k"); v != "v" {
		t.Fatalf("restored from the long name: k = %q", v)
	}
	if v := restoreAndGet(t, west, "west", "restored-west", "k"); v != "v" {
		t.Fatalf("restored from the other region's snapshot: k = %q", v)
	}

	// Every object of the store is in its snapshot's own directory:
	// objects/snapshots/<account>/<region>/<snapshot>/<file>.
	objects := filepath.Join(dataDir, "snapshots", "objects")
	filepath.WalkDir(objects, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(objects, p)
		if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) != 5 || parts[0] != "snapshots" {
			t.Errorf("snapshot object out of place: %s", rel)
		}
		return nil
	})

	// Refused names change nothing.
	before := snapshotStatuses(t, c)
	for _, n := range []string{strings.Repeat("x", 256), "automatic.mine", "a/b", "a\\b", "tab\there"} {
		_, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String(n)})
		expectError(t, err, "InvalidParameterValue", 400)
		_, err = c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String("keep"), TargetSnapshotName: aws.String(n)})
		expectError(t, err, "InvalidParameterValue", 400)
	}
	if after := snapshotStatuses(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused names changed the snapshots: %v → %v", before, after)
	}

	// A request scope that cannot be a storage path is refused by the
	// control plane too, whatever the API layer in front of it lets through.
	bad := queryapi.WithRequestInfo(ctx, queryapi.RequestInfo{AccountID: "000000000000", Region: ".."})
	_, err := e.srv.Emulator().CreateSnapshot(bad, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String("escape")})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) {
		t.Fatalf("CreateSnapshot in region \"..\": %v, want InvalidParameterValue", err)
	}
}

// TestSnapshotTags: tags given at creation, added and removed later, are
// read back on the snapshot's ARN; a missing snapshot is SnapshotNotFound.
func TestSnapshotTags(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	createStandalone(t, c, "src")
	out, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String("tagged"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("cache")}}})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "tagged")
	arn := out.Snapshot.ARN
	tags := func() string { return tagsOf(t, c, arn) }
	if got := tags(); got != "team=cache" {
		t.Fatalf("tags = %q", got)
	}
	if _, err := c.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{ResourceName: arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveTagsFromResource(ctx, &elasticache.RemoveTagsFromResourceInput{ResourceName: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); got != "env=test" {
		t.Fatalf("tags after add and remove = %q", got)
	}
	missing := strings.Replace(aws.ToString(arn), ":snapshot:tagged", ":snapshot:ghost", 1)
	_, err = c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: aws.String(missing)})
	expectError(t, err, "SnapshotNotFoundFault", 404)
}

// tagsOf lists the tags of a resource as "key=value,...".
func tagsOf(t testing.TB, c *elasticache.Client, arn *string) string {
	t.Helper()
	out, err := c.ListTagsForResource(ctxT(t, 10*time.Second), &elasticache.ListTagsForResourceInput{ResourceName: arn})
	if err != nil {
		t.Fatalf("ListTagsForResource %s: %v", aws.ToString(arn), err)
	}
	var kv []string
	for _, tag := range out.TagList {
		kv = append(kv, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
	}
	return strings.Join(kv, ",")
}

// snapshotTemps lists what the directory store's tmp/ holds.
func snapshotTemps(t testing.TB, dataDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "snapshots", "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
