package proxy

// A demultiplexer serves TLS and plaintext on one port (ElastiCache's
// TransitEncryptionMode preferred) in front of a node that, like Redis,
// serves them on two: it sends each connection to one of two backends by
// the first byte the client sends, without consuming it, then forwards
// both ways like any proxy connection (splice, no user-space copy on
// Linux).

import (
	"net"

	"github.com/elasticache-local/elasticache-local/engine"
)

// tlsHandshakeRecord is the first byte of every TLS connection: the
// record type of the ClientHello. No Redis command starts with it (RESP
// starts with '*', inline commands with a letter).
const tlsHandshakeRecord = 0x16

// ListenDemux starts a demultiplexer on addr: connections whose first byte
// opens a TLS handshake go to tls, every other one to plain. Nothing is
// read from a client before that byte arrives, and it is left in the
// socket for the backend. SetBackends does not apply to it.
func ListenDemux(addr string, plain, tls engine.Endpoint, opts Options) (*Proxy, error) {
	return listen(addr, opts, func(p *Proxy) {
		p.demux = true
		p.backends = []engine.Endpoint{plain, tls}
		p.waiting = make(map[*net.TCPConn]struct{})
	})
}

// route waits for client's first byte, dials the backend it asks for and
// registers the link; nil when the client left first, the dial failed or
// the demux closed.
func (p *Proxy) route(client *net.TCPConn) *link {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.waiting[client] = struct{}{}
	p.mu.Unlock()
	first, consumed, err := peekByte(client)
	p.mu.Lock()
	delete(p.waiting, client)
	p.mu.Unlock()
	if err != nil {
		p.log.Debug("demux: no first byte", "client", client.RemoteAddr().String(), "err", err)
		return nil
	}
	ep := p.backends[0]
	if first == tlsHandshakeRecord {
		ep = p.backends[1]
	}
	conn, err := p.dialer.DialContext(p.ctx, "tcp", ep.Addr())
	if err != nil {
		p.dialFailures.Add(1)
		p.log.Debug("demux backend dial failed", "backend", ep.Addr(), "err", err)
		return nil
	}
	backend := conn.(*net.TCPConn)
	if consumed {
		if _, err := backend.Write([]byte{first}); err != nil {
			_ = backend.Close()
			return nil
		}
	}
	l := &link{client: client, backend: backend, ep: ep}
	if ok, _ := p.register(l); !ok {
		_ = backend.Close()
		return nil
	}
	return l
}
