package engine

// A node's own address refuses connections for a moment while its
// listeners are rebound: Redis 7.0's CONFIG SET bind closes every listening
// socket and opens the new list's, its own address's included, so a
// connection that arrives in between is refused, and one its kernel had
// accepted but the server had not is reset. The endpoints rebind nodes on
// every move of an address, so the admin's connections (which must not
// fail for that: a SHUTDOWN SAVE that seemed sent, a REPLICAOF of a
// failover) are dialled again across such a moment. A refusal outside one
// is a node that does not listen, reported at once.

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

const (
	// rebindGrace is how long after its CONFIG SET bind returned a node's
	// refusal is still taken for the rebind (the listeners are open when
	// the reply is sent; the grace covers a dial that was under way).
	rebindGrace = 50 * time.Millisecond
	// rebindRetryPause is the first pause before dialling a node again
	// whose dial failed during a rebind, doubled on each further failure:
	// the new listeners open within it, and a node rebound again and again
	// (the tests do) is given up on after about 30 ms.
	rebindRetryPause = time.Millisecond
	// withClientAttempts bounds the dials of one WithClient.
	withClientAttempts = 6
)

// rebindMark is one node's rebinds: how many run, and when the last ended.
type rebindMark struct {
	running int
	ended   time.Time
}

// rebinding marks the node at ep as having its listeners rebound until the
// returned function is called.
func (a Admin) rebinding(ep Endpoint) (done func()) {
	if a.tls == nil {
		return func() {}
	}
	a.tls.mu.Lock()
	m := a.tls.rebinds[ep]
	m.running++
	a.tls.rebinds[ep] = m
	a.tls.mu.Unlock()
	return func() {
		a.tls.mu.Lock()
		defer a.tls.mu.Unlock()
		m := a.tls.rebinds[ep]
		m.running--
		m.ended = time.Now()
		a.tls.rebinds[ep] = m
		// Forget the marks that are over, so the map does not grow with
		// every node ever rebound.
		for k, v := range a.tls.rebinds {
			if v.running == 0 && time.Since(v.ended) > rebindGrace {
				delete(a.tls.rebinds, k)
			}
		}
	}
}

// Rebinding reports whether the listeners of the node at ep are being
// rebound (a CONFIG SET bind, and its retries while the node's own address
// is taken), or were within rebindGrace: a refused connection then is the
// rebind, not the node's exit.
func (a Admin) Rebinding(ep Endpoint) bool {
	if a.tls == nil {
		return false
	}
	a.tls.mu.RLock()
	defer a.tls.mu.RUnlock()
	m, ok := a.tls.rebinds[ep]
	return ok && (m.running > 0 || time.Since(m.ended) <= rebindGrace)
}

// dialAgain reports whether WithClient should dial the node at ep again
// after err, its attempt-th attempt, on which the node had not answered the
// connection's greeting (so fn sent nothing): the connection was reset (a
// rebind, or a node exiting, which the next dial tells apart), or its dial
// failed while the node's listeners are rebound (refused; or timed out: a
// SYN that reaches a listener as it closes is dropped). It pauses before
// such a dial's retry.
func (a Admin) dialAgain(ctx context.Context, ep Endpoint, err error, attempt int) bool {
	if attempt+1 >= withClientAttempts || ctx.Err() != nil {
		return false
	}
	if isConnReset(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var dial *net.OpError
	refused := errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dial) && dial.Op == "dial"
	if !refused || !a.Rebinding(ep) {
		return false
	}
	t := time.NewTimer(rebindRetryPause << attempt)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
