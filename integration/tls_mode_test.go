package integration

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// plainPing opens a plaintext connection to ep and PINGs it with password
// ("" for none).
func plainPing(ep *types.Endpoint, password string) error {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port)),
		Password: password, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// modifyTransit asks for a transit encryption change and checks what the
// answer reports pending, then waits until the group is available in it.
func modifyTransit(t *testing.T, c *elasticache.Client, id string, enabled *bool, mode types.TransitEncryptionMode) types.ReplicationGroup {
	t.Helper()
	out, err := c.ModifyReplicationGroup(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String(id),
		ApplyImmediately: aws.Bool(true), TransitEncryptionEnabled: enabled, TransitEncryptionMode: mode})
	if err != nil {
		t.Fatalf("modify %s to TLS %v %q: %v", id, aws.ToBool(enabled), mode, err)
	}
	g := out.ReplicationGroup
	wantOn := enabled == nil || *enabled
	if aws.ToString(g.Status) != "modifying" || g.PendingModifiedValues == nil ||
		aws.ToBool(g.PendingModifiedValues.TransitEncryptionEnabled) != wantOn || g.PendingModifiedValues.TransitEncryptionMode != mode {
		t.Fatalf("modify answered status %s, pending %+v; want modifying, pending TLS %v %q", aws.ToString(g.Status), g.PendingModifiedValues, wantOn, mode)
	}
	waitAvailable(t, c, id)
	got := describeGroup(t, c, id)
	if aws.ToBool(got.TransitEncryptionEnabled) != wantOn || got.TransitEncryptionMode != mode ||
		got.PendingModifiedValues.TransitEncryptionEnabled != nil || got.PendingModifiedValues.TransitEncryptionMode != "" {
		t.Fatalf("after the change: TLS %v mode %q pending %+v, want TLS %v mode %q and nothing pending",
			aws.ToBool(got.TransitEncryptionEnabled), got.TransitEncryptionMode, got.PendingModifiedValues, wantOn, mode)
	}
	return got
}

// checkServes asserts which of TLS (verifying the CA) and plaintext every
// endpoint of g serves, with password.
func checkServes(t *testing.T, c *elasticache.Client, g types.ReplicationGroup, pool *x509.CertPool, password string, wantTLS, wantPlain bool) {
	t.Helper()
	for name, ep := range groupEndpoints(t, c, g) {
		if err := pingWith(ep, pool, password); (err == nil) != wantTLS {
			t.Errorf("%s: TLS PING: %v, want served %v", name, err, wantTLS)
		}
		if err := plainPing(ep, password); (err == nil) != wantPlain {
			t.Errorf("%s: plaintext PING: %v, want served %v", name, err, wantPlain)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestTransitEncryptionOnline: a 3-node plaintext group goes to TLS in
// AWS's steps under a write load through its primary endpoint: preferred
// (TLS verifying the CA and plaintext on every endpoint), then required
// (plaintext refused); no acknowledged write is lost.
func TestTransitEncryptionOnline(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	pool, _ := fetchCA(t, e.url)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("online"),
		NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true)})
	g := describeGroup(t, e.client, "online")
	primary := g.NodeGroups[0].PrimaryEndpoint
	load := startWriter(t, aws.ToString(primary.Address), aws.ToInt32(primary.Port))

	g = modifyTransit(t, e.client, "online", aws.Bool(true), types.TransitEncryptionModePreferred)
	checkServes(t, e.client, g, pool, "", true, true)
	// Clients move to TLS while both are served, as AWS's steps intend.
	load.useClient(t, tlsOptions(primary, pool, ""))

	g = modifyTransit(t, e.client, "online", nil, types.TransitEncryptionModeRequired)
	checkServes(t, e.client, g, pool, "", true, false)
	load.halt()
	if load.ackedCount() == 0 {
		t.Fatal("no write was acknowledged")
	}
	lost := load.lost(t, tlsClient(t, primary, pool, ""))
	t.Logf("write load: %d acknowledged, %d failed (reconnects), %d lost", load.ackedCount(), load.failures, len(lost))
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost: %v", len(lost), load.ackedCount(), lost[:min(10, len(lost))])
	}

	all := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "online")
	for _, want := range []string{"Modifying in-transit encryption to enabled (preferred) of replication group online",
		"Finished modifying in-transit encryption to enabled (required) of replication group online"} {
		if !strings.Contains(all, want) {
			t.Errorf("no event %q in:\n%s", want, all)
		}
	}
}

// TestTransitEncryptionBackWithAuthDelete: a required group with an AUTH
// token goes back to preferred, rotates its token ROTATE → SET → DELETE
// with long-lived clients connected (each step asserting which passwords
// work), then disables TLS: every step as AWS allows it.
func TestTransitEncryptionBackWithAuthDelete(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	pool, _ := fetchCA(t, e.url)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("back"),
		NumCacheClusters: aws.Int32(2), TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	if err := modifyOnce(e.client, "back", func(in *elasticache.ModifyReplicationGroupInput) {
		in.AuthTokenUpdateStrategy = types.AuthTokenUpdateStrategyTypeDelete
	}); err == nil {
		t.Fatal("DELETE accepted while required")
	} else {
		expectError(t, err, "InvalidParameterCombination", 400)
	}
	g := modifyTransit(t, e.client, "back", nil, types.TransitEncryptionModePreferred)
	primary := g.NodeGroups[0].PrimaryEndpoint
	checkServes(t, e.client, g, pool, tokenA, true, true)
	if err := plainPing(primary, ""); err == nil {
		t.Fatal("no token accepted while one is set")
	}
	longTLS := tlsClient(t, primary, pool, tokenA)
	longPlain := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", aws.ToString(primary.Address), aws.ToInt32(primary.Port)),
		Password: tokenA, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { longPlain.Close() })
	alive := func(step string) {
		t.Helper()
		for name, c := range map[string]*redis.Client{"TLS": longTLS, "plaintext": longPlain} {
			if err := c.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
				t.Fatalf("%s: the long-lived %s client: %v", step, name, err)
			}
		}
	}
	alive("preferred")
	works := func(step string, want map[string]bool) {
		t.Helper()
		for pw, ok := range want {
			if err := pingWith(primary, pool, pw); (err == nil) != ok {
				t.Errorf("%s: TLS with password %q: %v, want accepted %v", step, pw, err, ok)
			}
			if err := plainPing(primary, pw); (err == nil) != ok {
				t.Errorf("%s: plaintext with password %q: %v, want accepted %v", step, pw, err, ok)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	modifyAuth(t, e.client, "back", tokenB, types.AuthTokenUpdateStrategyTypeRotate)
	works("ROTATE", map[string]bool{tokenA: true, tokenB: true, "": false})
	alive("ROTATE")
	modifyAuth(t, e.client, "back", tokenB, types.AuthTokenUpdateStrategyTypeSet)
	works("SET", map[string]bool{tokenA: false, tokenB: true, "": false})
	alive("SET")
	modifyAuth(t, e.client, "back", "", types.AuthTokenUpdateStrategyTypeDelete)
	works("DELETE", map[string]bool{"": true})
	alive("DELETE")
	if g := describeGroup(t, e.client, "back"); aws.ToBool(g.AuthTokenEnabled) {
		t.Fatal("AuthTokenEnabled after DELETE")
	}
	g = modifyTransit(t, e.client, "back", aws.Bool(false), "")
	checkServes(t, e.client, g, pool, "", false, true)
}

// modifyOnce sends one ModifyReplicationGroup.
func modifyOnce(c *elasticache.Client, id string, mutate func(*elasticache.ModifyReplicationGroupInput)) error {
	in := &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String(id), ApplyImmediately: aws.Bool(true)}
	mutate(in)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.ModifyReplicationGroup(ctx, in)
	return err
}

// TestTransitEncryptionBadInput: AWS's preconditions of a transit change,
// each refused with its error and nothing changed.
func TestTransitEncryptionBadInput(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("plain"), NumCacheClusters: aws.Int32(1)})
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("req"), NumCacheClusters: aws.Int32(1),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("pref"), NumCacheClusters: aws.Int32(1),
		TransitEncryptionEnabled: aws.Bool(true), TransitEncryptionMode: types.TransitEncryptionModePreferred, AuthToken: aws.String(tokenA)})
	before := securityState(t, e.client)
	for _, tc := range []struct {
		name, id, code string
		mutate         func(*elasticache.ModifyReplicationGroupInput)
	}{
		{"TLS on without a mode", "plain", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionEnabled = aws.Bool(true)
		}},
		{"TLS on straight to required", "plain", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionEnabled, in.TransitEncryptionMode = aws.Bool(true), types.TransitEncryptionModeRequired
		}},
		{"preferred without TransitEncryptionEnabled", "plain", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionMode = types.TransitEncryptionModePreferred
		}},
		{"an unknown mode", "req", "InvalidParameterValue", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionMode = "sometimes"
		}},
		{"TLS off from required", "req", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionEnabled = aws.Bool(false)
		}},
		{"TLS off with a token set", "pref", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionEnabled = aws.Bool(false)
		}},
		{"DELETE while required", "req", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.AuthTokenUpdateStrategy = types.AuthTokenUpdateStrategyTypeDelete
		}},
		{"DELETE with a token", "pref", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.AuthToken, in.AuthTokenUpdateStrategy = aws.String(tokenB), types.AuthTokenUpdateStrategyTypeDelete
		}},
		{"mode and token in one request", "pref", "InvalidParameterCombination", func(in *elasticache.ModifyReplicationGroupInput) {
			in.TransitEncryptionMode, in.AuthToken = types.TransitEncryptionModeRequired, aws.String(tokenB)
		}},
	} {
		err := modifyOnce(e.client, tc.id, tc.mutate)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		var code string
		var status int
		code, status = apiError(t, err)
		if code != tc.code || status != 400 {
			t.Errorf("%s: %s/%d (%v), want %s/400", tc.name, code, status, err, tc.code)
		}
	}
	if after := securityState(t, e.client); after != before {
		t.Fatalf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
	_, err := e.client.CreateReplicationGroup(ctxT(t, 5*time.Second), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("prefcluster"), ReplicationGroupDescription: aws.String("x"), CacheNodeType: aws.String("cache.t4g.micro"),
		ClusterMode: types.ClusterModeEnabled, NumNodeGroups: aws.Int32(1), TransitEncryptionEnabled: aws.Bool(true),
		TransitEncryptionMode: types.TransitEncryptionModePreferred})
	var nf interface{ ErrorCode() string }
	if !errors.As(err, &nf) || nf.ErrorCode() != "NotImplemented" {
		t.Fatalf("preferred in cluster mode: %v, want NotImplemented", err)
	}
}
