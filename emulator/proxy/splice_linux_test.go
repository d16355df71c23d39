package proxy

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// pipeFDs counts the pipes this process holds open.
func pipeFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// TestForwardingUsesSplice proves the data path is splice(2): Go's splice
// holds a pipe (two fds) for as long as a copy runs, the generic 32 KiB
// buffer copy holds none. With n idle forwarded connections, two copies each,
// the process must hold at least 4n pipe fds. A wrapper type around either
// *net.TCPConn would make this fail.
func TestForwardingUsesSplice(t *testing.T) {
	be := startTCPBackend(t, echo)
	p := listenProxy(t, "primary", be.ep)
	const n = 4
	for i := range n {
		c, err := net.Dial("tcp", p.Addr().Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := roundTrip(c, "ping"); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, "every copy to hold a splice pipe", func() bool {
		return pipeFDs(t) >= 4*n
	})
}

// TestDemuxUsesSplice: routing leaves the connection a plain TCP socket,
// so both directions splice (see TestForwardingUsesSplice).
func TestDemuxUsesSplice(t *testing.T) {
	be := startTCPBackend(t, echo)
	p := listenDemux(t, be.ep, be.ep)
	const n = 4
	for i := range n {
		c, err := net.Dial("tcp", p.Addr().Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := roundTrip(c, "ping"); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, "every copy to hold a splice pipe", func() bool { return pipeFDs(t) >= 4*n })
}
