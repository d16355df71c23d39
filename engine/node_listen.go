package engine

// A node that answers on the connections it has but accepts no new one: a
// CONFIG SET bind that failed (Redis 7.0 then fails to open the old list
// too when an address of it was taken in between, see rebindAfterFailure)
// leaves its server listening nowhere, while every connection it had,
// the health monitor's among them, keeps answering. Such a node serves no
// client that connects, so the health monitor looks for it (Refuses) and
// binds its addresses again through the connection it holds (Relisten).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// configSetter is what rebindAfterFailure sends its CONFIG SETs through: a
// client of the admin's (Rebind) or the probe's held connection (Relisten).
type configSetter interface {
	ConfigSet(ctx context.Context, parameter, value string) *redis.StatusCmd
}

// markListening records whether the node at ep listens on its addresses
// after a rebind: false when a failed one left it listening nowhere.
func (a Admin) markListening(ep Endpoint, listening bool) {
	if a.tls == nil {
		return
	}
	a.tls.mu.Lock()
	defer a.tls.mu.Unlock()
	if listening {
		delete(a.tls.nowhere, ep)
	} else {
		a.tls.nowhere[ep] = true
	}
}

// ListensNowhere reports whether the last rebind of the node at ep left it
// listening on none of its addresses, its own included (every retry of
// Rebind failed), and no rebind since bound it again.
func (a Admin) ListensNowhere(ep Endpoint) bool {
	if a.tls == nil {
		return false
	}
	a.tls.mu.RLock()
	defer a.tls.mu.RUnlock()
	return a.tls.nowhere[ep]
}

// Refuses reports whether a TCP connection to ep's own address is refused
// (nothing listens there), trying for up to timeout; a connection made, or
// a dial that times out (a hung server's full queue), is not a refusal. The
// connection made is reset at once (no TIME_WAIT left behind), so a check
// costs the node one accept, and is counted (checkConnections): the
// node's count of accepted connections tells whether clients came
// (Probe.ConnectionsReceived), and these are not clients.
func (a Admin) Refuses(ep Endpoint, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", ep.Addr(), timeout)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	if a.tls != nil {
		a.tls.mu.Lock()
		a.tls.checks[ep]++
		a.tls.mu.Unlock()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
	return false
}

// checkConnections is how many connections Refuses made to the node at ep.
func (a Admin) checkConnections(ep Endpoint) int64 {
	if a.tls == nil {
		return 0
	}
	a.tls.mu.RLock()
	defer a.tls.mu.RUnlock()
	return a.tls.checks[ep]
}

// Relisten binds the node's addresses again (CONFIG SET bind with the list
// it reports, its own address first, which reopens every listener even when
// unchanged) through the
// probe's open connection, the only way to reach a node that listens
// nowhere; while that fails (an address is still taken), its own address
// and the others it can get, as Rebind's retries do, for up to repairFor.
// It returns nil once the node listens on its own address again. Not for
// Memcached nodes, which are never rebound.
func (p *Probe) Relisten(ctx context.Context, repairFor time.Duration) error {
	if p.mc != nil {
		return errors.New("engine: Relisten of a Memcached node")
	}
	defer p.admin.rebinding(p.ep)()
	c := p.held()
	kv, err := c.ConfigGet(ctx, "bind").Result()
	if err = p.done(c, err); err != nil {
		return err
	}
	cur := strings.Fields(kv["bind"])
	// Its own address first, as every list the emulator sets has it
	// (someone's CONFIG SET bind may have left it out).
	want := append([]string{p.ep.Host}, slices.DeleteFunc(slices.Clone(cur), func(h string) bool { return h == p.ep.Host })...)
	err = c.ConfigSet(ctx, "bind", strings.Join(want, " ")).Err()
	if err == nil {
		p.admin.markListening(p.ep, true)
		return nil
	}
	if err = p.done(c, err); !IsReply(err) {
		return err
	}
	if got, _ := p.admin.rebindAfterFailure(ctx, c, p.ep, cur, want, repairFor); !slices.Contains(got, p.ep.Host) {
		return fmt.Errorf("CONFIG SET bind %q on %s: %w", strings.Join(want, " "), p.ep.Addr(), err)
	}
	return nil
}
