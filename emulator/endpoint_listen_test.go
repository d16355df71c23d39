package emulator

import (
	"log/slog"
	"net"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestListenProxyMovesPastATakenAddress: the pool probes an address free,
// but another program binds it before the forwarder does; the forwarder
// takes the next free address instead of failing the create, and the taken
// address goes back to the pool.
func TestListenProxyMovesPastATakenAddress(t *testing.T) {
	pool, err := engine.NewAddressPool("127.0.92.2")
	if err != nil {
		t.Fatal(err)
	}
	if pool.SingleAddress() {
		t.Skip("loopback aliases are not bindable here")
	}
	e := &Emulator{opts: Options{Addresses: pool}, log: slog.New(slog.DiscardHandler)}
	addr, err := pool.Allocate(0)
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", addr.Addr()) // binds between probe and listen
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()

	p, err := e.listenProxy(addr, "test/0001/reader")
	if err != nil {
		t.Fatalf("listenProxy: %v", err)
	}
	defer p.Close()
	if got := p.Addr(); got.Host == addr.Host {
		t.Fatalf("forwarder on %s, the taken address", got.Addr())
	}
	if err := pool.Reserve(addr); err != nil {
		t.Fatalf("the taken address %s was not given back to the pool: %v", addr.Host, err)
	}
}
