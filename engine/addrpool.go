package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
)

// DefaultAddressBase is the first address an AddressPool hands out.
const DefaultAddressBase = "127.0.0.2"

// maxAddressScan bounds how many addresses one Allocate tries for the
// requested port before settling for a port chosen by the OS.
const maxAddressScan = 256

// AddressPool hands out host-reachable endpoints for nodes. It is safe for
// concurrent use.
//
// In alias mode (Linux, where all of 127.0.0.0/8 is loopback) every endpoint
// gets its own address, starting at the base address and counting up
// (127.0.0.2, 127.0.0.3, …; 127.0.0.1 is always skipped), on the requested
// port. An address is only handed out after binding addr:port succeeded (the
// listener is closed again at once), so ports taken by other programs are
// skipped. If the requested port is taken on maxAddressScan consecutive free
// addresses (e.g. something listens on 0.0.0.0:port) the pool returns the
// next free address with a port chosen by the OS.
//
// In single-address mode, used when the base address cannot be bound (macOS
// only routes 127.0.0.1 by default) or when the base is 127.0.0.1, every
// endpoint is 127.0.0.1 with a free port chosen by the OS.
type AddressPool struct {
	mu     sync.Mutex
	base   netip.Addr
	single bool
	inUse  map[string]struct{} // host (alias mode) or host:port (single mode)

	// listen binds addr; a test hook.
	listen func(network, addr string) (net.Listener, error)
}

// NewAddressPool returns a pool whose first address is base ("" means
// DefaultAddressBase). base must be an IPv4 loopback address; 127.0.0.1
// selects single-address mode. Tests should use a base of their own (e.g.
// 127.0.5.2) so parallel test binaries never hand out the same addresses.
func NewAddressPool(base string) (*AddressPool, error) {
	return newAddressPool(base, net.Listen)
}

func newAddressPool(base string, listen func(network, addr string) (net.Listener, error)) (*AddressPool, error) {
	if base == "" {
		base = DefaultAddressBase
	}
	addr, err := netip.ParseAddr(base)
	if err != nil {
		return nil, fmt.Errorf("engine: address pool base %q: %w", base, err)
	}
	if !addr.Is4() || !addr.IsLoopback() {
		return nil, fmt.Errorf("engine: address pool base %s is not an IPv4 loopback address (127.0.0.0/8)", base)
	}
	p := &AddressPool{base: addr, inUse: make(map[string]struct{}), listen: listen}
	if addr == localhost {
		p.single = true
		return p, nil
	}
	// Probe whether this system routes addresses other than 127.0.0.1.
	l, err := listen("tcp", net.JoinHostPort(addr.String(), "0"))
	if err != nil {
		p.single = true
		return p, nil
	}
	_ = l.Close()
	return p, nil
}

var localhost = netip.MustParseAddr("127.0.0.1")

// SingleAddress reports whether the pool hands out 127.0.0.1 with OS-chosen
// ports instead of one address per node.
func (p *AddressPool) SingleAddress() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.single
}

// Allocate returns a free endpoint for a new node listening on port (0 lets
// the OS choose a free port). The endpoint stays reserved until Release.
func (p *AddressPool) Allocate(port int) (Endpoint, error) {
	if port < 0 || port > 65535 {
		return Endpoint{}, fmt.Errorf("engine: invalid port %d", port)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.single {
		ep, err := p.allocateAlias(port)
		if !errors.Is(err, errNoAliases) {
			return ep, err
		}
		p.single = true // the system stopped routing our addresses
	}
	return p.allocateSingle()
}

var errNoAliases = errors.New("engine: loopback aliases are not bindable")

func (p *AddressPool) allocateAlias(port int) (Endpoint, error) {
	var lastErr error
	firstFree := netip.Addr{}
	addr := p.base
	for scanned := 0; scanned < maxAddressScan; addr = addr.Next() {
		if !addr.IsValid() || !addr.IsLoopback() || addr == netip.MustParseAddr("127.255.255.255") {
			break // ran off the end of 127.0.0.0/8
		}
		if addr == localhost {
			continue
		}
		host := addr.String()
		if _, used := p.inUse[host]; used {
			continue
		}
		scanned++
		if !firstFree.IsValid() {
			firstFree = addr
		}
		got, err := p.probe(host, port)
		if err == nil {
			p.inUse[host] = struct{}{}
			return Endpoint{Host: host, Port: got}, nil
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return Endpoint{}, errNoAliases
		}
		lastErr = err
	}
	if port != 0 && firstFree.IsValid() {
		// The port is taken everywhere (a wildcard listener): keep one
		// address per node, with a port from the OS.
		host := firstFree.String()
		if got, err := p.probe(host, 0); err == nil {
			p.inUse[host] = struct{}{}
			return Endpoint{Host: host, Port: got}, nil
		}
	}
	if lastErr == nil {
		lastErr = errors.New("address range exhausted")
	}
	return Endpoint{}, fmt.Errorf("engine: no free loopback address from %s for port %d: %w", p.base, port, lastErr)
}

func (p *AddressPool) allocateSingle() (Endpoint, error) {
	host := localhost.String()
	for range 16 {
		port, err := p.probe(host, 0)
		if err != nil {
			return Endpoint{}, fmt.Errorf("engine: no free port on %s: %w", host, err)
		}
		ep := Endpoint{Host: host, Port: port}
		if _, used := p.inUse[ep.Addr()]; used {
			continue // handed out already, its node is not listening yet
		}
		p.inUse[ep.Addr()] = struct{}{}
		return ep, nil
	}
	return Endpoint{}, fmt.Errorf("engine: no unreserved free port on %s", host)
}

// probe binds host:port and closes the listener, returning the bound port.
func (p *AddressPool) probe(host string, port int) (int, error) {
	l, err := p.listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Reserve marks ep as in use without probing it, e.g. for a node that is
// already running. It fails if ep is reserved already.
func (p *AddressPool) Reserve(ep Endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := p.key(ep)
	if _, used := p.inUse[key]; used {
		return fmt.Errorf("engine: endpoint %s is already reserved", ep.Addr())
	}
	p.inUse[key] = struct{}{}
	return nil
}

// Release returns ep to the pool. Releasing an endpoint that is not reserved
// is a no-op.
func (p *AddressPool) Release(ep Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, p.key(ep))
}

func (p *AddressPool) key(ep Endpoint) string {
	if ep.Host == localhost.String() {
		return ep.Addr()
	}
	return ep.Host
}
