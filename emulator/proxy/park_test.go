package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestParkedConnectionFollowsUnlisten: with ParkFor, a connection accepted
// while no backend is set waits (it sends its request meanwhile) and is
// served once SetBackends names one, even after the proxy stopped
// listening (Unlisten), which frees the address at once.
func TestParkedConnectionFollowsUnlisten(t *testing.T) {
	be := startTCPBackend(t, echo)
	p, err := Listen("127.0.0.1:0", Options{Name: "vacant", ParkFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c, err := net.Dial("tcp", p.Addr().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the connection to be accepted", func() bool { return p.Stats().Accepted == 1 })

	if err := p.Unlisten(); err != nil {
		t.Fatal(err)
	}
	// The address is free for another listener (the node that takes the
	// endpoint over) while the parked connection still waits.
	ln, err := net.Listen("tcp", p.Addr().Addr())
	if err != nil {
		t.Fatalf("address still held after Unlisten: %v", err)
	}
	_ = ln.Close()

	p.SetBackends([]engine.Endpoint{be.ep})
	buf := make([]byte, 4)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("parked connection read %q, %v; want the echo of its request", buf, err)
	}
	if s := p.Stats(); s.Forwarded != 1 || s.Rejected != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestParkedConnectionClosedAfterParkFor: a parked connection that gets no
// backend within ParkFor is closed, like one without parking at once.
func TestParkedConnectionClosedAfterParkFor(t *testing.T) {
	p, err := Listen("127.0.0.1:0", Options{Name: "vacant", ParkFor: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c, err := net.Dial("tcp", p.Addr().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded; want the parked connection closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("parked connection still open past ParkFor")
	}
	waitFor(t, 5*time.Second, "the rejection to be counted", func() bool { return p.Stats().Rejected == 1 })
}
