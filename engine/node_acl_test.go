package engine_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// userClient opens a client of the node at ep as user (no AUTH when user
// is empty), on one connection that stays open.
func userClient(t *testing.T, ep engine.Endpoint, user, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: ep.Addr(), Username: user, Password: password, Protocol: 2,
		MaxRetries: -1, PoolSize: 1, MinIdleConns: 0, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// authedConn is a raw connection to the node at ep authenticated as user:
// unlike a go-redis client it never reconnects, so a closed connection
// shows.
func authedConn(t *testing.T, ep engine.Endpoint, user, password string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", ep.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if line := inline(t, c, "AUTH "+user+" "+password); line != "+OK" {
		t.Fatalf("AUTH %s: %q", user, line)
	}
	return c
}

// inline sends one inline command on c and returns the reply's first line
// ("" when the connection is closed).
func inline(t *testing.T, c net.Conn, cmd string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return ""
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: no reply", cmd)
		}
		return ""
	}
	return strings.TrimRight(line, "\r\n")
}

// replyPrefix is the reply of one command as "OK" or the error's first word.
func replyPrefix(ctx context.Context, c *redis.Client, args ...any) string {
	err := c.Do(ctx, args...).Err()
	if err == nil || err == redis.Nil {
		return "OK"
	}
	return strings.SplitN(err.Error(), " ", 2)[0]
}

// TestApplyUsers: ApplyUsers makes a node's users exactly the given ones
// plus the admin user, in one step: passwords by hash, key patterns and
// command rules enforced, a user that goes is deleted and its open
// connection closed, the default user back to Redis's own when none is
// given; the admin user works throughout.
func TestApplyUsers(t *testing.T) {
	h := newHarness(t, "127.0.7.200")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "acl", nil).Endpoint

	const alicePass, readerPass, defaultPass = "alice-password-0123", "reader-password-0123", "default-password-0123"
	users := []engine.ACLUser{
		{Name: "default", Enabled: true, PasswordHashes: []string{engine.PasswordHash(defaultPass)}, Rules: "~* &* +@all"},
		{Name: "alice", Enabled: true, PasswordHashes: []string{engine.PasswordHash(alicePass)}, Rules: "~alice:* +@all"},
		{Name: "reader", Enabled: true, PasswordHashes: []string{engine.PasswordHash(readerPass)}, Rules: "~* -@all +@read +@connection"},
		{Name: "gone", Enabled: false, NoPassword: true, Rules: "~* +@all"},
	}
	if err := admin.ApplyUsers(ctx, ep, users); err != nil {
		t.Fatal(err)
	}
	got, err := admin.ACLUsers(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice", "default", engine.AdminUser, "gone", "reader"}; !slices.Equal(got, want) {
		t.Fatalf("ACL USERS = %q, want %q", got, want)
	}
	if r := replyPrefix(ctx, userClient(t, ep, "", ""), "PING"); r != "NOAUTH" {
		t.Errorf("PING without AUTH = %s, want NOAUTH (the default user has a password)", r)
	}
	if r := replyPrefix(ctx, userClient(t, ep, "", defaultPass), "SET", "k", "v"); r != "OK" {
		t.Errorf("SET as default with its password = %s", r)
	}
	alice := userClient(t, ep, "alice", alicePass)
	aliceConn := authedConn(t, ep, "alice", alicePass)
	if r := replyPrefix(ctx, alice, "SET", "alice:1", "x"); r != "OK" {
		t.Errorf("alice SET alice:1 = %s", r)
	}
	if r := replyPrefix(ctx, alice, "SET", "bob:1", "x"); r != "NOPERM" {
		t.Errorf("alice SET bob:1 = %s, want NOPERM", r)
	}
	reader := userClient(t, ep, "reader", readerPass)
	if r := replyPrefix(ctx, reader, "GET", "alice:1"); r != "OK" {
		t.Errorf("reader GET = %s", r)
	}
	if r := replyPrefix(ctx, reader, "SET", "x", "y"); r != "NOPERM" {
		t.Errorf("reader SET = %s, want NOPERM", r)
	}
	if r := replyPrefix(ctx, userClient(t, ep, "gone", "anything-at-all-x"), "PING"); r != "WRONGPASS" {
		t.Errorf("AUTH as a user that is off = %s, want WRONGPASS", r)
	}

	// alice goes, reader's rules change, default is not given: alice's open
	// connection is closed, reader's stays with its new rules, and the
	// default user is Redis's own again.
	if err := admin.ApplyUsers(ctx, ep, []engine.ACLUser{
		{Name: "reader", Enabled: true, PasswordHashes: []string{engine.PasswordHash(readerPass)}, Rules: "~* +@all"},
	}); err != nil {
		t.Fatal(err)
	}
	if r := inline(t, aliceConn, "PING"); r != "" {
		t.Errorf("alice's connection answered %q after alice was removed, want it closed", r)
	}
	if r := replyPrefix(ctx, userClient(t, ep, "alice", alicePass), "PING"); r != "WRONGPASS" {
		t.Errorf("AUTH as a removed user = %s, want WRONGPASS", r)
	}
	if r := replyPrefix(ctx, reader, "SET", "x", "y"); r != "OK" {
		t.Errorf("reader SET after its rules allow it = %s", r)
	}
	if r := replyPrefix(ctx, userClient(t, ep, "", ""), "SET", "open", "1"); r != "OK" {
		t.Errorf("SET without AUTH after the default user went back to Redis's = %s", r)
	}
	got, _ = admin.ACLUsers(ctx, ep)
	if want := []string{"default", engine.AdminUser, "reader"}; !slices.Equal(got, want) {
		t.Fatalf("ACL USERS = %q, want %q", got, want)
	}

	// Nothing: only the default user (Redis's own) and the admin user.
	if err := admin.ApplyUsers(ctx, ep, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = admin.ACLUsers(ctx, ep)
	if want := []string{"default", engine.AdminUser}; !slices.Equal(got, want) {
		t.Fatalf("ACL USERS after ApplyUsers(nil) = %q, want %q", got, want)
	}
	if err := admin.Ping(ctx, ep); err != nil {
		t.Fatalf("admin PING: %v", err)
	}

	// Refused before anything is sent.
	for _, bad := range [][]engine.ACLUser{
		{{Name: engine.AdminUser, Enabled: true, NoPassword: true}},
		{{Name: "twice", Enabled: true}, {Name: "twice"}},
		{{Name: "has space"}},
	} {
		if err := admin.ApplyUsers(ctx, ep, bad); err == nil {
			t.Errorf("ApplyUsers(%+v) succeeded", bad)
		}
	}
	// A rule Redis refuses is reported, naming the user.
	err = admin.ApplyUsers(ctx, ep, []engine.ACLUser{{Name: "odd", Enabled: true, Rules: "+nosuchcommand"}})
	if err == nil || !strings.Contains(err.Error(), "odd") {
		t.Errorf("ApplyUsers with an unknown command = %v, want an error naming the user", err)
	}
}

// TestKillClientsOfUser closes the connections of one user only; a user
// without connections, or unknown, is no error.
func TestKillClientsOfUser(t *testing.T) {
	h := newHarness(t, "127.0.7.210")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "aclkill", nil).Endpoint
	const pass = "carol-password-0123"
	if err := admin.ApplyUsers(ctx, ep, []engine.ACLUser{
		{Name: "carol", Enabled: true, PasswordHashes: []string{engine.PasswordHash(pass)}, Rules: "~* +@all"},
	}); err != nil {
		t.Fatal(err)
	}
	carol := authedConn(t, ep, "carol", pass)
	other := authedConn(t, ep, "default", "any-password-at-all")
	if err := admin.KillClientsOfUser(ctx, ep, "carol"); err != nil {
		t.Fatal(err)
	}
	if r := inline(t, carol, "PING"); r != "" {
		t.Errorf("carol's connection answered %q after CLIENT KILL USER carol, want it closed", r)
	}
	if r := inline(t, other, "PING"); r != "+PONG" {
		t.Errorf("another user's connection answered %q, want +PONG", r)
	}
	for _, u := range []string{"carol", "nobody"} {
		if err := admin.KillClientsOfUser(ctx, ep, u); err != nil {
			t.Errorf("KillClientsOfUser(%s) without connections: %v", u, err)
		}
	}
}
