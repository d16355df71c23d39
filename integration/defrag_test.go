package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// jemallocRedisServer is the redis-server scripts/build-redis-jemalloc
// builds (Redis's bundled jemalloc), "" when it has not been built:
// ELASTICACHE_LOCAL_TEST_REDIS_JEMALLOC names it, else the script's cache
// path.
func jemallocRedisServer() string {
	if p := os.Getenv("ELASTICACHE_LOCAL_TEST_REDIS_JEMALLOC"); p != "" {
		return p
	}
	cache := os.Getenv("ELASTICACHE_LOCAL_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache", "elasticache-local")
	}
	p := filepath.Join(cache, "bin", "redis-server-jemalloc")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// TestActiveDefragOnEveryNode: with the redis-server built with Redis's
// bundled jemalloc (--redis-server), a parameter group with
// reserved-memory-percent, activedefrag and maxmemory-policy applied to a
// 3-node group is live on every node: activedefrag yes, the policy, and
// maxmemory following the reserved percentage. Debian's own binary
// refuses activedefrag (TestParameterGroupOnNodes holds that), so this
// runs only where scripts/build-redis-jemalloc has built the other one.
func TestActiveDefragOnEveryNode(t *testing.T) {
	bin := jemallocRedisServer()
	if bin == "" && testRuntime() == "process" && os.Getenv("CI") != "" {
		t.Fatal("CI: scripts/test builds the redis-server with Redis's bundled jemalloc (scripts/build-redis-jemalloc) and names it in ELASTICACHE_LOCAL_TEST_REDIS_JEMALLOC")
	}
	if bin == "" || testRuntime() != "process" {
		t.Skip("needs the process runtime and the redis-server of scripts/build-redis-jemalloc (or ELASTICACHE_LOCAL_TEST_REDIS_JEMALLOC)")
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "Redis server") {
		t.Fatalf("%s --version: %q, %v; want a redis-server", bin, out, err)
	}
	t.Parallel()
	e := startEmulatorWith(t, func(c *emulator.Config) { c.RedisServer = bin })
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{CacheParameterGroupName: aws.String("defrag"),
		CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("defrag")}); err != nil {
		t.Fatal(err)
	}
	in := &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("defrag")}
	for _, nv := range [][2]string{{"reserved-memory-percent", "40"}, {"activedefrag", "yes"}, {"maxmemory-policy", "volatile-lfu"}} {
		in.ParameterNameValues = append(in.ParameterNameValues, types.ParameterNameValue{ParameterName: aws.String(nv[0]), ParameterValue: aws.String(nv[1])})
	}
	if _, err := c.ModifyCacheParameterGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("defrag"), CacheParameterGroupName: aws.String("defrag"),
		CacheNodeType: aws.String("cache.r7g.large"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true)})
	nodes := memberClients(t, c, "defrag")
	if len(nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(nodes))
	}
	for id, n := range nodes {
		for name, want := range map[string]string{"activedefrag": "yes", "maxmemory-policy": "volatile-lfu"} {
			eventually(t, 5*time.Second, func() error {
				got, err := n.ConfigGet(context.Background(), name).Result()
				if err != nil || got[name] != want {
					return fmt.Errorf("%s: CONFIG GET %s = %v (%v), want %q", id, name, got, err, want)
				}
				return nil
			})
		}
	}
	expectMaxmemory(t, c, "defrag", awsMaxmemory["cache.r7g.large"]*60/100/nodeMemoryScale)
}
