package engine

// Loading a standalone node's keys into a cluster: how a cluster is seeded
// from RDB files whose keys are not laid out by its slots (a snapshot of
// another shard count, a cluster-mode-disabled backup, RDB files of one's
// own). The node that loaded the RDB sends every key straight to the
// primary serving its slot with MIGRATE, so the data never passes through
// the control plane.

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// LoadKeysInto copies every key of the node at src, a standalone node
// (not in cluster mode), into a cluster, and returns how many it copied.
// owner gives, for a hash slot, the primary serving it as src reaches it
// (ClusterAddrOf of that primary); it is asked once per slot that has keys.
// Keys are read with SCAN, grouped by owner, and sent batch keys per
// MIGRATE … COPY REPLACE (as the admin user, so it works with the default
// user disabled); REPLACE makes a copy interrupted and started again
// converge, COPY leaves src intact so the SCAN sees a dataset that does not
// change. TTLs go with the keys. A cluster has one database: keys in any
// database but 0 are an error, found before anything is copied. batch <= 0
// means DefaultMigrateBatch. ctx is checked between commands.
func (a Admin) LoadKeysInto(ctx context.Context, src Endpoint, owner func(slot int) (Endpoint, error), batch int) (int, error) {
	if batch <= 0 {
		batch = DefaultMigrateBatch
	}
	cs := a.newClientSet(1)
	defer cs.close()
	c := cs.get(src)
	wrap := func(err error) error {
		return fmt.Errorf("engine: loading the keys of %s into the cluster: %w", src.Addr(), err)
	}
	if err := onlyDatabaseZero(ctx, c); err != nil {
		return 0, wrap(err)
	}
	l := keyLoader{a: a, c: c, owner: owner, batch: batch, pending: map[Endpoint][]string{}, owners: make([]*Endpoint, ClusterSlots)}
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return l.copied, wrap(err)
		}
		keys, next, err := c.Scan(ctx, cursor, "", int64(batch)).Result()
		if err != nil {
			return l.copied, wrap(fmt.Errorf("SCAN: %w", err))
		}
		for _, k := range keys {
			if err := l.add(ctx, k); err != nil {
				return l.copied, wrap(err)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	for to := range l.pending {
		if err := l.flush(ctx, to); err != nil {
			return l.copied, wrap(err)
		}
	}
	return l.copied, nil
}

// onlyDatabaseZero refuses a node with keys outside database 0, which a
// cluster cannot hold.
func onlyDatabaseZero(ctx context.Context, c *redis.Client) error {
	text, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return fmt.Errorf("INFO keyspace: %w", err)
	}
	for db, v := range parseInfo(text) {
		if strings.HasPrefix(db, "db") && db != "db0" && !strings.HasPrefix(v, "keys=0,") {
			return fmt.Errorf("it has keys in database %s (%s); a cluster has database 0 only", strings.TrimPrefix(db, "db"), v)
		}
	}
	return nil
}

// keyLoader gathers the keys of a LoadKeysInto by owner and sends them
// in batches.
type keyLoader struct {
	a       Admin
	c       *redis.Client
	owner   func(slot int) (Endpoint, error)
	batch   int
	owners  []*Endpoint // by slot, once asked
	pending map[Endpoint][]string
	copied  int
}

// add queues key for its slot's owner and sends the owner's batch once full.
func (l *keyLoader) add(ctx context.Context, key string) error {
	slot := HashSlot(key)
	to := l.owners[slot]
	if to == nil {
		ep, err := l.owner(slot)
		if err != nil {
			return fmt.Errorf("the owner of slot %d: %w", slot, err)
		}
		to = &ep
		l.owners[slot] = to
	}
	l.pending[*to] = append(l.pending[*to], key)
	if len(l.pending[*to]) >= l.batch {
		return l.flush(ctx, *to)
	}
	return nil
}

// flush sends the keys queued for to in one MIGRATE. NOKEY (every key of
// the batch expired meanwhile) is not an error; those keys are not counted.
func (l *keyLoader) flush(ctx context.Context, to Endpoint) error {
	keys := l.pending[to]
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 12+len(keys))
	args = append(args, "MIGRATE", to.Host, to.Port, "", 0, migrateTimeout.Milliseconds(), "COPY", "REPLACE")
	if l.a.user != "" {
		args = append(args, "AUTH2", l.a.user, l.a.password)
	}
	args = append(append(args, "KEYS"), toAny(keys)...)
	reply, err := l.c.Do(ctx, args...).Text()
	if err != nil {
		return fmt.Errorf("MIGRATE %d keys to %s: %w", len(keys), to.Addr(), err)
	}
	if reply != "NOKEY" {
		l.copied += len(keys)
	}
	l.pending[to] = keys[:0]
	return nil
}
