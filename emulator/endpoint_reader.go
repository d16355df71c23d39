package emulator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// DefaultReaderEndpointRotation is how long a bound reader endpoint stays
// on one replica while others are healthy too, like a short DNS TTL: a
// client resolving the reader endpoint's name reaches one replica for that
// long, and its connections stay there after the name moves on. Each move
// rebinds two replicas (CONFIG SET bind), which leaves the address without
// a listener for well under a millisecond (a connect then is refused); a
// few seconds keeps that rare while connection pools opened seconds apart
// still land on different replicas.
const DefaultReaderEndpointRotation = 5 * time.Second

// chooseReplica is the replica a reader endpoint should be on: the one it
// is on until the rotation interval passes and it accepted a connection
// since it took the address (usedSinceClaim), then the next healthy one in
// address order; the one an earlier run of the emulator left it on, at the
// start. backends are the healthy replicas (the primary when there is
// none).
func (b *bindEndpoint) chooseReplica(st *bindState, backends []engine.Endpoint) *engine.Endpoint {
	var cands []engine.Endpoint
	for _, ep := range backends {
		if !st.gone[ep] {
			cands = append(cands, ep)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(x, y engine.Endpoint) int { return strings.Compare(x.Addr(), y.Addr()) })
	if st.have == nil && !st.probed && st.hold == nil {
		st.probed = true
		if h := b.probeHolder(cands[0]); h != nil && slices.Contains(cands, *h) {
			return h
		}
	}
	if st.have != nil && slices.Contains(cands, *st.have) {
		// Moving a preferred group's endpoint would close its
		// demultiplexer's connections: it stays until its node fails.
		if !st.rotateDue || len(cands) < 2 || b.front != nil || !b.usedSinceClaim(st) {
			return st.have
		}
		next := after(cands, *st.have)
		if !b.answers(next) {
			st.gone[next] = true
			return st.have
		}
		return &next
	}
	next := after(cands, st.last)
	return &next
}

// readerUseTimeout bounds the reader endpoint's question to its holder
// whether clients connected to it.
const readerUseTimeout = 300 * time.Millisecond

// trackUse opens a connection to the reader endpoint's new holder and notes
// how many connections it has accepted so far (its own, and the endpoint's
// watch connection, included), so the rotation moves the address on only
// once a client connected since (usedSinceClaim): a move nobody connects
// across changes nothing a client sees, and costs two rebinds and the
// emulator's connections to both replicas, which with hundreds of idle
// groups was most of the emulator's idle CPU. A claim of the holder it
// tracks already (a kick that keeps the address where it is) keeps the
// count it started from: dropHave ends the tracking when the holder
// changes.
func (b *bindEndpoint) trackUse(st *bindState) {
	if st.use != nil {
		return
	}
	if b.role != "reader" || b.rotate <= 0 || b.front != nil || st.have == nil {
		return
	}
	p := b.admin.NewProbe(*st.have, readerUseTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), readerUseTimeout)
	defer cancel()
	n, err := p.ConnectionsReceived(ctx)
	if err != nil {
		_ = p.Close()
		b.log.Debug("reader endpoint: its holder's connection count is unknown; rotating on time alone", "endpoint", b.addr.Addr(), "node", st.have.Addr(), "err", err)
		return
	}
	st.use, st.useBase = p, n
}

// untrackUse closes trackUse's connection.
func (b *bindEndpoint) untrackUse(st *bindState) {
	if st.use != nil {
		_ = st.use.Close()
		st.use = nil
	}
}

// usedSinceClaim reports whether the reader endpoint's holder accepted a
// connection since it took the address, through the address or not (its
// count does not tell them apart: a direct client, or a reconnecting
// health check, moves the address on too), or whether that is unknown.
func (b *bindEndpoint) usedSinceClaim(st *bindState) bool {
	if st.use == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), readerUseTimeout)
	defer cancel()
	n, err := st.use.ConnectionsReceived(ctx)
	used := err != nil || n != st.useBase
	st.unused++
	if used {
		st.unused = 0
	}
	return used
}

// maxUnusedBackoff bounds how far rotationWait stretches the rotation of
// an unused reader endpoint: 2^3 rotations (40 s at the default).
const maxUnusedBackoff = 3

// rotationWait is how long a reader endpoint waits for its next rotation
// check after unused checks in a row found no client connected to its
// holder: the rotation interval, doubled for each such check up to
// maxUnusedBackoff times. Asking the holder costs a round trip on both
// sides, which for hundreds of idle groups was a good part of the
// emulator's idle CPU; a client that starts connecting after a long quiet
// spell sees the address move after at most that long, and from then on
// every rotation interval.
func rotationWait(rotate time.Duration, unused int) time.Duration {
	return rotate << min(unused, maxUnusedBackoff)
}

// after is the first of sorted cands past ep, wrapping around.
func after(cands []engine.Endpoint, ep engine.Endpoint) engine.Endpoint {
	for _, c := range cands {
		if c.Addr() > ep.Addr() {
			return c
		}
	}
	return cands[0]
}

// answers reports whether node answers an admin command at once: the
// rotation leaves the replica the address is on only for one that does.
func (b *bindEndpoint) answers(node engine.Endpoint) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := b.admin.ConfigGet(ctx, node, "bind")
	return err == nil
}

// probeHolder asks whatever listens on the address which node it is (its
// bind list starts with its own host), nil when nothing answers. like is a
// node of the group, which serves TLS or not as the address does.
func (b *bindEndpoint) probeHolder(like engine.Endpoint) *engine.Endpoint {
	if tls := b.admin.TLS(like); tls != b.admin.TLS(b.addr) {
		b.admin.UseTLS(b.addr, tls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cur, err := b.admin.ConfigGet(ctx, b.addr, "bind")
	if err != nil {
		return nil
	}
	f := strings.Fields(cur)
	if len(f) == 0 || f[0] == b.addr.Host {
		return nil
	}
	return &engine.Endpoint{Host: f[0], Port: b.addr.Port}
}

// claimFailed handles a reader endpoint's failed claim on want and reports
// whether to try again at once: a node that does not answer is passed over
// for another; a node that answers but could not bind the address finds it
// held by another node (where an earlier run of the emulator left it, or
// one promoted meanwhile), which is taken off it.
func (b *bindEndpoint) claimFailed(st *bindState, want engine.Endpoint, err error) bool {
	var unreachable errUnreachable
	if errors.As(err, &unreachable) {
		st.gone[want] = true
		return true
	}
	h := b.probeHolder(want)
	if h == nil || *h == want {
		return false
	}
	b.log.Info("reader endpoint's address is held by another node; taking it off there", "endpoint", b.addr.Addr(), "node", h.Addr(), "for", want.Addr())
	b.binds.Want(*h, b.addr.Host, false)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := b.binds.Apply(ctx, *h, b.addr.Host, nil, nil); err != nil {
		return false
	}
	_ = b.admin.KillClientsByLocalAddr(ctx, *h, b.addr)
	return true
}

// forgetLeft drops what a reader endpoint knows of nodes that left its
// backends, and ends their clients through the address (a replica promoted,
// or removed), like a DNS flip.
func (b *bindEndpoint) forgetLeft(st *bindState, backends []engine.Endpoint) {
	if st.rotateDue {
		clear(st.gone) // a node back meanwhile is tried again
	}
	for ep := range st.gone {
		if !slices.Contains(backends, ep) {
			delete(st.gone, ep)
		}
	}
	for ep := range st.served {
		if slices.Contains(backends, ep) {
			continue
		}
		delete(st.served, ep)
		if st.have != nil && *st.have == ep {
			continue // released with its clients below
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		if err := b.admin.KillClientsByLocalAddr(ctx, ep, b.addr); err != nil {
			b.log.Debug("reader endpoint: closing a former replica's clients", "node", ep.Addr(), "err", err)
		}
		cancel()
	}
}
