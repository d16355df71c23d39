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
		err = e.checkFits(ctx, r, g)
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

// checkFits refuses a scale-in whose data would not fit in the node
// groups that stay (their primaries' maxmemory, where set), before any
// slot moves: the resharding then ends with the layout unchanged, as on
// AWS. A resumed scale-in that already moved slots is not checked again.
func (e *Emulator) checkFits(ctx context.Context, r *region, g *replicationGroup) error {
	r.mu.Lock()
	rs := g.resharding
	if len(rs.remove) == 0 || rs.moved > 0 {
		r.mu.Unlock()
		return nil
	}
	type primary struct {
		ep   engine.Endpoint
		stay bool
	}
	var primaries []primary
	for _, ng := range g.nodeGroups {
		if cl := r.clusters[ng.primary]; cl != nil {
			primaries = append(primaries, primary{cl.nodes[0].endpoint, !slices.Contains(rs.remove, ng.id)})
		}
	}
	r.mu.Unlock()
	var need, have int64
	for _, p := range primaries {
		used, max, err := e.admin.MemoryUse(ctx, p.ep)
		if err != nil {
			return err
		}
		need += used
		if p.stay {
			if max == 0 {
				return nil // no limit: it fits
			}
			have += max
		}
	}
	if need > have {
		return fmt.Errorf("the data (%d MiB) does not fit in the %d node groups that would stay (%d MiB of maxmemory); the layout is unchanged",
			need>>20, len(g.nodeGroups)-len(rs.remove), have>>20)
	}
	return nil
}

// slotMove is one slot to move, between node groups.
type slotMove struct {
	slot     int
	from, to string
}

// moveSlots moves every slot whose owner differs from the plan's target.
// The moves run in chunks through engine.Admin.MoveSlots (slotMovers at
// once, over shared connections); after each chunk the layout is read
// back from the primaries themselves and committed to the node groups, so
// Describe and a restart see what the cluster really serves.
func (e *Emulator) moveSlots(ctx context.Context, r *region, g *replicationGroup) error {
	moves, primaries, all, countKeys := e.pendingMoves(r, g)
	if len(moves) == 0 {
		return nil
	}
	rs := g.resharding
	listed := slices.Collect(mapsValues(primaries))
	if got := e.identify(ctx, listed); len(got) != len(listed) {
		return fmt.Errorf("a primary of %s does not answer", g.id)
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
	progress := func(keys int) { moved.Add(int64(keys)) }
	specs := make([]engine.SlotMove, len(moves))
	for i, m := range moves {
		src, dst := primaries[m.from], primaries[m.to]
		if src == nil || dst == nil {
			return fmt.Errorf("slot %d: node group %s or %s has no primary", m.slot, m.from, m.to)
		}
		specs[i] = engine.SlotMove{
			Slot: m.slot, Source: src.ep, Target: dst.ep, TargetPeer: dst.peer,
			SourceID: src.nodeID, TargetID: dst.nodeID, Others: all, Batch: migrateBatch,
			Progress: progress,
		}
	}
	// The progress percentage follows the keys as they move.
	tickCtx, stopTick := context.WithCancel(ctx)
	defer stopTick()
	go func() {
		t := time.NewTicker(reshardCommitEvery)
		defer t.Stop()
		var logged progressTicker
		for {
			select {
			case <-tickCtx.Done():
				return
			case <-t.C:
				r.mu.Lock()
				rs.moved += moved.Swap(0)
				keys, pct := rs.moved, rs.progress()
				e.unlock(r)
				if logged.due() {
					e.log.Info("resharding in progress", "group", g.id, "keysMoved", keys, "percent", pct)
				}
			}
		}
	}()
	for start := 0; start < len(specs); start += reshardChunk {
		chunk := specs[start:min(len(specs), start+reshardChunk)]
		_, err := e.admin.MoveSlots(ctx, chunk, slotMovers)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("moving slots failed; retrying them one by one", "group", g.id, "err", err)
			err = e.retryMoves(ctx, chunk)
		}
		moved.Add(int64(len(chunk)))
		if cerr := e.commitLayout(ctx, r, g, primaries); cerr != nil && err == nil && ctx.Err() == nil {
			e.log.Warn("reading the slot layout back", "group", g.id, "err", cerr)
		}
		if err != nil {
			return err
		}
	}
	stopTick()
	r.mu.Lock()
	rs.moved += moved.Swap(0)
	e.unlock(r)
	e.log.Info("slots moved", "group", g.id, "slots", len(moves), "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// pendingMoves lists the slots whose recorded owner differs from the
// plan's target, spread over the pairs of node groups so the movers work
// on different sources at once; with them the primaries by node group,
// every member node, and whether the keys to move are still to count.
func (e *Emulator) pendingMoves(r *region, g *replicationGroup) ([]slotMove, map[string]*clusterMember, []engine.Endpoint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	owner := slotOwners(g.nodeGroups)
	var moves []slotMove
	for id, ranges := range g.resharding.target {
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				if owner[s] != id && owner[s] != "" {
					moves = append(moves, slotMove{slot: s, from: owner[s], to: id})
				}
			}
		}
	}
	slices.SortFunc(moves, func(a, b slotMove) int { return a.slot - b.slot })
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
	return interleaveByPair(moves), primaries, all, g.resharding.keys == 0
}

// slotOwners is the node group id of every slot, as recorded.
func slotOwners(ngs []*nodeGroup) []string {
	owner := make([]string, engine.ClusterSlots)
	for _, ng := range ngs {
		for _, rg := range ng.slots {
			for s := rg.Start; s <= rg.End; s++ {
				owner[s] = ng.id
			}
		}
	}
	return owner
}

// reshardChunk is how many slot moves run between two commits of the
// layout.
const reshardChunk = 256

// retryMoves finishes the moves of a chunk that failed, one by one: a
// slot its target serves already is done; the others are tried again, and
// one that still fails is rolled back to its source so no slot stays
// migrating.
func (e *Emulator) retryMoves(ctx context.Context, chunk []engine.SlotMove) error {
	for _, mv := range chunk {
		if e.servedBy(ctx, mv.Target, mv.TargetID, mv.Slot) {
			continue
		}
		var err error
		for attempt := 1; attempt <= slotMoveAttempts; attempt++ {
			if _, err = e.admin.MoveSlot(ctx, mv); err == nil || ctx.Err() != nil || e.servedBy(ctx, mv.Target, mv.TargetID, mv.Slot) {
				err = ctx.Err()
				break
			}
			e.log.Warn("moving a slot failed; trying again", "slot", mv.Slot, "attempt", attempt, "err", err)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if rerr := e.admin.RollbackSlot(rctx, mv); rerr != nil {
			e.log.Error("rolling back a slot that could not move", "slot", mv.Slot, "err", rerr)
		}
		cancel()
		return fmt.Errorf("slot %d could not move: %w", mv.Slot, err)
	}
	return nil
}

// servedBy reports whether the node at ep (id) serves slot itself.
func (e *Emulator) servedBy(ctx context.Context, ep engine.Endpoint, id string, slot int) bool {
	nodes, err := e.admin.ClusterNodes(ctx, ep)
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if n.Myself && n.ID == id {
			for _, rg := range n.Slots {
				if slot >= rg.Start && slot <= rg.End {
					return true
				}
			}
		}
	}
	return false
}

// commitLayout reads each primary's own slots and records them as its node
// group's. A slot two primaries claim for a moment (the target took it,
// the source has not heard yet) goes to the one the plan moves it to.
func (e *Emulator) commitLayout(ctx context.Context, r *region, g *replicationGroup, primaries map[string]*clusterMember) error {
	claims := map[string][]engine.SlotRange{}
	var mu sync.Mutex
	err := forEach(slices.Collect(mapsValues(primaries)), func(m *clusterMember) error {
		nodes, err := e.admin.ClusterNodes(ctx, m.ep)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Myself && n.Primary {
				mu.Lock()
				claims[m.shard] = n.Slots
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer e.unlock(r)
	owner := slotOwners(g.nodeGroups)
	target := make([]string, engine.ClusterSlots)
	for id, ranges := range g.resharding.target {
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				target[s] = id
			}
		}
	}
	for id, ranges := range claims {
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				if owner[s] != target[s] {
					owner[s] = id
				}
			}
		}
	}
	byID := map[string]*nodeGroup{}
	for _, ng := range g.nodeGroups {
		ng.slots = nil
		byID[ng.id] = ng
	}
	for s, id := range owner {
		ng := byID[id]
		if ng == nil {
			continue
		}
		if n := len(ng.slots); n > 0 && ng.slots[n-1].End == s-1 {
			ng.slots[n-1].End = s
		} else {
			ng.slots = append(ng.slots, engine.SlotRange{Start: s, End: s})
		}
	}
	return nil
}

// countMovingKeys counts the keys in the slots to move, for the progress:
// one pipelined round trip per source.
func (e *Emulator) countMovingKeys(ctx context.Context, moves []slotMove, primaries map[string]*clusterMember) (int64, error) {
	bySource := map[string][]int{}
	for _, m := range moves {
		bySource[m.from] = append(bySource[m.from], m.slot)
	}
	var total atomic.Int64
	err := forEach(slices.Collect(mapsKeys(bySource)), func(from string) error {
		n, err := e.admin.CountKeysInSlots(ctx, primaries[from].ep, bySource[from])
		total.Add(n)
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
				// Deleting: the health monitor leaves it alone.
				cl.status, cl.nodes[0].status = statusDeleting, statusDeleting
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
