package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts of the short-lived clients used by the node operations. A call is
// additionally bounded by its context.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = 2 * time.Second
)

// WithClient connects to the node at ep as the admin user and calls fn with
// a single-connection go-redis client that is closed when fn returns. The
// connection is dialled before the client is built, so an unreachable node
// fails fast with the dial error (no go-redis retries, backoff or log
// lines); commands are not retried and respect ctx (its deadline and its
// cancellation) as well as a 2 s I/O timeout. Use it for one-off commands
// the helpers below do not cover (CONFIG SET, FLUSHALL, …).
//
// A connection the node resets before it answered the connection's HELLO
// (so fn's first command was not sent on it), or a dial refused while the
// node's listeners are rebound, is dialled again (admin_rebind.go).
func (a Admin) WithClient(ctx context.Context, ep Endpoint, fn func(ctx context.Context, c *redis.Client) error) error {
	for attempt := 0; ; attempt++ {
		var greeted atomic.Bool
		err := a.withClientOnce(ctx, ep, &greeted, fn)
		if err == nil || greeted.Load() || !a.dialAgain(ctx, ep, err, attempt) {
			return err
		}
	}
}

// withClientOnce is one attempt of WithClient; greeted is set once the
// node answered the connection's HELLO (before fn's first command).
func (a Admin) withClientOnce(ctx context.Context, ep Endpoint, greeted *atomic.Bool, fn func(ctx context.Context, c *redis.Client) error) error {
	addr := ep.Addr()
	opts := a.Options(ep)
	opts.OnConnect = func(context.Context, *redis.Conn) error {
		greeted.Store(true)
		return nil
	}
	d := net.Dialer{Timeout: dialTimeout}
	// A TLS node's connection is handed over after its handshake (the
	// Dialer replaces go-redis's own, which would do the handshake); the
	// deadlines below go to the TCP connection underneath.
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn, err := clientConn(ctx, raw, opts.TLSConfig)
	if err != nil {
		return err
	}
	var once sync.Once
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var first net.Conn
		once.Do(func() { first = conn })
		if first != nil {
			return first, nil
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return clientConn(ctx, c, opts.TLSConfig)
	}
	opts.DialerRetries = 1
	opts.PipelinePoolSize = -1
	c := redis.NewClient(opts)
	// Abort a command in flight when ctx is cancelled, not only at its
	// deadline (go-redis maps deadlines, not cancellation, onto the socket).
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = c.Close()
		once.Do(func() { _ = conn.Close() }) // fn never used the client
	}()
	err = fn(ctx, c)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Ping sends PING to the node at ep.
func (a Admin) Ping(ctx context.Context, ep Endpoint) error {
	if a.Memcached(ep) {
		return a.memcachedPing(ctx, ep)
	}
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	})
}

// Shutdown asks the node at ep to exit without saving (SHUTDOWN NOSAVE NOW
// FORCE, falling back to SHUTDOWN NOSAVE on servers older than 7.0). It
// returns nil once the server closed the connection, which it does when it
// exits; it does not wait for the process to be gone.
func (a Admin) Shutdown(ctx context.Context, ep Endpoint) error {
	if a.Memcached(ep) {
		return ErrNoShutdownCommand
	}
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := shutdown(ctx, c, "NOSAVE", "NOW", "FORCE")
		var rerr redis.Error
		if errors.As(err, &rerr) && !strings.Contains(strings.ToLower(rerr.Error()), "errors trying to shut down") {
			// Pre-7.0 servers reject NOW/FORCE as a syntax error.
			err = shutdown(ctx, c, "NOSAVE")
		}
		return err
	})
}

func shutdown(ctx context.Context, c *redis.Client, modifiers ...string) error {
	args := []any{"SHUTDOWN"}
	for _, m := range modifiers {
		args = append(args, m)
	}
	err := c.Do(ctx, args...).Err()
	switch {
	case err == nil:
		return errors.New("engine: server did not shut down")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isConnReset(err):
		return nil // the server closed the connection as it exited
	default:
		return err
	}
}

func isConnReset(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// parseInfo turns INFO output into key → value, skipping comments.
func parseInfo(text string) map[string]string {
	kv := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[k] = v
		}
	}
	return kv
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
