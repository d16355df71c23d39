package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/bradfitz/gomemcache/memcache"
)

// TestMemcachedTLS: a Memcached 1.6.22 cluster with encryption in transit
// serves Auto Discovery and data over TLS only, verified against the
// emulator's CA (the one the Redis side uses); a version before 1.6.12
// cannot have it.
func TestMemcachedTLS(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)
	_, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("old-tls"), Engine: aws.String("memcached"),
		EngineVersion: aws.String("1.6.6"), CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(1), TransitEncryptionEnabled: aws.Bool(true)})
	expectError(t, err, "InvalidParameterCombination", 400)

	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("mc-tls"), Engine: aws.String("memcached"),
		CacheNodeType: aws.String("cache.t3.micro"), NumCacheNodes: aws.Int32(2), TransitEncryptionEnabled: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	cl := waitClusterAvailable(t, c, "mc-tls")
	if !aws.ToBool(cl.TransitEncryptionEnabled) {
		t.Fatalf("TransitEncryptionEnabled = %v", cl.TransitEncryptionEnabled)
	}
	pool, _ := fetchCA(t, e.url)
	dialTLS := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}}
		return d.DialContext(ctx, network, addr)
	}
	cfg := cl.ConfigurationEndpoint
	cfgAddr := fmt.Sprintf("%s:%d", aws.ToString(cfg.Address), aws.ToInt32(cfg.Port))
	conn, err := dialTLS(ctx, "tcp", cfgAddr)
	if err != nil {
		t.Fatalf("TLS to the configuration endpoint: %v", err)
	}
	d := discoverOn(t, conn)
	sameNodes(t, d, cl)

	secure := memcache.New(d.nodes...)
	secure.DialContext, secure.Timeout = dialTLS, 2*time.Second
	t.Cleanup(func() { secure.Close() })
	if err := secure.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("set over TLS: %v", err)
	}
	through := memcache.New(cfgAddr) // forwarded to a node, TLS both ways
	through.DialContext, through.Timeout = dialTLS, 2*time.Second
	t.Cleanup(func() { through.Close() })
	if err := through.Set(&memcache.Item{Key: "c", Value: []byte("v")}); err != nil {
		t.Fatalf("set through the configuration endpoint over TLS: %v", err)
	}
	if _, err := mcClient(t, d.nodes[0]).Get("k"); err == nil || err == memcache.ErrCacheMiss {
		t.Fatalf("plaintext get of a TLS node = %v; want the connection refused its answer", err)
	}
}
