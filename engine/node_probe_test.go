package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestProbeAndWatch: a probe PINGs as the admin user; the watch connection
// reports the node's exit without any command being sent.
func TestProbeAndWatch(t *testing.T) {
	h := newHarness(t, "127.0.7.180")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "probed", nil).Endpoint
	p := admin.NewProbe(ep, time.Second)
	defer p.Close()
	for range 3 {
		if err := p.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The probe authenticates as the admin user: locking the default user
	// does not stop it.
	do(t, ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "ACL", "SETUSER", "default", "off").Err()
	})
	if err := p.Ping(ctx); err != nil {
		t.Errorf("probe PING after the default user was disabled: %v", err)
	}

	closed := make(chan struct{})
	w, err := engine.Watch(ep, time.Second, func() { close(closed) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	select {
	case <-closed:
		t.Fatal("the watch reported a close while the node runs")
	default:
	}
	if err := admin.Shutdown(ctx, ep); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the watch did not report the node's exit")
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	defer pcancel()
	if err := p.Ping(pctx); err == nil || engine.IsReply(err) {
		t.Errorf("probe PING of an exited node: %v, want a connection error", err)
	}

	if _, err := engine.Watch(ep, time.Second, func() {}); err == nil {
		t.Error("Watch of an exited node succeeded")
	}
}
