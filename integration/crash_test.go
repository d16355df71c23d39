package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/engine/docker"
)

// crashNodes are the nodes one round of TestCrashLoopLeavesNoOrphans
// creates: two groups of a primary and a replica, two single-node clusters.
const crashNodes = 6

// crashAddressBase is the node address range of this test's emulators, a
// range of its own so that no other test's nodes listen there.
const crashAddressBase = "127.0.121."

// TestCrashLoopLeavesNoOrphans runs the real binary, starts creates of
// several groups and clusters at once and kills the emulator with SIGKILL
// at a different point of them each round: before any node started, after
// the first, the second... node server appeared (the kill lands wherever
// the other starts are then: writing labels, forking, waiting for PING,
// syncing replicas). The next run on the same data dir must leave no node
// server running that no record owns, and after the final clean shutdown
// nothing of the data dir runs and nothing listens on the node addresses.
func TestCrashLoopLeavesNoOrphans(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	const rounds = 12
	addrEnv := "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=" + crashAddressBase + "2"
	// This test is about the reap: every start forgets the earlier run's
	// state and reaps its nodes, as --fresh asks.
	const freshEnv = "ELASTICACHE_LOCAL_FRESH=true"
	for round := 0; round < rounds; round++ {
		cmd := startBinary(t, bin, dataDir, port, addrEnv, freshEnv)
		// The start-up Reap has run: whatever the last crash left is gone.
		// (On docker a create the daemon finishes after that Reap can
		// still appear; the shutdown sweep removes it, checked at the end.)
		if testRuntime() == "process" {
			if left := nodeServers(t, dataDir, false); len(left) > 0 {
				t.Fatalf("round %d: after restart, node servers no record owns: %v", round, left)
			}
		}
		c := newClient(url, "us-east-1")
		var creates sync.WaitGroup
		for _, g := range []string{"crash-a", "crash-b"} {
			creates.Add(1)
			go func() {
				defer creates.Done()
				_, _ = c.CreateReplicationGroup(ctxT(t, 10*time.Second), &elasticache.CreateReplicationGroupInput{
					ReplicationGroupId: aws.String(g), ReplicationGroupDescription: aws.String("crash loop"),
					CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
					NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true),
				})
			}()
		}
		for _, id := range []string{"crash-c", "crash-d"} {
			creates.Add(1)
			go func() {
				defer creates.Done()
				_, _ = c.CreateCacheCluster(ctxT(t, 10*time.Second), &elasticache.CreateCacheClusterInput{
					CacheClusterId: aws.String(id), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
				})
			}()
		}
		killAt := round % (crashNodes + 1)
		eventually(t, time.Minute, func() error {
			if n := len(nodeServers(t, dataDir, true)); n < killAt {
				return fmt.Errorf("round %d: %d node servers running, waiting for %d", round, n, killAt)
			}
			return nil
		})
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		creates.Wait()
		t.Logf("round %d: killed after %d node servers started; %d running after the kill", round, killAt, len(nodeServers(t, dataDir, true)))
	}

	cmd := startBinary(t, bin, dataDir, port, addrEnv, freshEnv)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if left := nodeServers(t, dataDir, false); len(left) > 0 {
		t.Errorf("after the final shutdown, node servers (or containers) of the data dir remain: %v", left)
	}
	for i := 2; i < 2+4*crashNodes; i++ {
		addr := net.JoinHostPort(crashAddressBase+strconv.Itoa(i), "6379")
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("after the final shutdown something listens on node address %s", addr)
		}
	}
}

// nodeServers describes the node servers of dataDir: on the process runtime
// every live process whose command line names a file under dataDir and a
// server binary; on the docker runtime every container in dataDir's scope
// (only the running ones when running is set).
func nodeServers(t testing.TB, dataDir string, running bool) []string {
	t.Helper()
	if testRuntime() == "docker" {
		args := []string{"ps", "-q", "--filter", "label=" + docker.LabelScope + "=" + dataDir}
		if !running {
			args = append(args, "-a")
		}
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Fatalf("docker ps: %v", err)
		}
		return strings.Fields(string(out))
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, dataDir+string(os.PathSeparator)) && strings.Contains(cmdline, "-server") {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}
