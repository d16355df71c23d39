package engine

// TLS for the control plane's connections: which nodes serve TLS only
// (NodeSpec.TLS), and the CAs their certificates are verified with.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
)

// tlsRegistry is the set of endpoints served over TLS, shared by the copies
// of one Admin so that a runtime registering its nodes (at Start and Adopt)
// switches the connections of every holder of its Admin, the control
// plane's included.
type tlsRegistry struct {
	mu  sync.RWMutex
	eps map[Endpoint]bool
	// memcached are the endpoints of Memcached nodes (UseMemcached).
	memcached map[Endpoint]bool
	// rebinds are the nodes whose listeners are being rebound, or were
	// moments ago (admin_rebind.go).
	rebinds map[Endpoint]rebindMark
	// nowhere are the nodes a failed rebind left listening on none of
	// their addresses (node_listen.go).
	nowhere map[Endpoint]bool
	// checks counts, per node, the connections Admin.Refuses made.
	checks map[Endpoint]int64
}

func newTLSRegistry() *tlsRegistry {
	return &tlsRegistry{eps: make(map[Endpoint]bool), memcached: make(map[Endpoint]bool), rebinds: make(map[Endpoint]rebindMark), nowhere: make(map[Endpoint]bool), checks: make(map[Endpoint]int64)}
}

// WithCA returns a copy of a whose TLS connections trust the CAs in pool
// (crypto/tls RootCAs) instead of the system's. The copy shares a's TLS
// registry, so it is one Admin for UseTLS; give a runtime the Admin
// WithCA returned (its Start connects to TLS nodes too). An Admin without
// a registry (the zero Admin) gets one of its own.
func (a Admin) WithCA(pool *x509.CertPool) Admin {
	a.roots = pool
	if a.tls == nil {
		a.tls = newTLSRegistry()
	}
	return a
}

// UseTLS records whether the node at ep serves TLS only, for every copy of
// a: Options, WithClient and every method connecting to ep use TLS from
// then on (with on), or plain TCP (without). Runtimes call it for each node
// they start (before waiting for it to answer), adopt or stop; clients
// built by Options earlier (a Probe) keep what they had. It panics on an
// Admin without a registry (not made by NewAdmin, LoadAdmin or WithCA):
// the setting would be lost.
func (a Admin) UseTLS(ep Endpoint, on bool) {
	if a.tls == nil {
		panic("engine: Admin.UseTLS on an Admin not made by NewAdmin, LoadAdmin or WithCA")
	}
	a.tls.mu.Lock()
	defer a.tls.mu.Unlock()
	if on {
		a.tls.eps[ep] = true
	} else {
		delete(a.tls.eps, ep)
	}
}

// TLS reports whether connections of a to ep use TLS (UseTLS).
func (a Admin) TLS(ep Endpoint) bool {
	if a.tls == nil {
		return false
	}
	a.tls.mu.RLock()
	defer a.tls.mu.RUnlock()
	return a.tls.eps[ep]
}

// tlsConfig is the client TLS configuration for ep, nil when ep is not a
// TLS node's. The server name is the endpoint's host, so a certificate is
// verified against the IP address (or name) the node is reached at.
func (a Admin) tlsConfig(ep Endpoint) *tls.Config {
	if !a.TLS(ep) {
		return nil
	}
	return &tls.Config{
		RootCAs:    a.roots,
		ServerName: ep.Host,
		MinVersion: tls.VersionTLS12,
	}
}

// clientConn turns a connection dialled to ep into what Options(ep) would
// dial: the connection itself, or a TLS connection over it whose handshake
// has completed (bounded by ctx and ioTimeout), so a node that is not what
// its registration says fails here rather than at the first command.
func clientConn(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		return conn, nil
	}
	hctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
