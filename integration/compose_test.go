package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/docker"
)

// composeCmd runs docker-compose (or the docker compose plugin) on the
// repository's docker-compose.yml.
func composeCmd(t *testing.T, project string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	var cmd *exec.Cmd
	base := append([]string{"-p", project, "-f", "../docker-compose.yml"}, args...)
	if _, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command("docker-compose", base...)
	} else {
		cmd = exec.Command("docker", append([]string{"compose"}, base...)...)
	}
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// TestComposeEndToEnd brings up docker-compose.yml offline (images built by
// scripts/build-offline-images), drives the scenario with the AWS CLI:
// create a group, write, snapshot to MinIO, restore; then docker-compose down
// leaves no node container or network behind.
func TestComposeEndToEnd(t *testing.T) {
	if testRuntime() != "docker" {
		t.Skip("runs with the docker runtime suite (ELASTICACHE_LOCAL_TEST_RUNTIME=docker)")
	}
	requireAWSCLI(t)
	if out, err := exec.Command("../scripts/build-offline-images", "--all").CombinedOutput(); err != nil {
		t.Fatalf("build-offline-images: %v\n%s", err, out)
	}
	port, minioPort := freePort(t), freePort(t)
	project := fmt.Sprintf("ectest%d", time.Now().UnixNano()%1_000_000)
	env := []string{
		"ELASTICACHE_LOCAL_PORT=" + strconv.Itoa(port),
		"MINIO_PORT=" + strconv.Itoa(minioPort),
		"ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.140.2",
	}
	t.Cleanup(func() {
		if out, err := composeCmd(t, project, env, "down", "-v").CombinedOutput(); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := composeCmd(t, project, env, "up", "-d").CombinedOutput(); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 60*time.Second, func() error {
		resp, err := http.Get(url + "/_elasticache/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})
	ctx := ctxT(t, 5*time.Minute)

	runAWS(t, ctx, url, "create-replication-group", "--replication-group-id", "orders", "--replication-group-description", "compose",
		"--engine", "redis", "--cache-node-type", "cache.t4g.micro", "--num-cache-clusters", "2")
	runAWS(t, ctx, url, "wait", "replication-group-available", "--replication-group-id", "orders")
	ep := primaryEndpointCLI(t, url, "orders")
	if err := redisClient(t, ep.Host, int32(ep.Port)).Set(ctx, "k", "from-compose", 0).Err(); err != nil {
		t.Fatalf("SET through the primary endpoint: %v", err)
	}
	runAWS(t, ctx, url, "create-snapshot", "--replication-group-id", "orders", "--snapshot-name", "s1")
	eventually(t, 60*time.Second, func() error {
		var out struct {
			Snapshots []struct{ SnapshotStatus string }
		}
		if err := json.Unmarshal(runAWS(t, ctx, url, "describe-snapshots", "--snapshot-name", "s1"), &out); err != nil {
			return err
		}
		if out.Snapshots[0].SnapshotStatus != "available" {
			return fmt.Errorf("snapshot %s", out.Snapshots[0].SnapshotStatus)
		}
		return nil
	})
	runAWS(t, ctx, url, "create-replication-group", "--replication-group-id", "restored", "--replication-group-description", "from s1",
		"--snapshot-name", "s1")
	runAWS(t, ctx, url, "wait", "replication-group-available", "--replication-group-id", "restored")
	rep := primaryEndpointCLI(t, url, "restored")
	if v, err := redisClient(t, rep.Host, int32(rep.Port)).Get(ctx, "k").Result(); err != nil || v != "from-compose" {
		t.Fatalf("restored k = %q, %v", v, err)
	}

	if out, err := composeCmd(t, project, env, "down", "-v").CombinedOutput(); err != nil {
		t.Fatalf("compose down: %v\n%s", err, out)
	}
	// Only the compose emulator's own scope (its --data-dir): the docker
	// suite's other tests run node containers of their own meanwhile.
	scope := "label=" + docker.LabelScope + "=/data"
	left, _ := exec.Command("docker", "ps", "-aq", "--filter", scope).Output()
	nets, _ := exec.Command("docker", "network", "ls", "-q", "--filter", scope).Output()
	if strings.TrimSpace(string(left)) != "" || strings.TrimSpace(string(nets)) != "" {
		t.Fatalf("compose down left node containers %q / networks %q", left, nets)
	}
}

func primaryEndpointCLI(t *testing.T, url, id string) engine.Endpoint {
	t.Helper()
	var out struct {
		ReplicationGroups []struct {
			NodeGroups []struct {
				PrimaryEndpoint struct {
					Address string
					Port    int
				}
			}
		}
	}
	if err := json.Unmarshal(runAWS(t, ctxT(t, time.Minute), url, "describe-replication-groups", "--replication-group-id", id), &out); err != nil {
		t.Fatal(err)
	}
	p := out.ReplicationGroups[0].NodeGroups[0].PrimaryEndpoint
	return engine.Endpoint{Host: p.Address, Port: p.Port}
}
