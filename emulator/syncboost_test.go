package emulator

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// refusedEndpoint is a loopback address nothing listens on: the boost's
// CONFIG SET fails at once (and is only logged).
func refusedEndpoint(t *testing.T) engine.Endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return engine.Endpoint{Host: "127.0.0.1", Port: port}
}

// At most maxBoosted primaries are raised at once; the others sync at the
// idle rate, and a slot given back goes to the next primary whose replica
// starts a sync. Several replicas of one primary hold one slot.
func TestSyncBoostBudget(t *testing.T) {
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{admin: admin, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	boosted := func(ep engine.Endpoint) bool {
		e.boosts.mu.Lock()
		b := e.boosts.by[ep]
		e.boosts.mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.boosted
	}
	var eps []engine.Endpoint
	var dones []func()
	seen := map[engine.Endpoint]bool{}
	for len(eps) < maxBoosted+2 {
		ep := refusedEndpoint(t)
		if seen[ep] {
			continue // the kernel gave the same port again
		}
		seen[ep] = true
		eps = append(eps, ep)
		dones = append(dones, e.boostSync(ctx, ep))
	}
	// A second replica of the first primary shares its slot.
	second := e.boostSync(ctx, eps[0])
	if e.boosts.boosted != maxBoosted {
		t.Fatalf("%d primaries boosted, want %d", e.boosts.boosted, maxBoosted)
	}
	for i, ep := range eps {
		if want := i < maxBoosted; boosted(ep) != want {
			t.Errorf("primary %d boosted = %v, want %v", i, boosted(ep), want)
		}
	}
	dones[0]() // one replica of eps[0] still syncs: the slot stays
	if !boosted(eps[0]) || e.boosts.boosted != maxBoosted {
		t.Fatalf("the first primary lost its slot while a replica still syncs from it")
	}
	second()
	if boosted(eps[0]) || e.boosts.boosted != maxBoosted-1 {
		t.Fatalf("the first primary's slot was not given back (boosted %v, count %d)", boosted(eps[0]), e.boosts.boosted)
	}
	// The next replica to start on an unboosted primary takes the slot.
	late := e.boostSync(ctx, eps[maxBoosted])
	if !boosted(eps[maxBoosted]) || e.boosts.boosted != maxBoosted {
		t.Fatalf("a freed slot was not taken by the next sync")
	}
	late()
	for _, done := range dones[1:] {
		done()
	}
	if e.boosts.boosted != 0 {
		t.Fatalf("%d slots held after every sync ended", e.boosts.boosted)
	}
}

// A primary started with its replicas starts at the sync rate when a slot
// is free (its launch says so, no CONFIG SET), holds the slot until its own
// boost and its replicas' are over, and starts at the idle rate when none
// is free.
func TestSyncBoostFromStart(t *testing.T) {
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	e := &Emulator{admin: admin, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	shared := map[string]string{"maxmemory": "1"}
	l := nodeLaunch{spec: engine.NodeSpec{Endpoint: refusedEndpoint(t), Config: shared}}
	done := e.boostFromStart(&l)
	if got := l.spec.Config["hz"]; got != engine.HzValue(engine.SyncHz) {
		t.Fatalf("launch hz %q, want %d", got, engine.SyncHz)
	}
	if _, ok := shared["hz"]; ok {
		t.Fatal("the launch's config map was changed in place")
	}
	replica := e.boostSync(ctx, l.spec.Endpoint)
	replica()
	if e.boosts.boosted != 1 {
		t.Fatalf("%d slots taken while the start's boost runs, want 1", e.boosts.boosted)
	}
	done()
	if e.boosts.boosted != 0 {
		t.Fatalf("%d slots taken after the boosts ended, want 0", e.boosts.boosted)
	}

	var others []func()
	seen := map[engine.Endpoint]bool{l.spec.Endpoint: true}
	fresh := func() engine.Endpoint {
		for {
			if ep := refusedEndpoint(t); !seen[ep] {
				seen[ep] = true
				return ep
			}
		}
	}
	for range maxBoosted {
		others = append(others, e.boostSync(ctx, fresh()))
	}
	late := nodeLaunch{spec: engine.NodeSpec{Endpoint: fresh()}}
	lateDone := e.boostFromStart(&late)
	if got, ok := late.spec.Config["hz"]; ok {
		t.Fatalf("launch hz %q with every slot taken, want the idle default", got)
	}
	lateDone()
	for _, d := range others {
		d()
	}
}
