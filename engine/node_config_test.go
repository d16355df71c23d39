package engine_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

func TestConfigSetAndGet(t *testing.T) {
	h := newHarness(t, "127.0.7.150")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "config", nil).Endpoint
	if err := admin.ConfigSet(ctx, ep, map[string]string{"maxmemory-policy": "allkeys-lru", "timeout": "42"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetHz(ctx, ep, engine.SyncHz); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"maxmemory-policy": "allkeys-lru", "timeout": "42", "hz": engine.HzValue(engine.SyncHz)} {
		got, err := admin.ConfigGet(ctx, ep, name)
		if err != nil || got != want {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", name, got, err, want)
		}
	}
	// All or nothing: one bad value sets neither.
	if err := admin.ConfigSet(ctx, ep, map[string]string{"timeout": "7", "maxmemory-policy": "bogus"}); err == nil {
		t.Error("CONFIG SET with a bad value succeeded")
	}
	if got, _ := admin.ConfigGet(ctx, ep, "timeout"); got != "42" {
		t.Errorf("timeout = %q after a failed CONFIG SET, want 42", got)
	}
	if _, err := admin.ConfigGet(ctx, ep, "no-such-parameter"); err == nil {
		t.Error("CONFIG GET of an unknown parameter succeeded")
	}
}

// boundNode starts a node and allocates a second address on its port, for
// tests that move an extra address onto the node and off it.
func boundNode(t *testing.T, h *harness, ctx context.Context, name string) (ep, extra engine.Endpoint) {
	t.Helper()
	if h.pool.SingleAddress() {
		t.Skip("needs an address per node")
	}
	ep = h.start(ctx, name, nil).Endpoint
	extra, err := h.pool.Allocate(h.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.pool.Release(extra) })
	return ep, extra
}

// TestBindAndKillClients moves an extra address onto a node and off it, as
// a primary endpoint does: connections through the extra address are
// killed, direct ones are not.
func TestBindAndKillClients(t *testing.T) {
	h := newHarness(t, "127.0.7.160")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep, extra := boundNode(t, h, ctx, "bound")
	if err := admin.Bind(ctx, ep, ep.Host, extra.Host); err != nil {
		t.Fatal(err)
	}
	through := redis.NewClient(&redis.Options{Addr: extra.Addr(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer through.Close()
	direct := redis.NewClient(&redis.Options{Addr: ep.Addr(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer direct.Close()
	for _, c := range []*redis.Client{through, direct} {
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}

	if err := admin.Bind(ctx, ep, ep.Host); err != nil {
		t.Fatal(err)
	}
	if err := admin.KillClientsByLocalAddr(ctx, ep, extra); err != nil {
		t.Fatal(err)
	}
	if err := through.Ping(ctx).Err(); err == nil {
		t.Error("a connection through the released address survived CLIENT KILL LADDR")
	}
	if err := direct.Ping(ctx).Err(); err != nil {
		t.Errorf("a direct connection was killed: %v", err)
	}
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	if c, err := d.DialContext(ctx, "tcp", extra.Addr()); err == nil {
		c.Close()
		t.Error("the node still listens on the released address")
	}
	// Killing when no connection came through the address is not an error.
	if err := admin.KillClientsByLocalAddr(ctx, ep, extra); err != nil {
		t.Error(err)
	}
	if err := admin.Bind(ctx, ep, "203.0.113.1"); err == nil {
		t.Error("binding an address the machine does not have succeeded")
	}
}

// TestRebind: Rebind sets the list change returns, calling before and after
// around the CONFIG SET only: the moment the address is free is the one
// between them (a listener the caller holds on it gives it up in before,
// and another takes it in after); an unchanged list sends no CONFIG SET.
func TestRebind(t *testing.T) {
	h := newHarness(t, "127.0.7.170")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep, extra := boundNode(t, h, ctx, "rebind")
	squatter, err := net.Listen("tcp", extra.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	add := func(cur []string) []string { return append(slices.Clone(cur), extra.Host) }
	next, err := admin.Rebind(ctx, ep, add,
		func() { calls = append(calls, "before"); squatter.Close() },
		func() { calls = append(calls, "after") })
	if err != nil || !slices.Equal(next, []string{ep.Host, extra.Host}) || !slices.Equal(calls, []string{"before", "after"}) {
		t.Fatalf("Rebind = %v, %v; calls %v", next, err, calls)
	}
	c := redis.NewClient(&redis.Options{Addr: extra.Addr(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the node does not answer on the added address: %v", err)
	}
	calls = nil
	same := func(cur []string) []string { return cur }
	if next, err := admin.Rebind(ctx, ep, same, func() { calls = append(calls, "before") }, nil); err != nil || len(next) != 2 || calls != nil {
		t.Fatalf("unchanged Rebind = %v, %v; calls %v (want no CONFIG SET)", next, err, calls)
	}
	// A failed CONFIG SET (an address the machine does not have) leaves
	// the list, and after is not called.
	bad := func(cur []string) []string { return append(slices.Clone(cur), "203.0.113.1") }
	if next, err := admin.Rebind(ctx, ep, bad, nil, func() { calls = append(calls, "after") }); err == nil || len(next) != 2 || calls != nil {
		t.Fatalf("bad Rebind = %v, %v; calls %v", next, err, calls)
	}
}

// TestAdminAcrossRebinds: the admin's commands to a node succeed while its
// listeners are rebound again and again (as the endpoints do when they move
// an address between nodes): a connection the node resets before it
// answered the connection's greeting is dialled again.
func TestAdminAcrossRebinds(t *testing.T) {
	h := newHarness(t, "127.0.7.230")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep, extra := boundNode(t, h, ctx, "rebinds")
	stop := make(chan struct{})
	rebinds := make(chan int)
	go func() {
		n := 0
		defer func() { rebinds <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			binds := []string{ep.Host}
			if n%2 == 0 {
				binds = append(binds, extra.Host)
			}
			if err := admin.Bind(ctx, ep, binds...); err != nil {
				t.Errorf("rebind %d: %v", n, err)
				return
			}
			n++
			// Rebinds a moment apart, not back to back: a retry lands
			// after the one that reset or refused its dial.
			time.Sleep(time.Millisecond)
		}
	}()
	var failed []error
	calls := 0
	for ; calls < 2000 && ctx.Err() == nil; calls++ {
		if err := admin.Ping(ctx, ep); err != nil {
			failed = append(failed, err)
		}
	}
	close(stop)
	n := <-rebinds
	t.Logf("%d PINGs, each on a new connection, across %d rebinds", calls, n)
	if n < 50 {
		t.Errorf("only %d rebinds ran during the PINGs", n)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d PINGs failed, the first: %v", len(failed), calls, failed[:min(5, len(failed))])
	}
}

// TestRebindLeavesNodeListening: a CONFIG SET bind whose new list holds a
// taken address fails, and Redis binds its old list again; when an address
// of the old list was taken in that moment too, Redis would listen nowhere.
// Rebind then binds what both lists share: the node keeps answering on its
// own address after every failed rebind.
func TestRebindLeavesNodeListening(t *testing.T) {
	h := newHarness(t, "127.0.7.250")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep, leaving := boundNode(t, h, ctx, "restore")
	taken, err := h.pool.Allocate(h.port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.pool.Release(taken) })
	busy, err := net.Listen("tcp", taken.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	stolen := 0
	for round := range 20 {
		if err := admin.Bind(ctx, ep, ep.Host, leaving.Host); err != nil {
			t.Fatal(err)
		}
		// A listener takes the leaving address the moment the node lets
		// it go, as a parking forwarder does.
		stop := make(chan struct{})
		grabbed := grabWhenFree(leaving.Addr(), 0, stop)
		_, err := admin.Rebind(ctx, ep, func([]string) []string { return []string{ep.Host, taken.Host} }, nil, nil)
		close(stop)
		if <-grabbed {
			stolen++
		}
		if err == nil {
			t.Fatal("a bind list with a taken address was accepted")
		}
		if err := admin.Ping(ctx, ep); err != nil {
			t.Fatalf("round %d: the node does not answer on its own address after a failed rebind: %v", round, err)
		}
	}
	t.Logf("the leaving address was taken in %d of 20 failed rebinds", stolen)
}

// TestRebindWaitsOutOwnAddressTaken: a CONFIG SET bind closes every
// listener of the node, its own address's included, and a fork child of
// the node (a BGSAVE for a replica's sync) may hold a copy of that
// listening socket for a moment, so binding the own address again fails,
// and Redis, restoring the old list, listens nowhere. Here a listener of
// the test takes the own address the moment the node lets it go and holds
// it for a while, as such a child does: Rebind binds again until the node
// has the address back, and the list asked for is applied.
func TestRebindWaitsOutOwnAddressTaken(t *testing.T) {
	h := newHarness(t, "127.0.7.245")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := h.rt.Admin()
	ep, extra := boundNode(t, h, ctx, "own")
	const held = 100 * time.Millisecond
	stolen := 0
	for round := 0; round < 300 && stolen < 3; round++ {
		taken, got, err := rebindOwnTaken(t, ctx, admin, ep, extra, held) // the child's copy, closed a moment later
		if taken {
			stolen++
		}
		if err != nil {
			t.Fatalf("round %d: rebind failed: %v (the node has %v)", round, err, got)
		}
		for _, a := range []engine.Endpoint{ep, extra} {
			if err := admin.Ping(ctx, a); err != nil {
				t.Fatalf("round %d: the node does not answer on %s after the rebind: %v", round, a.Addr(), err)
			}
		}
	}
	if stolen == 0 {
		t.Fatal("the test's listener never took the node's own address during a rebind: nothing was tested")
	}
	t.Logf("the own address was taken during %d rebinds", stolen)
}

// rebindOwnTaken binds the node at ep to its own address alone, then
// rebinds it to its own and extra's while a listener of the test takes its
// own address the moment the node lets it go and holds it for held (as a
// fork child's copy of the socket does). It returns whether the address
// was taken, once the listener let it go, and what Rebind returned.
func rebindOwnTaken(t *testing.T, ctx context.Context, admin engine.Admin, ep, extra engine.Endpoint, held time.Duration) (bool, []string, error) {
	t.Helper()
	if err := admin.Bind(ctx, ep, ep.Host); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	grabbed := grabWhenFree(ep.Addr(), held, stop)
	got, err := admin.Rebind(ctx, ep, func([]string) []string { return []string{ep.Host, extra.Host} }, nil, nil)
	close(stop)
	return <-grabbed, got, err
}

// grabWhenFree tries to listen on addr in a tight loop until it succeeds or
// stop is closed, as something that takes an address the moment a node
// lets it go; a listener it got is closed after hold, or once stop is
// closed when hold is 0. The channel tells whether it got one, once that
// listener is closed.
func grabWhenFree(addr string, hold time.Duration, stop <-chan struct{}) <-chan bool {
	grabbed := make(chan bool, 1)
	go func() {
		for {
			select {
			case <-stop:
				grabbed <- false
				return
			default:
			}
			if l, err := net.Listen("tcp", addr); err == nil {
				if hold > 0 {
					time.Sleep(hold)
				} else {
					<-stop
				}
				l.Close()
				grabbed <- true
				return
			}
		}
	}()
	return grabbed
}
