package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NodeStats is what one INFO call tells about a node: its replication
// section, its memory against its limit and its key count.
type NodeStats struct {
	Replication ReplicationInfo
	// UsedMemory is used_memory; MaxMemory is maxmemory (0: no limit).
	UsedMemory, MaxMemory int64
	// Keys is the sum of keys=N of every database of INFO keyspace.
	Keys int64
	// Server is what the node really runs, from INFO server: "valkey
	// 8.1.0" for a Valkey server (which also reports the Redis OSS version
	// it is compatible with), "redis 7.0.15" otherwise. A node runs
	// whatever binary or image the runtime maps its requested engine
	// version to, which is not always that version.
	Server string
}

// InspectNode reads the server, replication, memory and keyspace sections of the
// node's INFO in one round trip, so a view of many nodes (the admin API,
// the console) costs one command per node.
func (a Admin) InspectNode(ctx context.Context, ep Endpoint) (NodeStats, error) {
	var text string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		text, err = c.Info(ctx, "server", "replication", "memory", "keyspace").Result()
		return err
	})
	if err != nil {
		return NodeStats{}, fmt.Errorf("engine: INFO on %s: %w", ep.Addr(), err)
	}
	return ParseNodeStats(text)
}

// ParseNodeStats parses the text of INFO replication, memory and keyspace.
func ParseNodeStats(text string) (NodeStats, error) {
	repl, err := ParseReplicationInfo(text)
	if err != nil {
		return NodeStats{}, err
	}
	kv := parseInfo(text)
	st := NodeStats{Replication: repl, UsedMemory: atoi64(kv["used_memory"]), MaxMemory: atoi64(kv["maxmemory"])}
	switch {
	case kv["valkey_version"] != "":
		st.Server = "valkey " + kv["valkey_version"]
	case kv["redis_version"] != "":
		st.Server = "redis " + kv["redis_version"]
	}
	for k, v := range kv {
		// db0:keys=1,expires=0,avg_ttl=0
		if n, ok := strings.CutPrefix(k, "db"); !ok || n == "" || strings.Trim(n, "0123456789") != "" {
			continue
		}
		for _, field := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(field, "keys="); ok {
				st.Keys += atoi64(n)
			}
		}
	}
	return st, nil
}
