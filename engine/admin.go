package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// AdminUser is the name of the ACL user every node has for the emulator
// itself. Users of a node may change or disable its default user (CONFIG SET
// requirepass, ACL SETUSER default off); the control plane's connections and
// replication keep working because they never use it.
const AdminUser = "elasticache-local"

// Admin is how the control plane reaches nodes: every connection opened by
// its methods authenticates as AdminUser with the runtime's secret password.
// The zero value opens unauthenticated connections (the default user), which
// suits a node without the admin user only.
//
// A runtime creates one with NewAdmin, configures every node it starts with
// ServerDirectives and reports it through Runtime.Admin, so the credentials
// reach the node operations without any global state.
type Admin struct {
	user, password string
}

// NewAdmin returns credentials for AdminUser with a fresh random password.
// Nodes do not outlive the run that started them (the next run reaps them),
// so the password is never written anywhere but into the nodes' settings.
func NewAdmin() (Admin, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Admin{}, fmt.Errorf("engine: generating the admin password: %w", err)
	}
	return Admin{user: AdminUser, password: hex.EncodeToString(b)}, nil
}

// User returns the ACL user the connections authenticate as ("" for the
// default user).
func (a Admin) User() string { return a.user }

// String and LogValue keep the password out of logs and error messages.
func (a Admin) String() string { return "engine.Admin{user: " + a.user + "}" }

// LogValue implements slog.LogValuer.
func (a Admin) LogValue() slog.Value { return slog.StringValue(a.String()) }

// ServerDirectives are the redis.conf directives (name, then arguments) a
// node needs for Admin to work: the admin user with every permission, and
// the same credentials for a replica's connection to its primary (so a
// password set on the default user does not break replication). Nil for the
// zero Admin. ACL users need Redis 6.0 or later.
func (a Admin) ServerDirectives() [][]string {
	if a.user == "" {
		return nil
	}
	return [][]string{
		{"user", a.user, "on", ">" + a.password, "~*", "+@all"},
		{"masteruser", a.user},
		{"masterauth", a.password},
	}
}

// Options returns go-redis client options for the node at ep that
// authenticate as the admin user over RESP2 without retries, client
// identity or maintenance notifications, with short dial and I/O timeouts
// and context deadlines applied to the socket. Callers keeping a connection
// open (the health monitor) may adjust pool sizes and timeouts.
func (a Admin) Options(ep Endpoint) *redis.Options {
	return &redis.Options{
		Addr:                  ep.Addr(),
		Username:              a.user,
		Password:              a.password,
		Protocol:              2,
		DialTimeout:           dialTimeout,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// IsReply reports whether err is a reply of the server (an error reply such
// as BUSY, NOAUTH, WRONGPASS, LOADING or MASTERDOWN, or a nil reply): proof
// that the node is alive even though the command failed. Timeouts, refused
// or reset connections and cancelled contexts are not replies.
func IsReply(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

// Alive checks that the node at ep is alive: it returns nil for any reply
// to PING, including errors (a node busy with a script, loading its data, or
// whose default user a client disabled, is alive), and an error only when
// the connection is refused or reset or nothing answers before ctx is done.
func (a Admin) Alive(ctx context.Context, ep Endpoint) error {
	err := a.Ping(ctx, ep)
	if err != nil && IsReply(err) {
		return nil
	}
	return err
}
