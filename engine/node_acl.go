package engine

// ACL commands: the users of a node (RBAC user groups, AUTH tokens) and
// the connections of a user.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisDefaultUser returns the rules of Redis's own default user (on, no
// password, every key, channel and command): what a node's default user
// goes back to when the users it is given name no default.
func redisDefaultUser() []any { return []any{"reset", "on", "nopass", "~*", "&*", "+@all"} }

// ApplyUsers makes the users of the node at ep exactly users plus
// AdminUser, in one transaction (MULTI/EXEC), so no client sees a mix of
// the old and new users: ACL SETUSER <name> reset ... for each of users
// (ACLUser.Args), Redis's own default user again when users holds none
// named "default", and every other user deleted (ACL DELUSER, after
// CLIENT KILL USER: its connections are closed, so a removed user is
// locked out at once). Connections of users that stay keep their
// authentication and get their new permissions at once, as Redis does.
// AdminUser is never touched and may not be in users, nor a name twice.
func (a Admin) ApplyUsers(ctx context.Context, ep Endpoint, users []ACLUser) error {
	want := make(map[string]bool, len(users))
	for _, u := range users {
		switch {
		case u.Name == "" || strings.ContainsFunc(u.Name, func(c rune) bool { return c <= ' ' }):
			return fmt.Errorf("engine: invalid ACL user name %q", u.Name)
		case u.Name == AdminUser:
			return fmt.Errorf("engine: the users of a node may not include the admin user %s", AdminUser)
		case want[u.Name]:
			return fmt.Errorf("engine: ACL user %s given twice", u.Name)
		}
		want[u.Name] = true
	}
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		current, err := c.Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil {
			return fmt.Errorf("ACL USERS: %w", err)
		}
		var gone []string
		for _, name := range current {
			if name != AdminUser && name != "default" && !want[name] {
				gone = append(gone, name)
			}
		}
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range users {
				args := []any{"ACL", "SETUSER", u.Name}
				for _, r := range u.Args() {
					args = append(args, r)
				}
				p.Do(ctx, args...)
			}
			if !want["default"] {
				p.Do(ctx, append([]any{"ACL", "SETUSER", "default"}, redisDefaultUser()...)...)
			}
			for _, name := range gone {
				p.Do(ctx, "CLIENT", "KILL", "USER", name)
			}
			if len(gone) > 0 {
				args := []any{"ACL", "DELUSER"}
				for _, name := range gone {
					args = append(args, name)
				}
				p.Do(ctx, args...)
			}
			return nil
		})
		// An error reply inside EXEC fails that command only; report each
		// one, naming the user but never its rules (they hold hashes).
		var errs []error
		for _, cmd := range cmds {
			if cerr := cmd.Err(); cerr != nil {
				errs = append(errs, fmt.Errorf("%s: %w", commandName(cmd.Args()), cerr))
			}
		}
		if len(errs) == 0 && err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// commandName is a command of ApplyUsers up to the user it names ("ACL
// SETUSER alice", "CLIENT KILL USER bob"), without the rules.
func commandName(args []any) string {
	n := 3
	if len(args) > 0 && args[0] == "CLIENT" {
		n = 4
	}
	parts := make([]string, 0, n)
	for _, a := range args[:min(n, len(args))] {
		parts = append(parts, fmt.Sprint(a))
	}
	return strings.Join(parts, " ")
}

// KillClientsOfUser closes every connection of the node at ep
// authenticated as user (CLIENT KILL USER). No such connection, or no
// such user, is not an error.
func (a Admin) KillClientsOfUser(ctx context.Context, ep Endpoint, user string) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := c.Do(ctx, "CLIENT", "KILL", "USER", user).Err()
		if err != nil && (strings.HasPrefix(err.Error(), "ERR No such user") || err.Error() == "ERR No such client") {
			return nil
		}
		return err
	})
}

// ACLUsers lists the users of the node at ep (ACL USERS), AdminUser
// included.
func (a Admin) ACLUsers(ctx context.Context, ep Endpoint) ([]string, error) {
	var users []string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		users, err = c.Do(ctx, "ACL", "USERS").StringSlice()
		return err
	})
	return users, err
}
