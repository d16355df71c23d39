package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

func TestSetGetThroughProxy(t *testing.T) {
	srv := startRedis(t)
	p := listenProxy(t, "primary", srv.ep)
	ctx := context.Background()

	c := newClient(p.Addr().Addr())
	t.Cleanup(func() { c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET through proxy = %q, %v; want v", got, err)
	}
	// The write reached the real server, not some buffer in between.
	direct := newClient(srv.ep.Addr())
	t.Cleanup(func() { direct.Close() })
	if got, err := direct.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET direct = %q, %v; want v", got, err)
	}
	if id := runID(t, c); id != srv.runID {
		t.Fatalf("proxy reached run_id %s, want %s", id, srv.runID)
	}
	// A large value crosses several splice rounds in both directions.
	big := string(make([]byte, 4<<20))
	if err := c.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET big: len %d, %v; want len %d", len(got), err, len(big))
	}
	s := p.Stats()
	if s.Accepted == 0 || s.Forwarded != s.Accepted || s.Active[srv.ep] == 0 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestFlipClosesOldConnections is a primary failover: the endpoint moves from
// a to b, the open connection to a is closed, and new connections reach b.
func TestFlipClosesOldConnections(t *testing.T) {
	a, b := startRedis(t), startRedis(t)
	p := listenProxy(t, "primary", a.ep)
	ctx := context.Background()

	onlyB := newClient(b.ep.Addr())
	t.Cleanup(func() { onlyB.Close() })
	if err := onlyB.Set(ctx, "only-on-b", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}

	c := newClient(p.Addr().Addr())
	t.Cleanup(func() { c.Close() })
	conn := c.Conn()
	t.Cleanup(func() { conn.Close() })
	if id := runID(t, conn); id != a.runID {
		t.Fatalf("before flip: run_id %s, want a's %s", id, a.runID)
	}

	p.SetBackends([]engine.Endpoint{b.ep})
	if got := p.Backends(); !slices.Equal(got, []engine.Endpoint{b.ep}) {
		t.Fatalf("Backends() = %v", got)
	}
	if s := p.Stats(); s.ClosedByFlip != 1 || s.Active[a.ep] != 0 {
		t.Fatalf("after flip: stats = %+v; want 1 closed by flip, none active on a", s)
	}
	// The old connection is gone: the next command on it fails (the client
	// retries nothing, see newClient).
	if err := conn.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a connection to the old primary succeeded after the flip")
	}
	// New connections reach b.
	c2 := newClient(p.Addr().Addr())
	t.Cleanup(func() { c2.Close() })
	if id := runID(t, c2); id != b.runID {
		t.Fatalf("after flip: run_id %s, want b's %s", id, b.runID)
	}
	if got, err := c2.Get(ctx, "only-on-b").Result(); err != nil || got != "yes" {
		t.Fatalf("GET only-on-b = %q, %v", got, err)
	}
}

// TestFlipKeepsRemainingConnections is a reader endpoint losing one replica:
// only the connection to the removed replica is closed, and repeating the
// same set closes nothing.
func TestFlipKeepsRemainingConnections(t *testing.T) {
	a, b := startRedis(t), startRedis(t)
	p := listenProxy(t, "reader", a.ep, b.ep)
	ctx := context.Background()
	c := newClient(p.Addr().Addr())
	t.Cleanup(func() { c.Close() })

	conns := map[string]*redis.Conn{}
	for len(conns) < 2 {
		conn := c.Conn()
		t.Cleanup(func() { conn.Close() })
		id := runID(t, conn)
		if conns[id] != nil {
			t.Fatalf("round-robin sent two consecutive connections to %s", id)
		}
		conns[id] = conn
	}

	p.SetBackends([]engine.Endpoint{b.ep})
	if err := conns[a.runID].Ping(ctx).Err(); err == nil {
		t.Fatal("connection to the removed replica is still open")
	}
	if err := conns[b.runID].Ping(ctx).Err(); err != nil {
		t.Fatalf("connection to the remaining replica broke: %v", err)
	}

	// Idempotent: the same set again, and the same set reordered with a
	// duplicate, change nothing.
	p.SetBackends([]engine.Endpoint{b.ep})
	p.SetBackends([]engine.Endpoint{b.ep, b.ep})
	if err := conns[b.runID].Ping(ctx).Err(); err != nil {
		t.Fatalf("unchanged SetBackends broke a connection: %v", err)
	}
	if s := p.Stats(); s.ClosedByFlip != 1 || s.Active[b.ep] != 1 || len(s.Active) != 1 {
		t.Fatalf("stats = %+v; want 1 closed by flip and one connection on b", s)
	}
}

func TestReaderSpread(t *testing.T) {
	a, b := startRedis(t), startRedis(t)
	p := listenProxy(t, "reader", a.ep, b.ep)
	c := newClient(p.Addr().Addr())
	t.Cleanup(func() { c.Close() })

	landed := map[string]int{}
	for range 10 {
		conn := c.Conn() // a new connection each time: the others stay checked out
		t.Cleanup(func() { conn.Close() })
		landed[runID(t, conn)]++
	}
	if landed[a.runID] != 5 || landed[b.runID] != 5 {
		t.Fatalf("10 connections landed %v; want 5 on each of a=%s b=%s", landed, a.runID, b.runID)
	}
	if s := p.Stats(); s.Active[a.ep] != 5 || s.Active[b.ep] != 5 {
		t.Fatalf("Stats().Active = %v", s.Active)
	}
}

func TestDeadBackendSkipped(t *testing.T) {
	srv := startRedis(t)
	dead := engine.Endpoint{Host: "127.0.0.1", Port: freePort(t)}
	p := listenProxy(t, "reader", dead, srv.ep)
	c := newClient(p.Addr().Addr())
	t.Cleanup(func() { c.Close() })

	for i := range 6 {
		conn := c.Conn()
		t.Cleanup(func() { conn.Close() })
		id, err := tryRunID(conn)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if id != srv.runID {
			t.Fatalf("connection %d reached %s, want the live backend %s", i, id, srv.runID)
		}
	}
	s := p.Stats()
	if s.DialFailures == 0 || s.Rejected != 0 || s.Active[srv.ep] != 6 {
		t.Fatalf("stats = %+v; want dial failures, no rejection, 6 active on the live backend", s)
	}
}

// expectClosedAtOnce dials the proxy and expects the connection to be closed
// by the proxy, well before a read deadline.
func expectClosedAtOnce(t *testing.T, p *Proxy) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr().Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read = %v; want the proxy to close the connection", err)
	}
	t.Logf("closed after %s (%v)", time.Since(start), err)
}

func TestNoBackendClosesAtOnce(t *testing.T) {
	p := listenProxy(t, "primary")
	expectClosedAtOnce(t, p)
	if s := p.Stats(); s.Rejected != 1 || s.Forwarded != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestAllBackendsDeadClosesAtOnce(t *testing.T) {
	dead1 := engine.Endpoint{Host: "127.0.0.1", Port: freePort(t)}
	dead2 := engine.Endpoint{Host: "127.0.0.1", Port: freePort(t)}
	p := listenProxy(t, "reader", dead1, dead2)
	expectClosedAtOnce(t, p)
	if s := p.Stats(); s.Rejected != 1 || s.DialFailures != 2 {
		t.Fatalf("stats = %+v; want 1 rejected after 2 dial failures", s)
	}
}

// TestHalfClose checks that a client's FIN reaches the backend while the
// reply still flows back, and that the backend's FIN reaches the client.
func TestHalfClose(t *testing.T) {
	// The backend replies only after reading everything up to EOF.
	be := startTCPBackend(t, func(c net.Conn) {
		data, err := io.ReadAll(c)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "got %d bytes", len(data)); err != nil {
			return
		}
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c) // until the proxy closes
	})
	p := listenProxy(t, "primary", be.ep)

	c, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.ParseIP(p.Addr().Host), Port: p.Addr().Port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c) // ends only if the backend's FIN came through
	if err != nil {
		t.Fatal(err)
	}
	if string(reply) != "got 100000 bytes" {
		t.Fatalf("reply = %q", reply)
	}
	waitFor(t, 5*time.Second, "link unregistered after both FINs", func() bool {
		return len(p.Stats().Active) == 0
	})
}

func TestCloseCleansUp(t *testing.T) {
	be := startTCPBackend(t, echo)
	before := runtime.NumGoroutine()

	p, err := Listen("127.0.0.1:0", Options{Name: "primary"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetBackends([]engine.Endpoint{be.ep})
	var conns []net.Conn
	for i := range 5 {
		c, err := net.Dial("tcp", p.Addr().Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := roundTrip(c, fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := p.Stats().Active[be.ep]; n != 5 {
		t.Fatalf("active = %d, want 5", n)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for i, c := range conns {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
			t.Fatalf("conn %d after Close: read = %v; want closed", i, err)
		}
	}
	// The proxy's goroutines are gone (Close waited for them); the echo
	// backend's per-connection goroutines end once they see the close.
	if n := settledGoroutines(before, 5*time.Second); n > before {
		t.Fatalf("goroutines: %d after Close, %d before Listen", n, before)
	}
	// The port is free again, so a restarted endpoint can take it.
	p2, err := Listen(p.Addr().Addr(), Options{Name: "primary"})
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.Addr().Addr(), err)
	}
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	// SetBackends after Close is ignored.
	p.SetBackends([]engine.Endpoint{be.ep})
	if got := p.Backends(); !slices.Equal(got, []engine.Endpoint{be.ep}) {
		t.Fatalf("Backends() after Close = %v", got)
	}
}

// TestConcurrentFlips hammers the proxy with connections while the backend
// set changes; run with -race. Clients may see closed connections (that is
// the point of a flip) but the proxy must stay consistent and clean up.
func TestConcurrentFlips(t *testing.T) {
	bes := []*tcpBackend{startTCPBackend(t, echo), startTCPBackend(t, echo), startTCPBackend(t, echo)}
	eps := []engine.Endpoint{bes[0].ep, bes[1].ep, bes[2].ep}
	before := runtime.NumGoroutine()

	p, err := Listen("127.0.0.1:0", Options{Name: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetBackends(eps)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Registered first so a failing test still stops its clients.
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients)
	var roundTrips atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", p.Addr().Addr())
				if err != nil {
					continue
				}
				// Several round trips per connection, so flips cut
				// established connections, not only fresh ones.
				for j := range 20 {
					if roundTrip(c, fmt.Sprintf("w%d-%d-%d", w, i, j)) != nil {
						break
					}
					roundTrips.Add(1)
				}
				_ = c.Close()
			}
		}()
	}
	// Flip until both the flips and the traffic have had their share.
	sets := [][]engine.Endpoint{eps, eps[:1], eps[1:], {eps[2], eps[0]}, nil, eps[1:2]}
	deadline := time.Now().Add(20 * time.Second)
	flips := 0
	for ; flips < 300 || roundTrips.Load() < 2000 || p.Stats().ClosedByFlip < 20; flips++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d flips: %d round trips, stats %+v", flips, roundTrips.Load(), p.Stats())
		}
		p.SetBackends(sets[flips%len(sets)])
		if flips%len(sets) == 0 {
			// sets[0] is the full set: let traffic through for a while.
			for start := roundTrips.Load(); roundTrips.Load() < start+10 && time.Now().Before(deadline); {
				runtime.Gosched()
			}
		}
	}
	p.SetBackends(eps[2:])
	for ep := range p.Stats().Active {
		if ep != eps[2] {
			t.Fatalf("after SetBackends(%v): active connection to %v", eps[2:], ep)
		}
	}
	stopClients()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	t.Logf("%d flips, %d round trips, stats: %+v", flips, roundTrips.Load(), s)
	if s.Accepted != s.Forwarded+s.Rejected {
		t.Fatalf("accepted %d != forwarded %d + rejected %d", s.Accepted, s.Forwarded, s.Rejected)
	}
	if n := settledGoroutines(before, 5*time.Second); n > before {
		t.Fatalf("goroutines: %d after Close, %d before Listen", n, before)
	}
}
