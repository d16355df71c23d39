package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// These tests drive the control plane's operations against the fake runtime
// (fakeruntime_test.go): each node is an in-process miniredis, so they start
// no process and run in milliseconds. The flows need nothing of a node but
// PING; replicas, failovers, snapshots and parameter applies need commands
// miniredis lacks and are covered by the real-node suites only.

const (
	testAccount = "111111111111"
	testRegion  = "us-east-1"
	// waitTimeout bounds every wait for a background operation.
	waitTimeout = 10 * time.Second
)

// harness is one run of the emulator over a fake runtime.
type harness struct {
	t     *testing.T
	rt    *fakeRuntime
	e     *Emulator
	store *state.Store
	pool  *engine.AddressPool
	once  sync.Once
}

// openStore returns a state store in a fresh directory.
func openStore(t *testing.T) *state.Store {
	t.Helper()
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newHarness starts an emulator on a new runtime instance of w persisting
// to store; it is closed when the test ends unless closed before.
func newHarness(t *testing.T, w *fakeWorld, store *state.Store) *harness {
	t.Helper()
	pool, err := engine.NewAddressPool("127.0.230.2")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rt: w.runtime(), store: store, pool: pool}
	h.e, err = New(Options{Runtime: h.rt, Addresses: pool, Store: store, NodeReadyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// close stops the emulator (gracefully: nodes are suspended), once.
func (h *harness) close() {
	h.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := h.e.Close(ctx); err != nil && !h.rt.isCrashed() {
			h.t.Errorf("closing the emulator: %v", err)
		}
	})
}

// create asks for a standalone cluster.
func (h *harness) create(ctx context.Context, id string) {
	h.t.Helper()
	_, err := h.e.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String(id), CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
	})
	if err != nil {
		h.t.Fatalf("CreateCacheCluster %s: %v", id, err)
	}
}

// status is the cluster's status, "gone" when it does not exist.
func (h *harness) status(ctx context.Context, id string) string {
	h.t.Helper()
	out, err := h.e.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(id)})
	var nf *types.CacheClusterNotFoundFault
	switch {
	case errors.As(err, &nf):
		return "gone"
	case err != nil:
		h.t.Fatalf("DescribeCacheClusters %s: %v", id, err)
	}
	return aws.ToString(out.CacheClusters[0].CacheClusterStatus)
}

// waitStatus polls until the cluster has status want.
func (h *harness) waitStatus(ctx context.Context, id, want string) {
	h.t.Helper()
	waitFor(h.t, "cluster "+id+" "+want, func() (bool, string) {
		got := h.status(ctx, id)
		return got == want, got
	})
}

// events are the messages of the cluster's events, oldest first.
func (h *harness) events(ctx context.Context, id string) []string {
	h.t.Helper()
	out, err := h.e.DescribeEvents(ctx, &elasticache.DescribeEventsInput{SourceIdentifier: aws.String(id), MaxRecords: aws.Int32(100)})
	if err != nil {
		h.t.Fatalf("DescribeEvents %s: %v", id, err)
	}
	var msgs []string
	for _, ev := range out.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	return msgs
}

// wantEvent fails unless the cluster has an event with message msg.
func (h *harness) wantEvent(ctx context.Context, id, msg string) {
	h.t.Helper()
	if got := h.events(ctx, id); !slices.Contains(got, msg) {
		h.t.Errorf("events of %s = %q, want one %q", id, got, msg)
	}
}

// waitEvent polls until the cluster has an event with message msg.
func (h *harness) waitEvent(ctx context.Context, id, msg string) {
	h.t.Helper()
	waitFor(h.t, "event "+msg+" of "+id, func() (bool, string) {
		got := h.events(ctx, id)
		return slices.Contains(got, msg), fmt.Sprintf("%q", got)
	})
}

// waitFor polls cond until it holds, failing the test after waitTimeout
// with the last value cond described.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after %v", what, got, waitTimeout)
		}
		<-tick.C
	}
}

// entered waits until a held call reached its gate.
func entered(t *testing.T, g *fakeGate, what string) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(waitTimeout):
		t.Fatalf("%s was never called", what)
	}
}

// TestOperationRecordedWhileItRuns: the state file holds a create from the
// moment CreateCacheCluster answers (cluster "creating", its operation
// recorded) until the node runs, and a delete likewise; each record goes
// once its operation is done.
func TestOperationRecordedWhileItRuns(t *testing.T) {
	w := newFakeWorld(t)
	h := newHarness(t, w, openStore(t))
	ctx := queryapiContext(testAccount, testRegion)
	node := nodeName(scope{testAccount, testRegion}, "orders", "0001")

	start := w.hold("start", node)
	h.create(ctx, "orders")
	rec := h.persisted(testAccount, testRegion)
	if cl := persistedCluster(rec, "orders"); cl == nil || cl.Status != statusCreating {
		t.Fatalf("state file after CreateCacheCluster answered: cluster %+v, want it creating", cl)
	}
	entered(t, start, "Start")
	if ops := opKinds(h.persisted(testAccount, testRegion)); !slices.Equal(ops, []string{opCreateCluster + " orders"}) {
		t.Fatalf("operations recorded while the node starts = %q", ops)
	}
	start.open()
	h.waitStatus(ctx, "orders", statusAvailable)
	h.waitNoOps(testAccount, testRegion)
	if cl := persistedCluster(h.persisted(testAccount, testRegion), "orders"); cl == nil || cl.Status != statusAvailable {
		t.Fatalf("state file after the create: cluster %+v, want it available", cl)
	}

	stop := w.hold("stop", node)
	if _, err := h.e.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	entered(t, stop, "Stop")
	rec = h.persisted(testAccount, testRegion)
	if cl := persistedCluster(rec, "orders"); cl == nil || cl.Status != statusDeleting {
		t.Fatalf("state file while the node stops: cluster %+v, want it deleting", cl)
	}
	if ops := opKinds(rec); !slices.Equal(ops, []string{opDeleteCluster + " orders"}) {
		t.Fatalf("operations recorded while the node stops = %q", ops)
	}
	stop.open()
	h.waitStatus(ctx, "orders", "gone")
	h.waitNoOps(testAccount, testRegion)
	if cl := persistedCluster(h.persisted(testAccount, testRegion), "orders"); cl != nil {
		t.Fatalf("state file after the delete still holds %+v", cl)
	}
}

// TestCreateRebootDelete: a cluster's node runs with the admin user once it
// is available; a reboot starts it again, empty, and records the event; a
// delete stops it and gives its address back.
func TestCreateRebootDelete(t *testing.T) {
	w := newFakeWorld(t)
	h := newHarness(t, w, openStore(t))
	ctx := queryapiContext(testAccount, testRegion)
	node := nodeName(scope{testAccount, testRegion}, "cart", "0001")

	h.create(ctx, "cart")
	h.waitStatus(ctx, "cart", statusAvailable)
	h.wantEvent(ctx, "cart", "Cache cluster created")
	before, err := h.rt.Inspect(ctx, node)
	if err != nil || !before.Running {
		t.Fatalf("node after the create: %+v, %v", before, err)
	}
	if err := h.e.admin.Ping(ctx, before.Endpoint); err != nil {
		t.Fatalf("the node does not answer the admin user: %v", err)
	}
	if err := w.server(node).Set("k", "v"); err != nil {
		t.Fatal(err)
	}

	out, err := h.e.RebootCacheCluster(ctx, &elasticache.RebootCacheClusterInput{
		CacheClusterId: aws.String("cart"), CacheNodeIdsToReboot: []string{"0001"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.CacheCluster.CacheClusterStatus); got != statusRebooting {
		t.Errorf("RebootCacheCluster answered status %q, want %q", got, statusRebooting)
	}
	h.waitStatus(ctx, "cart", statusAvailable)
	h.wantEvent(ctx, "cart", "Cache node 0001 restarted")
	after, err := h.rt.Inspect(ctx, node)
	if err != nil || !after.Running || after.ID == before.ID {
		t.Fatalf("node after the reboot: %+v (before %+v), %v", after, before, err)
	}
	if n := len(h.rt.startsOf(node)); n != 2 {
		t.Errorf("%d Start calls for the node, want 2 (create, reboot)", n)
	}
	if _, err := w.server(node).Get("k"); err == nil {
		t.Error("the rebooted primary kept its data; it must come back empty")
	}
	h.waitNoOps(testAccount, testRegion)

	if _, err := h.e.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String("cart")}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(ctx, "cart", "gone")
	h.wantEvent(ctx, "cart", "Cache cluster deleted")
	if _, err := h.rt.Inspect(ctx, node); !isNotFound(err) {
		t.Errorf("Inspect of the deleted cluster's node: %v, want ErrNodeNotFound", err)
	}
	if err := h.pool.Reserve(before.Endpoint); err != nil {
		t.Errorf("the deleted node's address was not given back: %v", err)
	}
	h.waitNoOps(testAccount, testRegion)
}

// TestOperationsDoNotBlockEachOther: while one node's start hangs, another
// cluster of the same scope and one of another account and region are
// created, and the hung scope keeps answering.
func TestOperationsDoNotBlockEachOther(t *testing.T) {
	w := newFakeWorld(t)
	h := newHarness(t, w, openStore(t))
	const otherAccount, otherRegion = "222222222222", "eu-west-1"
	ctxA, ctxB := queryapiContext(testAccount, testRegion), queryapiContext(otherAccount, otherRegion)

	held := w.hold("start", nodeName(scope{testAccount, testRegion}, "slow", "0001"))
	h.create(ctxA, "slow")
	entered(t, held, "Start of slow")

	h.create(ctxB, "elsewhere")
	h.waitStatus(ctxB, "elsewhere", statusAvailable)
	h.create(ctxA, "beside")
	h.waitStatus(ctxA, "beside", statusAvailable)
	if got := h.status(ctxA, "slow"); got != statusCreating {
		t.Fatalf("slow is %q while its start hangs, want %q", got, statusCreating)
	}
	h.waitNoOps(otherAccount, otherRegion)
	if cl := persistedCluster(h.persisted(otherAccount, otherRegion), "elsewhere"); cl == nil || cl.Status != statusAvailable {
		t.Errorf("state file of the other scope: %+v, want elsewhere available", cl)
	}

	held.open()
	h.waitStatus(ctxA, "slow", statusAvailable)
	h.waitNoOps(testAccount, testRegion)
}

// TestPersistOrderUnderConcurrentChanges: many changes of one scope at once
// (creates, parameter groups, tags, modifies, deletes, and their background
// operations) leave a state file equal to the final in-memory records: no
// older copy overwrote a newer one. Each burst ends with concurrent changes
// and nothing after them, so a write reordered at its end stays on disk.
func TestPersistOrderUnderConcurrentChanges(t *testing.T) {
	w := newFakeWorld(t)
	h := newHarness(t, w, openStore(t))
	ctx := queryapiContext(testAccount, testRegion)
	r := h.e.regionFor(ctx)
	const clusters, burst = 8, 24
	clusterID := func(i int) string { return fmt.Sprintf("c%d", i) }
	kept := func(i int) *string { return aws.String(r.arn("cluster", clusterID(2*(i%(clusters/2))+1))) }

	parallel := func(n int, fn func(i int) error) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(i); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	path, err := h.store.Path(state.Scope{Account: testAccount, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	settled := func(phase string) {
		t.Helper()
		waitFor(t, phase+": state file equal to the records", func() (bool, string) {
			r.mu.Lock()
			rec := r.record()
			r.mu.Unlock()
			want, err := state.Encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return len(rec.Operations) == 0 && bytes.Equal(got, want),
				fmt.Sprintf("%d operations running, file of %d bytes, records of %d", len(rec.Operations), len(got), len(want))
		})
	}

	parallel(clusters+burst, func(i int) error {
		if i < clusters {
			_, err := h.e.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
				CacheClusterId: aws.String(clusterID(i)), CacheNodeType: aws.String("cache.t3.micro")})
			return err
		}
		_, err := h.e.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
			CacheParameterGroupName: aws.String(fmt.Sprintf("pg%d", i)), CacheParameterGroupFamily: aws.String("redis7"),
			Description: aws.String("concurrent")})
		return err
	})
	for i := range clusters {
		h.waitStatus(ctx, clusterID(i), statusAvailable)
	}
	settled("creates")
	parallel(clusters+burst, func(i int) error {
		if i >= clusters {
			_, err := h.e.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{ResourceName: kept(i),
				Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}}})
			return err
		}
		id := aws.String(clusterID(i))
		if i%2 == 0 {
			_, err := h.e.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: id})
			return err
		}
		_, err := h.e.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: id,
			SnapshotRetentionLimit: aws.Int32(int32(i))})
		return err
	})
	settled("deletes and modifies")
	for round := range 3 {
		parallel(burst, func(i int) error {
			_, err := h.e.AddTagsToResource(ctx, &elasticache.AddTagsToResourceInput{ResourceName: kept(i),
				Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("r%d-%d", round, i)), Value: aws.String("v")}}})
			return err
		})
		settled(fmt.Sprintf("tag burst %d", round))
	}
	rec := h.persisted(testAccount, testRegion)
	if len(rec.CacheClusters) != clusters/2 || len(rec.ParameterGroups) < burst {
		t.Errorf("state file has %d clusters and %d parameter groups, want %d and at least %d",
			len(rec.CacheClusters), len(rec.ParameterGroups), clusters/2, burst)
	}
}
