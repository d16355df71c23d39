package emulator

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

// endpoint is a stable address in front of changing nodes: a node group's
// primary or reader endpoint. SetBackends never blocks on the network.
type endpoint interface {
	Addr() engine.Endpoint
	SetBackends(backends []engine.Endpoint)
	Close() error
}

// bindEndpoint is a primary or reader endpoint with no forwarder at all:
// one node itself also listens on the endpoint's address (CONFIG SET bind,
// through nodeBinds), so traffic costs exactly what it costs direct to the
// node. The primary endpoint is held by the current primary; the reader
// endpoint by one healthy replica at a time (readerChoice: it moves among
// them over time, as a DNS name resolving to one replica at a time does,
// and at once off a replica that fails or is promoted). On a switch the old
// holder stops listening there and its connections through the endpoint
// are killed (CLIENT KILL LADDR), like a DNS flip makes clients reconnect,
// then the new holder starts listening there; a reader endpoint moving on
// between healthy replicas leaves their connections be (DNS would). It
// needs every node to have an address of its own on the host (the process
// runtime on Linux, the docker runtime on the host network); the forwarder
// in emulator/proxy serves everywhere else.
//
// A preferred node (transit.go) listens off its endpoint's port, so a bind
// would put it at the wrong port: the endpoint then has a demultiplexer of
// its own in front of the node's two listeners (front), one hop, for as
// long as the group is in that transitional mode.
//
// While no node listens there (the primary died, or a switch is under way)
// the endpoint holds the address itself with a parking forwarder: a client
// that reconnects in that moment is not refused (a refused dial puts most
// client libraries into a back-off of their own, 100 ms for go-redis, which
// would be most of a failover's outage) but waits, and is forwarded to the
// next holder once it holds the address. The endpoint keeps an idle
// connection to the holder through the address (engine.Watch), which the
// holder's exit closes: the address is taken over within moments of a
// crash, before the health monitor has even decided on the failover.
type bindEndpoint struct {
	addr    engine.Endpoint
	role    string // "primary" or "reader"
	admin   engine.Admin
	binds   *nodeBinds
	log     *slog.Logger
	demuxes *demuxes
	// rotate is how long a reader endpoint stays on one replica while
	// others are healthy too; zero never moves it on (the primary).
	rotate time.Duration

	// front and frontFor: the endpoint's demultiplexer and the node it
	// serves; touched by run only.
	front    *proxy.Proxy
	frontFor engine.Endpoint

	mu sync.Mutex
	// backends are the nodes the endpoint may be on: the primary first
	// for a primary endpoint, the healthy replicas for a reader endpoint.
	backends []engine.Endpoint
	// fresh: backends were set since run last looked.
	fresh bool
	// holder is the node run last made listen on addr (run's have), for
	// SetBackends to take the address off it at once when it drops out.
	holder *engine.Endpoint
	closed bool
	// lost is set by the watch connection of generation watchGen when it
	// closes: the holder may have exited.
	lost     bool
	watchGen int
	// caught is the parking forwarder the watch goroutine bound on the
	// address itself, for the switcher to take over as its hold.
	caught *proxy.Proxy

	kick chan struct{}
	done chan struct{}
}

// parkFor bounds how long a client connected to an endpoint with no node
// behind it waits for one (proxy.Options.ParkFor): past the default health
// budget for a hung primary, so a failover in progress is waited out.
const parkFor = 10 * time.Second

// proxyOptions are the options of every endpoint's forwarder: a client
// that connects while no node is behind it (a failover under way) waits
// for the next one instead of being closed.
func (e *Emulator) proxyOptions(name string) proxy.Options {
	return proxy.Options{Name: name, Logger: e.log, ParkFor: parkFor}
}

// newBindEndpoint starts the endpoint's switcher; role is "primary" or
// "reader" (rotate applies to a reader only).
func (e *Emulator) newBindEndpoint(addr engine.Endpoint, role, name string, rotate time.Duration) *bindEndpoint {
	if role != "reader" {
		rotate = 0
	}
	b := &bindEndpoint{addr: addr, role: role, admin: e.admin, binds: e.binds, log: e.log.With("endpoint", name), demuxes: e.demux,
		rotate: rotate, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *bindEndpoint) Addr() engine.Endpoint { return b.addr }

// SetBackends sets the nodes the endpoint may be on: a primary endpoint
// listens on the first, a reader endpoint on one of them; an empty set
// makes no node listen there. It is applied asynchronously, and re-applied
// on every call so a restarted holder gets the address back. A holder that
// dropped out is wished off the address at once (nodeBinds.Want), so
// another endpoint's bind on that node in the meantime takes it off in the
// same CONFIG SET.
func (b *bindEndpoint) SetBackends(backends []engine.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.backends, b.fresh = slices.Clone(backends), true
	if b.holder != nil && !b.mayHold(*b.holder, backends) {
		b.binds.Want(*b.holder, b.addr.Host, false)
	}
	b.poke()
}

// mayHold reports whether node may keep the address given backends.
func (b *bindEndpoint) mayHold(node engine.Endpoint, backends []engine.Endpoint) bool {
	if b.role == "reader" {
		return slices.Contains(backends, node)
	}
	return len(backends) > 0 && backends[0] == node
}

// poke wakes the switcher; the caller holds b.mu and b is not closed.
func (b *bindEndpoint) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close takes the address off the node holding it and stops the switcher.
func (b *bindEndpoint) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed, b.backends = true, nil
	close(b.kick)
	b.mu.Unlock()
	<-b.done
	return nil
}

// bindState is what the switcher knows of the address.
type bindState struct {
	// have is the node that listens on the address as far as we know.
	have *engine.Endpoint
	// watch is the idle connection to have through the address.
	watch io.Closer
	// hold is the parking forwarder listening on the address while no
	// node does; drained are earlier ones that stopped listening and
	// forward the clients they parked to have.
	hold    *proxy.Proxy
	drained []*proxy.Proxy
	// gone are nodes found gone (their watch closed, or they did not
	// answer): not chosen again until the next SetBackends (primary) or
	// until they leave the backends or the next rotation (reader).
	gone map[engine.Endpoint]bool
	// reader only (endpoint_reader.go): served are replicas the address
	// moved on from, which may still have clients through it; last is
	// the latest holder, where the rotation goes on from; rotateDue says
	// the rotation interval passed; probed that the address's holder
	// left by an earlier run was looked for.
	served    map[engine.Endpoint]bool
	last      engine.Endpoint
	rotateDue bool
	probed    bool
	// use is a connection to have that tells whether clients connected
	// to it since it took the address, useBase its count of accepted
	// connections then (trackUse); nil when unknown.
	use     *engine.Probe
	useBase int64
	// unused counts the rotation checks in a row that found the holder
	// with no new connection; the next check waits longer (rotationWait).
	unused int
}

// run applies the wanted state whenever it changes, the holder's watch
// connection closed, or (reader) the rotation interval passed.
func (b *bindEndpoint) run() {
	defer close(b.done)
	st := bindState{gone: map[engine.Endpoint]bool{}, served: map[engine.Endpoint]bool{}}
	var tick <-chan time.Time
	var timer *time.Timer
	if b.rotate > 0 {
		timer = time.NewTimer(b.rotate)
		defer timer.Stop()
		tick = timer.C
	}
	for open := true; open; {
		kicked, ticked := false, false
		select {
		case _, open = <-b.kick:
			kicked = true
		case <-tick:
			st.rotateDue, ticked = true, true
		}
		b.step(&st, kicked)
		if ticked {
			timer.Reset(rotationWait(b.rotate, st.unused))
		}
	}
	b.unwatch(&st)
	b.untrackUse(&st)
	b.mu.Lock()
	if b.caught != nil {
		_ = b.caught.Close()
		b.caught = nil
	}
	b.mu.Unlock()
	if st.hold != nil {
		_ = st.hold.Close()
	}
	b.closeDrained(&st)
	if st.have != nil {
		_ = b.release(&st, *st.have, true, false)
	}
	b.closeFront()
}

// step brings the address to the node it should be on. A step of the
// rotation's tick alone (kicked false) that keeps the address where it is
// does nothing more: its holder is checked by the watch connection, and
// re-claiming it every tick would cost every idle group a connection to
// its replica each time.
func (b *bindEndpoint) step(st *bindState, kicked bool) {
	b.mu.Lock()
	lost, fresh, backends := b.lost, b.fresh, b.backends
	b.lost, b.fresh = false, false
	b.mu.Unlock()
	if fresh && b.role == "primary" {
		// The recovery names the next holder, the same node restarted
		// included.
		clear(st.gone)
	}
	if lost && st.have != nil && b.holdAddress(st) {
		// The holder no longer listens there: it exited (a node that
		// merely lost the watch connection still has the address, and
		// holdAddress fails).
		b.log.Info(b.role+" endpoint's node stopped listening; holding the address until the next one takes it", "endpoint", b.addr.Addr(), "node", st.have.Addr())
		b.unwatch(st)
		b.binds.Gone(*st.have, b.addr.Host)
		st.gone[*st.have] = true
		b.dropHave(st)
	} else if lost && st.have != nil {
		b.watchHolder(st)
	}
	if b.role == "reader" {
		b.forgetLeft(st, backends)
	}
	defer func() { st.rotateDue = false }()
	movedOn := false // the reader endpoint's routine move: logged at debug level only
	var dropOld *engine.Endpoint
	defer func() {
		if dropOld != nil { // left without a claim (the endpoint closed)
			b.dropClients(*dropOld)
		}
	}()
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		closed := b.closed
		b.mu.Unlock()
		var want *engine.Endpoint
		if !closed {
			want = b.choose(st, backends)
		}
		if attempt == 0 && !kicked && !lost && st.have != nil && want != nil && *want == *st.have {
			return
		}
		if st.have != nil && (want == nil || *st.have != *want) {
			// A reader endpoint moving on from a healthy replica leaves
			// its clients there, as a DNS change would.
			moveOn := b.role == "reader" && slices.Contains(backends, *st.have) && !st.gone[*st.have]
			// With a next holder, the old one's clients through the
			// address are dropped once the next one has had its claim:
			// dropped now, they would reconnect to the parking forwarder
			// just as it gives the address up to the next holder, and a
			// connection it has not accepted yet is reset.
			kill := !moveOn && want == nil
			if !moveOn && want != nil {
				old := *st.have
				dropOld = &old
			}
			// A holder that exited no longer listens there: the
			// address is held now, not after a CONFIG SET to it has
			// failed (its retries take tens of milliseconds, in which a
			// reconnecting client would be refused and the next holder
			// would wait), and nothing is sent to it. One that still
			// listens keeps it (the listen fails) until release takes
			// it off.
			gone := !moveOn && !closed && b.front == nil && st.hold == nil && b.holdAddress(st)
			b.unwatch(st)
			if gone {
				b.binds.Gone(*st.have, b.addr.Host)
			} else if err := b.release(st, *st.have, kill, !closed); err != nil {
				b.log.Debug("endpoint release", "endpoint", b.addr.Addr(), "node", st.have.Addr(), "err", err)
			}
			if moveOn {
				st.served[*st.have] = true
				movedOn = true
			}
			b.dropHave(st)
			b.closeDrained(st)
		}
		if want == nil {
			if !closed && st.have == nil {
				b.holdAddress(st)
			}
			return
		}
		err := b.claim(st, *want)
		if dropOld != nil {
			b.dropClients(*dropOld)
			dropOld = nil
		}
		if err == nil {
			if st.have == nil && movedOn {
				b.log.Debug("reader endpoint moved on to the next healthy replica", "endpoint", b.addr.Addr(), "node", want.Addr(), "after", b.rotate)
			} else if st.have == nil {
				b.log.Info(b.role+" endpoint switched", "endpoint", b.addr.Addr(), "node", want.Addr())
			}
			st.have, st.last = want, *want
			b.mu.Lock()
			b.holder = want
			b.mu.Unlock()
			for _, p := range st.drained {
				p.SetBackends([]engine.Endpoint{*want})
			}
			if st.watch == nil {
				b.watchHolder(st)
			}
			b.trackUse(st)
			return
		}
		b.log.Debug("endpoint claim", "endpoint", b.addr.Addr(), "node", want.Addr(), "attempt", attempt, "err", err)
		if b.role == "reader" && b.claimFailed(st, *want, err) && attempt < 8 {
			continue // another replica, or the same once freed
		}
		// The old holder may still have the socket (a hung node not yet
		// killed); retry briefly unless a newer state arrived.
		if st.have == nil && !closed {
			b.holdAddress(st)
		}
		if closed || len(b.kick) > 0 {
			return
		}
		if attempt >= 200 {
			// Try again later rather than wait for the next change of
			// the node group, which may never come.
			b.log.Warn(b.role+" endpoint could not be put on its node; trying again in a second", "endpoint", b.addr.Addr(), "node", want.Addr(), "err", err)
			time.AfterFunc(time.Second, b.retry)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retry wakes the switcher unless the endpoint is closed.
func (b *bindEndpoint) retry() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.poke()
	}
}

// choose is the node the address should be on now, nil for none.
func (b *bindEndpoint) choose(st *bindState, backends []engine.Endpoint) *engine.Endpoint {
	if b.role == "reader" {
		return b.chooseReplica(st, backends)
	}
	if len(backends) == 0 || st.gone[backends[0]] {
		return nil
	}
	ep := backends[0]
	return &ep
}

// dropHave forgets the holder.
func (b *bindEndpoint) dropHave(st *bindState) {
	b.untrackUse(st)
	st.have, st.unused = nil, 0
	b.mu.Lock()
	b.holder = nil
	b.mu.Unlock()
}

// holdAddress listens on the address with a parking forwarder unless one
// does already, and reports whether the address is held by it: it fails
// while a node still listens there.
func (b *bindEndpoint) holdAddress(st *bindState) bool {
	b.adoptCaught(st)
	if st.hold != nil {
		return true
	}
	p, err := b.listenVacant()
	if err != nil {
		return false
	}
	st.hold = p
	return true
}

// adoptCaught makes the parking forwarder the watch goroutine bound on the
// address the switcher's hold.
func (b *bindEndpoint) adoptCaught(st *bindState) {
	b.mu.Lock()
	caught := b.caught
	b.caught = nil
	b.mu.Unlock()
	switch {
	case caught == nil:
	case st.hold != nil:
		_ = caught.Close() // cannot happen: one listener per address
	default:
		st.hold = caught
	}
}

// listenVacant binds the parking forwarder on the address; it fails while
// a node listens there.
func (b *bindEndpoint) listenVacant() (*proxy.Proxy, error) {
	return proxy.Listen(b.addr.Addr(), proxy.Options{Name: b.addr.Addr() + " (vacant " + b.role + " endpoint)", Logger: b.log, ParkFor: parkFor})
}

// watchHolder opens the idle connection to the holder through the address;
// its closing kicks the switcher with lost set.
func (b *bindEndpoint) watchHolder(st *bindState) {
	b.unwatch(st)
	b.mu.Lock()
	b.watchGen++
	gen := b.watchGen
	b.mu.Unlock()
	w, err := engine.Watch(b.addr, time.Second, func() {
		b.mu.Lock()
		current := gen == b.watchGen && !b.closed
		b.mu.Unlock()
		if !current {
			return // unwatch closed it: the switcher is moving the address
		}
		// Take the address here rather than after a hand-off to the
		// switcher: a client that reconnects at once must find it held.
		p, _ := b.listenVacant()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.closed {
			if p != nil {
				_ = p.Close()
			}
			return
		}
		// Bound, it is kept even when the switcher unwatched meanwhile
		// (a change of the node group as the holder exited): its own
		// listen failed against this one, and closing it would leave
		// the address refusing connections until its next step.
		if p != nil {
			if b.caught != nil {
				_ = b.caught.Close() // cannot happen: one listener per address
			}
			b.caught = p
		}
		if gen == b.watchGen {
			b.lost = true
		}
		b.poke()
	})
	if err == nil {
		st.watch = w
	}
}

// unwatch closes the watch connection, whose closing then kicks nothing.
func (b *bindEndpoint) unwatch(st *bindState) {
	if st.watch == nil {
		return
	}
	b.mu.Lock()
	b.watchGen++
	b.mu.Unlock()
	_ = st.watch.Close()
	st.watch = nil
}

// closeDrained ends the connections the parking forwarders handed to a
// holder that lost the address, as its CLIENT KILL LADDR ends those that
// came straight through it.
func (b *bindEndpoint) closeDrained(st *bindState) {
	for _, p := range st.drained {
		_ = p.Close()
	}
	st.drained = nil
}

// claim makes node listen on the endpoint too (or, for a preferred node,
// puts the endpoint's demultiplexer in front of it). The parking forwarder
// holding the address gives it up right before the node's CONFIG SET bind
// (its clients follow the node there), so the address is without a
// listener for about that command's round trip. A node that already
// listens there is left alone (nodeBinds.Apply): CONFIG SET bind closes and
// reopens every listening socket, which resets the connections not
// accepted yet (a failover's command to the primary among them), and
// SetBackends re-applies the same holder on every change of a node group's
// members.
func (b *bindEndpoint) claim(st *bindState, node engine.Endpoint) error {
	free := func() {
		b.adoptCaught(st)
		if st.hold != nil {
			_ = st.hold.Unlisten()
			st.drained = append(st.drained, st.hold)
			st.hold = nil
		}
		// The node restarted at the same endpoint in another layout.
		b.closeFront()
	}
	if b.demuxes.servesAt(node) {
		if b.front != nil && b.frontFor == node {
			return nil
		}
		free()
		plain, tls := engine.PreferredEndpoints(node)
		p, err := proxy.ListenDemux(b.addr.Addr(), plain, tls, proxy.Options{Name: b.addr.Addr() + " (TLS or plaintext)", Logger: b.log})
		if err != nil {
			return err
		}
		b.front, b.frontFor = p, node
		return nil
	}
	b.binds.Want(node, b.addr.Host, true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	on, err := b.binds.Apply(ctx, node, b.addr.Host, free, nil)
	if err == nil && !on {
		err = errors.New("a newer change took the address off the node")
	}
	if err == nil {
		b.closeFront()
	}
	return err
}

// closeFront closes the endpoint's demultiplexer and its connections.
func (b *bindEndpoint) closeFront() {
	if b.front != nil {
		_ = b.front.Close()
		b.front = nil
	}
}

// release stops node listening on the endpoint and, with kill, drops the
// connections that came through it; with hold the parking forwarder takes
// the address right after the node's CONFIG SET bind gave it up.
func (b *bindEndpoint) release(st *bindState, node engine.Endpoint, kill, hold bool) error {
	if b.front != nil {
		b.closeFront()
		return nil
	}
	var after func()
	if hold {
		after = func() { b.holdAddress(st) }
	}
	b.binds.Want(node, b.addr.Host, false)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := b.binds.Apply(ctx, node, b.addr.Host, nil, after); err != nil || !kill {
		return err
	}
	return b.admin.KillClientsByLocalAddr(ctx, node, b.addr)
}

// dropClients drops the connections that came to node through the
// endpoint's address, which node no longer listens on, as a DNS flip makes
// clients reconnect.
func (b *bindEndpoint) dropClients(node engine.Endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := b.admin.KillClientsByLocalAddr(ctx, node, b.addr); err != nil {
		b.log.Debug("endpoint: dropping the clients of its last node", "endpoint", b.addr.Addr(), "node", node.Addr(), "err", err)
	}
}
