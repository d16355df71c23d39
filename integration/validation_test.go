package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestValidationAsAWS: EngineVersion in AWS's forms, maintenance and
// snapshot windows of at least 60 minutes that do not overlap (the defaults
// included), StorageEncryptionType reported; bad input answers AWS's error
// and changes nothing.
func TestValidationAsAWS(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	create := func(mut func(*elasticache.CreateReplicationGroupInput)) error {
		in := &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("v"), ReplicationGroupDescription: aws.String("d"),
			CacheNodeType: aws.String("cache.t4g.micro")}
		mut(in)
		_, err := c.CreateReplicationGroup(ctx, in)
		return err
	}
	for _, tc := range []struct {
		name      string
		mut       func(*elasticache.CreateReplicationGroupInput)
		code, msg string
	}{
		{"patch version", func(in *elasticache.CreateReplicationGroupInput) { in.EngineVersion = aws.String("6.2.6") },
			"InvalidParameterValue", "Specific version selection is not allowed for '6.2.6', please use '6.2'"},
		{"unknown version", func(in *elasticache.CreateReplicationGroupInput) { in.EngineVersion = aws.String("7.4") },
			"InvalidParameterCombination", "Cannot find version 7.4 for redis"},
		{"short maintenance window", func(in *elasticache.CreateReplicationGroupInput) {
			in.PreferredMaintenanceWindow = aws.String("sun:05:00-sun:05:30")
		}, "InvalidParameterValue", "Maintenance window must be at least 60 minutes."},
		{"short snapshot window", func(in *elasticache.CreateReplicationGroupInput) { in.SnapshotWindow = aws.String("05:00-05:30") },
			"InvalidParameterValue", "Snapshot window must be at least 60 minutes."},
		{"overlapping windows", func(in *elasticache.CreateReplicationGroupInput) {
			in.PreferredMaintenanceWindow, in.SnapshotWindow = aws.String("wed:03:00-wed:04:00"), aws.String("03:30-04:30")
		}, "InvalidParameterValue", "The snapshot window and maintenance window must not overlap."},
		{"unknown node type", func(in *elasticache.CreateReplicationGroupInput) { in.CacheNodeType = aws.String("cache.m9.huge") },
			"InvalidParameterValue", "Invalid Cache Node Type: cache.m9.huge."},
	} {
		err := create(tc.mut)
		expectError(t, err, tc.code, 400)
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		}
	}
	_, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("v")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)

	// The accepted forms, and defaults that do not overlap.
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("sixx"), EngineVersion: aws.String("6.x"),
		AtRestEncryptionEnabled: aws.Bool(true)})
	g := describeGroup(t, c, "sixx")
	if g.StorageEncryptionType != types.StorageEncryptionTypeSseElasticache {
		t.Errorf("StorageEncryptionType %q with AtRestEncryptionEnabled", g.StorageEncryptionType)
	}
	cl, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("sixx-001")})
	if err != nil {
		t.Fatal(err)
	}
	got := cl.CacheClusters[0]
	if aws.ToString(got.EngineVersion) != "6.2.6" {
		t.Errorf("6.x runs %s, want the newest 6: 6.2.6", aws.ToString(got.EngineVersion))
	}
	if m, s := aws.ToString(got.PreferredMaintenanceWindow), aws.ToString(got.SnapshotWindow); m == "" || s == "" || (m == "sun:05:00-sun:06:00" && s == "05:00-06:00") {
		t.Errorf("default windows %s and %s", m, s)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("plain"), EngineVersion: aws.String("7.0")})
	if g := describeGroup(t, c, "plain"); g.StorageEncryptionType != types.StorageEncryptionTypeNone {
		t.Errorf("StorageEncryptionType %q without at-rest encryption", g.StorageEncryptionType)
	}

	// A modify setting an overlapping or short window changes nothing.
	before := describeGroup(t, c, "plain")
	for _, in := range []*elasticache.ModifyReplicationGroupInput{
		{SnapshotWindow: aws.String("05:30-06:30")}, // overlaps the default sun:05:00-sun:06:00
		{PreferredMaintenanceWindow: aws.String("mon:00:00-mon:00:59"), SnapshotWindow: aws.String("10:00-11:00")},
		{PreferredMaintenanceWindow: aws.String("tue:10:00-tue:12:00"), SnapshotWindow: aws.String("11:00-12:00")},
	} {
		in.ReplicationGroupId, in.ApplyImmediately = aws.String("plain"), aws.Bool(true)
		_, err := c.ModifyReplicationGroup(ctx, in)
		expectError(t, err, "InvalidParameterValue", 400)
	}
	after, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("plain-001")})
	if err != nil {
		t.Fatal(err)
	}
	if a := after.CacheClusters[0]; aws.ToString(a.SnapshotWindow) != aws.ToString(before.SnapshotWindow) || aws.ToString(a.PreferredMaintenanceWindow) != "sun:05:00-sun:06:00" {
		t.Errorf("a refused modify changed the windows: %s, %s", aws.ToString(a.SnapshotWindow), aws.ToString(a.PreferredMaintenanceWindow))
	}
}
