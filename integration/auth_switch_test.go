package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"crypto/x509"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// authAs opens a new connection to ep as user (the default user when "")
// and reports the first word of a GET's outcome (replicas answer it too):
// OK, NOAUTH, WRONGPASS...
func authAs(ep *types.Endpoint, pool *x509.CertPool, user, password string) string {
	opts := tlsOptions(ep, pool, password)
	opts.Username = user
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Get(ctx, "switch").Err(); err != nil && err != redis.Nil {
		return strings.SplitN(err.Error(), " ", 2)[0]
	}
	return "OK"
}

// TestAuthTokenToRBACAndBack: a TLS group moves from an AUTH token to a
// user group (UserGroupIdsToAdd: the token stops working, the users start)
// and back (RemoveUserGroups with a new token), as AWS allows; a token
// change while a user group stays is refused. A standalone cluster's token
// rotates through ModifyCacheCluster.
func TestAuthTokenToRBACAndBack(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	pool, _ := fetchCA(t, e.url)
	const userPassword = "switch-user-0123456789"
	if _, err := c.CreateUser(ctxT(t, 5*time.Second), &elasticache.CreateUserInput{UserId: aws.String("switch-default"),
		UserName: aws.String("default"), Engine: aws.String("redis"), AccessString: aws.String("on ~* +@all"),
		Passwords: []string{userPassword}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUserGroup(ctxT(t, 5*time.Second), &elasticache.CreateUserGroupInput{UserGroupId: aws.String("switch"),
		Engine: aws.String("redis"), UserIds: []string{"switch-default"}}); err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("switching"), NumCacheClusters: aws.Int32(2),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	g := describeGroup(t, c, "switching")
	eps := groupEndpoints(t, c, g)
	check := func(step string, want map[string]string) {
		t.Helper()
		for name, ep := range eps {
			for who, outcome := range want {
				user, password, _ := strings.Cut(who, ":")
				if got := authAs(ep, pool, user, password); got != outcome {
					t.Fatalf("%s: %s through %s answered %s, want %s", step, who, name, got, outcome)
				}
			}
		}
	}
	check("AUTH token", map[string]string{":" + tokenA: "OK", "default:" + userPassword: "WRONGPASS"})

	modify := func(in *elasticache.ModifyReplicationGroupInput) error {
		in.ReplicationGroupId, in.ApplyImmediately = aws.String("switching"), aws.Bool(true)
		_, err := c.ModifyReplicationGroup(ctxT(t, 5*time.Second), in)
		return err
	}
	// Both at once is no switch AWS knows.
	expectError(t, modify(&elasticache.ModifyReplicationGroupInput{UserGroupIdsToAdd: []string{"switch"}, AuthToken: aws.String(tokenB)}),
		"InvalidParameterCombination", 400)
	if err := modify(&elasticache.ModifyReplicationGroupInput{UserGroupIdsToAdd: []string{"switch"}}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "switching")
	if g := describeGroup(t, c, "switching"); aws.ToBool(g.AuthTokenEnabled) || len(g.UserGroupIds) != 1 {
		t.Fatalf("after adding a user group: AuthTokenEnabled %v, UserGroupIds %q", aws.ToBool(g.AuthTokenEnabled), g.UserGroupIds)
	}
	check("RBAC", map[string]string{":" + tokenA: "WRONGPASS", "default:" + userPassword: "OK"})
	expectError(t, modify(&elasticache.ModifyReplicationGroupInput{AuthToken: aws.String(tokenB)}), "InvalidParameterCombination", 400)

	if err := modify(&elasticache.ModifyReplicationGroupInput{RemoveUserGroups: aws.Bool(true), AuthToken: aws.String(tokenB),
		AuthTokenUpdateStrategy: types.AuthTokenUpdateStrategyTypeRotate}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "switching")
	if g := describeGroup(t, c, "switching"); !aws.ToBool(g.AuthTokenEnabled) || len(g.UserGroupIds) != 0 {
		t.Fatalf("back to a token: AuthTokenEnabled %v, UserGroupIds %q", aws.ToBool(g.AuthTokenEnabled), g.UserGroupIds)
	}
	// The first token after RBAC is set by ROTATE, so passwordless
	// connections work as well until a SET, as on AWS.
	check("token again (ROTATE)", map[string]string{":" + tokenB: "OK", "default:" + userPassword: "OK"})
	modifyAuth(t, c, "switching", tokenB, types.AuthTokenUpdateStrategyTypeSet)
	check("token again (SET)", map[string]string{":" + tokenB: "OK", ":" + tokenA: "WRONGPASS", "default:" + userPassword: "WRONGPASS"})
	if ug, err := c.DescribeUserGroups(ctxT(t, 5*time.Second), &elasticache.DescribeUserGroupsInput{UserGroupId: aws.String("switch")}); err != nil ||
		len(ug.UserGroups[0].ReplicationGroups) != 0 {
		t.Fatalf("the user group still lists %v (%v)", ug, err)
	}

	// A standalone cluster's token, through ModifyCacheCluster.
	if _, err := c.CreateCacheCluster(ctxT(t, 5*time.Second), &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("solo-auth"),
		CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)}); err != nil {
		t.Fatal(err)
	}
	waitClusterAvailable(t, c, "solo-auth")
	solo := nodeEndpoint(t, c, "solo-auth")
	for _, step := range []struct {
		strategy types.AuthTokenUpdateStrategyType
		want     map[string]string
	}{
		{types.AuthTokenUpdateStrategyTypeRotate, map[string]string{tokenA: "OK", tokenB: "OK"}},
		{types.AuthTokenUpdateStrategyTypeSet, map[string]string{tokenA: "WRONGPASS", tokenB: "OK"}},
	} {
		out, err := c.ModifyCacheCluster(ctxT(t, 5*time.Second), &elasticache.ModifyCacheClusterInput{CacheClusterId: aws.String("solo-auth"),
			AuthToken: aws.String(tokenB), AuthTokenUpdateStrategy: step.strategy, ApplyImmediately: aws.Bool(true)})
		if err != nil {
			t.Fatalf("%s: %v", step.strategy, err)
		}
		if out.CacheCluster.PendingModifiedValues.AuthTokenStatus == "" {
			t.Fatalf("%s: no pending AuthTokenStatus", step.strategy)
		}
		waitClusterAvailable(t, c, "solo-auth")
		for token, want := range step.want {
			if got := authAs(solo, pool, "", token); got != want {
				t.Fatalf("%s: token %s… answered %s, want %s", step.strategy, token[:7], got, want)
			}
		}
	}
}
