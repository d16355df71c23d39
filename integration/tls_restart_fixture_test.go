package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Tokens and passwords of the TLS restart tests beyond tokenA and tokenB.
const (
	tokenC        = "token-C-0123456789abcdef"
	tokenD        = "token-D-0123456789abcdef"
	tokenNever    = "token-N-0123456789abcdef" // never given to any group
	trDefaultPass = "tr-default-0123456789"
	trReaderPass  = "tr-reader-0123456789"
	trAuthGroup   = "tr-auth"
	trSolo        = "tr-solo" // a standalone cluster with a token
	trRBACGroup   = "tr-rbac"
	trUserGroup   = "tr-app"
	trDatasetKeys = 2000
)

// tlsFixture is what setupTLSRestart made: a 2-node TLS group and a
// standalone TLS cluster with the AUTH token tokenB (after tokenA, a
// ROTATE and a SET), and a 2-node TLS group using user group tr-app (a
// default user with a password and a read-only user "reader"), each
// holding trDatasetKeys keys.
type tlsFixture struct {
	url   string
	pool  *x509.CertPool // fetched before any restart, kept by the "client"
	caPEM []byte
	// sums are each group's and tr-solo's data checksum (dataChecksum).
	sums map[string]string
	// described is each group's and tr-solo's security as Describe
	// shows it.
	described map[string]string
}

// trSecurity is what Describe shows of a group's TLS, AUTH and RBAC
// state and its members.
func trSecurity(g types.ReplicationGroup) string {
	var modified string
	if g.AuthTokenLastModifiedDate != nil {
		modified = g.AuthTokenLastModifiedDate.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("TLS %v mode %q auth %v modified %q user groups %v members %v", aws.ToBool(g.TransitEncryptionEnabled),
		g.TransitEncryptionMode, aws.ToBool(g.AuthTokenEnabled), modified, g.UserGroupIds, slices.Sorted(slices.Values(g.MemberClusters)))
}

// trClusterSecurity is trSecurity for a standalone cluster.
func trClusterSecurity(cl types.CacheCluster) string {
	var modified string
	if cl.AuthTokenLastModifiedDate != nil {
		modified = cl.AuthTokenLastModifiedDate.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("TLS %v mode %q auth %v modified %q", aws.ToBool(cl.TransitEncryptionEnabled), cl.TransitEncryptionMode,
		aws.ToBool(cl.AuthTokenEnabled), modified)
}

// trModifySolo changes tr-solo's AUTH token and returns what Describe
// shows of its security after it (trClusterSecurity).
func trModifySolo(t *testing.T, c *elasticache.Client, token string, strategy types.AuthTokenUpdateStrategyType) string {
	t.Helper()
	out, err := c.ModifyCacheCluster(ctxT(t, 10*time.Second), &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String(trSolo),
		AuthToken: aws.String(token), AuthTokenUpdateStrategy: strategy, ApplyImmediately: aws.Bool(true)})
	if err != nil {
		t.Fatalf("%s of %s: %v", strategy, trSolo, err)
	}
	return trClusterSecurity(*out.CacheCluster)
}

// trGroupClient is a TLS client of ep as the group's writer: the token
// for tr-auth, the default user's password for tr-rbac.
func trGroupClient(t *testing.T, group string, ep *types.Endpoint, pool *x509.CertPool, token string) *redis.Client {
	if group == trRBACGroup {
		token = trDefaultPass
	}
	opts := tlsOptions(ep, pool, token)
	opts.ReadTimeout = 2 * time.Minute
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// setupTLSRestart creates the fixture's users, user group and groups on
// the emulator at url and writes their data.
func setupTLSRestart(t *testing.T, c *elasticache.Client, url string) *tlsFixture {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	f := &tlsFixture{url: url, sums: map[string]string{}, described: map[string]string{}}
	var caFile string
	f.pool, caFile = fetchCA(t, url)
	var err error
	if f.caPEM, err = os.ReadFile(caFile); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ id, name, access, password string }{
		{"tr-default", "default", "on ~* +@all", trDefaultPass},
		{"tr-reader", "reader", "on ~* -@all +@read +@connection", trReaderPass},
	} {
		if _, err := c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String(u.id), UserName: aws.String(u.name),
			Engine: aws.String("redis"), AccessString: aws.String(u.access), Passwords: []string{u.password}}); err != nil {
			t.Fatalf("CreateUser %s: %v", u.id, err)
		}
	}
	if _, err := c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String(trUserGroup), Engine: aws.String("redis"),
		UserIds: []string{"tr-default", "tr-reader"}}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, trUserGroup, "active")

	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String(trAuthGroup), NumCacheClusters: aws.Int32(2),
		AutomaticFailoverEnabled: aws.Bool(true), TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	modifyAuth(t, c, trAuthGroup, tokenB, types.AuthTokenUpdateStrategyTypeRotate)
	modifyAuth(t, c, trAuthGroup, tokenB, types.AuthTokenUpdateStrategyTypeSet)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String(trRBACGroup), NumCacheClusters: aws.Int32(2),
		AutomaticFailoverEnabled: aws.Bool(true), TransitEncryptionEnabled: aws.Bool(true), UserGroupIds: []string{trUserGroup}})
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String(trSolo),
		CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"), TransitEncryptionEnabled: aws.Bool(true),
		AuthToken: aws.String(tokenA)}); err != nil {
		t.Fatal(err)
	}
	waitClusterAvailable(t, c, trSolo)
	for _, strategy := range []types.AuthTokenUpdateStrategyType{types.AuthTokenUpdateStrategyTypeRotate, types.AuthTokenUpdateStrategyTypeSet} {
		trModifySolo(t, c, tokenB, strategy)
		waitClusterAvailable(t, c, trSolo)
	}
	solo := waitClusterAvailable(t, c, trSolo)
	f.described[trSolo] = trClusterSecurity(solo)
	soloClient := trGroupClient(t, trSolo, solo.CacheNodes[0].Endpoint, f.pool, tokenB)
	dataset(t, soloClient, trDatasetKeys)
	if f.sums[trSolo], err = dataChecksum(ctx, soloClient); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{trAuthGroup, trRBACGroup} {
		g := describeGroup(t, c, id)
		f.described[id] = trSecurity(g)
		primary := trGroupClient(t, id, g.NodeGroups[0].PrimaryEndpoint, f.pool, tokenB)
		dataset(t, primary, trDatasetKeys)
		sum, err := dataChecksum(ctx, primary)
		if err != nil || !strings.HasPrefix(sum, fmt.Sprint(trDatasetKeys)+":") {
			t.Fatalf("checksum of %s: %s (%v)", id, sum, err)
		}
		f.sums[id] = sum
	}
	if g := describeGroup(t, c, trRBACGroup); !slices.Equal(g.UserGroupIds, []string{trUserGroup}) || aws.ToBool(g.AuthTokenEnabled) {
		t.Fatalf("%s: UserGroupIds %v, AuthTokenEnabled %v", trRBACGroup, g.UserGroupIds, aws.ToBool(g.AuthTokenEnabled))
	}
	// What the checks demand after a restart holds before it.
	f.check(t, c, tokenB, true, true)
	return f
}

// check verifies the fixture on the emulator: the CA it serves is the one
// fetched first; both groups and tr-solo are available, with nothing
// pending, and Describe shows their security as recorded; every endpoint
// of tr-auth and tr-solo's node, verified with the pool of before, accept
// the token current and the tokens accepted only (refusing every other
// one with WRONGPASS and no token with NOAUTH); every endpoint of tr-rbac
// refuses no AUTH and lets the default user in, and the reader in or not
// (reader), which gets NOPERM on a write; every node's users are exactly
// those (besides the admin's); with data, every node holds the data of
// before.
func (f *tlsFixture) check(t *testing.T, c *elasticache.Client, current string, reader, data bool, accepted ...string) {
	t.Helper()
	accepted = append(accepted, current)
	if pem := trServedCA(t, f.url); !bytes.Equal(pem, f.caPEM) {
		t.Errorf("the CA served now differs from the one served before the restart")
	}
	for _, id := range []string{trAuthGroup, trRBACGroup} {
		g := describeGroup(t, c, id)
		if s := aws.ToString(g.Status); s != "available" {
			t.Errorf("%s is %s", id, s)
		}
		if p := g.PendingModifiedValues; p != nil && p.AuthTokenStatus != "" {
			t.Errorf("%s: AuthTokenStatus %s still pending", id, p.AuthTokenStatus)
		}
		if got := trSecurity(g); got != f.described[id] {
			t.Errorf("%s describes\n  %s\nwant\n  %s", id, got, f.described[id])
		}
	}
	solo := waitClusterAvailable(t, c, trSolo)
	if p := solo.PendingModifiedValues; p != nil && p.AuthTokenStatus != "" {
		t.Errorf("%s: AuthTokenStatus %s still pending", trSolo, p.AuthTokenStatus)
	}
	if got := trClusterSecurity(solo); got != f.described[trSolo] {
		t.Errorf("%s describes\n  %s\nwant\n  %s", trSolo, got, f.described[trSolo])
	}
	if ug := describeUserGroup(t, c, trUserGroup); aws.ToString(ug.Status) != "active" || !slices.Equal(ug.ReplicationGroups, []string{trRBACGroup}) {
		t.Errorf("user group %s: %s, replication groups %v", trUserGroup, aws.ToString(ug.Status), ug.ReplicationGroups)
	}

	authEPs := groupEndpoints(t, c, describeGroup(t, c, trAuthGroup))
	authEPs[trSolo] = solo.CacheNodes[0].Endpoint
	for name, ep := range authEPs {
		for _, tok := range []string{tokenA, tokenB, tokenC, tokenD, tokenNever} {
			err := pingWith(ep, f.pool, tok)
			switch {
			case slices.Contains(accepted, tok) && err != nil:
				t.Errorf("%s: token %s refused: %v", name, tok[:7], err)
			case !slices.Contains(accepted, tok) && (err == nil || !strings.Contains(err.Error(), "WRONGPASS")):
				t.Errorf("%s: token %s: %v, want WRONGPASS", name, tok[:7], err)
			}
		}
		if err := pingWith(ep, f.pool, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("%s without a token: %v, want NOAUTH", name, err)
		}
	}
	rbacEPs := groupEndpoints(t, c, describeGroup(t, c, trRBACGroup))
	wantReader := map[bool]string{true: "OK", false: "WRONGPASS"}[reader]
	for name, ep := range rbacEPs {
		if r := rbacReply(rbacAs(t, ep, f.pool, "", ""), "PING"); r != "NOAUTH" {
			t.Errorf("%s %s: PING without AUTH = %s, want NOAUTH", trRBACGroup, name, r)
		}
		if r := rbacReply(rbacAs(t, ep, f.pool, "", trDefaultPass), "PING"); r != "OK" {
			t.Errorf("%s %s: the default user = %s", trRBACGroup, name, r)
		}
		if r := rbacReply(rbacAs(t, ep, f.pool, "", tokenB), "PING"); r != "WRONGPASS" {
			t.Errorf("%s %s: the default user with a wrong password = %s, want WRONGPASS", trRBACGroup, name, r)
		}
		if r := rbacReply(rbacAs(t, ep, f.pool, "reader", trReaderPass), "GET", "k:0"); r != wantReader {
			t.Errorf("%s %s: reader GET = %s, want %s", trRBACGroup, name, r, wantReader)
		}
	}
	if reader {
		if r := rbacReply(rbacAs(t, rbacEPs["primary"], f.pool, "reader", trReaderPass), "SET", "k:0", "x"); r != "NOPERM" {
			t.Errorf("%s: reader SET through the primary endpoint = %s, want NOPERM", trRBACGroup, r)
		}
	}

	// Each node's users, as the node itself lists them.
	for _, id := range []string{trAuthGroup, trRBACGroup, trSolo} {
		want := []string{"default"}
		if id == trRBACGroup && reader {
			want = append(want, "reader")
		}
		for _, m := range trMembers(t, c, id) {
			users, err := trGroupClient(t, id, nodeEndpoint(t, c, m), f.pool, current).Do(ctxT(t, 10*time.Second), "ACL", "USERS").StringSlice()
			users = slices.DeleteFunc(users, func(u string) bool { return u == engine.AdminUser })
			if err != nil || !slices.Equal(users, want) {
				t.Errorf("%s member %s has users %v (%v), want %v", id, m, users, err, want)
			}
		}
	}
	if !data {
		return
	}
	for _, id := range []string{trAuthGroup, trRBACGroup, trSolo} {
		for _, m := range trMembers(t, c, id) {
			node := trGroupClient(t, id, nodeEndpoint(t, c, m), f.pool, current)
			eventually(t, time.Minute, func() error {
				got, err := dataChecksum(context.Background(), node)
				if err != nil || got != f.sums[id] {
					return fmt.Errorf("%s member %s holds %s (%v), want %s", id, m, got, err, f.sums[id])
				}
				return nil
			})
		}
	}
}

// trMembers are the member clusters of a group, or tr-solo itself.
func trMembers(t *testing.T, c *elasticache.Client, id string) []string {
	t.Helper()
	if id == trSolo {
		return []string{trSolo}
	}
	return describeGroup(t, c, id).MemberClusters
}

// trServedCA is the CA certificate the emulator serves now.
func trServedCA(t *testing.T, url string) []byte {
	t.Helper()
	_, path := fetchCA(t, url)
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pem
}

// trSettled waits until nothing is transitional (waitSettled), no AUTH
// token change is pending, the users and the user group are active, and
// every node server runs for a record and every record's node runs.
func trSettled(t *testing.T, c *elasticache.Client, url, dataDir string) {
	t.Helper()
	waitSettled(t, c, 3*time.Minute)
	eventually(t, time.Minute, func() error {
		for _, id := range []string{trAuthGroup, trRBACGroup} {
			g := describeGroup(t, c, id)
			if s := aws.ToString(g.Status); s != "available" {
				return fmt.Errorf("%s is %s", id, s)
			}
			if p := g.PendingModifiedValues; p != nil && p.AuthTokenStatus != "" {
				return fmt.Errorf("%s: AuthTokenStatus %s", id, p.AuthTokenStatus)
			}
		}
		out, err := c.DescribeCacheClusters(ctxT(t, 10*time.Second), &elasticache.DescribeCacheClustersInput{CacheClusterId: aws.String(trSolo)})
		if err != nil {
			return err
		}
		if p := out.CacheClusters[0].PendingModifiedValues; p != nil && p.AuthTokenStatus != "" {
			return fmt.Errorf("%s: AuthTokenStatus %s", trSolo, p.AuthTokenStatus)
		}
		if s := aws.ToString(describeUserGroup(t, c, trUserGroup).Status); s != "active" {
			return fmt.Errorf("user group %s is %s", trUserGroup, s)
		}
		for _, u := range []string{"tr-default", "tr-reader"} {
			if s := aws.ToString(describeUser(t, c, u).Status); s != "active" {
				return fmt.Errorf("user %s is %s", u, s)
			}
		}
		if bad := orphans(t, url, dataDir); bad != "" {
			return errors.New(bad)
		}
		return nil
	})
	for _, id := range []string{trAuthGroup, trRBACGroup} {
		consistentMembers(t, c, url, id)
	}
}
