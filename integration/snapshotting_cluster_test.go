package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestSnapshottingClusterIdChoosesTheSource: a group whose
// SnapshottingClusterId names a member backs up from that member (the
// Describe reports it while automatic backups are on, as AWS does, and the snapshot's node says where it was taken),
// not from whichever replica the emulator would pick by default.
func TestSnapshottingClusterIdChoosesTheSource(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("pick"), NumCacheClusters: aws.Int32(3)})
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("pick"), SnapshottingClusterId: aws.String("pick-001"), SnapshotRetentionLimit: aws.Int32(1),
		ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatalf("ModifyReplicationGroup: %v", err)
	}
	waitAvailable(t, c, "pick")
	out, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("pick")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.ReplicationGroups[0].SnapshottingClusterId); got != "pick-001" {
		t.Fatalf("SnapshottingClusterId = %q, want pick-001", got)
	}
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("pick"), SnapshotName: aws.String("picked")}); err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	snap := waitSnapshot(t, c, "picked")
	if len(snap.NodeSnapshots) != 1 || aws.ToString(snap.NodeSnapshots[0].CacheClusterId) != "pick-001" {
		t.Fatalf("snapshot taken on %+v, want pick-001 (the SnapshottingClusterId)", snap.NodeSnapshots)
	}
}
