package engine

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// CountKeysInSlots counts the keys of each of slots on the node at ep, in
// one pipelined round trip over one connection (a resharding counts the
// keys of thousands of slots before it moves them, for its progress).
func (a Admin) CountKeysInSlots(ctx context.Context, ep Endpoint, slots []int) (int64, error) {
	var total int64
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, s := range slots {
				p.ClusterCountKeysInSlot(ctx, s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, cmd := range cmds {
			total += cmd.(*redis.IntCmd).Val()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("engine: CLUSTER COUNTKEYSINSLOT of %d slots on %s: %w", len(slots), ep.Addr(), err)
	}
	return total, nil
}

// FlushAll empties the node at ep (FLUSHALL SYNC). A node must hold no key
// before CLUSTER REPLICATE makes it a replica; a replica that came back
// from its saved data gets the same data from its primary by the full
// sync that follows.
func (a Admin) FlushAll(ctx context.Context, ep Endpoint) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "FLUSHALL", "SYNC").Err()
	})
	if err != nil {
		return fmt.Errorf("engine: FLUSHALL on %s: %w", ep.Addr(), err)
	}
	return nil
}

// MemoryUse reports the node's used_memory and its maxmemory (0: no
// limit), from INFO memory: a scale-in checks that the data fits in the
// node groups that stay before it moves anything.
func (a Admin) MemoryUse(ctx context.Context, ep Endpoint) (used, max int64, err error) {
	err = a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		text, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		info := parseInfo(text)
		used, max = atoi64(info["used_memory"]), atoi64(info["maxmemory"])
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("engine: INFO memory on %s: %w", ep.Addr(), err)
	}
	return used, max, nil
}

// SlotsReplicas returns the ids of the replicas the node at ep lists in
// CLUSTER SLOTS: what cluster clients such as redis-py learn the replicas
// from, which a node may answer from a view older than CLUSTER NODES'.
func (a Admin) SlotsReplicas(ctx context.Context, ep Endpoint) (map[string]bool, error) {
	ids := map[string]bool{}
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		for _, s := range slots {
			for _, n := range s.Nodes[min(1, len(s.Nodes)):] {
				ids[n.ID] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: CLUSTER SLOTS on %s: %w", ep.Addr(), err)
	}
	return ids, nil
}
