package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"
)

// buildBinary compiles cmd/elasticache-local once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "elasticache-local")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/elasticache-local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startBinary runs the emulator binary and waits for its health endpoint.
// env (NAME=value) is added to and overrides the test's environment.
func startBinary(t *testing.T, bin, dataDir string, port int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("ELASTICACHE_LOCAL_LISTEN=127.0.0.1:%d", port),
		"ELASTICACHE_LOCAL_DATA_DIR="+dataDir,
		"ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.120.2",
		"ELASTICACHE_LOCAL_RUNTIME="+testRuntime(),
		"ELASTICACHE_LOCAL_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...) // exec uses the last value of a repeated name
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/_elasticache/health", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})
	return cmd
}

// createStandalone creates a one-node cluster and returns a client on it.
func createStandalone(t *testing.T, c *elasticache.Client, id string) *redis.Client {
	t.Helper()
	if _, err := c.CreateCacheCluster(ctxT(t, 10*time.Second), &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String(id), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
	}); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	ep := waitClusterAvailable(t, c, id).CacheNodes[0].Endpoint
	return redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
}

// TestBinaryShutdownAndReap runs the real binary: SIGTERM stops every node;
// after a kill -9 the nodes (processes or containers) live on as orphans,
// and the next emulator on the same data dir finds them by their labels and
// reaps them. A second emulator on a dir in use is refused.
func TestBinaryShutdownAndReap(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx := ctxT(t, 2*time.Minute)
	// This test is about the reap: every start forgets the earlier run's
	// state, as --fresh asks.
	const fresh = "ELASTICACHE_LOCAL_FRESH=true"

	// Graceful shutdown stops the nodes.
	cmd := startBinary(t, bin, dataDir, port, fresh)
	node := createStandalone(t, newClient(url, "us-east-1"), "graceful")
	if err := node.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// A second emulator on the same data dir must refuse to start.
	second := exec.Command(bin, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--data-dir", dataDir)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("second emulator on a busy data dir: err=%v output=%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if err := node.Ping(ctx).Err(); err == nil {
		t.Fatalf("node still answers after the emulator shut down")
	}

	// kill -9 leaves the node running; the next start reaps it.
	cmd = startBinary(t, bin, dataDir, port, fresh)
	orphan := createStandalone(t, newClient(url, "us-east-1"), "orphan")
	cmd.Process.Kill()
	cmd.Wait()
	if err := orphan.Ping(ctx).Err(); err != nil {
		t.Fatalf("the node should outlive a kill -9 of the emulator: %v", err)
	}
	cmd = startBinary(t, bin, dataDir, port, fresh)
	eventually(t, 10*time.Second, func() error {
		if orphan.Ping(ctx).Err() == nil {
			return fmt.Errorf("orphan node still answers")
		}
		return nil
	})
	resp, err := http.Get(url + "/_elasticache/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Status, Runtime, Version string
		Counts                   struct{ CacheClusters int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	if health.Status != "ready" || health.Runtime != testRuntime() || health.Version == "" || health.Counts.CacheClusters != 0 {
		t.Fatalf("health = %+v", health)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
}

// TestBinaryHelp documents every flag and its environment variable.
func TestBinaryHelp(t *testing.T) {
	out, err := exec.Command(buildBinary(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"-listen", "-data-dir", "-runtime", "-region", "-account-id", "-log-level",
		"ELASTICACHE_LOCAL_LISTEN", "ELASTICACHE_LOCAL_DATA_DIR", "ELASTICACHE_LOCAL_RUNTIME", "ELASTICACHE_LOCAL_REGION", "ELASTICACHE_LOCAL_ACCOUNT_ID"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %s:\n%s", want, out)
		}
	}
}

// binaryRun is what a test that runs the emulator binary itself (to kill
// and restart it) needs: the binary, a data dir whose node servers are
// reaped when the test ends, a free API port and an SDK client on it.
type binaryRun struct {
	bin, dataDir, url string
	port              int
	client            *elasticache.Client
}

// newBinaryRun builds the binary and prepares its data dir and port; the
// test starts it with startBinary and the environment it needs.
func newBinaryRun(t *testing.T) *binaryRun {
	t.Helper()
	b := &binaryRun{bin: buildBinary(t), dataDir: t.TempDir(), port: freePort(t)}
	reapAtCleanup(t, b.dataDir)
	b.url = fmt.Sprintf("http://127.0.0.1:%d", b.port)
	b.client = newClient(b.url, "us-east-1")
	return b
}
