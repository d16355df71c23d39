package engine

// The health monitor's persistent connections to a node: an authenticated
// one it PINGs, and an idle one whose closing reveals the node's exit.

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// Probe is a long-lived, authenticated connection to one node for health
// checks: a PING on it costs a write and a read, where a new connection and
// client per check (Admin.Ping) cost several times the CPU of the node
// answering it. It reconnects by itself after the connection is lost. A
// Probe is safe for concurrent use.
type Probe struct {
	client *redis.Client
	// mu guards conn, the client's connection held for the probe's
	// commands (redis.Conn): taken from the pool once, not per command,
	// so a command costs no pool health check (a MSG_PEEK read of the
	// socket, a third system call beside the write and the read). A
	// connection that fails is dropped, and the next command dials.
	mu   sync.Mutex
	conn *redis.Conn
	// mc, for a Memcached node, replaces client.
	mc *memcache.Client
	// ep and admin are the node's and the Admin that made the probe, for
	// Relisten.
	ep    Endpoint
	admin Admin
}

// held returns the probe's connection, taken from the pool on first use.
func (p *Probe) held() *redis.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		p.conn = p.client.Conn()
	}
	return p.conn
}

// done drops c after a command on it failed without a reply from the node
// (the connection is broken or timed out), so the next command dials.
func (p *Probe) done(c *redis.Conn, err error) error {
	if err == nil || IsReply(err) {
		return err
	}
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
	}
	p.mu.Unlock()
	_ = c.Close()
	return err
}

// NewProbe returns a probe of the node at ep authenticating as the admin
// user (the node's default user may be locked by its users), with one
// connection kept open and every timeout (dial, read, write, pool) set to
// timeout. It does not connect until the first Ping. It uses TLS when ep
// is registered as a TLS node's (UseTLS) at the time of the call.
func (a Admin) NewProbe(ep Endpoint, timeout time.Duration) *Probe {
	if a.Memcached(ep) {
		return &Probe{mc: a.memcachedClient(ep, timeout), ep: ep, admin: a}
	}
	o := a.Options(ep)
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
	o.ConnMaxIdleTime = -1 // checked every interval: never idle for long
	return &Probe{client: redis.NewClient(o), ep: ep, admin: a}
}

// Ping sends PING. An error reply (BUSY, LOADING, NOAUTH, …) is returned as
// such: IsReply tells it from a node that did not answer.
func (p *Probe) Ping(ctx context.Context) error {
	if p.mc != nil {
		return memcachedPing(ctx, p.mc)
	}
	c := p.held()
	return p.done(c, c.Ping(ctx).Err())
}

// ConnectionsReceived returns the node's count of connections it accepted
// (INFO stats total_connections_received) through the probe's connection,
// so asking makes no new one, less the ones Admin.Refuses made to check it
// listens (those of the probe's Admin and its copies): what a change of it
// tells is whether clients connected. Not for Memcached nodes.
func (p *Probe) ConnectionsReceived(ctx context.Context) (int64, error) {
	if p.mc != nil {
		return 0, errors.New("engine: ConnectionsReceived of a Memcached node")
	}
	c := p.held()
	text, err := c.Info(ctx, "stats").Result()
	if err = p.done(c, err); err != nil {
		return 0, err
	}
	v, ok := parseInfo(text)["total_connections_received"]
	if !ok {
		return 0, errors.New("engine: INFO stats without total_connections_received")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n - p.admin.checkConnections(p.ep), err
}

// Rebindable tells whether the node's listeners can be bound again
// (Relisten): a Redis node's can, a Memcached node's cannot.
func (p *Probe) Rebindable() bool { return p.mc == nil }

// Close closes the probe's connection.
func (p *Probe) Close() error {
	if p.mc != nil {
		return p.mc.Close()
	}
	p.mu.Lock()
	c := p.conn
	p.conn = nil
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	return p.client.Close()
}

// Watch opens an idle TCP connection to the node at ep on which nothing is
// ever sent, and calls onClose, once, from a goroutine of its own, when the
// node closes it: it exited, or a user killed the connection. Exits are
// thus seen at once, without polling. Closing the returned connection also
// calls onClose. Nodes never write to a connection that sends no command,
// so reading it returns only when it closes. It is plain TCP for TLS nodes
// too: a TLS listener keeps a connection that never starts its handshake
// open like any idle one.
func Watch(ep Endpoint, timeout time.Duration, onClose func()) (io.Closer, error) {
	conn, err := net.DialTimeout("tcp", ep.Addr(), timeout)
	if err != nil {
		return nil, err
	}
	go func() {
		_, _ = conn.Read(make([]byte, 1))
		// Close our end now: a dead node's half-closed connections would
		// keep its address from being bound again by its replacement.
		_ = conn.Close()
		onClose()
	}()
	return conn, nil
}
