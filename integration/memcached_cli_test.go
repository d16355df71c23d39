package integration

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestMemcachedAWSCLI drives a Memcached cluster with the AWS CLI v2:
// create (its waiter), Auto Discovery through the configuration endpoint
// it describes, scaling out, scaling in by naming a node, a reboot and the
// delete.
func TestMemcachedAWSCLI(t *testing.T) {
	requireAWSCLI(t)
	t.Parallel()
	e := startEmulator(t)
	ctx := ctxT(t, 3*time.Minute)
	describe := func() types.CacheCluster {
		var out struct{ CacheClusters []types.CacheCluster }
		raw := runAWS(t, ctx, e.url, "describe-cache-clusters", "--cache-cluster-id", "cli-mc", "--show-cache-node-info")
		if err := json.Unmarshal(raw, &out); err != nil || len(out.CacheClusters) != 1 {
			t.Fatalf("describe output: %v\n%s", err, raw)
		}
		return out.CacheClusters[0]
	}
	// available waits with the SDK (each CLI run costs about a second;
	// the CLI's waiter sleeps 15 s between polls), then describes the
	// cluster through the CLI.
	available := func(nodes int) types.CacheCluster {
		waitClusterAvailable(t, e.client, "cli-mc")
		cl := describe()
		if s := aws.ToString(cl.CacheClusterStatus); s != "available" || len(cl.CacheNodes) != nodes {
			t.Fatalf("status %s with %d nodes, want available with %d", s, len(cl.CacheNodes), nodes)
		}
		return cl
	}
	runAWS(t, ctx, e.url, "create-cache-cluster", "--cache-cluster-id", "cli-mc", "--engine", "memcached",
		"--cache-node-type", "cache.t3.micro", "--num-cache-nodes", "2", "--az-mode", "cross-az")
	cl := available(2)
	d := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d, cl)

	runAWS(t, ctx, e.url, "modify-cache-cluster", "--cache-cluster-id", "cli-mc", "--num-cache-nodes", "3", "--apply-immediately")
	cl = available(3)
	d3 := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d3, cl)
	runAWS(t, ctx, e.url, "modify-cache-cluster", "--cache-cluster-id", "cli-mc", "--num-cache-nodes", "2",
		"--cache-node-ids-to-remove", "0001", "--apply-immediately")
	cl = available(2)
	d2 := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, d2, cl)
	if _, ok := nodeAddrs(cl)["0001"]; ok || !(d.version < d3.version && d3.version < d2.version) {
		t.Fatalf("nodes %v; config versions %d, %d, %d", nodeAddrs(cl), d.version, d3.version, d2.version)
	}
	runAWS(t, ctx, e.url, "reboot-cache-cluster", "--cache-cluster-id", "cli-mc", "--cache-node-ids-to-reboot", "0002")
	waitClusterAvailable(t, e.client, "cli-mc")
	runAWS(t, ctx, e.url, "delete-cache-cluster", "--cache-cluster-id", "cli-mc")
	eventually(t, time.Minute, func() error {
		_, err := e.client.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String("cli-mc")})
		if err == nil {
			return fmt.Errorf("cli-mc still described")
		}
		return nil
	})
}
