package engine

// BGSAVE and INFO persistence: taking a fresh RDB of a node for a snapshot.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// savePollInterval is how often BGSave re-reads INFO persistence while a
// save runs: small against the tens of milliseconds even a tiny data set's
// fork and write take, and one INFO on an open connection is cheap.
const savePollInterval = 5 * time.Millisecond

// BGSave runs BGSAVE on the node at ep and waits until that save has
// finished successfully, so the node's dump.rdb holds its data as of the
// call. A save already running (Redis answers "in progress": an automatic
// save, or a replica's full sync) is waited out first, so the file is never
// one from before the call. Everything runs on one connection; ctx bounds it.
func (a Admin) BGSave(ctx context.Context, ep Endpoint) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		before, err := persistenceField(ctx, c, "rdb_saves")
		if err != nil {
			return err
		}
		for {
			err = c.BgSave(ctx).Err()
			if err == nil || !strings.Contains(err.Error(), "in progress") {
				break
			}
			if err := pollDelay(ctx, savePollInterval); err != nil {
				return err
			}
		}
		if err != nil {
			return fmt.Errorf("BGSAVE: %w", err)
		}
		for {
			saves, err := persistenceField(ctx, c, "rdb_saves")
			if err != nil {
				return err
			}
			busy, _ := persistenceField(ctx, c, "rdb_bgsave_in_progress")
			if saves != before && busy == "0" {
				if st, _ := persistenceField(ctx, c, "rdb_last_bgsave_status"); st != "ok" {
					return fmt.Errorf("BGSAVE failed (rdb_last_bgsave_status:%s)", st)
				}
				return nil
			}
			if err := pollDelay(ctx, savePollInterval); err != nil {
				return err
			}
		}
	})
}

// persistenceField returns one field of INFO persistence.
func persistenceField(ctx context.Context, c *redis.Client, field string) (string, error) {
	text, err := c.Info(ctx, "persistence").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO persistence has no %s", field)
}

// pollDelay waits d, or returns ctx's error.
func pollDelay(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
