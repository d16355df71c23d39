package engine_test

import (
	"context"
	"testing"
	"time"
)

// TestRelistenAfterRebindLeftNodeListeningNowhere: the node's own address
// is taken the moment a rebind lets it go and held past Rebind's retries,
// as a fork child that does not get the CPU would. Rebind then fails and
// the node listens nowhere, while a connection it had (the health
// monitor's probe) keeps answering: ListensNowhere says so, the address
// refuses, and Relisten through the probe binds the node again.
func TestRelistenAfterRebindLeftNodeListeningNowhere(t *testing.T) {
	h := newHarness(t, "127.0.7.235")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := h.rt.Admin()
	ep, extra := boundNode(t, h, ctx, "nowhere")
	probe := admin.NewProbe(ep, 2*time.Second)
	t.Cleanup(func() { probe.Close() })
	if err := probe.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if admin.ListensNowhere(ep) || admin.Refuses(ep, time.Second) {
		t.Fatal("a node just started is reported listening nowhere")
	}
	const held = 4 * time.Second // past Rebind's 3 s of retries
	lost := false
	for round := 0; round < 300 && !lost; round++ {
		var err error
		lost, _, err = rebindOwnTaken(t, ctx, admin, ep, extra, held)
		if lost != (err != nil) {
			t.Fatalf("round %d: address taken %v, rebind error %v", round, lost, err)
		}
	}
	if !lost {
		t.Fatal("the test's listener never took the node's own address during a rebind: nothing was tested")
	}
	if !admin.ListensNowhere(ep) {
		t.Error("ListensNowhere is false after a rebind that failed every retry")
	}
	if !admin.Refuses(ep, time.Second) {
		t.Fatal("the node's own address does not refuse: it was not left listening nowhere")
	}
	if err := probe.Ping(ctx); err != nil {
		t.Fatalf("the probe's open connection does not answer: %v", err)
	}
	if err := probe.Relisten(ctx, time.Second); err != nil {
		t.Fatalf("Relisten: %v", err)
	}
	if admin.ListensNowhere(ep) {
		t.Error("ListensNowhere is still true after Relisten")
	}
	if err := admin.Ping(ctx, ep); err != nil {
		t.Fatalf("the node does not answer a new connection after Relisten: %v", err)
	}
}

// TestListenChecksAreNotClients: the connections Refuses makes to check a
// node listens are not counted in Probe.ConnectionsReceived, which tells
// the reader endpoint whether clients came to its replica: the health
// monitor's listen checks every 10 s would otherwise make every idle reader
// endpoint look used and rotate.
func TestListenChecksAreNotClients(t *testing.T) {
	h := newHarness(t, "127.0.7.236")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "checks", nil).Endpoint
	probe := admin.NewProbe(ep, 2*time.Second)
	t.Cleanup(func() { probe.Close() })
	before, err := probe.ConnectionsReceived(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if admin.Refuses(ep, time.Second) {
			t.Fatal("a running node refuses")
		}
	}
	// The node counts a connection when it accepts it, a moment after the
	// dial returned: until then the figure is below before.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := probe.ConnectionsReceived(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == before {
			break
		}
		if n > before || time.Now().After(deadline) {
			t.Fatalf("connections received %d after 3 listen checks, want %d: the checks count as clients", n, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A client's connection still counts.
	if err := admin.Ping(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if n, err := probe.ConnectionsReceived(ctx); err != nil || n != before+1 {
		t.Fatalf("connections received %d (%v) after a client's connection, want %d", n, err, before+1)
	}
}
