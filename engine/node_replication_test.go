package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestPauseAndCatchUp runs the engine side of a planned failover: writes on
// the primary block while paused, the replica has every acknowledged write
// when PauseAndCatchUp returns, and UnpauseWrites lets writes through again.
func TestPauseAndCatchUp(t *testing.T) {
	h := newHarness(t, "127.0.7.100")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	pep := h.start(ctx, "primary", nil).Endpoint
	rep := h.start(ctx, "replica", &pep).Endpoint
	if err := engine.WaitReady(ctx, rep, admin.ReplicatingFrom(pep)); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, pep, func(ctx context.Context, c *redis.Client) error {
		for i := range 200 {
			if err := c.Set(ctx, "k"+string(rune('a'+i%26)), i, 0).Err(); err != nil {
				return err
			}
		}
		return nil
	})

	if err := admin.PauseAndCatchUp(ctx, pep, rep); err != nil {
		t.Fatal(err)
	}
	pi, err := admin.InspectReplication(ctx, pep)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := admin.InspectReplication(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if ri.ReplicaOffset < pi.MasterOffset {
		t.Errorf("after PauseAndCatchUp the replica is at %d, the primary at %d", ri.ReplicaOffset, pi.MasterOffset)
	}
	// A write now blocks until the pause ends: it times out.
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = (engine.Admin{}).WithClient(wctx, pep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "paused", "1", 0).Err()
	})
	wcancel()
	if err == nil {
		t.Fatal("a write on the paused primary succeeded")
	}
	if err := admin.UnpauseWrites(ctx, pep); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, pep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "unpaused", "1", 0).Err()
	})
}

// TestUnpauseWritesAfterCancel: writes resume even when the context of the
// operation that paused them is already cancelled.
func TestUnpauseWritesAfterCancel(t *testing.T) {
	h := newHarness(t, "127.0.7.120")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "paused", nil).Endpoint
	if err := admin.PauseWrites(ctx, ep, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if err := admin.UnpauseWrites(done, ep); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	do(t, wctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "k", "v", 0).Err()
	})
}

// TestCatchUpNeedsAReplica: CatchUp fails, within its context, when the
// "replica" follows no primary, and when the primary does not answer.
func TestCatchUpNeedsAReplica(t *testing.T) {
	h := newHarness(t, "127.0.7.130")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	a := h.start(ctx, "a", nil).Endpoint
	b := h.start(ctx, "b", nil).Endpoint
	cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer ccancel()
	err := admin.CatchUp(cctx, a, b)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CatchUp to a primary: got %v, want a deadline error", err)
	}
	unreachable := engine.Endpoint{Host: "127.0.7.139", Port: 1}
	if err := admin.CatchUp(ctx, unreachable, b); err == nil {
		t.Error("CatchUp from an unreachable primary succeeded")
	}
}
