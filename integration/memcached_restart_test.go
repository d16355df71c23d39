package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/bradfitz/gomemcache/memcache"
)

// memcachedAddressEnv is the node address range of TestMemcachedRestart's
// binaries, of its own.
const memcachedAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.22.2"

// TestMemcachedRestart: a Memcached cluster across restarts of the
// emulator binary. After a kill -9 the nodes are adopted as they run (their
// data still there) and the configuration endpoint serves the same nodes
// and config version; a kill -9 right after a scale-out was accepted ends
// in the bigger cluster; after a SIGTERM stop the nodes start again, empty
// as memcached restarts on AWS, at the same endpoints.
func TestMemcachedRestart(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	reapAtCleanup(t, dataDir)
	port := freePort(t)
	c := newClient(fmt.Sprintf("http://127.0.0.1:%d", port), "us-east-1")
	ctx := ctxT(t, 5*time.Minute)

	cmd := startBinary(t, bin, dataDir, port, memcachedAddressEnv)
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("mc-keep"), Engine: aws.String("memcached"),
		CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	cl := waitClusterAvailable(t, c, "mc-keep")
	before := discover(t, cl.ConfigurationEndpoint)
	addrs := nodeAddrs(cl)
	if err := mcClient(t, addrs["0002"]).Set(&memcache.Item{Key: "kept", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}

	killBinary(t, cmd)
	cmd = startBinary(t, bin, dataDir, port, memcachedAddressEnv)
	cl = waitClusterAvailable(t, c, "mc-keep")
	after := discover(t, cl.ConfigurationEndpoint)
	if after.version != before.version || fmt.Sprint(after.nodes) != fmt.Sprint(before.nodes) {
		t.Fatalf("discovery after kill -9 and restart %+v, before %+v", after, before)
	}
	if it, err := mcClient(t, addrs["0002"]).Get("kept"); err != nil || string(it.Value) != "1" {
		t.Fatalf("an adopted node lost its data: %v, %v", it, err)
	}

	if _, err := c.ModifyCacheCluster(ctx, &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("mc-keep"),
		NumCacheNodes: aws.Int32(4), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	killBinary(t, cmd)
	cmd = startBinary(t, bin, dataDir, port, memcachedAddressEnv)
	eventually(t, time.Minute, func() error {
		cl = describeMemcached(t, c, "mc-keep")
		if aws.ToString(cl.CacheClusterStatus) != "available" || len(cl.CacheNodes) != 4 {
			return fmt.Errorf("%s with %d nodes", aws.ToString(cl.CacheClusterStatus), len(cl.CacheNodes))
		}
		return nil
	})
	scaled := discover(t, cl.ConfigurationEndpoint)
	sameNodes(t, scaled, cl)
	if scaled.version <= before.version {
		t.Fatalf("config version %d after the scale-out, was %d", scaled.version, before.version)
	}

	stopBinary(t, cmd, dataDir)
	cmd = startBinary(t, bin, dataDir, port, memcachedAddressEnv)
	cl = waitClusterAvailable(t, c, "mc-keep")
	if again := discover(t, cl.ConfigurationEndpoint); again.version != scaled.version || fmt.Sprint(again.nodes) != fmt.Sprint(scaled.nodes) {
		t.Fatalf("discovery after a graceful restart %+v, before %+v", again, scaled)
	}
	if _, err := mcClient(t, addrs["0002"]).Get("kept"); err != memcache.ErrCacheMiss {
		t.Fatalf("get after the graceful restart = %v; want a miss (memcached keeps no data)", err)
	}
	stopBinary(t, cmd, dataDir)
}
