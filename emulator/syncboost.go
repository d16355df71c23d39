package emulator

import (
	"context"
	"sync"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// syncBoosts raise a primary's cron rate while replicas fully sync from it
// (engine.SyncHz, see there why) and lower it back to engine.IdleHz when
// the last of them is done, so idle nodes cost what a default Redis does.
type syncBoosts struct {
	mu sync.Mutex
	// by holds one entry per primary endpoint ever boosted; endpoints come
	// from the address pool, so it stays as small as the pool.
	by map[engine.Endpoint]*syncBoost
}

// syncBoost counts the replicas syncing from one primary. Its lock is held
// across the CONFIG SET so that a raise and a lower never cross.
type syncBoost struct {
	mu      sync.Mutex
	syncing int
}

// boostSync raises the cron rate of primary for a replica about to sync
// from it and returns the function that ends the boost. It never fails: a
// primary that cannot be reached only syncs its replica more slowly.
func (e *Emulator) boostSync(ctx context.Context, primary engine.Endpoint) (done func()) {
	e.boosts.mu.Lock()
	if e.boosts.by == nil {
		e.boosts.by = make(map[engine.Endpoint]*syncBoost)
	}
	b := e.boosts.by[primary]
	if b == nil {
		b = &syncBoost{}
		e.boosts.by[primary] = b
	}
	e.boosts.mu.Unlock()

	b.mu.Lock()
	b.syncing++
	if b.syncing == 1 {
		e.setHz(ctx, primary, engine.SyncHz, "a replica starts a full sync from it")
	}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.syncing--
		if b.syncing == 0 {
			// The start's context may be done (it failed or timed out): the
			// rate goes back down regardless.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			e.setHz(ctx, primary, engine.IdleHz, "no replica is syncing from it any more")
		}
	}
}

// setHz sets the cron rate of the node at ep, logging why.
func (e *Emulator) setHz(ctx context.Context, ep engine.Endpoint, hz int, why string) {
	err := e.admin.SetHz(ctx, ep, hz)
	e.log.Debug("primary cron rate set", "node", ep.Addr(), "hz", hz, "why", why, "err", err)
}
