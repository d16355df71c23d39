package integration

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// Passwords of the users the nodes test puts on a group.
const (
	rbacNodeDefault = "node-default-0123456789"
	rbacNodeWriter  = "node-writer-0123456789"
	rbacNodeReader  = "node-reader-0123456789"
	rbacNodeKeys    = "node-keys-0123456789"
	rbacNodeLate    = "node-late-0123456789"
)

// rbacAs is a TLS client of endpoint ep authenticated as user (the
// default user when user is ""), on one connection.
func rbacAs(t *testing.T, ep *types.Endpoint, pool *x509.CertPool, user, password string) *redis.Client {
	o := tlsOptions(ep, pool, password)
	o.Username, o.PoolSize, o.Protocol, o.DisableIdentity = user, 1, 2, true
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// rbacReply is a command's outcome: "OK" or the error's first word
// (NOAUTH, WRONGPASS, NOPERM, ...).
func rbacReply(c *redis.Client, args ...any) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Do(ctx, args...).Err()
	if err == nil || err == redis.Nil {
		return "OK"
	}
	return strings.SplitN(err.Error(), " ", 2)[0]
}

// TestRBACOnNodes: a TLS group of 3 nodes given a user group enforces its
// users on every endpoint: no AUTH is refused (the group's default user
// has a password), a read-only user gets NOPERM on writes, a key-pattern
// user reaches only its keys; a user removed from the user group is locked
// out once the modification ends (its open connection closed); a user
// added later works on every node, replicas included, and on a node
// rebuilt after a kill. Needs CreateReplicationGroup's UserGroupIds.
func TestRBACOnNodes(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 5*time.Minute)
	pool, _ := fetchCA(t, e.url)
	for _, u := range []struct{ id, name, access, password string }{
		{"app-default", "default", "on ~* +@all", rbacNodeDefault},
		{"writer", "writer", "on ~* +@all", rbacNodeWriter},
		{"reader", "reader", "on ~* -@all +@read +@connection", rbacNodeReader},
		{"keys", "keys", "on ~kp:* +@all", rbacNodeKeys},
		{"late", "late", "on ~* +@all", rbacNodeLate},
	} {
		if _, err := c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String(u.id), UserName: aws.String(u.name),
			Engine: aws.String("redis"), AccessString: aws.String(u.access), Passwords: []string{u.password}}); err != nil {
			t.Fatalf("CreateUser %s: %v", u.id, err)
		}
	}
	if _, err := c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"),
		UserIds: []string{"app-default", "writer", "reader", "keys"}}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, "app", "active")

	// RBAC needs transit encryption, as on AWS.
	_, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("plain"),
		ReplicationGroupDescription: aws.String("no TLS"), CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
		NumCacheClusters: aws.Int32(1), UserGroupIds: []string{"app"}})
	expectError(t, err, "InvalidParameterCombination", 400)

	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("rbac"),
		ReplicationGroupDescription: aws.String("RBAC"), CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
		NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true), TransitEncryptionEnabled: aws.Bool(true),
		UserGroupIds: []string{"app"}}); err != nil {
		t.Fatalf("CreateReplicationGroup with UserGroupIds (needs the replication group wiring): %v", err)
	}
	waitAvailable(t, c, "rbac")
	if g := describeGroup(t, c, "rbac"); len(g.UserGroupIds) != 1 || g.UserGroupIds[0] != "app" {
		t.Errorf("UserGroupIds = %q", g.UserGroupIds)
	}
	if ug := describeUserGroup(t, c, "app"); len(ug.ReplicationGroups) != 1 || ug.ReplicationGroups[0] != "rbac" {
		t.Errorf("the user group's ReplicationGroups = %q", ug.ReplicationGroups)
	}
	eps := groupEndpoints(t, c, describeGroup(t, c, "rbac"))
	primary := eps["primary"]

	for name, ep := range eps {
		if r := rbacReply(rbacAs(t, ep, pool, "", ""), "PING"); r != "NOAUTH" {
			t.Errorf("%s: PING without AUTH = %s, want NOAUTH", name, r)
		}
		if r := rbacReply(rbacAs(t, ep, pool, "", rbacNodeDefault), "PING"); r != "OK" {
			t.Errorf("%s: AUTH with the default user's password = %s", name, r)
		}
		if r := rbacReply(rbacAs(t, ep, pool, "reader", rbacNodeReader), "GET", "k"); r != "OK" {
			t.Errorf("%s: reader GET = %s", name, r)
		}
	}
	if r := rbacReply(rbacAs(t, primary, pool, "writer", rbacNodeWriter), "SET", "k", "v"); r != "OK" {
		t.Errorf("writer SET = %s", r)
	}
	if r := rbacReply(rbacAs(t, primary, pool, "reader", rbacNodeReader), "SET", "k", "v"); r != "NOPERM" {
		t.Errorf("reader SET = %s, want NOPERM", r)
	}
	keys := rbacAs(t, primary, pool, "keys", rbacNodeKeys)
	if r := rbacReply(keys, "SET", "kp:1", "v"); r != "OK" {
		t.Errorf("keys SET kp:1 = %s", r)
	}
	if r := rbacReply(keys, "GET", "k"); r != "NOPERM" {
		t.Errorf("keys GET k = %s, want NOPERM", r)
	}
	if r := rbacReply(rbacAs(t, primary, pool, "late", rbacNodeLate), "PING"); r != "WRONGPASS" {
		t.Errorf("late before it is in the user group = %s, want WRONGPASS", r)
	}

	// Removing writer locks it out, its open connection included.
	open := rbacAs(t, primary, pool, "writer", rbacNodeWriter)
	if r := rbacReply(open, "PING"); r != "OK" {
		t.Fatalf("writer PING = %s", r)
	}
	if _, err := c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"),
		UserIdsToRemove: []string{"writer"}}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, "app", "active")
	if r := rbacReply(open, "SET", "k", "after"); r == "OK" {
		t.Error("writer's open connection still writes after writer left the user group")
	}
	for name, ep := range eps {
		if r := rbacReply(rbacAs(t, ep, pool, "writer", rbacNodeWriter), "PING"); r != "WRONGPASS" {
			t.Errorf("%s: writer after its removal = %s, want WRONGPASS", name, r)
		}
	}

	// A user added later works on every node, replicas included.
	if _, err := c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"),
		UserIdsToAdd: []string{"late"}}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, "app", "active")
	for name, ep := range eps {
		if r := rbacReply(rbacAs(t, ep, pool, "late", rbacNodeLate), "PING"); r != "OK" {
			t.Errorf("%s: late after it was added = %s", name, r)
		}
	}

	// A replica killed from outside is rebuilt with the user group's users.
	g := describeGroup(t, c, "rbac")
	var replica string
	for _, m := range g.MemberClusters {
		if m != primaryOf(g) {
			replica = m
			break
		}
	}
	killFromOutside(t, e, replica)
	eventually(t, time.Minute, func() error {
		v := adminNodes(t, e.url)[replica]
		if v.Status != "available" || v.Role != "replica" || !v.LinkUp {
			return fmt.Errorf("replica %s: %+v", replica, v)
		}
		if r := rbacReply(rbacAs(t, eps[replica], pool, "late", rbacNodeLate), "PING"); r != "OK" {
			return fmt.Errorf("late on the rebuilt replica: %s", r)
		}
		return nil
	})
	if r := rbacReply(rbacAs(t, eps[replica], pool, "", ""), "PING"); r != "NOAUTH" {
		t.Errorf("the rebuilt replica without AUTH = %s, want NOAUTH", r)
	}
	if r := rbacReply(rbacAs(t, eps[replica], pool, "writer", rbacNodeWriter), "PING"); r != "WRONGPASS" {
		t.Errorf("the rebuilt replica lets the removed writer in: %s", r)
	}

	// The user group cannot go while the group uses it.
	_, err = c.DeleteUserGroup(ctx, &elasticache.DeleteUserGroupInput{UserGroupId: aws.String("app")})
	expectError(t, err, "InvalidUserGroupState", 400)
}
