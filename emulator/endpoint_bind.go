package emulator

import (
	"context"
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

	kick chan struct{}
	done chan struct{}
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

// run applies the wanted state whenever it changes. have is the node that
// listens on the address as far as we know.
func (b *bindEndpoint) run() {
	defer close(b.done)
	var have *engine.Endpoint
	for range b.kick {
		for attempt := 0; ; attempt++ {
			b.mu.Lock()
			want, closed := b.want, b.closed
			b.mu.Unlock()
			if have != nil && (want == nil || *have != *want) {
				if err := b.release(*have); err != nil {
					b.log.Debug("endpoint release", "endpoint", b.addr.Addr(), "node", have.Addr(), "err", err)
				}
				have = nil
			}
			if want == nil {
				break
			}
			err := b.claim(*want)
			if err == nil {
				if have == nil {
					b.log.Info("primary endpoint switched", "endpoint", b.addr.Addr(), "node", want.Addr())
				}
				have = want
				break
			}
			// The old holder may still have the socket (a hung node not yet
			// killed); retry briefly unless a newer state arrived.
			b.log.Debug("endpoint claim", "endpoint", b.addr.Addr(), "node", want.Addr(), "attempt", attempt, "err", err)
			if closed || attempt >= 200 || len(b.kick) > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if have != nil {
		_ = b.release(*have)
	}
	b.closeFront()
}

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

// release stops node listening on the endpoint and drops the connections
// that came through it.
func (b *bindEndpoint) release(node engine.Endpoint) error {
	if b.front != nil {
		b.closeFront()
		return nil
	}
	if err := b.configBind(node, node.Host); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return b.admin.KillClientsByLocalAddr(ctx, node, b.addr)
}

// configBind makes node listen on hosts only (CONFIG SET bind).
func (b *bindEndpoint) configBind(node engine.Endpoint, hosts ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return b.admin.Bind(ctx, node, hosts...)
}
