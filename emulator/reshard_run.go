package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

const (
	// slotMovers is how many slots move at once: a MIGRATE blocks its
	// source while it serializes a batch, so moves from several sources
	// (and pipelined ones from the same) keep every node busy.
	slotMovers = 8
	// migrateBatch is how many keys one MIGRATE carries (redis-cli's
	// default is 10, which is why it is slow).
	migrateBatch = 1000
	// slotMoveAttempts bounds the tries of one slot before the resharding
	// gives up (rolling that slot back).
	slotMoveAttempts = 3
	// reshardCommitEvery is how often the slots moved so far are committed
	// to the node groups' records (and the progress to Describe).
	reshardCommitEvery = 200 * time.Millisecond
)

// reshard runs a resharding: it starts the new node groups' nodes, forms
// them into the cluster, moves every slot to its node group in the plan,
// removes the node groups left without slots, and returns the group to
// available. Started again after a restart it does only what is left.
func (e *Emulator) reshard(ctx context.Context, r *region, g *replicationGroup, launches []nodeLaunch) {
	err := e.startNodes(ctx, r, launches)
	if err == nil {
		err = e.formCluster(ctx, r, g)
	}
	if err == nil {
		err = e.moveSlots(ctx, r, g)
	}
	if err == nil {
		err = e.dropNodeGroups(ctx, r, g)
	}
	if stopping(ctx) {
		return // the next start resumes it (reconcile.go)
	}
	r.mu.Lock()
	rs := g.resharding
	g.resharding = nil
	if err != nil {
		e.log.Error("resharding failed", "group", g.id, "err", err)
	} else {
		e.log.Info("resharding finished", "group", g.id, "nodeGroups", len(g.nodeGroups), "keysMoved", rs.moved)
	}
	e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", reshardingEvent(g, rs.from, err))
	e.unlock(r)
	e.availableWhenServing(ctx, r, g)
}

// slotMove is one slot to move, between node groups.
type slotMove struct {
	slot     int
	from, to string
}

// moveSlots moves every slot whose owner differs from the plan's target.
func (e *Emulator) moveSlots(ctx context.Context, r *region, g *replicationGroup) error {
	r.mu.Lock()
	rs := g.resharding
	owner := make([]string, engine.ClusterSlots)
	for _, ng := range g.nodeGroups {
		for _, rg := range ng.slots {
			for s := rg.Start; s <= rg.End; s++ {
				owner[s] = ng.id
			}
		}
	}
	var moves []slotMove
	for id, ranges := range rs.target {
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				if owner[s] != id && owner[s] != "" {
					moves = append(moves, slotMove{slot: s, from: owner[s], to: id})
				}
			}
		}
	}
	primaries := map[string]*clusterMember{}
	var all []engine.Endpoint
	for _, ng := range g.nodeGroups {
		for _, m := range ng.members {
			cl := r.clusters[m]
			if cl == nil {
				continue
			}
			all = append(all, cl.nodes[0].endpoint)
			if m == ng.primary {
				primaries[ng.id] = &clusterMember{id: m, name: cl.nodes[0].name, ep: cl.nodes[0].endpoint, shard: ng.id, primary: true}
			}
		}
	}
	countKeys := rs.keys == 0
	r.mu.Unlock()
	if len(moves) == 0 {
		return nil
	}
	// Spread the moves over the pairs of node groups, so the movers work
	// on different sources at once.
	slices.SortFunc(moves, func(a, b slotMove) int { return a.slot - b.slot })
	moves = interleaveByPair(moves)
	if err := e.identify(ctx, slices.Collect(mapsValues(primaries))); err != nil {
		return err
	}
	if countKeys {
		total, err := e.countMovingKeys(ctx, moves, primaries)
		if err != nil {
			return err
		}
		r.mu.Lock()
		rs.keys = total + int64(len(moves)) // every slot's handover counts one
		e.unlock(r)
	}
	started := time.Now()
	e.log.Info("moving slots", "group", g.id, "slots", len(moves), "keys", rs.keys)

	var moved atomic.Int64
	done := make(chan slotMove, len(moves))
	commit := func() {
		r.mu.Lock()
		for len(done) > 0 {
			m := <-done
			owner[m.slot] = m.to
		}
		layout := map[string][]engine.SlotRange{}
		for s, id := range owner {
			rgs := layout[id]
			if n := len(rgs); n > 0 && rgs[n-1].End == s-1 {
				rgs[n-1].End = s
			} else {
				rgs = append(rgs, engine.SlotRange{Start: s, End: s})
			}
			layout[id] = rgs
		}
		for _, ng := range g.nodeGroups {
			ng.slots = layout[ng.id]
		}
		rs.moved += moved.Swap(0)
		e.unlock(r)
	}
	work := make(chan slotMove)
	var failure atomic.Pointer[error]
	var wg sync.WaitGroup
	for range slotMovers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := e.moveSlot(ctx, m, primaries, all, &moved); err != nil {
					failure.CompareAndSwap(nil, &err)
					continue
				}
				moved.Add(1)
				done <- m
			}
		}()
	}
	finished := make(chan struct{})
	go func() {
		defer close(work)
		for _, m := range moves {
			if failure.Load() != nil || ctx.Err() != nil {
				return
			}
			select {
			case work <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(reshardCommitEvery)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			commit()
		case <-finished:
			running = false
		}
	}
	commit()
	if p := failure.Load(); p != nil {
		return *p
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.log.Info("slots moved", "group", g.id, "slots", len(moves), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// moveSlot moves one slot, retrying a failed attempt; the last failure
// rolls the slot back to its source so nothing stays migrating.
func (e *Emulator) moveSlot(ctx context.Context, m slotMove, primaries map[string]*clusterMember, all []engine.Endpoint, moved *atomic.Int64) error {
	src, dst := primaries[m.from], primaries[m.to]
	if src == nil || dst == nil {
		return fmt.Errorf("slot %d: node group %s or %s has no primary", m.slot, m.from, m.to)
	}
	var others []engine.Endpoint
	for _, ep := range all {
		if ep != src.ep && ep != dst.ep {
			others = append(others, ep)
		}
	}
	mv := engine.SlotMove{
		Slot: m.slot, Source: src.ep, Target: dst.ep, TargetPeer: dst.peer,
		SourceID: src.nodeID, TargetID: dst.nodeID, Others: others, Batch: migrateBatch,
		Progress: func(keys int) { moved.Add(int64(keys)) },
	}
	var err error
	for attempt := 1; attempt <= slotMoveAttempts; attempt++ {
		if _, err = e.admin.MoveSlot(ctx, mv); err == nil || ctx.Err() != nil {
			return err
		}
		e.log.Warn("moving a slot failed; trying again", "slot", m.slot, "from", m.from, "to", m.to, "attempt", attempt, "err", err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if rerr := e.admin.RollbackSlot(rctx, mv); rerr != nil {
		e.log.Error("rolling back a slot that could not move", "slot", m.slot, "err", rerr)
	}
	return fmt.Errorf("slot %d could not move from node group %s to %s: %w", m.slot, m.from, m.to, err)
}

// countMovingKeys counts the keys in the slots to move, for the progress.
func (e *Emulator) countMovingKeys(ctx context.Context, moves []slotMove, primaries map[string]*clusterMember) (int64, error) {
	var total atomic.Int64
	sem := make(chan struct{}, 16)
	err := forEach(moves, func(m slotMove) error {
		sem <- struct{}{}
		defer func() { <-sem }()
		n, err := e.admin.CountKeysInSlot(ctx, primaries[m.from].ep, m.slot)
		total.Add(int64(n))
		return err
	})
	return total.Load(), err
}

// interleaveByPair orders moves round-robin over their (from, to) pairs.
func interleaveByPair(moves []slotMove) []slotMove {
	type pair struct{ from, to string }
	byPair := map[pair][]slotMove{}
	var order []pair
	for _, m := range moves {
		p := pair{m.from, m.to}
		if _, ok := byPair[p]; !ok {
			order = append(order, p)
		}
		byPair[p] = append(byPair[p], m)
	}
	out := make([]slotMove, 0, len(moves))
	for len(out) < len(moves) {
		for _, p := range order {
			if q := byPair[p]; len(q) > 0 {
				out = append(out, q[0])
				byPair[p] = q[1:]
			}
		}
	}
	return out
}

// dropNodeGroups removes the node groups the plan removes, once their
// slots are gone: the other nodes forget them, then their nodes stop.
func (e *Emulator) dropNodeGroups(ctx context.Context, r *region, g *replicationGroup) error {
	r.mu.Lock()
	var doomed []*cacheCluster
	var stay []engine.Endpoint
	for _, ng := range g.nodeGroups {
		gone := slices.Contains(g.resharding.remove, ng.id)
		if gone && len(ng.slots) > 0 {
			r.mu.Unlock()
			return fmt.Errorf("node group %s still holds slots %s", ng.id, engine.FormatSlotRanges(ng.slots))
		}
		for _, m := range ng.members {
			cl := r.clusters[m]
			if cl == nil {
				continue
			}
			if gone {
				cl.status = statusDeleting
				doomed = append(doomed, cl)
			} else {
				stay = append(stay, cl.nodes[0].endpoint)
			}
		}
	}
	e.unlock(r)
	var ids []string
	for _, cl := range doomed {
		if id, err := e.admin.ClusterMyID(ctx, cl.nodes[0].endpoint); err == nil {
			ids = append(ids, id)
		}
	}
	var errs []error
	for _, cl := range doomed {
		if err := e.stopNode(ctx, cl.nodes[0]); err != nil {
			errs = append(errs, err)
		}
	}
	_ = forEach(stay, func(ep engine.Endpoint) error {
		for _, id := range ids {
			_ = e.admin.ClusterForget(ctx, ep, id)
		}
		return nil
	})
	r.mu.Lock()
	defer e.unlock(r)
	for _, cl := range doomed {
		delete(r.clusters, cl.id)
		delete(r.tags, r.arn("cluster", cl.id))
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster deleted")
	}
	g.nodeGroups = slices.DeleteFunc(g.nodeGroups, func(ng *nodeGroup) bool { return slices.Contains(g.resharding.remove, ng.id) })
	g.cfg.sync(r)
	return errors.Join(errs...)
}
