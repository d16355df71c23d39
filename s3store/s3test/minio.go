// Package s3test starts a real MinIO server for tests of S3 code: no mock of
// S3 stands in for it. The binary comes from scripts/install-minio.
package s3test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the MinIO binary to use, overriding the cache path.
const EnvBinary = "ELASTICACHE_LOCAL_MINIO"

// Timeouts; generous because CI has two cores shared with the race detector.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	pollInterval = 50 * time.Millisecond
)

// Binary returns the MinIO server binary: $ELASTICACHE_LOCAL_MINIO, else
// ${ELASTICACHE_LOCAL_CACHE:-$HOME/.cache/elasticache-local}/bin/minio,
// where scripts/install-minio puts it. It reports false when there is none.
func Binary() (string, bool) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, isExecutable(p)
	}
	cache := os.Getenv("ELASTICACHE_LOCAL_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", false
		}
		cache = filepath.Join(home, ".cache", "elasticache-local")
	}
	p := filepath.Join(cache, "bin", "minio")
	return p, isExecutable(p)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// StartMinIO starts a MinIO server on a free loopback port with fresh
// random root credentials and an empty data directory, waits until it is
// ready, and stops it when the test ends. Without the binary it skips the
// test, except under CI (CI non-empty), where the binary must be installed
// and its absence fails the test.
func StartMinIO(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		msg := fmt.Sprintf("MinIO server binary not found at %s: run scripts/install-minio (or set %s)", bin, EnvBinary)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	accessKey, secretKey = "ecl"+randHex(6), randHex(16)
	// A free port can be taken by someone else between our probe and
	// MinIO's bind; then MinIO exits at once, and another pair of ports is
	// tried.
	var lastErr error
	for range 3 {
		began := time.Now()
		var srv *server
		srv, lastErr = start(t, bin, accessKey, secretKey)
		if lastErr == nil {
			t.Logf("MinIO ready on %s in %v", srv.addr, time.Since(began).Round(time.Millisecond))
			return srv.addr, accessKey, secretKey
		}
	}
	t.Fatalf("start MinIO: %v", lastErr)
	return "", "", ""
}

type server struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

func start(t testing.TB, bin, accessKey, secretKey string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", addr, "--console-address", console,
		"--certs-dir", filepath.Join(dir, "certs"), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+accessKey,
		"MINIO_ROOT_PASSWORD="+secretKey,
		"MINIO_BROWSER=off", // no web console: faster start, less memory
		"MINIO_UPDATE=off",  // never look for updates
		"MINIO_CI_CD=on",    // tolerate test file systems (no O_DIRECT checks, quiet)
		"HOME="+dir,         // MinIO writes ~/.minio; keep it in the temp dir
	)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	srv := &server{addr: addr, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(srv.exited) }()
	// Registered before readiness is checked, so a server that never gets
	// ready is stopped too.
	t.Cleanup(srv.stop)
	if err := srv.waitReady(); err != nil {
		srv.stop()
		return nil, fmt.Errorf("%w\nMinIO output:\n%s", err, log.String())
	}
	return srv, nil
}

// waitReady polls the readiness probe until it answers 200, the process
// exits, or the deadline passes.
func (s *server) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.addr + "/minio/health/ready"
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MinIO on %s not ready after %s (last: %v)", s.addr, readyTimeout, err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("MinIO on %s exited: %v", s.addr, s.cmd.ProcessState)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits for the exit with a deadline, then kills.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer collects MinIO's output for error messages; MinIO writes from
// two pipes at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // keep the start, which says why it failed
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
