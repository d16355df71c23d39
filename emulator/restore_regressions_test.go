package emulator

// Regression tests of two restart defects: a create cut off by a graceful
// stop, and the status of a node waiting to restart.

import (
	"context"
	"testing"
)

// A graceful stop (Close) while a create is starting its node records the
// cluster "create-failed" (provisionCluster -> markNode with the context
// error); the next start then never finishes the create.
func TestRestoreFinishesCreateCutByGracefulStop(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)
	start := w.hold("start", nodeName(scope{testAccount, testRegion}, "fresh", "0001"))
	h1.create(ctx, "fresh")
	entered(t, start, "Start")
	h1.close()
	start.open()
	recs, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	h2 := restart(t, w, store, recs, RestoreReport{Regions: 1, Restarted: 1, Operations: 1})
	h2.waitNoOps(testAccount, testRegion)
	if got := h2.status(ctx, "fresh"); got != statusAvailable {
		t.Fatalf("create cut by a graceful stop ends %q after the restart (events %q), want available", got, h2.events(ctx, "fresh"))
	}
}

// Right after Restore, a standalone cluster whose node must start again
// still reads "available" although its node does not run (Restore's doc
// promises a transitional status until reconcileRegion has run).
func TestRestoreShowsTransitionalStatus(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)
	node := nodeName(scope{testAccount, testRegion}, "kept", "0001")
	h1.create(ctx, "kept")
	h1.waitStatus(ctx, "kept", statusAvailable)
	h1.waitNoOps(testAccount, testRegion)
	h1.close()
	recs, _ := store.Load()
	h2 := newHarness(t, w, store)
	if _, err := h2.e.Restore(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if got := h2.status(ctx, "kept"); got == statusAvailable && w.server(node) == nil {
		t.Fatalf("status %q right after Restore while the node does not run", got)
	}
}
