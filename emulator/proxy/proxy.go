package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// DefaultDialTimeout bounds one dial to a backend when Options.DialTimeout is
// zero. Backends are local, so a refused dial fails in microseconds; the
// timeout only matters for a node that accepts nothing at all.
const DefaultDialTimeout = time.Second

// maxDialRounds bounds how often a connection starts over when the backend
// set changed while it was dialling, so a storm of SetBackends calls cannot
// keep one client waiting forever.
const maxDialRounds = 3

// Options configure a Proxy.
type Options struct {
	// Name identifies the endpoint in logs, e.g. "orders primary".
	Name string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds one dial to a backend (DefaultDialTimeout if zero).
	DialTimeout time.Duration
	// ParkFor, when positive, makes a connection accepted while no backend
	// is set wait up to that long for one (SetBackends) instead of being
	// closed at once: during a failover a client that reconnects lands on
	// the new primary as soon as there is one, where a closed connection
	// (or a refused dial) sends most client libraries into a back-off of
	// their own (go-redis waits 100 ms after a failed dial).
	ParkFor time.Duration
}

// Stats is a snapshot of a Proxy's counters.
type Stats struct {
	// Active is the number of open forwarded connections per backend.
	Active map[engine.Endpoint]int
	// Accepted counts client connections accepted.
	Accepted uint64
	// Forwarded counts client connections connected to a backend.
	Forwarded uint64
	// Rejected counts client connections closed at once because no backend
	// was set or every dial failed.
	Rejected uint64
	// DialFailures counts failed dials to backends (a rejected or forwarded
	// connection may have several).
	DialFailures uint64
	// ClosedByFlip counts connections closed because SetBackends removed
	// their backend.
	ClosedByFlip uint64
}

// Proxy is a TCP forwarder listening on one endpoint. It is safe for
// concurrent use.
type Proxy struct {
	name    string
	log     *slog.Logger
	dialer  net.Dialer
	parkFor time.Duration
	ln      *net.TCPListener
	addr    engine.Endpoint

	// ctx is cancelled by Close; it aborts dials in progress and the accept
	// loop's back-off.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine the proxy starts, so Close can wait for all.
	wg sync.WaitGroup

	// next is the round-robin cursor: each connection takes one value and
	// starts trying backends there.
	next atomic.Uint64

	mu sync.Mutex
	// backends is replaced, never modified in place, so a snapshot taken
	// under mu can be read without it.
	backends []engine.Endpoint
	// changed is closed (and replaced) by every SetBackends that changes
	// the set: parked connections wait on it.
	changed chan struct{}
	links   map[*link]struct{}
	closed  bool
	// demux, set by ListenDemux, routes by a connection's first byte
	// (backends[0] plaintext, backends[1] TLS) instead of round-robin;
	// waiting are its client connections whose first byte has not come.
	demux   bool
	waiting map[*net.TCPConn]struct{}

	accepted, forwarded, rejected, dialFailures, closedByFlip atomic.Uint64
}

// link is one forwarded connection: a client and the backend it was sent to.
type link struct {
	client, backend *net.TCPConn
	ep              engine.Endpoint
	// open counts the copy directions still running; the last one to finish
	// closes both sockets and unregisters the link.
	open atomic.Int32
}

// abort closes both sockets, which ends both copy directions. It is safe to
// call more than once and concurrently with the copies.
func (l *link) abort() {
	_ = l.client.Close()
	_ = l.backend.Close()
}

// Listen starts a proxy on addr (host:port; port 0 picks a free one) with no
// backends: until SetBackends is called, every connection is closed at once.
func Listen(addr string, opts Options) (*Proxy, error) {
	return listen(addr, opts, nil)
}

// listen starts a proxy on addr; prepare, when set, configures it before
// its first connection is accepted.
func listen(addr string, opts Options, prepare func(*Proxy)) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", opts.Name, err)
	}
	tcpLn, ok := ln.(*net.TCPListener)
	if !ok {
		_ = ln.Close()
		return nil, fmt.Errorf("proxy %s: %s is not a TCP listener", opts.Name, addr)
	}
	la := tcpLn.Addr().(*net.TCPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		name:    opts.Name,
		dialer:  net.Dialer{Timeout: opts.DialTimeout},
		parkFor: opts.ParkFor,
		ln:      tcpLn,
		addr:    engine.Endpoint{Host: la.IP.String(), Port: la.Port},
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		links:   make(map[*link]struct{}),
	}
	p.log = opts.Logger.With("proxy", opts.Name, "listen", p.addr.Addr())
	if prepare != nil {
		prepare(p)
	}
	p.wg.Add(1)
	go p.acceptLoop()
	p.log.Debug("proxy listening")
	return p, nil
}

// Addr returns the endpoint the proxy listens on.
func (p *Proxy) Addr() engine.Endpoint { return p.addr }

// Backends returns a copy of the current backend set, in round-robin order.
func (p *Proxy) Backends() []engine.Endpoint {
	bs, _ := p.snapshot()
	return slices.Clone(bs)
}

// snapshot returns the current backend slice, which callers must not
// modify, and the channel the next change closes.
func (p *Proxy) snapshot() ([]engine.Endpoint, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backends, p.changed
}

// SetBackends atomically replaces the backend set (duplicates are dropped,
// order is kept for round-robin); a demultiplexer's stay as they are. Connections to a backend that is not in the
// new set are closed on both sides before it returns; connections to
// backends that stay are untouched. After Close it does nothing.
func (p *Proxy) SetBackends(backends []engine.Endpoint) {
	next := make([]engine.Endpoint, 0, len(backends))
	for _, ep := range backends {
		if !slices.Contains(next, ep) {
			next = append(next, ep)
		}
	}

	p.mu.Lock()
	if p.closed || p.demux || slices.Equal(p.backends, next) {
		p.mu.Unlock()
		return
	}
	prev := p.backends
	p.backends = next
	close(p.changed)
	p.changed = make(chan struct{})
	var cut []*link
	for l := range p.links {
		if !slices.Contains(next, l.ep) {
			cut = append(cut, l)
			// Unregister now so Stats no longer counts it; the copy
			// goroutines' own unregister is then a no-op.
			delete(p.links, l)
		}
	}
	p.mu.Unlock()

	// Closing outside mu: new connections need not wait for the sockets.
	for _, l := range cut {
		l.abort()
	}
	p.closedByFlip.Add(uint64(len(cut)))
	p.log.Info("proxy backends changed", "from", endpointAddrs(prev), "to", endpointAddrs(next), "closed", len(cut))
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	s := Stats{
		Active:       make(map[engine.Endpoint]int),
		Accepted:     p.accepted.Load(),
		Forwarded:    p.forwarded.Load(),
		Rejected:     p.rejected.Load(),
		DialFailures: p.dialFailures.Load(),
		ClosedByFlip: p.closedByFlip.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		s.Active[l.ep]++
	}
	return s
}

// Unlisten stops accepting connections but keeps forwarding the ones
// accepted, parked ones included (they go to the backends of the next
// SetBackends): the address is free for a node to listen on itself (see
// the emulator's bound primary endpoint) while the clients that connected
// in the meantime are still served. Close ends them.
func (p *Proxy) Unlisten() error {
	return p.ln.Close()
}

// Close stops listening, closes every connection and waits until every
// goroutine of the proxy has exited. Calling it again returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	clear(p.links)
	for c := range p.waiting {
		// Ends the peek of a client that has not spoken yet.
		_ = c.Close()
	}
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // Unlisten closed it already
	}
	for _, l := range links {
		l.abort()
	}
	p.wg.Wait()
	p.log.Debug("proxy closed", "connections", len(links))
	return err
}

// acceptLoop accepts client connections until the listener is closed.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Typically EMFILE: retrying at once would spin, so back off
			// the way net/http does, but wake up for Close.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("proxy accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects one client to a backend and forwards both directions until
// they end; it runs client→backend itself and backend→client in a second
// goroutine.
func (p *Proxy) serve(client *net.TCPConn) {
	defer p.wg.Done()
	var l *link
	if p.demux {
		l = p.route(client)
	} else {
		l = p.connect(client)
	}
	if l == nil {
		p.rejected.Add(1)
		_ = client.Close()
		return
	}
	p.forwarded.Add(1)
	p.log.Debug("proxy connection forwarded", "client", client.RemoteAddr().String(), "backend", l.ep.Addr())

	// Go enables TCP_NODELAY by default; set it explicitly because a
	// forwarder that batched small writes would add latency to every
	// request/reply round trip.
	_ = client.SetNoDelay(true)
	_ = l.backend.SetNoDelay(true)

	l.open.Store(2)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pump(l, l.client, l.backend)
	}()
	p.pump(l, l.backend, l.client)
}

// pump forwards src to dst until src ends, then passes the FIN on. On an
// error (reset, or a socket closed by SetBackends or Close) the other
// direction cannot usefully continue, so both sockets are closed. The last
// direction to finish closes and unregisters the link.
func (p *Proxy) pump(l *link, dst, src *net.TCPConn) {
	if err := forward(dst, src); err != nil {
		l.abort()
	}
	if l.open.Add(-1) == 0 {
		l.abort()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}
}

// forward copies src to dst until EOF and then half-closes dst. Both are
// *net.TCPConn on purpose: io.Copy calls src.WriteTo, which on Linux falls
// through to dst.ReadFrom(src) and splice(2) between the two sockets, so the
// payload is never copied to user space. Any wrapper type around either
// conn would hide those methods and silently fall back to a 32 KiB buffer.
func forward(dst, src *net.TCPConn) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return dst.CloseWrite()
}

// connect dials a backend for client, starting at the round-robin cursor and
// moving on to the next backend when a dial fails, and registers the link. It
// returns nil when no backend is set (and, with Options.ParkFor, none came
// in time), every dial failed or the proxy closed.
func (p *Proxy) connect(client *net.TCPConn) *link {
	var parked <-chan time.Time
	if p.parkFor > 0 {
		t := time.NewTimer(p.parkFor)
		defer t.Stop()
		parked = t.C
	}
	for rounds := 0; rounds < maxDialRounds; {
		bs, changed := p.snapshot()
		if len(bs) == 0 {
			if parked == nil {
				p.log.Debug("proxy has no backend, closing connection", "client", client.RemoteAddr().String())
				return nil
			}
			select {
			case <-changed:
				continue // parked: a wait is not a dial round
			case <-parked:
				p.log.Debug("proxy got no backend in time, closing parked connection", "client", client.RemoteAddr().String(), "parkedFor", p.parkFor)
			case <-p.ctx.Done():
			}
			return nil
		}
		rounds++
		start := p.next.Add(1) - 1
		stale := false
		for i := range uint64(len(bs)) {
			ep := bs[(start+i)%uint64(len(bs))]
			conn, err := p.dialer.DialContext(p.ctx, "tcp", ep.Addr())
			if err != nil {
				if p.ctx.Err() != nil {
					return nil
				}
				p.dialFailures.Add(1)
				p.log.Debug("proxy backend dial failed", "backend", ep.Addr(), "err", err)
				continue
			}
			l := &link{client: client, backend: conn.(*net.TCPConn), ep: ep}
			ok, closed := p.register(l)
			if ok {
				return l
			}
			_ = conn.Close()
			if closed {
				return nil
			}
			// The set changed while dialling and ep left it. Nothing
			// has been read from the client yet, so starting over
			// against the new set is invisible to it.
			stale = true
			break
		}
		if !stale {
			// Debug, not Warn: during a failover clients retry in a
			// loop, and Stats counts these anyway.
			p.log.Debug("proxy: every backend dial failed, closing connection", "backends", endpointAddrs(bs))
			return nil
		}
	}
	return nil
}

// register records l unless the proxy is closed or l's backend is no longer
// in the set, in which case the caller must close l's backend socket.
func (p *Proxy) register(l *link) (ok, closed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return false, true
	case !slices.Contains(p.backends, l.ep):
		return false, false
	}
	p.links[l] = struct{}{}
	return true, false
}

// endpointAddrs renders endpoints as host:port strings for logs.
func endpointAddrs(eps []engine.Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Addr()
	}
	return out
}
