package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// Real-server tests of the node operations, using the process runtime.
// Addresses come from 127.0.7.x, a range no other test binary uses.

type harness struct {
	t    *testing.T
	rt   *process.Runtime
	pool *engine.AddressPool
	port int
}

func newHarness(t *testing.T, base string) *harness {
	t.Helper()
	rt, err := process.New(process.Options{DataDir: t.TempDir(), EmulatorID: "engine-test"})
	if errors.Is(err, process.ErrServerNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAll(t, rt) })
	pool, err := engine.NewAddressPool(base)
	if err != nil {
		t.Fatal(err)
	}
	// One port for every node: they differ by address, like ElastiCache.
	port := 0
	if !pool.SingleAddress() {
		l, err := net.Listen("tcp", net.JoinHostPort(base, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return &harness{t: t, rt: rt, pool: pool, port: port}
}

// stopAll stops every node the runtime lists (a safety net: no test leaves
// processes behind).
func stopAll(t *testing.T, rt *process.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	nodes, err := rt.List(ctx)
	if err != nil {
		t.Error(err)
	}
	for _, n := range nodes {
		if err := rt.Stop(ctx, n.Name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			t.Errorf("stop %s: %v", n.Name, err)
		}
	}
}

func (h *harness) start(ctx context.Context, name string, replicaOf *engine.Endpoint) engine.Node {
	h.t.Helper()
	ep, err := h.pool.Allocate(h.port)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.pool.Release(ep) })
	node, err := h.rt.Start(ctx, engine.NodeSpec{Name: name, Endpoint: ep, ReplicaOf: replicaOf, Engine: "redis"})
	h.t.Cleanup(func() {
		if err := h.rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			h.t.Errorf("stop %s: %v", name, err)
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return node
}

// do runs fn with a client of the node at ep as its users connect (the
// default user).
func do(t *testing.T, ctx context.Context, ep engine.Endpoint, fn func(context.Context, *redis.Client) error) {
	t.Helper()
	if err := (engine.Admin{}).WithClient(ctx, ep, fn); err != nil {
		t.Fatal(err)
	}
}

func TestReplication(t *testing.T) {
	h := newHarness(t, "127.0.7.2")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	primary := h.start(ctx, "primary", nil)
	pep := primary.Endpoint
	if err := h.rt.Admin().Ping(ctx, pep); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, pep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "before", "sync", 0).Err()
	})

	start := time.Now()
	replica := h.start(ctx, "replica", &pep)
	rep := replica.Endpoint
	if rep.Host == pep.Host || (h.port != 0 && rep.Port != pep.Port) {
		t.Errorf("primary %s and replica %s: want distinct hosts on one port", pep.Addr(), rep.Addr())
	}
	if err := engine.WaitReady(ctx, rep, h.rt.Admin().Pings, h.rt.Admin().ReplicationLinkUp, h.rt.Admin().ReplicatingFrom(pep)); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica start + full sync: %s", time.Since(start))

	var got string
	do(t, ctx, rep, func(ctx context.Context, c *redis.Client) error {
		var err error
		got, err = c.Get(ctx, "before").Result()
		return err
	})
	if got != "sync" {
		t.Errorf("replica GET before = %q, want sync", got)
	}

	// Writes after the sync stream to the replica: poll until the offsets meet.
	do(t, ctx, pep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "after", "stream", 0).Err()
	})
	streamed := func(ctx context.Context, ep engine.Endpoint) error {
		pi, err := h.rt.Admin().InspectReplication(ctx, pep)
		if err != nil {
			return err
		}
		ri, err := h.rt.Admin().InspectReplication(ctx, ep)
		if err != nil {
			return err
		}
		if ri.ReplicaOffset < pi.MasterOffset {
			return fmt.Errorf("replica offset %d behind %d", ri.ReplicaOffset, pi.MasterOffset)
		}
		return nil
	}
	if err := engine.WaitReady(ctx, rep, streamed); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, rep, func(ctx context.Context, c *redis.Client) error {
		var err error
		got, err = c.Get(ctx, "after").Result()
		return err
	})
	if got != "stream" {
		t.Errorf("replica GET after = %q, want stream", got)
	}

	pi, err := h.rt.Admin().InspectReplication(ctx, pep)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := h.rt.Admin().InspectReplication(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	if !pi.IsPrimary() || pi.ConnectedReplicas != 1 || len(pi.Replicas) != 1 || pi.Replicas[0].Endpoint.Host != rep.Host || pi.MasterOffset <= 0 {
		t.Errorf("primary replication info: %+v", pi)
	}
	if !ri.IsReplica() || ri.Master() != pep || !ri.LinkUp || ri.ReplicaOffset != pi.MasterOffset || ri.MasterReplID != pi.MasterReplID {
		t.Errorf("replica replication info: %+v (primary %+v)", ri, pi)
	}

	// A replica rejects writes until promoted.
	err = h.rt.Admin().WithClient(ctx, rep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "k", "v", 0).Err()
	})
	if err == nil {
		t.Error("write to a replica succeeded")
	}
	if err := h.rt.Admin().ReplicaOf(ctx, rep, nil); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, rep, h.rt.Admin().PrimaryRole); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, rep, func(ctx context.Context, c *redis.Client) error {
		return c.Set(ctx, "k", "v", 0).Err()
	})
	// …and can be made a replica again.
	if err := h.rt.Admin().ReplicaOf(ctx, rep, &pep); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, rep, h.rt.Admin().ReplicatingFrom(pep)); err != nil {
		t.Fatal(err)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, "127.0.7.20")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := h.start(ctx, "victim", nil)
	if err := h.rt.Admin().Shutdown(ctx, n.Endpoint); err != nil {
		t.Fatal(err)
	}
	gone := func(ctx context.Context, ep engine.Endpoint) error {
		if engine.PortOpen(ctx, ep) == nil {
			return errors.New("still listening")
		}
		return nil
	}
	if err := engine.WaitReady(ctx, n.Endpoint, gone); err != nil {
		t.Fatal(err)
	}
	// The runtime notices the exit.
	if err := engine.WaitReady(ctx, n.Endpoint, func(ctx context.Context, _ engine.Endpoint) error {
		got, err := h.rt.Inspect(ctx, "victim")
		if err != nil {
			return err
		}
		if got.Running {
			return errors.New("still running")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPing measures one node operation end to end: dial, a fresh
// go-redis client, HELLO (with AUTH as the admin user), PING, close.
func BenchmarkPing(b *testing.B) {
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "engine-bench"})
	if errors.Is(err, process.ErrServerNotFound) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	pool, err := engine.NewAddressPool("127.0.7.60")
	if err != nil {
		b.Fatal(err)
	}
	ep, err := pool.Allocate(0)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	_, err = rt.Start(ctx, engine.NodeSpec{Name: "ping", Endpoint: ep})
	b.Cleanup(func() { rt.Stop(context.Background(), "ping") })
	if err != nil {
		b.Fatal(err)
	}
	// The admin user's authentication against the default user's plain
	// connection, measured in the same run.
	for _, c := range []struct {
		name  string
		admin engine.Admin
	}{{"default-user", engine.Admin{}}, {"admin-user", rt.Admin()}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.admin.Ping(ctx, ep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
