package engine

// The control plane's connections to Memcached nodes, through gomemcache:
// which endpoints are Memcached's (UseMemcached, kept with the TLS
// registry so that every copy of an Admin shares it), and the commands
// the control plane sends them. Ping, Alive, Shutdown, ShutdownSave and
// NewProbe dispatch here for those endpoints, so readiness checks and the
// health monitor treat both engines alike.

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// ErrNoShutdownCommand is what Shutdown and ShutdownSave return for a
// Memcached node: memcached has no SHUTDOWN command for the control plane
// (its "shutdown" needs -A, which nodes do not get, so that no client can
// stop a node) and keeps no data, so runtimes stop it with a signal.
var ErrNoShutdownCommand = errors.New("engine: memcached is stopped by a signal, not a command")

// UseMemcached records whether the node at ep is a Memcached node, for
// every copy of a (see UseTLS, whose registry it shares): Ping, Shutdown,
// ShutdownSave and NewProbe speak the memcached protocol to it from then
// on. Runtimes call it for each node they start (before waiting for it),
// adopt or stop. It panics on an Admin without a registry.
func (a Admin) UseMemcached(ep Endpoint, on bool) {
	if a.tls == nil {
		panic("engine: Admin.UseMemcached on an Admin not made by NewAdmin, LoadAdmin or WithCA")
	}
	a.tls.mu.Lock()
	defer a.tls.mu.Unlock()
	if on {
		a.tls.memcached[ep] = true
	} else {
		delete(a.tls.memcached, ep)
	}
}

// Memcached reports whether ep is registered as a Memcached node's.
func (a Admin) Memcached(ep Endpoint) bool {
	if a.tls == nil {
		return false
	}
	a.tls.mu.RLock()
	defer a.tls.mu.RUnlock()
	return a.tls.memcached[ep]
}

// RegisterNode records what the node's labels say about the protocol it
// speaks (LabelTLS, LabelEngine) with a, as Adopt does for the nodes it
// takes over; a node without them is unregistered.
func (a Admin) RegisterNode(n Node) {
	a.UseTLS(n.Endpoint, n.Labels[LabelTLS] != "")
	a.UseMemcached(n.Endpoint, IsMemcached(n.Labels[LabelEngine]))
}

// memcachedClient is a gomemcache client of the node at ep alone, over TLS
// when ep is registered as a TLS node's, with timeout as its I/O timeout.
func (a Admin) memcachedClient(ep Endpoint, timeout time.Duration) *memcache.Client {
	c := memcache.New(ep.Addr())
	c.Timeout = timeout
	c.MaxIdleConns = 1
	cfg := a.tlsConfig(ep)
	c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: min(timeout, dialTimeout)}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return clientConn(ctx, conn, cfg)
	}
	return c
}

// withMemcached calls fn with a one-off client of the node at ep whose I/O
// timeout is ioTimeout or what is left of ctx, if less.
func (a Admin) withMemcached(ctx context.Context, ep Endpoint, fn func(c *memcache.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := ioTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	c := a.memcachedClient(ep, timeout)
	defer c.Close()
	return fn(c)
}

// memcachedPing sends "version" to the node at ep.
func (a Admin) memcachedPing(ctx context.Context, ep Endpoint) error {
	return a.withMemcached(ctx, ep, func(c *memcache.Client) error { return memcachedPing(ctx, c) })
}

// memcachedPing pings through c, giving up when ctx ends (gomemcache takes
// no context: its own timeout bounds the call that goes on).
func memcachedPing(ctx context.Context, c *memcache.Client) error {
	done := make(chan error, 1)
	go func() { done <- c.Ping() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FlushMemcached empties the Memcached node at ep (flush_all).
func (a Admin) FlushMemcached(ctx context.Context, ep Endpoint) error {
	return a.withMemcached(ctx, ep, func(c *memcache.Client) error { return c.FlushAll() })
}
