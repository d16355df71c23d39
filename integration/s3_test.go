package integration

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/s3test"
)

// TestSnapshotsInMinIO: with snapshots stored in a MinIO bucket, a
// snapshot is exported with CopySnapshot --target-bucket as a plain RDB the
// user can download, and a third group is seeded from it by SnapshotArns.
func TestSnapshotsInMinIO(t *testing.T) {
	endpoint, access, secret := s3test.StartMinIO(t)
	e := startEmulatorWith(t, func(c *emulator.Config) {
		c.S3Endpoint, c.S3AccessKey, c.S3SecretKey = endpoint, access, secret
		c.SnapshotBucket = "ec-snapshots"
	})
	c := e.client
	ctx := ctxT(t, 3*time.Minute)
	const n = 100_000
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("src"), NumCacheClusters: aws.Int32(2)})
	dataset(t, primaryClient(t, c, "src"), n)
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("src"), SnapshotName: aws.String("s1")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "s1")

	// Restore from the snapshot kept in the bucket.
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("second"), SnapshotName: aws.String("s1")})
	checkDataset(t, primaryClient(t, c, "second"), n)

	// Export to the user's own bucket: a plain RDB object.
	exports, err := s3store.NewS3(ctx, s3store.S3Options{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: "my-exports", CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopySnapshot(ctx, &elasticache.CopySnapshotInput{SourceSnapshotName: aws.String("s1"), TargetSnapshotName: aws.String("exported"), TargetBucket: aws.String("my-exports")}); err != nil {
		t.Fatalf("CopySnapshot to bucket: %v", err)
	}
	waitSnapshot(t, c, "s1")
	eventually(t, 30*time.Second, func() error {
		_, err := exports.Stat(ctx, "exported-0001.rdb")
		return err
	})
	rc, _, err := exports.Get(ctx, "exported-0001.rdb")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 5)
	_, err = io.ReadFull(rc, head)
	rc.Close()
	if err != nil || !bytes.Equal(head, []byte("REDIS")) {
		t.Fatalf("the exported object is not a plain RDB: %q %v", head, err)
	}

	// Seed a third group from the exported object.
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("third"),
		SnapshotArns: []string{"arn:aws:s3:::my-exports/exported-0001.rdb"}, NumCacheClusters: aws.Int32(2)})
	checkDataset(t, primaryClient(t, c, "third"), n)

	// The snapshot record lives in the bucket too: a new emulator on the
	// same bucket (another data dir) lists it and restores from it.
	e2 := startEmulatorWith(t, func(c *emulator.Config) {
		c.S3Endpoint, c.S3AccessKey, c.S3SecretKey = endpoint, access, secret
		c.SnapshotBucket = "ec-snapshots"
	})
	waitSnapshot(t, e2.client, "s1")
	createGroup(t, e2.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("fourth"), SnapshotName: aws.String("s1")})
	checkDataset(t, primaryClient(t, e2.client, "fourth"), n)
}
