package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/elasticache-local/elasticache-local/engine"
)

// waitFor polls cond every few milliseconds until it holds or the deadline
// passes, then fails the test with msg. Tests never sleep a fixed time.
func waitFor(tb testing.TB, timeout time.Duration, msg string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lookTool finds a Debian tool the tests need. Missing locally it skips with
// an install hint; under CI (env CI set) a missing tool is a failure.
func lookTool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found; install it with: sudo apt-get install -y " + pkg
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return path
}

// freePort returns a loopback port nothing listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	return port
}

// redisServer is a redis-server process owned by one test.
type redisServer struct {
	ep    engine.Endpoint
	runID string
	pid   int
}

// startRedis starts redis-server on a free loopback port, waits until it
// answers PING and kills it when the test ends. A port grabbed by someone
// else between freePort and the bind makes the server exit; that is retried
// on another port.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	bin := lookTool(tb, "redis-server", "redis-server")
	var lastErr error
	for range 5 {
		ep := engine.Endpoint{Host: "127.0.0.1", Port: freePort(tb)}
		cmd := exec.Command(bin, "--port", strconv.Itoa(ep.Port), "--bind", ep.Host,
			"--save", "", "--appendonly", "no", "--dir", tb.TempDir())
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		if lastErr = waitPing(ep, exited); lastErr == nil {
			c := newClient(ep.Addr())
			defer c.Close()
			return &redisServer{ep: ep, runID: runID(tb, c), pid: cmd.Process.Pid}
		}
	}
	tb.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// waitPing polls PING until the server answers, exits or 10 s pass.
func waitPing(ep engine.Endpoint, exited <-chan struct{}) error {
	c := newClient(ep.Addr())
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited (port taken?)")
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newClient returns a go-redis client that does not retry, so a connection
// closed by the proxy shows up as an error instead of a silent reconnect.
func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		MaxRetries:      -1,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		PoolSize:        20,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

// infoer is what *redis.Client and *redis.Conn share for INFO.
type infoer interface {
	Info(ctx context.Context, sections ...string) *redis.StringCmd
}

// runID returns the run_id of the server behind c (fails the test on error).
func runID(tb testing.TB, c infoer) string {
	tb.Helper()
	id, err := tryRunID(c)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// tryRunID returns the run_id of the server behind c.
func tryRunID(c infoer) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v, nil
		}
	}
	return "", errors.New("INFO server has no run_id")
}

// tcpBackend is an in-process TCP server for tests that need no redis: it
// runs handle on every connection and, at cleanup, closes the listener and
// every connection and waits for its goroutines.
type tcpBackend struct {
	ep engine.Endpoint
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startTCPBackend(tb testing.TB, handle func(net.Conn)) *tcpBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &tcpBackend{ln: ln, conns: make(map[net.Conn]struct{})}
	tb.Cleanup(b.close)
	a := ln.Addr().(*net.TCPAddr)
	b.ep = engine.Endpoint{Host: a.IP.String(), Port: a.Port}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					_ = c.Close()
				}()
				handle(c)
			}()
		}
	}()
	return b
}

func (b *tcpBackend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// echo writes back everything it reads and passes the FIN on.
func echo(c net.Conn) {
	if _, err := io.Copy(c, c); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
}

// listenProxy starts a proxy on a free loopback port, closed at cleanup.
func listenProxy(tb testing.TB, name string, backends ...engine.Endpoint) *Proxy {
	tb.Helper()
	p, err := Listen("127.0.0.1:0", Options{Name: name})
	if p != nil {
		tb.Cleanup(func() {
			if err := p.Close(); err != nil {
				tb.Errorf("close proxy: %v", err)
			}
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	p.SetBackends(backends)
	return p
}

// roundTrip writes msg on c and reads it back (for echo backends).
func roundTrip(c net.Conn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// settledGoroutines polls until the goroutine count is at most want and
// returns the last count seen.
func settledGoroutines(want int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}
