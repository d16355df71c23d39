package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/s3test"
)

// TestSnapshotCrashWindows kills the emulator binary (kill -9) at many
// points of CreateSnapshot, CopySnapshot and DeleteSnapshot and restarts it
// on the same data dir, with snapshots in the data dir and in a MinIO
// bucket. After every restart:
//   - no ghost: every snapshot listed available has its data (the last
//     iterations restore each one, and every iteration restores its source
//     cluster from one);
//   - no lost record: every snapshot that was available before the kill,
//     and every copy or snapshot that completed before it, is still listed
//     available (a delete in flight may have finished);
//   - nothing stuck: no snapshot is creating, copying or deleting;
//   - no temporary file of an interrupted write is left (directory store);
//   - a snapshot's tags outlive every restart.
func TestSnapshotCrashWindows(t *testing.T) {
	bin := buildBinary(t)
	t.Run("dir", func(t *testing.T) {
		dataDir := t.TempDir()
		snapshotCrashLoop(t, bin, dataDir, snapshotProbe{
			hasData: func(name string) bool {
				files, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "objects", "snapshots", "*", "*", name, "0001.rdb"))
				return len(files) == 1
			},
			temps: func() []string { return snapshotTemps(t, dataDir) },
		})
	})
	t.Run("minio", func(t *testing.T) {
		if testRuntime() == "docker" {
			// Where the store keeps objects does not depend on the node
			// runtime, and a docker round takes ten times a process one.
			t.Skip("the bucket store's crash windows are covered on the process runtime")
		}
		endpoint, access, secret := s3test.StartMinIO(t)
		for k, v := range map[string]string{"S3_ENDPOINT": endpoint, "S3_ACCESS_KEY": access, "S3_SECRET_KEY": secret, "SNAPSHOT_BUCKET": "crash"} {
			t.Setenv("ELASTICACHE_LOCAL_"+k, v) // startBinary passes the environment on
		}
		bucket, err := s3store.NewS3(ctxT(t, 10*time.Second), s3store.S3Options{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: "crash", CreateBucket: true})
		if err != nil {
			t.Fatal(err)
		}
		snapshotCrashLoop(t, bin, t.TempDir(), snapshotProbe{
			hasData: func(name string) bool {
				_, err := bucket.Stat(context.Background(), "snapshots/000000000000/us-east-1/"+name+"/0001.rdb")
				return err == nil
			},
			temps: func() []string { return nil },
		})
	})
}

// snapshotProbe looks at a snapshot store behind the emulator's back.
type snapshotProbe struct {
	// hasData reports whether the RDB object of snapshot name is stored.
	hasData func(name string) bool
	// temps lists temporary files of interrupted writes.
	temps func() []string
}

func snapshotCrashLoop(t *testing.T, bin, dataDir string, probe snapshotProbe) {
	// Each start forgets the clusters of the last (snapshots, in the
	// snapshot store, stay): the crash windows here are the store's, and
	// the rounds restore "src" anew after every kill.
	t.Setenv("ELASTICACHE_LOCAL_FRESH", "true")
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := newClient(url, "us-east-1")
	rng := rand.New(rand.NewPCG(8, 5))
	const keys = 50_000

	cmd := startBinary(t, bin, dataDir, port)
	dataset(t, createStandalone(t, c, "src"), keys)
	base, err := c.CreateSnapshot(ctxT(t, 10*time.Second), &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String("base"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("cache")}}})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "base")
	// Tags changed after the snapshot was taken are kept with it too.
	if _, err := c.AddTagsToResource(ctxT(t, 10*time.Second), &elasticache.AddTagsToResourceInput{ResourceName: base.Snapshot.ARN,
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveTagsFromResource(ctxT(t, 10*time.Second), &elasticache.RemoveTagsFromResourceInput{ResourceName: base.Snapshot.ARN, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	baseTags := func() string { return tagsOf(t, c, base.Snapshot.ARN) }
	// A graceful restart stores what is in flight; the kills below must
	// not lose it.
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	cmd = startBinary(t, bin, dataDir, port)
	if got := baseTags(); got != "env=test" {
		t.Fatalf("tags of base after a restart: %q, want env=test", got)
	}
	restoreFrom(t, c, "src", "base", keys)
	// How long a snapshot takes end to end sets the range of kill delays.
	start := time.Now()
	if _, err := c.CreateSnapshot(ctxT(t, 10*time.Second), &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String("timed")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "timed")
	span := time.Since(start)
	t.Logf("a snapshot of %d keys takes %v", keys, span)

	// A delete is quicker than a snapshot: time one to aim its kills.
	start = time.Now()
	if _, err := c.DeleteSnapshot(ctxT(t, 10*time.Second), &elasticache.DeleteSnapshotInput{SnapshotName: aws.String("timed")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshotGone(t, c, "timed")
	deleteSpan := time.Since(start)
	t.Logf("a delete takes %v", deleteSpan)

	// Rounds cycle through create, copy and delete, one in four finishing
	// before the kill; a docker round is slower (containers are reaped and
	// started), so it runs the cycle fewer times.
	iterations := 18
	if testRuntime() == "docker" {
		iterations = 12
	}
	for i := range iterations {
		listed := snapshotStatuses(t, c)
		var available []string
		for n, st := range listed {
			if st == "available" {
				available = append(available, n)
			}
		}
		sort.Strings(available)
		pick := func() string { return available[rng.IntN(len(available))] }

		var op, target string
		var issue func(ctx context.Context) error
		kind := i % 3
		if kind == 2 && len(available) < 2 {
			kind = 1 // keep "base" to restore from: copy instead
		}
		switch kind {
		case 0:
			op, target = "create", fmt.Sprintf("s%d", i)
			issue = func(ctx context.Context) error {
				_, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("src"), SnapshotName: aws.String(target)}, noRetry)
				return err
			}
		case 1:
			op, target = "copy", fmt.Sprintf("c%d", i)
			from := pick()
			issue = func(ctx context.Context) error {
				_, err := c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String(from), TargetSnapshotName: aws.String(target)}, noRetry)
				return err
			}
		default:
			op = "delete"
			for target == "" || target == "base" {
				target = pick()
			}
			issue = func(ctx context.Context) error {
				_, err := c.DeleteSnapshot(ctx, &elasticache.DeleteSnapshotInput{SnapshotName: aws.String(target)}, noRetry)
				return err
			}
		}
		// One round in four lets the operation finish before the kill: a
		// finished snapshot or copy must not vanish, a finished delete must
		// not come back. The others kill it at a random instant of its run.
		done := i%4 == 1
		answered := make(chan error, 1)
		go func() { answered <- issue(context.Background()) }()
		if done {
			if err := <-answered; err != nil {
				t.Fatalf("round %d: %s %s: %v", i, op, target, err)
			}
			eventually(t, time.Minute, func() error {
				st, ok := snapshotStatuses(t, c)[target]
				if op == "delete" && !ok || op != "delete" && st == "available" {
					return nil
				}
				return fmt.Errorf("%s %s: %q", op, target, st)
			})
		} else {
			// A kill at a random moment of the operation: a randomized delay
			// is the point here, not a wait for something.
			window := span
			if op == "delete" {
				window = deleteSpan
			}
			time.Sleep(time.Duration(rng.Int64N(int64(window) + 1)))
		}
		cmd.Process.Kill()
		cmd.Wait()
		// The request ends with the process (it is not retried: see noRetry),
		// so nothing reaches the next run.
		acknowledged := done
		if !done {
			acknowledged = <-answered == nil
		}

		cmd = startBinary(t, bin, dataDir, port)
		if temps := probe.temps(); len(temps) > 0 {
			t.Fatalf("round %d (%s %s, killed done=%v): temporary files left after restart: %v", i, op, target, done, temps)
		}
		after := snapshotStatuses(t, c)
		t.Logf("round %d: %s %s (done before kill: %v, answered: %v) → %q", i, op, target, done, acknowledged, after[target])
		for n, st := range after {
			if st != "available" && st != "failed" {
				t.Fatalf("round %d: snapshot %s is %q after a restart", i, n, st)
			}
		}
		for _, n := range available {
			st, ok := after[n]
			if op == "delete" && n == target {
				if ok && st != "available" {
					t.Fatalf("round %d: the interrupted delete of %s left it %q", i, n, st)
				}
				continue
			}
			if st != "available" {
				t.Fatalf("round %d: snapshot %s was available before the kill and is %q after (listed: %v)", i, n, st, ok)
			}
		}
		switch {
		case op == "delete" && done:
			if _, ok := after[target]; ok {
				t.Fatalf("round %d: the finished delete of %s came back", i, target)
			}
		case op != "delete" && done:
			if after[target] != "available" {
				t.Fatalf("round %d: the finished %s %s is %q after a restart", i, op, target, after[target])
			}
		case op != "delete" && acknowledged:
			if st := after[target]; st != "available" && st != "failed" {
				t.Fatalf("round %d: the acknowledged %s %s is %q after a restart, want available or failed", i, op, target, st)
			}
		}
		// No ghost: every snapshot listed available has its RDB on disk,
		// and the source cluster of the next round is restored from one.
		for n, st := range after {
			if st != "available" {
				continue
			}
			if !probe.hasData(n) {
				t.Fatalf("round %d: snapshot %s is listed available but its data is gone", i, n)
			}
		}
		from := "base"
		if _, ok := after[from]; !ok {
			for n, st := range after {
				if st == "available" {
					from = n
				}
			}
		}
		restoreFrom(t, c, "src", from, keys)
	}
	if got := baseTags(); got != "env=test" {
		t.Fatalf("tags of base after the kills: %q, want env=test", got)
	}
	// Every snapshot left available restores with all its keys.
	restored := 0
	for n, st := range snapshotStatuses(t, c) {
		if st == "available" {
			restoreFrom(t, c, fmt.Sprintf("final-%d", restored), n, keys)
			restored++
		}
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
}

// restoreFrom creates a cluster from a snapshot and checks that it holds
// the dataset's keys.
func restoreFrom(t *testing.T, c *elasticache.Client, clusterID, snapshot string, keys int) {
	t.Helper()
	n, err := restoreSnapshot(t, c, snapshot, clusterID).DBSize(ctxT(t, 10*time.Second)).Result()
	if err != nil || n != int64(keys) {
		t.Fatalf("restored from %s: DBSIZE %d (%v), want %d", snapshot, n, err, keys)
	}
}

// noRetry makes one call without the SDK's retries: a call cut off by a
// kill must not be sent again to the next run.
func noRetry(o *elasticache.Options) { o.Retryer = aws.NopRetryer{} }
