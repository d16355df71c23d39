package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// listenDemux starts a demultiplexer in front of two backends.
func listenDemux(tb testing.TB, plain, tls engine.Endpoint) *Proxy {
	tb.Helper()
	p, err := ListenDemux("127.0.0.1:0", plain, tls, Options{Name: "demux"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// TestDemuxRoutesByFirstByte: a connection opening with a TLS record byte
// reaches the TLS backend with that byte intact, any other the plaintext
// one; a client that never speaks holds no backend and Close ends it.
func TestDemuxRoutesByFirstByte(t *testing.T) {
	plain, tls := startTCPBackend(t, echo), startTCPBackend(t, echo)
	p := listenDemux(t, plain.ep, tls.ep)
	for _, c := range []struct {
		msg  string
		want engine.Endpoint
	}{{"*1\r\n$4\r\nPING\r\n", plain.ep}, {"\x16\x03\x01hello", tls.ep}, {"PING\r\n", plain.ep}} {
		conn, err := net.Dial("tcp", p.Addr().Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := roundTrip(conn, c.msg); err != nil {
			t.Fatalf("%q: %v", c.msg, err)
		}
		if got := p.Stats().Active[c.want]; got != 1 {
			t.Fatalf("%q: %d connections to %s, want 1 (stats %v)", c.msg, got, c.want.Addr(), p.Stats().Active)
		}
		conn.Close()
		waitFor(t, 5*time.Second, "the connection to end", func() bool { return len(p.Stats().Active) == 0 })
	}
	silent, err := net.Dial("tcp", p.Addr().Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, 5*time.Second, "the silent client to be accepted", func() bool { return p.Stats().Accepted == 4 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the silent client read %d bytes after Close, want the connection closed", n)
	}
}
