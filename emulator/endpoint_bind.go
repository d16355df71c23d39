package emulator

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

// endpoint is a stable address in front of changing nodes: a node group's
// primary or reader endpoint. SetBackends never blocks on the network.
type endpoint interface {
	Addr() engine.Endpoint
	SetBackends(backends []engine.Endpoint)
	Close() error
}

// bindEndpoint is a primary endpoint with no forwarder at all: the current
// primary itself also listens on the endpoint's address (CONFIG SET bind),
// so traffic costs exactly what it costs direct to the node. On a switch
// the old primary stops listening there and its connections through the
// endpoint are killed (CLIENT KILL LADDR), like a DNS flip makes clients
// reconnect, then the new primary starts listening there. It needs every
// node to have an address of its own (the process runtime on Linux); the
// forwarder in emulator/proxy serves everywhere else.
//
// A preferred primary (transit.go) listens off its endpoint's port, so a
// bind would put it at the wrong port: the endpoint then has a
// demultiplexer of its own in front of the node's two listeners (front),
// one hop, for as long as the group is in that transitional mode.
//
// While no node listens there (the primary died, or a switch is under way)
// the endpoint holds the address itself with a parking forwarder: a client
// that reconnects in that moment is not refused (a refused dial puts most
// client libraries into a back-off of their own, 100 ms for go-redis, which
// would be most of a failover's outage) but waits, and is forwarded to the
// next primary once it holds the address. The endpoint keeps an idle
// connection to the primary through the address (engine.Watch), which the
// primary's exit closes: the address is taken over within moments of a
// crash, before the health monitor has even decided on the failover.
type bindEndpoint struct {
	addr    engine.Endpoint
	admin   engine.Admin
	log     *slog.Logger
	demuxes *demuxes

	// front and frontFor: the endpoint's demultiplexer and the node it
	// serves; touched by run only.
	front    *proxy.Proxy
	frontFor engine.Endpoint

	mu     sync.Mutex
	want   *engine.Endpoint // the node that should listen on addr
	closed bool
	// lost is set by the watch connection of generation watchGen when it
	// closes: the holder may have exited.
	lost     bool
	watchGen int
	// caught is the parking forwarder the watch goroutine bound on the
	// address itself, for the switcher to take over as its hold.
	caught *proxy.Proxy

	kick chan struct{}
	done chan struct{}
}

// parkFor bounds how long a client connected to an endpoint with no node
// behind it waits for one (proxy.Options.ParkFor): past the default health
// budget for a hung primary, so a failover in progress is waited out.
const parkFor = 10 * time.Second

// proxyOptions are the options of every endpoint's forwarder: a client
// that connects while no node is behind it (a failover under way) waits
// for the next one instead of being closed.
func (e *Emulator) proxyOptions(name string) proxy.Options {
	return proxy.Options{Name: name, Logger: e.log, ParkFor: parkFor}
}

func newBindEndpoint(addr engine.Endpoint, admin engine.Admin, log *slog.Logger, demuxes *demuxes) *bindEndpoint {
	b := &bindEndpoint{addr: addr, admin: admin, log: log, demuxes: demuxes, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *bindEndpoint) Addr() engine.Endpoint { return b.addr }

// SetBackends makes the first backend (the primary) listen on the endpoint;
// an empty set makes no node listen there. It is applied asynchronously,
// and re-applied on every call so a restarted primary gets the address back.
func (b *bindEndpoint) SetBackends(backends []engine.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if len(backends) > 0 {
		ep := backends[0]
		b.want = &ep
	} else {
		b.want = nil
	}
	b.poke()
}

// poke wakes the switcher; the caller holds b.mu and b is not closed.
func (b *bindEndpoint) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close takes the address off the node holding it and stops the switcher.
func (b *bindEndpoint) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed, b.want = true, nil
	close(b.kick)
	b.mu.Unlock()
	<-b.done
	return nil
}

// bindState is what the switcher knows of the address.
type bindState struct {
	// have is the node that listens on the address as far as we know.
	have *engine.Endpoint
	// watch is the idle connection to have through the address.
	watch io.Closer
	// hold is the parking forwarder listening on the address while no
	// node does; drained are earlier ones that stopped listening and
	// forward the clients they parked to have.
	hold    *proxy.Proxy
	drained []*proxy.Proxy
}

// run applies the wanted state whenever it changes, or the holder's watch
// connection closed.
func (b *bindEndpoint) run() {
	defer close(b.done)
	var st bindState
	for range b.kick {
		b.mu.Lock()
		lost := b.lost
		b.lost = false
		b.mu.Unlock()
		if lost && st.have != nil && b.holdAddress(&st) {
			// The holder no longer listens there: it exited (a node
			// that merely lost the watch connection still has the
			// address, and holdAddress fails).
			b.log.Info("primary endpoint's node stopped listening; holding the address until the next primary", "endpoint", b.addr.Addr(), "node", st.have.Addr())
			b.unwatch(&st)
			b.mu.Lock()
			if b.want != nil && *b.want == *st.have {
				// Claiming a dead node again would only free the
				// address in vain: the recovery names the next holder
				// (SetBackends), the same node restarted included.
				b.want = nil
			}
			b.mu.Unlock()
			st.have = nil
		} else if lost && st.have != nil {
			b.watchHolder(&st)
		}
		// dropped is the node that stopped listening on the address: the
		// clients it has through the endpoint are dropped only once the
		// address is listened on again (by the next node, or the parking
		// forwarder), so that their reconnection is never refused (a
		// refused dial costs a go-redis client 100 ms before it dials
		// again).
		var dropped *engine.Endpoint
		for attempt := 0; ; attempt++ {
			b.mu.Lock()
			want, closed := b.want, b.closed
			b.mu.Unlock()
			if st.have != nil && (want == nil || *st.have != *want) {
				b.unwatch(&st)
				viaFront := b.front != nil // closing the front drops its clients at once
				if err := b.unbind(*st.have); err != nil {
					// Unreachable (gone, or hung): so are its clients.
					b.log.Debug("endpoint release", "endpoint", b.addr.Addr(), "node", st.have.Addr(), "err", err)
				} else if !viaFront {
					dropped = st.have
				}
				st.have = nil
				b.closeDrained(&st)
			}
			if want == nil {
				if !closed && st.have == nil {
					b.holdAddress(&st)
				}
				b.dropClients(dropped)
				break
			}
			if st.hold != nil {
				// Free the address for the node; the clients parked
				// so far follow it there.
				_ = st.hold.Unlisten()
				st.drained = append(st.drained, st.hold)
				st.hold = nil
			}
			err := b.claim(*want)
			if err == nil {
				if st.have == nil {
					b.log.Info("primary endpoint switched", "endpoint", b.addr.Addr(), "node", want.Addr())
				}
				st.have = want
				for _, p := range st.drained {
					p.SetBackends([]engine.Endpoint{*want})
				}
				if st.watch == nil {
					b.watchHolder(&st)
				}
				b.dropClients(dropped)
				break
			}
			// The old holder may still have the socket (a hung node not yet
			// killed); retry briefly unless a newer state arrived.
			b.log.Debug("endpoint claim", "endpoint", b.addr.Addr(), "node", want.Addr(), "attempt", attempt, "err", err)
			if st.have == nil && !closed {
				b.holdAddress(&st)
			}
			b.dropClients(dropped)
			dropped = nil
			if closed || attempt >= 200 || len(b.kick) > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.unwatch(&st)
	b.mu.Lock()
	if b.caught != nil {
		_ = b.caught.Close()
		b.caught = nil
	}
	b.mu.Unlock()
	if st.hold != nil {
		_ = st.hold.Close()
	}
	b.closeDrained(&st)
	if st.have != nil {
		if viaFront := b.front != nil; b.unbind(*st.have) == nil && !viaFront {
			b.dropClients(st.have)
		}
	}
	b.closeFront()
}

// holdAddress listens on the address with a parking forwarder unless one
// does already, and reports whether the address is held by it: it fails
// while a node still listens there.
func (b *bindEndpoint) holdAddress(st *bindState) bool {
	b.mu.Lock()
	caught := b.caught
	b.caught = nil
	b.mu.Unlock()
	if caught != nil {
		if st.hold != nil {
			_ = caught.Close() // cannot happen: one listener per address
		} else {
			st.hold = caught
		}
	}
	if st.hold != nil {
		return true
	}
	p, err := b.listenVacant()
	if err != nil {
		return false
	}
	st.hold = p
	return true
}

// listenVacant binds the parking forwarder on the address; it fails while
// a node listens there.
func (b *bindEndpoint) listenVacant() (*proxy.Proxy, error) {
	return proxy.Listen(b.addr.Addr(), proxy.Options{Name: b.addr.Addr() + " (vacant primary endpoint)", Logger: b.log, ParkFor: parkFor})
}

// watchHolder opens the idle connection to the holder through the address;
// its closing kicks the switcher with lost set.
func (b *bindEndpoint) watchHolder(st *bindState) {
	b.unwatch(st)
	b.mu.Lock()
	b.watchGen++
	gen := b.watchGen
	b.mu.Unlock()
	w, err := engine.Watch(b.addr, time.Second, func() {
		// Take the address here rather than after a hand-off to the
		// switcher: a client that reconnects at once must find it held.
		p, _ := b.listenVacant()
		b.mu.Lock()
		defer b.mu.Unlock()
		if gen != b.watchGen || b.closed {
			if p != nil {
				_ = p.Close()
			}
			return
		}
		b.lost = true
		if p != nil {
			b.caught = p
		}
		b.poke()
	})
	if err == nil {
		st.watch = w
	}
}

// unwatch closes the watch connection, whose closing then kicks nothing.
func (b *bindEndpoint) unwatch(st *bindState) {
	if st.watch == nil {
		return
	}
	b.mu.Lock()
	b.watchGen++
	b.mu.Unlock()
	_ = st.watch.Close()
	st.watch = nil
}

// closeDrained ends the connections the parking forwarders handed to a
// holder that lost the address, as its CLIENT KILL LADDR ends those that
// came straight through it.
func (b *bindEndpoint) closeDrained(st *bindState) {
	for _, p := range st.drained {
		_ = p.Close()
	}
	st.drained = nil
}

// claim makes node listen on the endpoint too. A node that already does is
// left alone: CONFIG SET bind closes and reopens every listening socket,
// which resets the connections not accepted yet (a failover's command to
// the primary among them), and SetBackends re-applies the same primary on
// every change of a node group's members.

// claim makes node listen on the endpoint too, or for a preferred node
// puts the endpoint's demultiplexer in front of it. A node that already
// listens there is left alone: CONFIG SET bind closes and reopens every listening socket,
// which resets the connections not accepted yet (a failover's command to
// the primary among them), and SetBackends re-applies the same primary on
// every change of a node group's members.
func (b *bindEndpoint) claim(node engine.Endpoint) error {
	if b.demuxes.servesAt(node) {
		if b.front != nil && b.frontFor == node {
			return nil
		}
		b.closeFront()
		plain, tls := engine.PreferredEndpoints(node)
		p, err := proxy.ListenDemux(b.addr.Addr(), plain, tls, proxy.Options{Name: b.addr.Addr() + " (TLS or plaintext)", Logger: b.log})
		if err != nil {
			return err
		}
		b.front, b.frontFor = p, node
		return nil
	}
	// The node restarted at the same endpoint in another layout.
	b.closeFront()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if cur, err := b.admin.ConfigGet(ctx, node, "bind"); err == nil && cur == node.Host+" "+b.addr.Host {
		return nil
	}
	return b.configBind(node, node.Host, b.addr.Host)
}

// closeFront closes the endpoint's demultiplexer and its connections.
func (b *bindEndpoint) closeFront() {
	if b.front != nil {
		_ = b.front.Close()
		b.front = nil
	}
}

// unbind stops node listening on the endpoint: the connections that came
// through it stay until dropClients (a front drops them as it closes).
func (b *bindEndpoint) unbind(node engine.Endpoint) error {
	if b.front != nil {
		b.closeFront()
		return nil
	}
	return b.configBind(node, node.Host)
}

// dropClients closes node's connections that came through the endpoint
// (nil: none), as a DNS flip makes clients reconnect.
func (b *bindEndpoint) dropClients(node *engine.Endpoint) {
	if node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := b.admin.KillClientsByLocalAddr(ctx, *node, b.addr); err != nil {
		b.log.Debug("endpoint clients", "endpoint", b.addr.Addr(), "node", node.Addr(), "err", err)
	}
}

// configBind makes node listen on hosts only (CONFIG SET bind).
func (b *bindEndpoint) configBind(node engine.Endpoint, hosts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return b.admin.Bind(ctx, node, hosts...)
}
