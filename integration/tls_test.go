package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// Tokens of the TLS tests: valid AUTH tokens by AWS's rules.
const (
	tokenA = "token-A-0123456789abcdef"
	tokenB = "token-B-0123456789abcdef"
)

// fetchCA downloads the emulator's CA certificate, as a user would, and
// returns its pool and the PEM file's path.
func fetchCA(t testing.TB, url string) (*x509.CertPool, string) {
	t.Helper()
	resp, err := http.Get(url + emulator.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pem, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", emulator.CAPath, resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s is not a PEM certificate: %q", emulator.CAPath, pem)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return pool, path
}

// tlsOptions are go-redis options for a TLS endpoint verified with pool.
func tlsOptions(ep *types.Endpoint, pool *x509.CertPool, password string) *redis.Options {
	host := aws.ToString(ep.Address)
	return &redis.Options{Addr: fmt.Sprintf("%s:%d", host, aws.ToInt32(ep.Port)), Password: password,
		TLSConfig:   &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		DialTimeout: 2 * time.Second, MaxRetries: -1}
}

// tlsClient is a client of a TLS endpoint, closed at the end of the test.
func tlsClient(t testing.TB, ep *types.Endpoint, pool *x509.CertPool, password string) *redis.Client {
	c := redis.NewClient(tlsOptions(ep, pool, password))
	t.Cleanup(func() { c.Close() })
	return c
}

// pingWith opens a new connection to ep with password and PINGs it.
func pingWith(ep *types.Endpoint, pool *x509.CertPool, password string) error {
	c := redis.NewClient(tlsOptions(ep, pool, password))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// groupEndpoints are the primary, reader and every node endpoint of a
// cluster-mode-disabled group.
func groupEndpoints(t testing.TB, c *elasticache.Client, g types.ReplicationGroup) map[string]*types.Endpoint {
	t.Helper()
	eps := map[string]*types.Endpoint{"primary": g.NodeGroups[0].PrimaryEndpoint, "reader": g.NodeGroups[0].ReaderEndpoint}
	for _, m := range g.MemberClusters {
		eps[m] = nodeEndpoint(t, c, m)
	}
	return eps
}

// nodeEndpoint is the endpoint of a cluster's node.
func nodeEndpoint(t testing.TB, c *elasticache.Client, id string) *types.Endpoint {
	t.Helper()
	out, err := c.DescribeCacheClusters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheClustersInput{
		CacheClusterId: aws.String(id), ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.CacheClusters[0].CacheNodes[0].Endpoint
}

// TestTLSGroupWithAuthToken: a 3-node group with TLS (required) and an AUTH
// token. Clients verifying the emulator's CA reach the primary, reader and
// node endpoints with the token; plaintext, a missing token and an
// unverified certificate are refused; redis-py connects too; a snapshot
// restores into a new TLS group with a token of its own; the token rotates
// ROTATE → SET with a long-lived client connected; TestFailover under TLS
// writes loses nothing.
func TestTLSGroupWithAuthToken(t *testing.T) {
	e := startEmulator(t)
	pool, caFile := fetchCA(t, e.url)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("secure"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA),
	})
	g := describeGroup(t, e.client, "secure")
	if !aws.ToBool(g.TransitEncryptionEnabled) || g.TransitEncryptionMode != types.TransitEncryptionModeRequired ||
		!aws.ToBool(g.AuthTokenEnabled) || g.AuthTokenLastModifiedDate == nil {
		t.Fatalf("described security: TLS %v mode %q auth %v modified %v", aws.ToBool(g.TransitEncryptionEnabled),
			g.TransitEncryptionMode, aws.ToBool(g.AuthTokenEnabled), g.AuthTokenLastModifiedDate)
	}
	eps := groupEndpoints(t, e.client, g)
	for name, ep := range eps {
		if err := pingWith(ep, pool, tokenA); err != nil {
			t.Fatalf("TLS with the token through %s (%s): %v", name, aws.ToString(ep.Address), err)
		}
		if err := pingWith(ep, pool, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("TLS without the token through %s: %v, want NOAUTH", name, err)
		}
		plain := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
		if err := plain.Ping(ctxT(t, 5*time.Second)).Err(); err == nil {
			t.Fatalf("plaintext PING through %s answered", name)
		}
		c := redis.NewClient(tlsOptions(ep, x509.NewCertPool(), tokenA))
		err := c.Ping(ctxT(t, 5*time.Second)).Err()
		c.Close()
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("a client not trusting the CA through %s: %v, want an unknown authority", name, err)
		}
	}
	primary := tlsClient(t, eps["primary"], pool, tokenA)
	dataset(t, primary, 2000)
	reader := tlsClient(t, eps["reader"], pool, tokenA)
	eventually(t, 10*time.Second, func() error {
		n, err := reader.DBSize(context.Background()).Result()
		if err == nil && n < 2000 {
			err = fmt.Errorf("the reader endpoint shows %d keys", n)
		}
		return err
	})
	t.Run("snapshot and restore", func(t *testing.T) {
		if _, err := e.client.CreateSnapshot(ctxT(t, 5*time.Second), &elasticache.CreateSnapshotInput{
			ReplicationGroupId: aws.String("secure"), SnapshotName: aws.String("secure-snap")}); err != nil {
			t.Fatal(err)
		}
		waitSnapshot(t, e.client, "secure-snap")
		createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String("secure-copy"), NumCacheClusters: aws.Int32(2), SnapshotName: aws.String("secure-snap"),
			TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenB),
		})
		restored := describeGroup(t, e.client, "secure-copy")
		c := tlsClient(t, restored.NodeGroups[0].PrimaryEndpoint, pool, tokenB)
		checkDataset(t, c, 2000)
		if err := pingWith(restored.NodeGroups[0].PrimaryEndpoint, pool, tokenA); err == nil {
			t.Fatal("the restored group accepts the source group's token: it has its own")
		}
	})

	t.Run("redis-py", func(t *testing.T) {
		requireRedisPy(t)
		ep := eps["primary"]
		script := `import redis, sys
r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), ssl=True, ssl_ca_certs=sys.argv[3], password=sys.argv[4], socket_timeout=5)
r.set("from-python", "yes")
print(r.get("from-python").decode())`
		out, err := exec.Command(python3, "-c", script, aws.ToString(ep.Address), fmt.Sprint(aws.ToInt32(ep.Port)), caFile, tokenA).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "yes" {
			t.Fatalf("redis-py over TLS verifying the CA: %v\n%s", err, out)
		}
	})
	t.Run("redis-cli", func(t *testing.T) {
		requireRedisCLI(t)
		ep := eps["reader"]
		out, err := exec.Command(redisCLI, "--tls", "--cacert", caFile, "-h", aws.ToString(ep.Address), "-p", fmt.Sprint(aws.ToInt32(ep.Port)),
			"--no-auth-warning", "-a", tokenA, "PING").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "PONG" {
			t.Fatalf("redis-cli --tls through the reader endpoint: %v\n%s", err, out)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		longLived := tlsClient(t, eps["primary"], pool, tokenA)
		if err := longLived.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
			t.Fatal(err)
		}
		modifyAuth(t, e.client, "secure", tokenB, types.AuthTokenUpdateStrategyTypeRotate)
		for name, ep := range eps {
			for _, tok := range []string{tokenA, tokenB} {
				if err := pingWith(ep, pool, tok); err != nil {
					t.Fatalf("after ROTATE, token %s through %s: %v", tok[:7], name, err)
				}
			}
		}
		modifyAuth(t, e.client, "secure", tokenB, types.AuthTokenUpdateStrategyTypeSet)
		for name, ep := range eps {
			if err := pingWith(ep, pool, tokenB); err != nil {
				t.Fatalf("after SET, the new token through %s: %v", name, err)
			}
			if err := pingWith(ep, pool, tokenA); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
				t.Fatalf("after SET, the old token through %s: %v, want WRONGPASS", name, err)
			}
		}
		// A connection authenticated before stays authenticated, as a
		// Redis ACL password change leaves open connections alone.
		if err := longLived.Set(ctxT(t, 5*time.Second), "long-lived", "still", 0).Err(); err != nil {
			t.Fatalf("the long-lived connection after SET: %v", err)
		}
		_, err := e.client.ModifyReplicationGroup(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupInput{
			ReplicationGroupId: aws.String("secure"), AuthTokenUpdateStrategy: types.AuthTokenUpdateStrategyTypeDelete, ApplyImmediately: aws.Bool(true)})
		expectError(t, err, "InvalidParameterCombination", 400)
		if err := pingWith(eps["primary"], pool, tokenB); err != nil {
			t.Fatalf("a refused DELETE changed the token: %v", err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		w := startWriterWith(t, tlsOptions(eps["primary"], pool, tokenB))
		w.waitProgress(t, 200, 10*time.Second)
		if _, err := e.client.TestFailover(ctxT(t, 5*time.Second), &elasticache.TestFailoverInput{
			ReplicationGroupId: aws.String("secure"), NodeGroupId: aws.String("0001")}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if p := primaryOf(describeGroup(t, e.client, "secure")); p == primaryOf(g) {
				return fmt.Errorf("the primary is still %s", p)
			}
			return nil
		})
		waitAvailable(t, e.client, "secure")
		w.waitProgress(t, 200, 10*time.Second)
		w.halt()
		if lost := w.lost(t, tlsClient(t, eps["primary"], pool, tokenB)); len(lost) > 0 {
			t.Fatalf("%d acknowledged writes lost over TLS: %v", len(lost), lost[:min(10, len(lost))])
		}
	})

}

// modifyAuth changes a group's AUTH token and waits until it is applied.
func modifyAuth(t testing.TB, c *elasticache.Client, id, token string, strategy types.AuthTokenUpdateStrategyType) {
	t.Helper()
	var tok *string // none for DELETE
	if token != "" {
		tok = aws.String(token)
	}
	out, err := c.ModifyReplicationGroup(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String(id), AuthToken: tok, AuthTokenUpdateStrategy: strategy, ApplyImmediately: aws.Bool(true)})
	if err != nil {
		t.Fatalf("%s: %v", strategy, err)
	}
	want := types.AuthTokenUpdateStatusRotating
	if strategy != types.AuthTokenUpdateStrategyTypeRotate {
		want = types.AuthTokenUpdateStatusSetting
	}
	if got := out.ReplicationGroup.PendingModifiedValues.AuthTokenStatus; got != want || aws.ToString(out.ReplicationGroup.Status) != "modifying" {
		t.Fatalf("%s answered status %s, AuthTokenStatus %q, want modifying, %q", strategy, aws.ToString(out.ReplicationGroup.Status), got, want)
	}
	waitAvailable(t, c, id)
	if got := describeGroup(t, c, id).PendingModifiedValues.AuthTokenStatus; got != "" {
		t.Fatalf("AuthTokenStatus %q after the change is applied", got)
	}
}

// securityState summarises what a refused request must not change.
func securityState(t *testing.T, c *elasticache.Client) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(snapshotState(t, context.Background(), c))
	out, err := c.DescribeReplicationGroups(ctxT(t, 5*time.Second), &elasticache.DescribeReplicationGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.ReplicationGroups {
		fmt.Fprintf(&b, "%s:%v:%s:%v:%v;", aws.ToString(g.ReplicationGroupId), aws.ToBool(g.TransitEncryptionEnabled),
			g.TransitEncryptionMode, aws.ToBool(g.AuthTokenEnabled), aws.ToTime(g.AuthTokenLastModifiedDate))
	}
	return b.String()
}

// TestTLSBadInput: AWS's errors for the TLS and AUTH members, and nothing
// changed by them.
func TestTLSBadInput(t *testing.T) {
	e := startEmulator(t)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("plain"), NumCacheClusters: aws.Int32(1)})
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("tls"), NumCacheClusters: aws.Int32(1),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	before := securityState(t, e.client)
	create := func(id string, mutate func(*elasticache.CreateReplicationGroupInput)) error {
		in := &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("bad"),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(1)}
		mutate(in)
		_, err := e.client.CreateReplicationGroup(ctxT(t, 5*time.Second), in)
		return err
	}
	modify := func(id string, mutate func(*elasticache.ModifyReplicationGroupInput)) error {
		in := &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String(id), ApplyImmediately: aws.Bool(true)}
		mutate(in)
		_, err := e.client.ModifyReplicationGroup(ctxT(t, 5*time.Second), in)
		return err
	}
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"token without TLS", create("bad1", func(in *elasticache.CreateReplicationGroupInput) { in.AuthToken = aws.String(tokenA) }), "InvalidParameterValue", 400},
		{"token of 15 characters", create("bad2", func(in *elasticache.CreateReplicationGroupInput) {
			in.TransitEncryptionEnabled, in.AuthToken = aws.Bool(true), aws.String("0123456789abcde")
		}), "InvalidParameterValue", 400},
		{"token with @", create("bad3", func(in *elasticache.CreateReplicationGroupInput) {
			in.TransitEncryptionEnabled, in.AuthToken = aws.Bool(true), aws.String("0123456789abcdef@")
		}), "InvalidParameterValue", 400},
		{"mode without TLS", create("bad4", func(in *elasticache.CreateReplicationGroupInput) {
			in.TransitEncryptionMode = types.TransitEncryptionModeRequired
		}), "InvalidParameterCombination", 400},
		{"an unknown mode", create("bad5", func(in *elasticache.CreateReplicationGroupInput) {
			in.TransitEncryptionEnabled, in.TransitEncryptionMode = aws.Bool(true), "sometimes"
		}), "InvalidParameterValue", 400},
		{"DELETE while required", modify("tls", func(in *elasticache.ModifyReplicationGroupInput) {
			in.AuthTokenUpdateStrategy = types.AuthTokenUpdateStrategyTypeDelete
		}), "InvalidParameterCombination", 400},
		{"SET before ROTATE", modify("plain", func(in *elasticache.ModifyReplicationGroupInput) {
			in.AuthToken, in.AuthTokenUpdateStrategy = aws.String(tokenB), types.AuthTokenUpdateStrategyTypeSet
		}), "InvalidParameterValue", 400},
		{"a short token on modify", modify("tls", func(in *elasticache.ModifyReplicationGroupInput) {
			in.AuthToken = aws.String("short")
		}), "InvalidParameterValue", 400},
		{"TLS on an existing group without preferred", modify("plain", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionEnabled = aws.Bool(true)
		}), "InvalidParameterCombination", 400},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		code, status := apiError(t, tc.err)
		if code != tc.code || status != tc.status {
			t.Errorf("%s: %s/%d (%v), want %s/%d", tc.name, code, status, tc.err, tc.code, tc.status)
		}
	}
	if after := securityState(t, e.client); after != before {
		t.Fatalf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

// TestTLSStandaloneAndClusterMode: a standalone TLS cache cluster with a
// token, and a cluster-mode group over TLS (cluster bus and slot moves
// included) reached by a cluster client through its configuration
// endpoint, snapshotted and restored into another shard count.
func TestTLSStandaloneAndClusterMode(t *testing.T) {
	e := startEmulator(t)
	pool, _ := fetchCA(t, e.url)
	if _, err := e.client.CreateCacheCluster(ctxT(t, 5*time.Second), &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("solo"), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)}); err != nil {
		t.Fatal(err)
	}
	cl := waitClusterAvailable(t, e.client, "solo")
	if !aws.ToBool(cl.TransitEncryptionEnabled) || !aws.ToBool(cl.AuthTokenEnabled) {
		t.Fatalf("standalone cluster: TLS %v auth %v", aws.ToBool(cl.TransitEncryptionEnabled), aws.ToBool(cl.AuthTokenEnabled))
	}
	ep := nodeEndpoint(t, e.client, "solo")
	if err := pingWith(ep, pool, tokenA); err != nil {
		t.Fatal(err)
	}
	if err := pingWith(ep, pool, tokenB); err == nil {
		t.Fatal("a wrong token accepted")
	}

	if _, err := e.client.CreateReplicationGroup(ctxT(t, 5*time.Second), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("tlscluster"), ReplicationGroupDescription: aws.String("tls cluster"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumNodeGroups: aws.Int32(2), ReplicasPerNodeGroup: aws.Int32(1),
		ClusterMode: types.ClusterModeEnabled, TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, e.client, "tlscluster")
	g := describeGroup(t, e.client, "tlscluster")
	cfg := g.ConfigurationEndpoint
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("%s:%d", aws.ToString(cfg.Address), aws.ToInt32(cfg.Port))},
		Password: tokenA, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DialTimeout: 2 * time.Second})
	t.Cleanup(func() { cc.Close() })
	fillCluster(t, cc, "tls", 2000)
	checkClusterKeys(t, cc, "tls", 2000)
	// Online resharding moves slots between TLS nodes (MIGRATE over TLS).
	if _, err := e.client.ModifyReplicationGroupShardConfiguration(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupShardConfigurationInput{
		ReplicationGroupId: aws.String("tlscluster"), NodeGroupCount: aws.Int32(3), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitAvailableFor(t, e.client, "tlscluster", 2*time.Minute)
	checkClusterKeys(t, cc, "tls", 2000)
	if n := len(describeGroup(t, e.client, "tlscluster").NodeGroups); n != 3 {
		t.Fatalf("%d node groups after scaling out, want 3", n)
	}
	// A restore into another shard count seeds the TLS cluster from
	// temporary nodes that MIGRATE their keys over TLS.
	if _, err := e.client.CreateSnapshot(ctxT(t, 5*time.Second), &elasticache.CreateSnapshotInput{
		ReplicationGroupId: aws.String("tlscluster"), SnapshotName: aws.String("tlscluster-snap")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, e.client, "tlscluster-snap")
	restored := restoreCluster(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("tlsrestored"),
		SnapshotName: aws.String("tlscluster-snap"), NumNodeGroups: aws.Int32(2), TransitEncryptionEnabled: aws.Bool(true),
		AuthToken: aws.String(tokenB)}, 2000)
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("%s:%d",
		aws.ToString(restored.ConfigurationEndpoint.Address), aws.ToInt32(restored.ConfigurationEndpoint.Port))},
		Password: tokenB, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DialTimeout: 2 * time.Second})
	t.Cleanup(func() { rc.Close() })
	checkClusterKeys(t, rc, "tls", 2000)
}
