package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// TestPendingSettingsAppliedInWindow: without ApplyImmediately,
// AutomaticFailoverEnabled (with the Multi-AZ setting asked with it) and
// PrimaryClusterId wait in ReplicationGroupPendingModifiedValues
// (AutomaticFailoverStatus, PrimaryClusterId) while the group keeps its
// settings and its primary, until the maintenance window on the
// emulator's (injected) clock; a later call with ApplyImmediately=true
// applies what is pending, a pending promotion after a pending node
// change's replacements; the description applies at once either way.
func TestPendingSettingsAppliedInWindow(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)} // a Wednesday
	e := startEmulatorWith(t, func(c *emulator.Config) { c.Now = clock.Now })
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		NumCacheClusters: aws.Int32(3), PreferredMaintenanceWindow: aws.String("wed:03:00-wed:04:00")})
	type view struct{ failover, multiAZ, pendingFailover, pendingPrimary, primary, description string }
	look := func() view {
		g := describeGroup(t, c, "wait")
		return view{string(g.AutomaticFailover), string(g.MultiAZ), string(g.PendingModifiedValues.AutomaticFailoverStatus),
			aws.ToString(g.PendingModifiedValues.PrimaryClusterId), primaryOf(g), aws.ToString(g.Description)}
	}
	if got, want := look(), (view{"disabled", "disabled", "", "", "wait-001", "test"}); got != want {
		t.Fatalf("created: %+v, want %+v", got, want)
	}

	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(true), PrimaryClusterId: aws.String("wait-002"),
		ReplicationGroupDescription: aws.String("now")}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	if got, want := look(), (view{"disabled", "disabled", "enabled", "wait-002", "wait-001", "now"}); got != want {
		t.Fatalf("pending: %+v, want %+v", got, want)
	}
	// Checked against what waits: Multi-AZ off while failover waits to be
	// enabled is fine, failover off with Multi-AZ waiting on is not.
	_, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		AutomaticFailoverEnabled: aws.Bool(false)})
	expectError(t, err, "InvalidParameterCombination", 400)
	if got, want := look(), (view{"disabled", "disabled", "enabled", "wait-002", "wait-001", "now"}); got != want {
		t.Fatalf("after a refused modify: %+v, want %+v", got, want)
	}

	emu := e.srv.Emulator()
	emu.TickMaintenance(ctx) // 01:00: before the window
	if got, want := look(), (view{"disabled", "disabled", "enabled", "wait-002", "wait-001", "now"}); got != want {
		t.Fatalf("before the window: %+v, want %+v", got, want)
	}
	clock.Set(time.Date(2026, 12, 2, 3, 10, 0, 0, time.UTC))
	emu.TickMaintenance(ctx)
	waitAvailable(t, c, "wait")
	if got, want := look(), (view{"enabled", "enabled", "", "", "wait-002", "now"}); got != want {
		t.Fatalf("after the window: %+v, want %+v", got, want)
	}

	// Pending, then applied by a later ApplyImmediately=true.
	clock.Set(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC))
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		PrimaryClusterId: aws.String("wait-003"), MultiAZEnabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	// Multi-AZ alone has nothing to wait for (AWS shows no pending Multi-AZ).
	if got, want := look(), (view{"enabled", "disabled", "", "wait-003", "wait-002", "now"}); got != want {
		t.Fatalf("pending promotion: %+v, want %+v", got, want)
	}
	emu.TickMaintenance(ctx) // 05:00: past the window
	if got := look().primary; got != "wait-002" {
		t.Fatalf("primary %s outside the window, want wait-002", got)
	}
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	if got, want := look(), (view{"enabled", "disabled", "", "", "wait-003", "now"}); got != want {
		t.Fatalf("after ApplyImmediately: %+v, want %+v", got, want)
	}
	// A pending promotion and a pending node change (asked apart: one
	// request cannot ask both) run together: the nodes are replaced, then
	// the member asked for holds the primary role (the replacement alone
	// would hand it to wait-001, the first replica replaced).
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		PrimaryClusterId: aws.String("wait-002")}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		CacheNodeType: aws.String("cache.t4g.small")}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	if got := aws.ToString(describeGroup(t, c, "wait").PendingModifiedValues.PrimaryClusterId); got != "wait-002" {
		t.Fatalf("pending primary %q with a pending node change, want wait-002", got)
	}
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("wait"),
		ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "wait")
	if g := describeGroup(t, c, "wait"); primaryOf(g) != "wait-002" || aws.ToString(g.CacheNodeType) != "cache.t4g.small" {
		t.Fatalf("after the node change: primary %s, node type %s; want wait-002, cache.t4g.small", primaryOf(g), aws.ToString(g.CacheNodeType))
	}
	events, err := c.DescribeEvents(ctx, &elasticache.DescribeEventsInput{SourceIdentifier: aws.String("wait"),
		SourceType: types.SourceTypeReplicationGroup, StartTime: aws.Time(clock.Now().Add(-24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	var sawWindow bool
	for _, ev := range events.Events {
		sawWindow = sawWindow || aws.ToString(ev.Message) == "Applying pending modifications of replication group wait in its maintenance window"
	}
	if !sawWindow {
		t.Fatalf("no event says the window applied the pending modifications: %+v", events.Events)
	}
}
