package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scriptRun is a running scripts/run: its process (the emulator, once the
// script has exec'd it), its output, and its exit.
type scriptRun struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan error
	took   time.Duration // from the start to the first answered health request
}

// startScriptsRun starts scripts/run with env added to the test's
// environment and waits, up to deadline, for its health endpoint at url.
func startScriptsRun(t *testing.T, script, url string, deadline time.Duration, env ...string) *scriptRun {
	t.Helper()
	r := &scriptRun{cmd: exec.Command(script), out: &lockedBuffer{}, exited: make(chan error, 1)}
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	begin := time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	end := time.Now().Add(deadline)
	for {
		select {
		case err := <-r.exited:
			t.Fatalf("scripts/run exited before serving: %v\n%s", err, r.out)
		default:
		}
		if resp, err := http.Get(url + "/_elasticache/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.took = time.Since(begin)
				return r
			}
		}
		if time.Now().After(end) {
			t.Fatalf("no answer from %s within %s:\n%s", url, deadline, r.out)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// terminate sends SIGTERM to the pid scripts/run was started as and waits
// for it to exit.
func (r *scriptRun) terminate(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, r.out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("still running 2 minutes after SIGTERM:\n%s", r.out)
	}
}

// TestScriptsRun runs scripts/run as a new user does: it says it builds,
// the emulator it execs says where it serves, from which data dir, on which
// runtime, and a first command to paste; the pid the user holds is the
// emulator itself, so kill -TERM of it stops the emulator and every node.
// A second run with nothing changed starts the cached binary and brings
// the node back; the time to its first answered request is logged (not
// asserted: the machine is shared).
func TestScriptsRun(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: scripts/run builds the emulator with it")
	}
	// A cache dir of the test's own for the built binary, with the user's
	// Go build cache (whose default lives in the same cache dir), so the
	// build is the incremental one a user gets.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	cacheHome, dataDir := t.TempDir(), t.TempDir()
	reapAtCleanup(t, dataDir)
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	script, err := filepath.Abs("../scripts/run")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"XDG_CACHE_HOME=" + cacheHome,
		"GOCACHE=" + strings.TrimSpace(string(gocache)),
		"ELASTICACHE_LOCAL_LISTEN=127.0.0.1:" + strconv.Itoa(port),
		"ELASTICACHE_LOCAL_DATA_DIR=" + dataDir,
		"ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.122.2",
		"ELASTICACHE_LOCAL_RUNTIME=" + testRuntime(),
		"ELASTICACHE_LOCAL_LOG_LEVEL=info",
	}

	// The first run builds (the binary is new to this cache dir).
	first := startScriptsRun(t, script, url, 10*time.Minute, env...)
	t.Logf("first run (build into an empty cache dir, warm Go build cache): first answer after %s", first.took.Round(time.Millisecond))
	eventually(t, 10*time.Second, func() error {
		// The first command is logged right after the ready line.
		for _, want := range []string{"run: building", "elasticache-local ready", "endpoint=" + url, "dataDir=" + dataDir,
			"runtime=" + testRuntime(), "aws --endpoint-url " + url, "elasticache describe-replication-groups"} {
			if !strings.Contains(first.out.String(), want) {
				return fmt.Errorf("output lacks %q:\n%s", want, first.out)
			}
		}
		return nil
	})
	// The pid the user holds is the emulator's: the script exec'd it.
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", first.cmd.Process.Pid)); err == nil {
		if filepath.Base(exe) != "elasticache-local" || !strings.HasPrefix(exe, cacheHome) {
			t.Errorf("pid %d runs %s; want the elasticache-local built into the cache dir", first.cmd.Process.Pid, exe)
		}
	}
	c := newClient(url, "us-east-1")
	node := createStandalone(t, c, "run-script")
	if err := node.Ping(ctxT(t, 10*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	if len(nodeServers(t, dataDir, true)) == 0 {
		t.Fatalf("no node server of the data dir runs")
	}
	first.terminate(t)
	assertAllStopped(t, dataDir)
	if resp, err := http.Get(url + "/_elasticache/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("the emulator still answers after SIGTERM")
	}

	// A restart: the cached binary (rebuilt only if someone changed the
	// checkout meanwhile) brings the node back; SIGTERM stops it again.
	second := startScriptsRun(t, script, url, 10*time.Minute, env...)
	rebuilt := strings.Contains(second.out.String(), "run: building")
	t.Logf("restart (rebuilt: %v): scripts/run to the first answered health request took %s", rebuilt, second.took.Round(time.Millisecond))
	waitClusterAvailable(t, c, "run-script")
	if len(nodeServers(t, dataDir, true)) == 0 {
		t.Fatalf("the restart did not bring the node back")
	}
	second.terminate(t)
	assertAllStopped(t, dataDir)
}
