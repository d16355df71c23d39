package emulator

import (
	"log/slog"
	"net"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestEndpointTakesDeadHoldersAddressAtOnce: the health monitor drops a
// primary whose server exited (SetBackends) before the endpoint's watch
// connection has said so. The switcher's step then finds nothing listening
// on the address: it holds the address with its parking forwarder and
// forgets the dead holder's bind wish without sending it anything (a
// CONFIG SET to a dead node is retried for tens of milliseconds, in which
// reconnecting clients were refused and the next primary waited).
func TestEndpointTakesDeadHoldersAddressAtOnce(t *testing.T) {
	free := func() engine.Endpoint {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return engine.Endpoint{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	}
	// Both unbound: the endpoint's address, which the dead primary held,
	// and the dead primary's own.
	addr, dead := free(), free()
	admin := engine.Admin{}
	b := &bindEndpoint{addr: addr, role: "primary", admin: admin, binds: newNodeBinds(admin),
		log: slog.New(slog.DiscardHandler), kick: make(chan struct{}, 1), done: make(chan struct{})}
	st := bindState{have: &dead, gone: map[engine.Endpoint]bool{}, served: map[engine.Endpoint]bool{}}
	b.holder = &dead

	b.SetBackends(nil) // the health monitor: the primary failed
	if _, wished := b.binds.nodes[dead]; !wished {
		t.Fatal("SetBackends recorded no wish to take the address off the dead holder")
	}
	b.step(&st, true)
	t.Cleanup(func() {
		if st.hold != nil {
			_ = st.hold.Close()
		}
	})

	if st.hold == nil || st.have != nil {
		t.Fatalf("after the step: hold %v, have %v; want the address held by the endpoint, no holder", st.hold, st.have)
	}
	c, err := net.Dial("tcp", addr.Addr())
	if err != nil {
		t.Fatalf("dial the endpoint after the step: %v", err)
	}
	c.Close()
	if l, ok := b.binds.nodes[dead]; ok {
		t.Fatalf("the dead holder's bind wishes are still recorded (%v): the step sent it a CONFIG SET that could not succeed", l.want)
	}
}
