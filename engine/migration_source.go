package engine

// What online migration asks of a server the emulator does not run: the
// self-managed Redis OSS or Valkey a group's primary is to replicate from.

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// SourceInfo is what InspectSource reads of a migration source.
type SourceInfo struct {
	// Server is "redis" or "valkey"; Version its version (redis_version,
	// or valkey_version when the server reports one).
	Server, Version string
	// Replication is its INFO replication section.
	Replication ReplicationInfo
	// Databases is its number of logical databases (CONFIG GET databases;
	// 0 when CONFIG is not allowed).
	Databases int
}

// InspectSource connects to the server at ep the way a replica does, with
// no credentials and no TLS, and reads its version and replication state.
// A server that asks for a password answers NOAUTH, which is returned as
// the error: a replica without masterauth cannot sync from it.
func (a Admin) InspectSource(ctx context.Context, ep Endpoint) (SourceInfo, error) {
	opts := a.Options(ep)
	opts.Username, opts.Password, opts.TLSConfig = "", "", nil
	c := redis.NewClient(opts)
	defer c.Close()
	var out SourceInfo
	text, err := c.Info(ctx, "server").Result()
	if err != nil {
		return out, fmt.Errorf("engine: INFO server on %s: %w", ep.Addr(), err)
	}
	info := parseInfo(text)
	out.Server, out.Version = "redis", info["redis_version"]
	if v := info["valkey_version"]; v != "" {
		out.Server, out.Version = "valkey", v
	}
	if text, err = c.Info(ctx, "replication").Result(); err != nil {
		return out, fmt.Errorf("engine: INFO replication on %s: %w", ep.Addr(), err)
	}
	if out.Replication, err = ParseReplicationInfo(text); err != nil {
		return out, err
	}
	kv, err := c.ConfigGet(ctx, "databases").Result()
	switch {
	case err == nil:
		out.Databases = atoi(kv["databases"])
	case !IsReply(err):
		return out, fmt.Errorf("engine: CONFIG GET databases on %s: %w", ep.Addr(), err)
	}
	// An error reply (CONFIG renamed away on the source) leaves Databases 0.
	return out, nil
}

// FollowSource makes the node at ep a replica of a migration source. The
// source knows none of the admin's credentials, which the node would send
// as a replica (masteruser, masterauth: ServerDirectives), so they are
// cleared first; a source must not ask for a password (see InspectSource).
func (a Admin) FollowSource(ctx context.Context, ep, source Endpoint) error {
	if err := a.ConfigSet(ctx, ep, map[string]string{"masteruser": "", "masterauth": ""}); err != nil {
		return fmt.Errorf("engine: clearing the replication credentials of %s: %w", ep.Addr(), err)
	}
	return a.ReplicaOf(ctx, ep, &source)
}

// PromoteFromSource makes the node at ep, a replica of a migration source,
// a primary again and gives it back the admin's credentials, which it
// needs when it replicates from another node later (a failover).
func (a Admin) PromoteFromSource(ctx context.Context, ep Endpoint) error {
	if err := a.ReplicaOf(ctx, ep, nil); err != nil {
		return err
	}
	if err := a.ConfigSet(ctx, ep, map[string]string{"masteruser": a.user, "masterauth": a.password}); err != nil {
		return fmt.Errorf("engine: restoring the replication credentials of %s: %w", ep.Addr(), err)
	}
	return nil
}
