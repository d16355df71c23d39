package integration

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestNodeRefusingNewConnectionsIsBoundAgain: a node that keeps answering
// on the connections it has but no longer listens on its own address
// serves no client that connects, though the health monitor's PINGs (on a
// kept connection) still succeed. Here a user's CONFIG SET bind moves the
// node off its address (a failed rebind leaves it so too, see
// engine.Probe.Relisten). The monitor notices within its listen checks
// (every 10 s) and binds the node's own address again: new connections are
// answered, and the node keeps its keys and is not replaced.
func TestNodeRefusingNewConnectionsIsBoundAgain(t *testing.T) {
	e := startEmulator(t)
	const keys = 50
	c, before := standaloneWithKeys(t, e, "unbound", keys)
	host, port, err := net.SplitHostPort(adminNodes(t, e.url)["unbound"].Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	conn := c.Conn() // kept: the node answers it whatever it listens on
	t.Cleanup(func() { conn.Close() })
	elsewhere := fmt.Sprintf("127.%d.0.250", addressOctet())
	if err := conn.ConfigSet(ctx, "bind", elsewhere).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second); err == nil {
		t.Fatal("the node still listens on its own address after CONFIG SET bind elsewhere: nothing is tested")
	}
	moved := time.Now()
	p, _ := strconv.Atoi(port)
	eventually(t, 30*time.Second, func() error {
		probe, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second)
		if err != nil {
			return err
		}
		probe.Close()
		fresh := redisClient(t, host, int32(p))
		defer fresh.Close()
		return fresh.Ping(ctx).Err()
	})
	t.Logf("the node listened on its own address again %v after it was moved off", time.Since(moved).Round(time.Millisecond))
	if got, err := conn.ConfigGet(ctx, "bind").Result(); err != nil || got["bind"] != host+" "+elsewhere {
		t.Errorf("bind list after the repair: %v (%v), want its own address first, then %s", got, err, elsewhere)
	}
	expectKeys(t, c, keys)
	if after := nodeInstance(t, e, "unbound"); after != before {
		t.Fatalf("node replaced: %s, then %s", before, after)
	}
	expectNotRecovered(t, e, "unbound")
}
