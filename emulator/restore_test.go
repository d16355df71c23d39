package emulator

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// These tests restart the emulator over the fake runtime: a first run
// leaves records and nodes behind (killed, or stopped gracefully), and a
// second run restores them with Restore, as Start does, from what the first
// one persisted.

// persisted reads the scope's state file as the next start would.
func (h *harness) persisted(account, region string) *state.Region {
	h.t.Helper()
	recs, err := h.store.Load()
	if err != nil {
		h.t.Fatal(err)
	}
	for i := range recs {
		if recs[i].Account == account && recs[i].Region == region {
			return &recs[i]
		}
	}
	return &state.Region{}
}

// persistedCluster is the cluster's record in the state file (nil if none).
func persistedCluster(rec *state.Region, id string) *state.CacheCluster {
	for i := range rec.CacheClusters {
		if rec.CacheClusters[i].ID == id {
			return &rec.CacheClusters[i]
		}
	}
	return nil
}

// opKinds lists the recorded operations as "kind target".
func opKinds(rec *state.Region) []string {
	var out []string
	for _, op := range rec.Operations {
		out = append(out, op.Kind+" "+op.Target)
	}
	return out
}

// waitNoOps polls until the scope's state file records no operation.
func (h *harness) waitNoOps(account, region string) {
	h.t.Helper()
	waitFor(h.t, "no operation recorded", func() (bool, string) {
		ops := opKinds(h.persisted(account, region))
		return len(ops) == 0, fmt.Sprint(ops)
	})
}

// restart starts the next run over the world w with the records recs, as
// Start does after a restart, and checks what Restore reports.
func restart(t *testing.T, w *fakeWorld, store *state.Store, recs []state.Region, want RestoreReport) *harness {
	t.Helper()
	h := newHarness(t, w, store)
	rep, err := h.e.Restore(context.Background(), recs)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rep != want {
		t.Errorf("Restore reported %+v, want %+v", rep, want)
	}
	return h
}

// TestRestoreAfterKill: the first run is killed (kill -9) with one node
// running, one dead without data, a delete and a create half done. The next
// run adopts the running node as it runs (no Start, still available, same
// instance, data intact), starts the dead one empty, finishes the delete
// (the node is reaped) and the create, and drops the operations' records.
func TestRestoreAfterKill(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)
	sc := scope{testAccount, testRegion}
	name := func(id string) string { return nodeName(sc, id, "0001") }

	for _, id := range []string{"adopted", "lost", "doomed"} {
		h1.create(ctx, id)
		h1.waitStatus(ctx, id, statusAvailable)
	}
	for _, id := range []string{"adopted", "lost"} {
		if err := w.server(name(id)).Set("k", id); err != nil {
			t.Fatal(err)
		}
	}
	adoptedBefore, err := h1.rt.Inspect(ctx, name("adopted"))
	if err != nil {
		t.Fatal(err)
	}
	stop := w.hold("stop", name("doomed"))
	if _, err := h1.e.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("doomed")}); err != nil {
		t.Fatal(err)
	}
	start := w.hold("start", name("fresh"))
	h1.create(ctx, "fresh")
	entered(t, stop, "Stop of doomed")
	entered(t, start, "Start of fresh")

	// The kill: what is on disk now is what the next run finds; the nodes
	// stay as they are, and "lost" dies meanwhile without saving.
	recs, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if ops := opKinds(&recs[0]); len(ops) != 2 {
		t.Fatalf("operations recorded at the kill = %q, want the delete and the create", ops)
	}
	h1.rt.crash()
	w.kill(name("lost"))
	h1.close()
	stop.open()
	start.open()

	h2 := restart(t, w, openStore(t), recs, RestoreReport{Regions: 1, Adopted: 1, Restarted: 2, Reaped: 1, Operations: 2})
	if got := h2.status(ctx, "adopted"); got != statusAvailable {
		t.Errorf("the adopted cluster is %q right after Restore, want available", got)
	}
	h2.waitStatus(ctx, "fresh", statusAvailable)
	h2.waitStatus(ctx, "lost", statusAvailable)
	h2.waitStatus(ctx, "doomed", "gone")
	h2.waitNoOps(testAccount, testRegion) // the inherited operations are done

	if got := h2.status(ctx, "adopted"); got != statusAvailable {
		t.Errorf("the adopted cluster is %q after the reconcile, want available", got)
	}
	if starts := h2.rt.startsOf(name("adopted")); len(starts) != 0 {
		t.Errorf("the running node was started again (%d times) instead of adopted", len(starts))
	}
	if n, err := h2.rt.Inspect(ctx, name("adopted")); err != nil || n.ID != adoptedBefore.ID {
		t.Errorf("the adopted node is %+v (%v), want the instance %s that ran before", n, err, adoptedBefore.ID)
	}
	if v, err := w.server(name("adopted")).Get("k"); v != "adopted" {
		t.Errorf("the adopted node lost its data: %q, %v", v, err)
	}

	if starts := h2.rt.startsOf(name("lost")); len(starts) != 1 || starts[0].Resume {
		t.Errorf("Start calls for the node that died without data: %+v, want one, not resuming", starts)
	}
	h2.wantEvent(ctx, "lost", "Cache node 0001 restarted (empty: it had no saved data) after the emulator restarted")
	if _, err := w.server(name("lost")).Get("k"); err == nil {
		t.Error("the node that died without saving came back with data")
	}

	h2.wantEvent(ctx, "doomed", "Cache cluster deleted")
	if w.exists(name("doomed")) {
		t.Error("the node of the deleted cluster was not reaped")
	}

	if starts := h2.rt.startsOf(name("fresh")); len(starts) != 1 {
		t.Errorf("%d Start calls for the cluster being created, want 1", len(starts))
	}
	h2.wantEvent(ctx, "fresh", "Cache cluster created")
	if cl := persistedCluster(h2.persisted(testAccount, testRegion), "fresh"); cl == nil || cl.Status != statusAvailable {
		t.Errorf("state file after the reconcile: %+v, want fresh available", cl)
	}
}

// TestRestoreAfterGracefulStop: a graceful stop saves each node's data and
// leaves the records; the next run starts the node from its saved data
// (Resume) and says so in an event.
func TestRestoreAfterGracefulStop(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)
	node := nodeName(scope{testAccount, testRegion}, "kept", "0001")

	h1.create(ctx, "kept")
	h1.waitStatus(ctx, "kept", statusAvailable)
	h1.waitNoOps(testAccount, testRegion)
	if err := w.server(node).Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	h1.close()
	if w.server(node) != nil {
		t.Fatal("the node still runs after the graceful stop")
	}

	recs, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	h2 := restart(t, w, store, recs, RestoreReport{Regions: 1, Restarted: 1})
	h2.waitEvent(ctx, "kept", "Cache node 0001 restarted (from its saved data) after the emulator restarted")
	h2.waitStatus(ctx, "kept", statusAvailable)
	if starts := h2.rt.startsOf(node); len(starts) != 1 || !starts[0].Resume {
		t.Errorf("Start calls for the suspended node: %+v, want one resuming", starts)
	}
	if v, err := w.server(node).Get("k"); v != "v" {
		t.Errorf("the node came back without its saved data: %q, %v", v, err)
	}
}

// TestRestoreGroupCreateAfterKill: a replication group of one node whose
// create was cut by a kill is finished by the next run: its node starts,
// its endpoints come back at their recorded addresses and serve, and the
// group becomes available. (Groups with replicas need replication, which
// the fake runtime has not.)
func TestRestoreGroupCreateAfterKill(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)

	start := w.hold("start", nodeName(scope{testAccount, testRegion}, memberID("shop", 1), "0001"))
	if _, err := h1.e.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("shop"), ReplicationGroupDescription: aws.String("one node"),
		CacheNodeType: aws.String("cache.t3.micro"), NumCacheClusters: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	entered(t, start, "Start of the primary")
	recs, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	rg := recs[0].ReplicationGroups
	if len(rg) != 1 || rg[0].Status != statusCreating || rg[0].NodeGroups[0].PrimaryEndpoint == nil {
		t.Fatalf("state file at the kill: groups %+v, want shop creating with its endpoints", rg)
	}
	if ops := opKinds(&recs[0]); len(ops) != 1 || ops[0] != opCreateGroup+" shop" {
		t.Fatalf("operations recorded at the kill = %q", ops)
	}
	recorded := *rg[0].NodeGroups[0].PrimaryEndpoint
	h1.rt.crash()
	h1.close()
	start.open()

	h2 := restart(t, w, openStore(t), recs, RestoreReport{Regions: 1, Restarted: 1, Operations: 1})
	var primary *string
	var port *int32
	waitFor(t, "group shop available", func() (bool, string) {
		out, err := h2.e.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("shop")})
		if err != nil {
			return false, err.Error()
		}
		g := out.ReplicationGroups[0]
		if ep := g.NodeGroups[0].PrimaryEndpoint; ep != nil {
			primary, port = ep.Address, ep.Port
		}
		return aws.ToString(g.Status) == statusAvailable, aws.ToString(g.Status)
	})
	h2.waitNoOps(testAccount, testRegion)
	h2.wantEvent(ctx, "shop", "Replication group shop created")
	if got := fmt.Sprintf("%s:%d", aws.ToString(primary), aws.ToInt32(port)); got != fmt.Sprintf("%s:%d", recorded.Host, recorded.Port) {
		t.Errorf("primary endpoint after the restart %s, want the recorded %s:%d", got, recorded.Host, recorded.Port)
	}
	if err := h2.e.admin.Ping(ctx, endpointFromRecord(recorded)); err != nil {
		t.Errorf("the primary endpoint does not serve after the restart: %v", err)
	}
}
