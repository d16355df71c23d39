package emulator

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// limitListener holds at most cap(slots) connections open at once. Past
// that it closes each new connection as soon as it is accepted: a flood of
// idle or slow clients cannot use up file descriptors and memory, and a
// client over the limit learns it at once (SDKs retry a closed connection)
// instead of hanging in the kernel's backlog.
type limitListener struct {
	net.Listener
	slots    chan struct{}
	log      *slog.Logger
	refusing atomic.Bool
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			if l.refusing.CompareAndSwap(true, false) {
				l.log.Info("accepting API connections again", "maxConnections", cap(l.slots))
			}
			return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			if l.refusing.CompareAndSwap(false, true) {
				l.log.Warn("API connection limit reached: closing new connections until open ones end",
					"maxConnections", cap(l.slots), "remote", c.RemoteAddr().String())
			}
			_ = c.Close()
		}
	}
}

// limitedConn gives its slot back when closed (once, however often Close
// is called).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
