package emulator

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// syncBoosts raise a primary's cron rate while replicas fully sync from it
// (engine.SyncHz, see there why) and lower it back to engine.IdleHz when
// the last of them is done, so idle nodes cost what a default Redis does.
//
// At most maxBoosted primaries run boosted at once. A boost saves a sync
// up to 90 ms of waiting for the primary's cron; a primary at 100 Hz costs
// several times the CPU of one at 10 Hz. With a few syncs at once the CPU
// is idle and the boost is the faster sync; with a hundred (a hundred
// groups created together) the CPU is what every sync waits for, and a
// hundred boosted primaries spent it on their crons: their syncs took
// seconds, beside which the cron's 100 ms do not count. The primaries past
// the budget sync at the idle rate.
type syncBoosts struct {
	mu sync.Mutex
	// by holds one entry per primary endpoint ever boosted; endpoints come
	// from the address pool, so it stays as small as the pool.
	by map[engine.Endpoint]*syncBoost
	// boosted counts the primaries running at engine.SyncHz.
	boosted int
}

// maxBoosted is how many primaries run at engine.SyncHz at once: about
// what a 2-core machine runs without their crons mattering.
const maxBoosted = 4

// syncBoost counts the replicas syncing from one primary. Its lock is held
// across the CONFIG SET so that a raise and a lower never cross.
type syncBoost struct {
	mu      sync.Mutex
	syncing int
	// boosted is set while the primary holds one of the maxBoosted slots.
	boosted bool
}

// boostSync raises the cron rate of primary for a replica about to sync
// from it, if fewer than maxBoosted primaries run raised, and returns the
// function that ends the boost. It never fails: a primary that cannot be
// reached, or is not boosted, only syncs its replica more slowly.
func (e *Emulator) boostSync(ctx context.Context, primary engine.Endpoint) (done func()) {
	return e.boost(primary, func() {
		e.setHz(ctx, primary, engine.SyncHz, "a replica starts a full sync from it")
	})
}

// boostFromStart is boostSync for a primary about to start together with
// replicas that sync from it as soon as it answers: when a slot is free,
// its launch starts it at engine.SyncHz instead of raising the rate by
// CONFIG SET once it runs. A raise after the start takes effect only when
// the cron period the server armed at the idle rate ends, up to 100 ms
// later, and the first sync's save is noticed only then (measured: a
// 3-node create waited 70 ms for it). The function returned ends the boost
// like boostSync's, once the replicas' own boosts are over.
func (e *Emulator) boostFromStart(l *nodeLaunch) (done func()) {
	return e.boost(l.spec.Endpoint, func() {
		l.spec.Config = maps.Clone(l.spec.Config)
		if l.spec.Config == nil {
			l.spec.Config = map[string]string{}
		}
		l.spec.Config["hz"] = engine.HzValue(engine.SyncHz)
	})
}

// boost counts one more replica syncing from primary and, when the primary
// is not boosted yet and a slot is free, calls raise; the function returned
// ends it, lowering the rate again with the last one.
func (e *Emulator) boost(primary engine.Endpoint, raise func()) (done func()) {
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
	if !b.boosted && e.boosts.take() {
		b.boosted = true
		raise()
	}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.syncing--
		if b.syncing == 0 && b.boosted {
			// The start's context may be done (it failed or timed out): the
			// rate goes back down regardless.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			e.setHz(ctx, primary, engine.IdleHz, "no replica is syncing from it any more")
			b.boosted = false
			e.boosts.give()
		}
	}
}

// take claims one of the maxBoosted slots, reporting whether one was free.
func (s *syncBoosts) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boosted >= maxBoosted {
		return false
	}
	s.boosted++
	return true
}

// give returns a slot take claimed.
func (s *syncBoosts) give() {
	s.mu.Lock()
	s.boosted--
	s.mu.Unlock()
}

// setHz sets the cron rate of the node at ep, logging why.
func (e *Emulator) setHz(ctx context.Context, ep engine.Endpoint, hz int, why string) {
	err := e.admin.SetHz(ctx, ep, hz)
	e.log.Debug("primary cron rate set", "node", ep.Addr(), "hz", hz, "why", why, "err", err)
}
