package enginetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// userDo runs one command on the node at ep as its default user with
// password (a user who set requirepass), and returns the reply.
func userDo(ctx context.Context, ep engine.Endpoint, password string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: ep.Addr(), Password: password, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// testAdminUser: whatever users do to the default user (a password, or
// switching it off), the runtime's admin credentials still reach the node
// and replicas still sync from and stream from their primary.
func (s *suite) testAdminUser(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	admin := s.rt.Admin()
	if admin.User() == "" {
		t.Fatal("Runtime.Admin has no user: the control plane would use the default user")
	}
	primary := s.start(t, s.rt, s.spec(t, "et-admin-primary"))
	mustDo(t, primary.Endpoint, "SET", "before", "password")
	mustDo(t, primary.Endpoint, "CONFIG", "SET", "requirepass", "xyz")
	if _, err := do(ctx, primary.Endpoint, "PING"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password = %v, want NOAUTH", err)
	}
	if err := admin.Ping(ctx, primary.Endpoint); err != nil {
		t.Fatalf("admin PING after requirepass: %v", err)
	}

	rspec := s.spec(t, "et-admin-replica")
	rspec.ReplicaOf = &primary.Endpoint
	replica := s.start(t, s.rt, rspec)
	waitReady(t, replica.Endpoint, admin.ReplicationLinkUp, admin.ReplicatingFrom(s.rt.PeerEndpoint(primary.Endpoint)))
	if _, err := userDo(ctx, primary.Endpoint, "xyz", "SET", "after", "password"); err != nil {
		t.Fatal(err)
	}
	// The default user of the primary goes off entirely; the stream goes on.
	if _, err := userDo(ctx, primary.Endpoint, "xyz", "ACL", "SETUSER", "default", "off"); err != nil && !errors.Is(err, redis.ErrClosed) {
		t.Fatal(err)
	}
	if err := admin.WithClient(ctx, primary.Endpoint, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "after", "default-off", 0).Err()
	}); err != nil {
		t.Fatalf("admin SET after the default user went off: %v", err)
	}
	waitReady(t, replica.Endpoint, admin.ReplicationLinkUp, func(ctx context.Context, ep engine.Endpoint) error {
		var v string
		err := admin.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
			var err error
			v, err = c.Get(ctx, "after").Result()
			return err
		})
		if err == nil && v != "default-off" {
			err = fmt.Errorf("replica has after=%q", v)
		}
		return err
	})
}

// testAlive: the liveness probe says alive for any reply, errors included
// (NOAUTH, BUSY), and dead for silence (a paused node) or a refused
// connection (a killed node).
func (s *suite) testAlive(t *testing.T) {
	t.Parallel()
	fi, ok := s.rt.(engine.FaultInjector)
	if !ok {
		t.Skip("the runtime injects no faults")
	}
	ctx := testContext(t)
	admin := s.rt.Admin()
	n := s.start(t, s.rt, s.spec(t, "et-alive"))
	if err := admin.Alive(ctx, n.Endpoint); err != nil {
		t.Fatalf("Alive on a live node: %v", err)
	}

	// A client whose user is refused still gets a reply.
	mustDo(t, n.Endpoint, "CONFIG", "SET", "requirepass", "xyz")
	err := (engine.Admin{}).Ping(ctx, n.Endpoint)
	if err == nil || !engine.IsReply(err) {
		t.Fatalf("PING as the default user = %v, want a NOAUTH reply", err)
	}
	if err := (engine.Admin{}).Alive(ctx, n.Endpoint); err != nil {
		t.Fatalf("Alive with a NOAUTH reply: %v", err)
	}

	// A node busy with a script answers BUSY past the script time limit.
	if err := admin.WithClient(ctx, n.Endpoint, func(ctx context.Context, c *redis.Client) error {
		return c.ConfigSet(ctx, "lua-time-limit", "50").Err()
	}); err != nil {
		t.Fatal(err)
	}
	script := make(chan error, 1)
	go func() {
		script <- admin.WithClient(ctx, n.Endpoint, func(ctx context.Context, c *redis.Client) error {
			return c.Eval(ctx, `local t0 = redis.call('TIME')
repeat local t = redis.call('TIME') until (t[1] - t0[1]) * 1000000 + t[2] - t0[2] >= 1000000
return 1`, nil).Err()
		})
	}()
	waitReady(t, n.Endpoint, func(ctx context.Context, ep engine.Endpoint) error {
		err := admin.Ping(ctx, ep)
		if err == nil || !strings.HasPrefix(err.Error(), "BUSY") {
			return fmt.Errorf("PING during the script = %v, want BUSY", err)
		}
		if !engine.IsReply(err) {
			return engine.Permanent(fmt.Errorf("IsReply(%v) = false", err))
		}
		return admin.Alive(ctx, ep)
	})
	if err := <-script; err != nil {
		t.Fatalf("script: %v", err)
	}

	// Silence is not a reply.
	if err := fi.Pause(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, silentTimeout)
	err = admin.Alive(pctx, n.Endpoint)
	cancel()
	if err == nil || engine.IsReply(err) {
		t.Fatalf("Alive on a paused node = %v, want a timeout", err)
	}
	if err := fi.Resume(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	if err := admin.Alive(ctx, n.Endpoint); err != nil {
		t.Fatalf("Alive after Resume: %v", err)
	}

	// Nor is a refused connection.
	if err := fi.Kill(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.Alive(kctx, n.Endpoint); err == nil || engine.IsReply(err) {
		t.Fatalf("Alive on a killed node = %v, want a connection error", err)
	}
}
