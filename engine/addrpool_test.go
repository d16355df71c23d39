package engine

import (
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// Each test binary uses its own loopback range (127.0.5.x here) so parallel
// packages never hand out the same addresses.
const testBase = "127.0.5.2"

func newTestPool(t *testing.T, base string) *AddressPool {
	t.Helper()
	p, err := NewAddressPool(base)
	if err != nil {
		t.Fatal(err)
	}
	if p.SingleAddress() && base != "127.0.0.1" {
		t.Skip("loopback aliases are not bindable on this system")
	}
	return p
}

// freePort returns a port that is free on addr right now.
func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAddressPoolDistinctAddressesSamePort(t *testing.T) {
	p := newTestPool(t, testBase)
	port := freePort(t, testBase)
	seen := map[string]bool{}
	var eps []Endpoint
	for i := 0; i < 5; i++ {
		ep, err := p.Allocate(port)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Port != port {
			t.Errorf("allocation %d: port %d, want %d", i, ep.Port, port)
		}
		if ep.Host == "127.0.0.1" || seen[ep.Host] {
			t.Errorf("allocation %d: host %s reused or 127.0.0.1", i, ep.Host)
		}
		seen[ep.Host] = true
		eps = append(eps, ep)
	}
	if eps[0].Host != testBase || eps[1].Host != "127.0.5.3" {
		t.Errorf("allocations start %s, %s; want %s, 127.0.5.3", eps[0].Host, eps[1].Host, testBase)
	}
	// Released addresses are handed out again, lowest first.
	p.Release(eps[1])
	ep, err := p.Allocate(port)
	if err != nil {
		t.Fatal(err)
	}
	if ep != eps[1] {
		t.Errorf("after release got %v, want %v", ep, eps[1])
	}
	if err := p.Reserve(ep); err == nil {
		t.Error("Reserve of an allocated endpoint succeeded")
	}
}

func TestAddressPoolSkipsPortTakenByOthers(t *testing.T) {
	p := newTestPool(t, "127.0.5.40")
	// Something else listens on the first address.
	l, err := net.Listen("tcp", "127.0.5.40:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ep, err := p.Allocate(port)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "127.0.5.41" || ep.Port != port {
		t.Errorf("got %v, want 127.0.5.41:%d", ep, port)
	}
}

func TestAddressPoolSkipsLocalhost(t *testing.T) {
	// Record the hosts the pool binds; bind somewhere harmless instead.
	var hosts []string
	p, err := newAddressPool("127.0.0.0", func(network, addr string) (net.Listener, error) {
		host, _, _ := net.SplitHostPort(addr)
		hosts = append(hosts, host)
		return net.Listen(network, "127.0.0.1:0")
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Allocate(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Allocate(0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Host != "127.0.0.0" || b.Host != "127.0.0.2" {
		t.Errorf("got %s and %s, want 127.0.0.0 and 127.0.0.2", a.Host, b.Host)
	}
	for _, h := range hosts {
		if h == "127.0.0.1" {
			t.Errorf("pool probed 127.0.0.1 (hosts %v)", hosts)
		}
	}
}

func TestAddressPoolSingleAddressMode(t *testing.T) {
	p := newTestPool(t, "127.0.0.1")
	a, err := p.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	if a.Host != "127.0.0.1" || b.Host != "127.0.0.1" || a.Port == b.Port || a.Port == 0 || b.Port == 0 {
		t.Errorf("single-address mode gave %v and %v", a, b)
	}
}

// listenOnlyLocalhost simulates macOS: only 127.0.0.1 is bindable.
func listenOnlyLocalhost(network, addr string) (net.Listener, error) {
	host, _, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}
	}
	return net.Listen(network, addr)
}

func TestAddressPoolFallsBackWithoutAliases(t *testing.T) {
	p, err := newAddressPool(testBase, listenOnlyLocalhost)
	if err != nil {
		t.Fatal(err)
	}
	if !p.SingleAddress() {
		t.Fatal("pool did not detect missing loopback aliases")
	}
	ep, err := p.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "127.0.0.1" || ep.Port == 0 {
		t.Errorf("fallback endpoint %v", ep)
	}

	// Aliases that disappear after construction also switch the pool over.
	var mu sync.Mutex
	allow := true
	p2, err := newAddressPool(testBase, func(network, addr string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		if allow {
			return net.Listen(network, addr)
		}
		return listenOnlyLocalhost(network, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	allow = false
	mu.Unlock()
	ep, err = p2.Allocate(0)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "127.0.0.1" || !p2.SingleAddress() {
		t.Errorf("got %v single=%v, want fallback to 127.0.0.1", ep, p2.SingleAddress())
	}
}

func TestAddressPoolPortTakenEverywhere(t *testing.T) {
	// A wildcard listener on the port: every address reports EADDRINUSE.
	const busy = 6379
	p, err := newAddressPool("127.0.5.80", func(network, addr string) (net.Listener, error) {
		host, port, _ := net.SplitHostPort(addr)
		if port == strconv.Itoa(busy) {
			return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
		}
		return net.Listen(network, net.JoinHostPort(host, port))
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.SingleAddress() {
		t.Skip("loopback aliases are not bindable on this system")
	}
	ep, err := p.Allocate(busy)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "127.0.5.80" || ep.Port == busy || ep.Port == 0 {
		t.Errorf("got %v, want 127.0.5.80 with an OS-chosen port", ep)
	}
}

func TestAddressPoolConcurrent(t *testing.T) {
	p := newTestPool(t, "127.0.5.120")
	port := freePort(t, "127.0.5.120")
	const n = 32
	eps := make([]Endpoint, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { eps[i], errs[i] = p.Allocate(port) })
	}
	wg.Wait()
	seen := map[Endpoint]bool{}
	for i, ep := range eps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[ep] {
			t.Errorf("endpoint %v handed out twice", ep)
		}
		seen[ep] = true
	}
}

func TestAddressPoolRejectsBadBase(t *testing.T) {
	for _, base := range []string{"10.0.0.1", "::1", "nonsense"} {
		if _, err := NewAddressPool(base); err == nil {
			t.Errorf("NewAddressPool(%q) succeeded", base)
		}
	}
	p := newTestPool(t, testBase)
	if _, err := p.Allocate(70000); err == nil {
		t.Error("Allocate(70000) succeeded")
	}
}
