package emulator

// The configuration endpoint of a Memcached cluster: a server of our own
// that answers Auto Discovery (config get cluster, and get
// AmazonElastiCache:cluster for engines before 1.4.14) in AWS's format and
// hands every other connection to a node of the cluster.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// discoveryKey is the key engines before 1.4.14 read the configuration from.
const discoveryKey = "AmazonElastiCache:cluster"

// discoveryMaxLine bounds a command line read before it is known not to be
// an Auto Discovery command; a longer one is forwarded as it is.
const discoveryMaxLine = 4096

// discoveryDialTimeout bounds the dial to a node.
const discoveryDialTimeout = 2 * time.Second

// discoveryConfig is what the endpoint serves: the cluster's config version
// and nodes, and the nodes other commands may go to.
type discoveryConfig struct {
	version int
	// nodes are listed by Auto Discovery, in node id order.
	nodes []engine.Endpoint
	// serving are the nodes connections are handed to (healthy ones).
	serving []engine.Endpoint
}

// payload is the configuration as AWS documents it: the version on a line
// ending in LF, then every node as hostname|ip|port separated by spaces on a
// line ending in LF. Locally the hostname is the node's address.
func (c *discoveryConfig) payload() string {
	entries := make([]string, len(c.nodes))
	for i, ep := range c.nodes {
		entries[i] = fmt.Sprintf("%s|%s|%d", ep.Host, ep.Host, ep.Port)
	}
	return fmt.Sprintf("%d\n%s\n", c.version, strings.Join(entries, " "))
}

// discoveryServer is one configuration endpoint.
type discoveryServer struct {
	log  *slog.Logger
	ln   net.Listener
	addr engine.Endpoint
	// nodeTLS, for a TLS cluster, is how connections to the nodes are made
	// (the listener itself serves TLS then).
	nodeTLS *tls.Config
	cfg     atomic.Pointer[discoveryConfig]
	next    atomic.Uint64 // round-robin over serving nodes

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// listenDiscovery opens a configuration endpoint on addr. With serverTLS
// it serves TLS and reaches the nodes over TLS with nodeTLS.
func listenDiscovery(addr engine.Endpoint, serverTLS, nodeTLS *tls.Config, log *slog.Logger) (*discoveryServer, error) {
	ln, err := net.Listen("tcp", addr.Addr())
	if err != nil {
		return nil, err
	}
	if serverTLS != nil {
		ln = tls.NewListener(ln, serverTLS)
	}
	s := &discoveryServer{log: log.With("endpoint", addr.Addr()), ln: ln, addr: addr, nodeTLS: nodeTLS, conns: map[net.Conn]struct{}{}}
	s.cfg.Store(&discoveryConfig{})
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is where the endpoint listens.
func (s *discoveryServer) Addr() engine.Endpoint { return s.addr }

// set replaces what the endpoint serves; connections already handed to a
// node stay with it.
func (s *discoveryServer) set(c *discoveryConfig) { s.cfg.Store(c) }

// Close stops listening, closes every connection and waits for their
// goroutines.
func (s *discoveryServer) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// track registers c (untrack unregisters it); false once closed.
func (s *discoveryServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *discoveryServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

func (s *discoveryServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("configuration endpoint accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE: do not spin
			continue
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// serve answers Auto Discovery commands on c until the client sends
// anything else, then hands the connection to a node for good: the
// command and whatever followed it go to the node first, then both
// directions are copied as they come (io.Copy between two TCP connections
// is splice(2) on Linux). Parsing every command instead would put a
// user-space copy and a parse on every request of a data connection;
// cluster-aware clients poll Auto Discovery on connections of their own
// (the ElastiCache Cluster Client does), so a config command sent after
// data commands on the same connection reaches memcached, which answers
// ERROR, as a node endpoint does locally. The binary protocol (first byte
// 0x80) is forwarded at once.
func (s *discoveryServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	br := bufio.NewReaderSize(c, discoveryMaxLine)
	for {
		first, err := br.Peek(1)
		if err != nil {
			return
		}
		if first[0] == 0x80 {
			s.forward(c, br, nil)
			return
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.forward(c, br, line)
			return
		}
		if err != nil {
			return
		}
		reply, handled, quit := s.answer(strings.Fields(string(line)))
		if quit {
			return
		}
		if !handled {
			s.forward(c, br, line)
			return
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// answer returns the reply to an Auto Discovery command; handled is false
// for every other command.
func (s *discoveryServer) answer(cmd []string) (reply string, handled, quit bool) {
	cfg := s.cfg.Load()
	switch {
	case len(cmd) == 1 && cmd[0] == "quit":
		return "", true, true
	case len(cmd) == 3 && cmd[0] == "config" && cmd[1] == "get" && cmd[2] == "cluster":
		p := cfg.payload()
		return fmt.Sprintf("CONFIG cluster 0 %d\r\n%s\r\nEND\r\n", len(p), p), true, false
	case len(cmd) == 2 && cmd[0] == "get" && cmd[1] == discoveryKey:
		p := cfg.payload()
		return fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", discoveryKey, len(p), p), true, false
	}
	return "", false, false
}

// forward connects c to a serving node, sends it line and what the client
// sent after it (buffered in br), then copies both ways until either side
// ends. Without a node the connection is closed.
func (s *discoveryServer) forward(c net.Conn, br *bufio.Reader, line []byte) {
	pending := append([]byte(nil), line...)
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		pending = append(pending, rest...)
	}
	node, err := s.dialNode()
	if err != nil {
		s.log.Debug("configuration endpoint has no node to forward to", "err", err)
		return
	}
	if !s.track(node) {
		_ = node.Close()
		return
	}
	defer s.untrack(node)
	if len(pending) > 0 {
		if _, err := node.Write(pending); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, node)
		_ = c.Close()
	}()
	_, _ = io.Copy(node, c)
	_ = node.Close()
	<-done
}

// dialNode connects to the next serving node, trying each once.
func (s *discoveryServer) dialNode() (net.Conn, error) {
	serving := s.cfg.Load().serving
	if len(serving) == 0 {
		return nil, errors.New("no node serves")
	}
	start := s.next.Add(1)
	var errs []error
	for i := range serving {
		ep := serving[(int(start)+i)%len(serving)]
		ctx, cancel := context.WithTimeout(context.Background(), discoveryDialTimeout)
		var (
			conn net.Conn
			err  error
		)
		if s.nodeTLS != nil {
			cfg := s.nodeTLS.Clone()
			cfg.ServerName = ep.Host
			conn, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", ep.Addr())
		} else {
			conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", ep.Addr())
		}
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// SetBackends replaces the nodes connections are handed to, keeping the
// listed nodes and version (the emulator's endpoint interface).
func (s *discoveryServer) SetBackends(backends []engine.Endpoint) {
	c := *s.cfg.Load()
	c.serving = append([]engine.Endpoint(nil), backends...)
	s.cfg.Store(&c)
}
