package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// dataset writes n keys of mixed types (strings, hashes, lists, sets,
// sorted sets), every tenth with a TTL, through c with pipelining.
func dataset(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	for start := 0; start < n; start += 1000 {
		pipe := c.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			k := fmt.Sprintf("k:%d", i)
			switch i % 5 {
			case 0:
				pipe.Set(ctx, k, i, 0)
			case 1:
				pipe.HSet(ctx, k, "f", i, "g", "x")
			case 2:
				pipe.RPush(ctx, k, i, i+1, i+2)
			case 3:
				pipe.SAdd(ctx, k, i, "m")
			case 4:
				pipe.ZAdd(ctx, k, redis.Z{Score: float64(i), Member: "z"})
			}
			if i%10 == 0 {
				pipe.Expire(ctx, k, time.Hour)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("writing the dataset: %v", err)
		}
	}
}

// checkDataset verifies every key of dataset(n) is there with its type and
// value, and that the keys written with a TTL still have one.
func checkDataset(t testing.TB, c *redis.Client, n int) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	if got, err := c.DBSize(ctx).Result(); err != nil || got != int64(n) {
		t.Fatalf("DBSIZE = %d (%v), want %d", got, err, n)
	}
	for start := 0; start < n; start += 1000 {
		pipe := c.Pipeline()
		types := map[int]*redis.StatusCmd{}
		ttls := map[int]*redis.DurationCmd{}
		for i := start; i < min(start+1000, n); i++ {
			k := fmt.Sprintf("k:%d", i)
			types[i] = pipe.Type(ctx, k)
			ttls[i] = pipe.TTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		want := []string{"string", "hash", "list", "set", "zset"}
		for i, cmd := range types {
			if cmd.Val() != want[i%5] {
				t.Fatalf("k:%d has type %q, want %q", i, cmd.Val(), want[i%5])
			}
			ttl := ttls[i].Val()
			if i%10 == 0 && (ttl <= 0 || ttl > time.Hour) {
				t.Fatalf("k:%d lost its TTL: %v", i, ttl)
			}
			if i%10 != 0 && ttl != -1 {
				t.Fatalf("k:%d gained a TTL: %v", i, ttl)
			}
		}
	}
	if v, err := c.Get(ctx, "k:5").Result(); err != nil || v != "5" {
		t.Fatalf("k:5 = %q, %v", v, err)
	}
	if v, err := c.LRange(ctx, "k:2", 0, -1).Result(); err != nil || strings.Join(v, ",") != "2,3,4" {
		t.Fatalf("k:2 = %v, %v", v, err)
	}
}

// waitSnapshot polls DescribeSnapshots until the snapshot is available.
func waitSnapshot(t testing.TB, c *elasticache.Client, name string) types.Snapshot {
	t.Helper()
	var snap types.Snapshot
	eventually(t, time.Minute, func() error {
		out, err := c.DescribeSnapshots(context.Background(), &elasticache.DescribeSnapshotsInput{SnapshotName: aws.String(name), ShowNodeGroupConfig: aws.Bool(true)})
		if err != nil {
			return err
		}
		snap = out.Snapshots[0]
		if s := aws.ToString(snap.SnapshotStatus); s != "available" {
			return fmt.Errorf("snapshot %s is %s", name, s)
		}
		return nil
	})
	return snap
}

func primaryClient(t testing.TB, c *elasticache.Client, id string) *redis.Client {
	out, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	ep := out.ReplicationGroups[0].NodeGroups[0].PrimaryEndpoint
	return redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
}

func createGroup(t testing.TB, c *elasticache.Client, in *elasticache.CreateReplicationGroupInput) {
	t.Helper()
	if in.ReplicationGroupDescription == nil {
		in.ReplicationGroupDescription = aws.String("test")
	}
	if in.CacheNodeType == nil && in.SnapshotName == nil {
		in.CacheNodeType = aws.String("cache.t4g.micro")
	}
	if _, err := c.CreateReplicationGroup(context.Background(), in); err != nil {
		t.Fatalf("create %s: %v", aws.ToString(in.ReplicationGroupId), err)
	}
	waitAvailable(t, c, aws.ToString(in.ReplicationGroupId))
}

// TestSnapshotAndRestore: 100k keys of mixed types with TTLs survive a
// snapshot (taken on a replica) and a restore into a new group, whose
// replicas sync from the restored primary; a final snapshot on delete
// outlives the group.
func TestSnapshotAndRestore(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 3*time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("src"), NumCacheClusters: aws.Int32(2)})
	const n = 100_000
	dataset(t, primaryClient(t, c, "src"), n)

	out, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("src"), SnapshotName: aws.String("snap1")})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if got := aws.ToString(out.Snapshot.SnapshotStatus); got != "creating" {
		t.Fatalf("status %q, want creating", got)
	}
	snap := waitSnapshot(t, c, "snap1")
	if aws.ToString(snap.SnapshotSource) != "manual" || aws.ToString(snap.ReplicationGroupId) != "src" || len(snap.NodeSnapshots) != 1 ||
		aws.ToString(snap.NodeSnapshots[0].CacheClusterId) != "src-002" || aws.ToString(snap.NodeSnapshots[0].NodeGroupId) != "0001" ||
		snap.NodeSnapshots[0].NodeGroupConfiguration == nil {
		t.Fatalf("snapshot %+v (want it taken on the replica src-002)", snap)
	}
	t.Logf("snapshot size %s", aws.ToString(snap.NodeSnapshots[0].CacheSize))
	if g := describeGroup(t, c, "src"); aws.ToString(g.Status) != "available" {
		t.Fatalf("group status after snapshot: %s", aws.ToString(g.Status))
	}
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("src"), SnapshotName: aws.String("snap1")})
	expectError(t, err, "SnapshotAlreadyExistsFault", http.StatusBadRequest)

	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("restored"),
		SnapshotName: aws.String("snap1"), NumCacheClusters: aws.Int32(2)})
	checkDataset(t, primaryClient(t, c, "restored"), n)
	replica := describeGroup(t, c, "restored").NodeGroups[0].NodeGroupMembers[1].ReadEndpoint
	checkDataset(t, redisClient(t, aws.ToString(replica.Address), aws.ToInt32(replica.Port)), n)

	// Final snapshot on delete; it outlives the group.
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("src"), FinalSnapshotIdentifier: aws.String("src-final")}); err != nil {
		t.Fatalf("delete with final snapshot: %v", err)
	}
	waitDeleted(t, c, "src")
	final := waitSnapshot(t, c, "src-final")
	if aws.ToString(final.NodeSnapshots[0].CacheClusterId) != "src-001" {
		t.Fatalf("final snapshot taken on %s, want the primary src-001", aws.ToString(final.NodeSnapshots[0].CacheClusterId))
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("again"), SnapshotName: aws.String("src-final")})
	checkDataset(t, primaryClient(t, c, "again"), n)

	if _, err := c.DeleteSnapshot(ctx, &elasticache.DeleteSnapshotInput{SnapshotName: aws.String("snap1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		_, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{SnapshotName: aws.String("snap1")})
		if err == nil {
			return fmt.Errorf("snap1 still listed")
		}
		if code, _ := apiError(t, err); code != "SnapshotNotFoundFault" {
			return err
		}
		return nil
	})
	msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "src")
	if !strings.Contains(msgs, "Snapshot succeeded for snapshot with ID 'snap1' of replication group with ID 'src'") {
		t.Fatalf("events lack the snapshot:\n%s", msgs)
	}
}

// TestSnapshotBadInput: the AWS errors for snapshots, state unchanged.
func TestSnapshotBadInput(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("g")})
	_, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{SnapshotName: aws.String("s")})
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{SnapshotName: aws.String("s"), ReplicationGroupId: aws.String("g"), CacheClusterId: aws.String("g-001")})
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{SnapshotName: aws.String("s"), ReplicationGroupId: aws.String("ghost")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)
	_, err = c.DeleteSnapshot(ctx, &elasticache.DeleteSnapshotInput{SnapshotName: aws.String("ghost")})
	expectError(t, err, "SnapshotNotFoundFault", 404)
	_, err = c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String("ghost"), TargetSnapshotName: aws.String("t")})
	expectError(t, err, "SnapshotNotFoundFault", 404)
	_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("r"),
		ReplicationGroupDescription: aws.String("d"), SnapshotName: aws.String("ghost")})
	expectError(t, err, "SnapshotNotFoundFault", 404)
	out, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{})
	if err != nil || len(out.Snapshots) != 0 {
		t.Fatalf("snapshots after rejected requests: %+v %v", out, err)
	}
}

// fakeClock is an injectable clock for automated backups.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

// TestAutomatedBackups: one automated snapshot a day inside the window,
// pruned past the retention, deleted with the group; manual ones stay.
func TestAutomatedBackups(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)}
	e := startEmulatorWith(t, func(c *emulator.Config) { c.Now = clock.Now })
	c := e.client
	ctx := ctxT(t, time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("auto"),
		SnapshotRetentionLimit: aws.Int32(2), SnapshotWindow: aws.String("03:00-04:00")})
	emu := e.srv.Emulator()
	automated := func() []string {
		out, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{SnapshotSource: aws.String("system")})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range out.Snapshots {
			if aws.ToString(s.SnapshotStatus) == "available" {
				names = append(names, aws.ToString(s.SnapshotName))
			}
		}
		return names
	}
	emu.TickBackups(ctx) // 01:00, outside the window
	if got := automated(); len(got) != 0 {
		t.Fatalf("backups outside the window: %v", got)
	}
	day := time.Date(2026, 11, 27, 3, 10, 0, 0, time.UTC)
	for d := range 4 {
		clock.Set(day.AddDate(0, 0, d))
		emu.TickBackups(ctx)
		clock.Set(day.AddDate(0, 0, d).Add(20 * time.Minute)) // same window: no second backup
		emu.TickBackups(ctx)
	}
	eventually(t, 10*time.Second, func() error {
		got := automated()
		want := []string{"automatic.auto-2026-11-29-03-10", "automatic.auto-2026-11-30-03-10"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("automated snapshots %v, want %v (retention 2 days)", got, want)
		}
		return nil
	})
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("auto"), SnapshotName: aws.String("keep")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "keep")
	if _, err := c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("auto")}); err != nil {
		t.Fatal(err)
	}
	waitDeleted(t, c, "auto")
	eventually(t, 10*time.Second, func() error {
		if got := automated(); len(got) != 0 {
			return fmt.Errorf("automated snapshots survive their group: %v", got)
		}
		return nil
	})
	waitSnapshot(t, c, "keep")
}

// TestEncryptedSnapshot: with at-rest encryption the stored object is not
// an RDB (nor contains the data), and it restores fine.
func TestEncryptedSnapshot(t *testing.T) {
	dataDir := ""
	e := startEmulatorWith(t, func(c *emulator.Config) { dataDir = c.DataDir })
	c := e.client
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("enc"), AtRestEncryptionEnabled: aws.Bool(true)})
	p := primaryClient(t, c, "enc")
	if err := p.Set(context.Background(), "secret", "plaintext-marker-0123456789", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSnapshot(context.Background(), &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("enc"), SnapshotName: aws.String("e1"), KmsKeyId: aws.String("alias/test")}); err != nil {
		t.Fatal(err)
	}
	snap := waitSnapshot(t, c, "e1")
	if aws.ToString(snap.KmsKeyId) != "alias/test" {
		t.Fatalf("KmsKeyId %q", aws.ToString(snap.KmsKeyId))
	}
	var rdbs []string
	filepath.Walk(filepath.Join(dataDir, "snapshots"), func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(path, ".rdb") && strings.Contains(path, "objects") {
			rdbs = append(rdbs, path)
		}
		return nil
	})
	if len(rdbs) != 1 {
		t.Fatalf("snapshot objects on disk: %v", rdbs)
	}
	raw, err := os.ReadFile(rdbs[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(raw, []byte("REDIS")) || bytes.Contains(raw, []byte("plaintext-marker")) {
		t.Fatalf("the stored snapshot is readable as an RDB")
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("dec"), SnapshotName: aws.String("e1")})
	if v, err := primaryClient(t, c, "dec").Get(context.Background(), "secret").Result(); err != nil || v != "plaintext-marker-0123456789" {
		t.Fatalf("restored secret = %q, %v", v, err)
	}
}

// TestCorruptSnapshotRestoreFails: a corrupt RDB gives restore-failed and
// an event, not a crash.
func TestCorruptSnapshotRestoreFails(t *testing.T) {
	dataDir := ""
	e := startEmulatorWith(t, func(c *emulator.Config) { dataDir = c.DataDir })
	c := e.client
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("ok")})
	if _, err := c.CreateSnapshot(context.Background(), &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("ok"), SnapshotName: aws.String("bad")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "bad")
	filepath.Walk(filepath.Join(dataDir, "snapshots"), func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(path, ".rdb") && strings.Contains(path, "objects") {
			os.WriteFile(path, []byte("REDIS0011 this is not an rdb"), 0o644)
		}
		return nil
	})
	if _, err := c.CreateReplicationGroup(context.Background(), &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("broken"),
		ReplicationGroupDescription: aws.String("d"), SnapshotName: aws.String("bad")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		g := describeGroup(t, c, "broken")
		if s := aws.ToString(g.Status); s != "create-failed" {
			return fmt.Errorf("group %s", s)
		}
		return nil
	})
	cc, err := c.DescribeCacheClusters(context.Background(), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("broken-001")})
	if err != nil || aws.ToString(cc.CacheClusters[0].CacheClusterStatus) != "restore-failed" {
		t.Fatalf("cluster %+v %v", cc, err)
	}
	if msgs := eventMessages(t, c, types.SourceTypeCacheCluster, "broken-001"); !strings.Contains(msgs, "Restore from snapshot failed") {
		t.Fatalf("events: %s", msgs)
	}
	if _, err := c.DeleteReplicationGroup(context.Background(), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("broken")}); err != nil {
		t.Fatalf("a create-failed group must be deletable: %v", err)
	}
	waitDeleted(t, c, "broken")
}

// TestClusterSnapshotCopyAndFilters: a standalone cluster's snapshot,
// copied within the store, restores into a new cluster; DescribeSnapshots
// filters by source and kind; t1 nodes cannot be snapshotted.
func TestClusterSnapshotCopyAndFilters(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	node := createStandalone(t, c, "one")
	if err := node.Set(ctx, "x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("one"), SnapshotName: aws.String("c1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Snapshot.CacheClusterId) != "one" || aws.ToInt32(out.Snapshot.NumCacheNodes) != 1 {
		t.Fatalf("snapshot %+v", out.Snapshot)
	}
	waitSnapshot(t, c, "c1")
	if _, err := c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String("c1"), TargetSnapshotName: aws.String("c2")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "c2")
	_, err = c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String("c1"), TargetSnapshotName: aws.String("c2")})
	expectError(t, err, "SnapshotAlreadyExistsFault", 400)

	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("two"), SnapshotName: aws.String("c2")}); err != nil {
		t.Fatal(err)
	}
	ep := waitClusterAvailable(t, c, "two").CacheNodes[0].Endpoint
	if v, err := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port)).Get(ctx, "x").Result(); err != nil || v != "1" {
		t.Fatalf("restored x = %q, %v", v, err)
	}

	byCluster, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{CacheClusterId: aws.String("one")})
	if err != nil || len(byCluster.Snapshots) != 2 {
		t.Fatalf("snapshots of one: %+v %v", byCluster, err)
	}
	system, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{SnapshotSource: aws.String("system")})
	if err != nil || len(system.Snapshots) != 0 {
		t.Fatalf("automated snapshots: %+v %v", system, err)
	}
	_, err = c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{MaxRecords: aws.Int32(10)})
	expectError(t, err, "InvalidParameterValue", 400)

	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("old"), CacheNodeType: aws.String("cache.t1.micro")}); err != nil {
		t.Fatal(err)
	}
	waitClusterAvailable(t, c, "old")
	_, err = c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("old"), SnapshotName: aws.String("t1")})
	expectError(t, err, "SnapshotFeatureNotSupportedFault", 400)
}
