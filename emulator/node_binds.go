package emulator

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/elasticache-local/elasticache-local/engine"
)

// nodeBinds owns the bind list of every node (CONFIG SET bind): the
// addresses a node listens on besides its own. A node may hold its group's
// primary endpoint and its reader endpoint at once (a group without
// replicas, whose reader endpoint reaches the primary as on AWS), and the
// two endpoints move independently; each asks nodeBinds for its own address
// only (Want), and every CONFIG SET bind is computed from the node's
// current list, the caller's wish and every other wish to stop listening
// recorded so far, so one endpoint's change never drops another's address.
// Addresses no endpoint asked about (one an earlier run of the emulator
// bound) are left as they are.
//
// A CONFIG SET bind closes and reopens every listener of the node (Redis
// changeBindAddr), resetting the connections not accepted yet, so Apply
// skips it when nothing changes, and wishes to stop recorded before an
// Apply are merged into it: the reader endpoint wishes its address off a
// promoted replica synchronously (SetBackends, before the primary
// endpoint's), so the primary endpoint's bind there takes it off too and
// the reader endpoint's own Apply finds nothing left to change.
type nodeBinds struct {
	admin engine.Admin

	mu    sync.Mutex
	nodes map[engine.Endpoint]*nodeBindList
}

// nodeBindList is one node's recorded wishes.
type nodeBindList struct {
	// apply serialises the CONFIG GET/SET bind pairs sent to the node.
	apply sync.Mutex
	// want is, per extra host, whether the node should listen there; off
	// wishes are dropped once applied. Guarded by nodeBinds.mu.
	want map[string]bool
	// users counts the callers between Want/Apply and the end of their
	// Apply, so an empty list is removed only when nobody holds it.
	users int
}

func newNodeBinds(admin engine.Admin) *nodeBinds {
	return &nodeBinds{admin: admin, nodes: map[engine.Endpoint]*nodeBindList{}}
}

// list returns node's list, counted as in use; release undoes it. The
// caller holds b.mu.
func (b *nodeBinds) list(node engine.Endpoint) *nodeBindList {
	l := b.nodes[node]
	if l == nil {
		l = &nodeBindList{want: map[string]bool{}}
		b.nodes[node] = l
	}
	l.users++
	return l
}

// release ends a use of node's list, forgetting it once nothing is wished;
// the caller holds b.mu.
func (b *nodeBinds) release(node engine.Endpoint, l *nodeBindList) {
	l.users--
	if l.users == 0 && len(l.want) == 0 {
		delete(b.nodes, node)
	}
}

// Want records that node should (on) or should not listen on host too. It
// does no network work: the next Apply on node, by any endpoint, makes it
// so.
func (b *nodeBinds) Want(node engine.Endpoint, host string, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.list(node)
	l.want[host] = on
	b.release(node, l)
}

// Gone records that node no longer listens on host without asking it (its
// server exited: the endpoint could listen there itself): a wish to stop
// is dropped, as an Apply would once done.
func (b *nodeBinds) Gone(node engine.Endpoint, host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.list(node)
	if on, ok := l.want[host]; ok && !on {
		delete(l.want, host)
	}
	b.release(node, l)
}

// Apply brings node's bind list in line with the recorded wishes: one
// CONFIG GET bind, and a CONFIG SET bind only when the list changes, with
// before and after (either may be nil) run right around it (engine
// Admin.Rebind). It reports whether node now listens on host.
func (b *nodeBinds) Apply(ctx context.Context, node engine.Endpoint, host string, before, after func()) (bool, error) {
	b.mu.Lock()
	l := b.list(node)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.release(node, l)
		b.mu.Unlock()
	}()
	l.apply.Lock()
	defer l.apply.Unlock()
	var want map[string]bool
	answered := false
	next, err := b.admin.Rebind(ctx, node, func(have []string) []string {
		answered = true
		b.mu.Lock()
		want = maps.Clone(l.want)
		b.mu.Unlock()
		return nextBinds(node.Host, have, want, host)
	}, before, after)
	if err != nil {
		if !answered {
			return false, errUnreachable{err}
		}
		return slices.Contains(next, host), err
	}
	b.mu.Lock()
	for h, on := range want {
		if !on && l.want[h] == on {
			delete(l.want, h)
		}
	}
	b.mu.Unlock()
	return slices.Contains(next, host), nil
}

// nextBinds is the bind list of a node whose own host is own, that listens
// on have, once the caller's wish for host and every wish to stop are
// applied: its own host first, then the others in the order they were
// added, host last when it is new; hosts want does not name stay. Another
// endpoint's wish to add its address waits for that endpoint's own Apply:
// until then its parking forwarder may still listen there, and the CONFIG
// SET would fail for both.
func nextBinds(own string, have []string, want map[string]bool, host string) []string {
	next := []string{own}
	for _, h := range have {
		if on, asked := want[h]; h != own && (!asked || on) {
			next = append(next, h)
		}
	}
	if want[host] && !slices.Contains(next, host) {
		next = append(next, host)
	}
	return next
}

// errUnreachable is an Apply that could not ask the node its bind list: the
// node is down or hung, not merely refusing an address.
type errUnreachable struct{ err error }

func (e errUnreachable) Error() string { return "node unreachable: " + e.err.Error() }
func (e errUnreachable) Unwrap() error { return e.err }
