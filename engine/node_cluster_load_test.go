package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestLoadKeysInto seeds a 3-primary cluster from a standalone node's
// dataset: every key lands on the primary serving its slot with its value
// and TTL, the source keeps its keys, a second load changes nothing, and a
// source with keys outside database 0 is refused. Addresses: 127.0.7.240+.
func TestLoadKeysInto(t *testing.T) {
	h := newHarness(t, "127.0.7.240")
	h.port = seedPort(t, "127.0.7.240")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := h.rt.Admin()

	var members []engine.ClusterMember
	slots := engine.SplitSlots(3)
	for i := range 3 {
		n := seedStart(t, h, ctx, engine.NodeSpec{Name: fmt.Sprintf("load-c%d", i+1), Engine: "redis", Cluster: true})
		peer, err := engine.ClusterAddrOf(ctx, h.rt, n.Name, n.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, engine.ClusterMember{Endpoint: n.Endpoint, Peer: peer, Slots: slots[i]})
	}
	if _, err := admin.FormCluster(ctx, members); err != nil {
		t.Fatal(err)
	}
	src := seedStart(t, h, ctx, engine.NodeSpec{Name: "load-src", Engine: "redis"}).Endpoint

	const n = 20000
	do(t, ctx, src, func(ctx context.Context, c *redis.Client) error {
		p := c.Pipeline()
		for i := range n {
			p.Set(ctx, fmt.Sprintf("key:%d", i), i, 0)
		}
		p.SAdd(ctx, "{tag}:set", "a", "b")
		p.RPush(ctx, "{tag}:list", "x", "y", "z")
		p.Set(ctx, "expiring", "v", time.Hour)
		_, err := p.Exec(ctx)
		return err
	})
	const total = n + 3

	owners := seedSlotPeers(t, ctx, admin, members[0].Endpoint)
	asked := 0
	owner := func(slot int) (engine.Endpoint, error) {
		asked++
		return owners[slot], nil
	}
	start := time.Now()
	copied, err := admin.LoadKeysInto(ctx, src, owner, 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d keys in %v (%.0f keys/s), owner asked for %d slots", copied, time.Since(start), float64(copied)/time.Since(start).Seconds(), asked)
	if copied != total {
		t.Errorf("copied %d keys, want %d", copied, total)
	}
	if asked > engine.ClusterSlots {
		t.Errorf("owner asked %d times: once per slot at most", asked)
	}

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{members[0].Endpoint.Addr()}})
	defer cc.Close()
	checkSeeded(t, ctx, cc, members, n)

	// The source is intact (COPY), and a second load converges (REPLACE).
	if got := seedDBSize(t, ctx, src); got != total {
		t.Errorf("source holds %d keys after the load, want %d", got, total)
	}
	if _, err := admin.LoadKeysInto(ctx, src, owner, 0); err != nil {
		t.Fatal(err)
	}
	checkSeeded(t, ctx, cc, members, n)

	do(t, ctx, src, func(ctx context.Context, c *redis.Client) error {
		p := c.Pipeline()
		p.Select(ctx, 1)
		p.Set(ctx, "elsewhere", "1", 0)
		_, err := p.Exec(ctx)
		return err
	})
	if _, err := admin.LoadKeysInto(ctx, src, owner, 0); err == nil || !strings.Contains(err.Error(), "database 1") {
		t.Errorf("loading a source with keys in database 1: %v, want a refusal naming it", err)
	}
}

// checkLoaded checks that the cluster holds exactly the keys the test
// loaded, each on a primary that serves its slot, with values and TTL.
func checkSeeded(t *testing.T, ctx context.Context, cc *redis.ClusterClient, members []engine.ClusterMember, n int) {
	t.Helper()
	sum := 0
	for _, m := range members {
		sum += seedDBSize(t, ctx, m.Endpoint)
	}
	if sum != n+3 {
		t.Errorf("the primaries hold %d keys, want %d", sum, n+3)
	}
	cmds := make([]*redis.StringCmd, n)
	if _, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.Get(ctx, fmt.Sprintf("key:%d", i))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if v, err := c.Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("key:%d = %q, %v", i, v, err)
		}
	}
	if l, err := cc.LRange(ctx, "{tag}:list", 0, -1).Result(); err != nil || strings.Join(l, "") != "xyz" {
		t.Errorf("{tag}:list = %v, %v", l, err)
	}
	if ttl, err := cc.TTL(ctx, "expiring").Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL of expiring = %v, %v; want up to an hour", ttl, err)
	}
}

// slotPeers maps every slot to the address of the primary serving it, as
// the nodes reach each other, from the view of the node at ep.
func seedSlotPeers(t *testing.T, ctx context.Context, admin engine.Admin, ep engine.Endpoint) []engine.Endpoint {
	t.Helper()
	nodes, err := admin.ClusterNodes(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]engine.Endpoint, engine.ClusterSlots)
	for _, n := range nodes {
		for _, r := range n.Slots {
			for s := r.Start; s <= r.End; s++ {
				out[s] = n.PeerAddr()
			}
		}
	}
	return out
}

func seedDBSize(t *testing.T, ctx context.Context, ep engine.Endpoint) int {
	t.Helper()
	var size int64
	do(t, ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		size, err = c.DBSize(ctx).Result()
		return err
	})
	return int(size)
}

// seedStart starts a node of spec at the next address of h's pool, stopped
// when the test ends.
func seedStart(t *testing.T, h *harness, ctx context.Context, spec engine.NodeSpec) engine.Node {
	t.Helper()
	ep, err := h.pool.Allocate(h.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.pool.Release(ep) })
	spec.Endpoint = ep
	node, err := h.rt.Start(ctx, spec)
	t.Cleanup(func() {
		if err := h.rt.Stop(context.Background(), spec.Name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			t.Errorf("stop %s: %v", spec.Name, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// seedPort returns a port free on host whose cluster bus port
// (port+10000) is a valid port too.
func seedPort(t *testing.T, host string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 <= 65535 {
			return port
		}
	}
	t.Fatal("no port below 55536 found")
	return 0
}
