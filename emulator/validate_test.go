package emulator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

func TestNormalizeID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"Orders", "orders", true},
		{"a", "a", true},
		{"a-b-1", "a-b-1", true},
		{strings.Repeat("a", 40), strings.Repeat("a", 40), true},
		{strings.Repeat("a", 41), "", false},
		{"", "", false},
		{"1abc", "", false},
		{"-abc", "", false},
		{"a--b", "", false},
		{"ab-", "", false},
		{"a_b", "", false},
		{"ä", "", false},
	} {
		got, err := normalizeID("ReplicationGroupId", aws.String(tc.in), 40)
		var ipv *types.InvalidParameterValueException
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("normalizeID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.As(err, &ipv) {
			t.Errorf("normalizeID(%q) = %q, %v; want InvalidParameterValue", tc.in, got, err)
		}
	}
}

func TestResolveEngine(t *testing.T) {
	for _, tc := range []struct {
		engine, version, wantActual, wantFamily string
	}{
		{"", "", "7.1.0", "redis7"},
		{"redis", "6.x", "6.2.6", "redis6.x"},
		{"redis", "6.0", "6.0.5", "redis6.x"},
		{"Redis", "7.0", "7.0.7", "redis7"},
		{"valkey", "", "8.1.0", "valkey8"},
		{"valkey", "7.2", "7.2.6", "valkey7"},
	} {
		ev, err := resolveEngine(aws.String(tc.engine), aws.String(tc.version))
		if err != nil || ev.Actual != tc.wantActual || ev.Family != tc.wantFamily {
			t.Errorf("resolveEngine(%q, %q) = %+v, %v", tc.engine, tc.version, ev, err)
		}
	}
	for _, bad := range [][2]string{{"memcached", ""}, {"redis", "9.9"}, {"mongo", ""}, {"redis", "7.0.7"}, {"valkey", "7"}} {
		if _, err := resolveEngine(aws.String(bad[0]), aws.String(bad[1])); err == nil {
			t.Errorf("resolveEngine(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestPage(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e"}
	got, next := page(keys, nil, 2)
	if strings.Join(got, "") != "ab" || aws.ToString(next) != "b" {
		t.Fatalf("first page %v %v", got, aws.ToString(next))
	}
	got, next = page(keys, next, 2)
	if strings.Join(got, "") != "cd" || aws.ToString(next) != "d" {
		t.Fatalf("second page %v %v", got, aws.ToString(next))
	}
	got, next = page(keys, next, 2)
	if strings.Join(got, "") != "e" || next != nil {
		t.Fatalf("last page %v %v", got, next)
	}
}

func TestInWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		window string
		t      time.Time
		want   bool
	}{
		{"05:00-06:00", at(5, 0), true},
		{"05:00-06:00", at(5, 59), true},
		{"05:00-06:00", at(6, 0), false},
		{"05:00-06:00", at(4, 59), false},
		{"23:30-00:30", at(23, 45), true},
		{"23:30-00:30", at(0, 15), true},
		{"23:30-00:30", at(1, 0), false},
		{"garbage", at(5, 0), false},
	} {
		if got := inWindow(tc.t, tc.window); got != tc.want {
			t.Errorf("inWindow(%s, %s) = %v", tc.t.Format("15:04"), tc.window, got)
		}
	}
}

func TestSettingsModifyLeavesOriginalOnError(t *testing.T) {
	s, err := newSettings(nil, nil, nil, nil, nil)
	if err != nil || s.maintenanceWindow != defaultMaintenanceWindow || s.snapshotWindow != defaultSnapshotWindow {
		t.Fatalf("defaults %+v %v", s, err)
	}
	_, err = s.modify(aws.String("mon:01:00-mon:02:00"), nil, aws.Int32(36), nil, nil, nil)
	if err == nil {
		t.Fatal("retention 36 accepted")
	}
	if s.maintenanceWindow != defaultMaintenanceWindow {
		t.Fatal("a rejected modify changed the settings")
	}
	m, err := s.modify(aws.String("MON:01:00-mon:02:00"), aws.String("03:00-04:00"), aws.Int32(7), aws.Bool(false), nil, nil)
	if err != nil || m.maintenanceWindow != "mon:01:00-mon:02:00" || m.snapshotRetention != 7 || m.autoMinorUpgrade {
		t.Fatalf("modified %+v %v", m, err)
	}
}

// TestDescriptionLimits: descriptions longer than AWS's 255 characters are
// refused with InvalidParameterValue and change nothing; the limit counts
// characters, so 255 two-byte characters pass, and so do tag keys and
// values of 128 and 256 of them.
func TestDescriptionLimits(t *testing.T) {
	_, client := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tooLong := strings.Repeat("d", maxDescriptionLen+1)
	huge := strings.Repeat("d", 1<<20)
	fits := strings.Repeat("é", maxDescriptionLen)
	wantInvalid := func(what string, err error) {
		t.Helper()
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) {
			t.Fatalf("%s: err = %v, want InvalidParameterValue", what, err)
		}
	}

	for _, d := range []string{tooLong, huge} {
		_, err := client.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
			CacheParameterGroupName: aws.String("long"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String(d)})
		wantInvalid("parameter group description", err)
		_, err = client.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
			CacheSubnetGroupName: aws.String("long"), CacheSubnetGroupDescription: aws.String(d), SubnetIds: []string{"subnet-0aaa"}})
		wantInvalid("subnet group description", err)
		_, err = client.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String("long"), ReplicationGroupDescription: aws.String(d), CacheNodeType: aws.String("cache.t4g.micro")})
		wantInvalid("replication group description", err)
		_, err = client.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
			ReplicationGroupId: aws.String("long"), ReplicationGroupDescription: aws.String(d)})
		wantInvalid("modified replication group description", err)
	}
	if _, err := client.DescribeCacheParameterGroups(ctx, &elasticache.DescribeCacheParameterGroupsInput{CacheParameterGroupName: aws.String("long")}); !errors.As(err, new(*types.CacheParameterGroupNotFoundFault)) {
		t.Fatalf("refused parameter group exists: %v", err)
	}
	if _, err := client.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("long")}); !errors.As(err, new(*types.ReplicationGroupNotFoundFault)) {
		t.Fatalf("refused replication group exists: %v", err)
	}

	// At the limit, in characters.
	if _, err := client.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("fits"), CacheSubnetGroupDescription: aws.String(fits), SubnetIds: []string{"subnet-0aaa"}}); err != nil {
		t.Fatalf("255-character subnet group description: %v", err)
	}
	_, err := client.ModifyCacheSubnetGroup(ctx, &elasticache.ModifyCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("fits"), CacheSubnetGroupDescription: aws.String(tooLong)})
	wantInvalid("modified subnet group description", err)
	out, err := client.DescribeCacheSubnetGroups(ctx, &elasticache.DescribeCacheSubnetGroupsInput{CacheSubnetGroupName: aws.String("fits")})
	if err != nil || aws.ToString(out.CacheSubnetGroups[0].CacheSubnetGroupDescription) != fits {
		t.Fatalf("after a refused modify the description changed: %v", err)
	}
	tags := []types.Tag{{Key: aws.String(strings.Repeat("k", 127) + "é"), Value: aws.String(strings.Repeat("v", 255) + "é")}}
	if _, err := client.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("fits"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String(fits), Tags: tags}); err != nil {
		t.Fatalf("255-character description, 128/256-character tag: %v", err)
	}
	tags[0].Key = aws.String(strings.Repeat("k", 129))
	_, err = client.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("tagged"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("d"), Tags: tags})
	wantInvalid("129-character tag key", err)
}

// TestMissingNodeTypeMessage: a create without CacheNodeType (and no
// snapshot to take it from) answers AWS's own wording.
func TestMissingNodeTypeMessage(t *testing.T) {
	_, client := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const want = "The parameter CacheNodeType must be provided and must not be null."
	check := func(what string, err error) {
		t.Helper()
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) || ipv.ErrorMessage() != want {
			t.Fatalf("%s without CacheNodeType: %v, want InvalidParameterValue %q", what, err, want)
		}
	}
	_, err := client.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("nonode"), ReplicationGroupDescription: aws.String("d")})
	check("CreateReplicationGroup", err)
	_, err = client.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("nonode"), Engine: aws.String("redis")})
	check("CreateCacheCluster", err)
}
