package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// awsCLI is Debian's AWS CLI v2; another `aws` may come first on PATH, so
// the tests name this one.
const awsCLI = "/usr/bin/aws"

// requireAWSCLI skips locally when the CLI is missing; in CI (CI=true) a
// missing CLI is a failure, because the project's scripts install it.
func requireAWSCLI(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI: scripts/install-deps must install Debian's awscli", awsCLI)
		}
		t.Skipf("%s not installed (run scripts/install-deps)", awsCLI)
	}
}

// runAWS runs the AWS CLI against the emulator with throwaway credentials
// and no user configuration, and returns its stdout.
func runAWS(t *testing.T, ctx context.Context, url string, args ...string) []byte {
	t.Helper()
	full := append([]string{"--endpoint-url", url, "--output", "json", "elasticache"}, args...)
	cmd := exec.CommandContext(ctx, awsCLI, full...)
	home := t.TempDir()
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_PAGER=",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aws %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestAWSCLIScenario drives the README walkthrough with the AWS CLI v2,
// including both of its waiters.
func TestAWSCLIScenario(t *testing.T) {
	requireAWSCLI(t)
	e := startEmulator(t)
	ctx := ctxT(t, 3*time.Minute)

	runAWS(t, ctx, e.url, "create-replication-group",
		"--replication-group-id", "orders", "--replication-group-description", "orders",
		"--engine", "redis", "--cache-node-type", "cache.t4g.micro", "--num-cache-clusters", "3")
	runAWS(t, ctx, e.url, "wait", "replication-group-available", "--replication-group-id", "orders")

	var desc struct {
		ReplicationGroups []struct {
			Status         string
			MemberClusters []string
			NodeGroups     []struct {
				PrimaryEndpoint struct {
					Address string
					Port    int32
				}
				ReaderEndpoint struct {
					Address string
					Port    int32
				}
				NodeGroupMembers []struct {
					CacheClusterId string
					CurrentRole    string
					ReadEndpoint   struct {
						Address string
						Port    int32
					}
				}
			}
		}
	}
	out := runAWS(t, ctx, e.url, "describe-replication-groups", "--replication-group-id", "orders")
	if err := json.Unmarshal(out, &desc); err != nil {
		t.Fatalf("describe output: %v\n%s", err, out)
	}
	g := desc.ReplicationGroups[0]
	if g.Status != "available" || len(g.MemberClusters) != 3 || len(g.NodeGroups[0].NodeGroupMembers) != 3 {
		t.Fatalf("group = %+v", g)
	}
	ng := g.NodeGroups[0]
	primary := redisClient(t, ng.PrimaryEndpoint.Address, ng.PrimaryEndpoint.Port)
	if err := primary.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	for _, m := range ng.NodeGroupMembers {
		rc := redisClient(t, m.ReadEndpoint.Address, m.ReadEndpoint.Port)
		eventually(t, 5*time.Second, func() error {
			if v, err := rc.Get(ctx, "k").Result(); err != nil || v != "v" {
				return fmt.Errorf("GET k on %s (%s) = %q, %v", m.CacheClusterId, m.CurrentRole, v, err)
			}
			return nil
		})
	}

	runAWS(t, ctx, e.url, "delete-replication-group", "--replication-group-id", "orders")
	runAWS(t, ctx, e.url, "wait", "replication-group-deleted", "--replication-group-id", "orders")
	if err := primary.Ping(ctx).Err(); err == nil {
		t.Fatalf("primary node still answers after delete")
	}
}
