package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// formCluster brings the Redis Cluster of a cluster-mode group to what the
// records say, from whatever state its nodes are in: every member knows
// every other one, nodes no member is any more (a replaced node's old
// identity) are forgotten, every slot without an owner is given to the
// primary of the node group that records it, and every replica follows
// its node group's primary. It is idempotent and used everywhere the
// cluster may be incomplete: after a create, a node's repair, a restart
// that resumed nodes without their cluster state, and new node groups of a
// resharding. It returns once every node reports cluster_state:ok, agrees
// on the slot owners, and every replica's link is up. No lock is held.
func (e *Emulator) formCluster(ctx context.Context, r *region, g *replicationGroup, include ...string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.NodeReadyTimeout)
	defer cancel()
	members := e.identify(ctx, e.clusterMembers(r, g, include...))
	if len(members) == 0 {
		return errors.New("no member node answers to form the cluster with")
	}
	live := map[string]*clusterMember{}
	for _, m := range members {
		live[m.nodeID] = m
	}
	defer e.quickenGossip(ctx, members)()
	views, err := e.clusterViews(ctx, members)
	if err != nil {
		return err
	}
	e.adoptRoles(r, g, members, views)
	e.forgetStrangers(ctx, members, views, live)
	// Slots first: the union of the members' views says which are served.
	if err := e.assignFreeSlots(ctx, r, g, members, views, live); err != nil {
		return err
	}
	e.meetAll(ctx, members, views)
	if err := e.awaitAcquainted(ctx, members, live); err != nil {
		return err
	}
	if views, err = e.clusterViews(ctx, members); err != nil {
		return err
	}
	if err := e.attachReplicas(ctx, members, views); err != nil {
		return err
	}
	eps := make([]engine.Endpoint, len(members))
	for i, m := range members {
		eps[i] = m.ep
	}
	if err := engine.WaitReady(ctx, eps[0], func(ctx context.Context, _ engine.Endpoint) error {
		return e.admin.ClusterConsistent(ctx, eps)
	}); err != nil {
		return fmt.Errorf("the cluster of %s did not converge: %w", g.id, err)
	}
	for _, m := range members {
		if !m.primary {
			if err := engine.WaitReady(ctx, m.ep, e.admin.ReplicationLinkUp); err != nil {
				return fmt.Errorf("replica %s did not sync: %w", m.id, err)
			}
		}
	}
	return e.awaitRolesKnown(ctx, members)
}

// awaitRolesKnown waits until every member knows every replica as the
// replica of its node group's primary and lists it in CLUSTER SLOTS (what
// cluster clients such as redis-py read the nodes from): gossip spreads a
// replica's role a moment after its link is up, and Redis 7.0 lists a
// replica only once its replication offset, as gossiped, is not 0, which
// takes the primary's first replication PING (see quickenGossip).
func (e *Emulator) awaitRolesKnown(ctx context.Context, members []*clusterMember) error {
	primaryOf := map[string]string{} // replica node id → primary node id
	listable := map[string]bool{}    // replicas CLUSTER SLOTS shows: of a primary with slots
	for _, m := range members {
		if m.primary {
			continue
		}
		listable[m.nodeID] = !m.slotless
		for _, p := range members {
			if p.primary && p.shard == m.shard {
				primaryOf[m.nodeID] = p.nodeID
			}
		}
	}
	return forEach(members, func(m *clusterMember) error {
		return engine.WaitReady(ctx, m.ep, func(ctx context.Context, ep engine.Endpoint) error {
			nodes, err := e.admin.ClusterNodes(ctx, ep)
			if err != nil {
				return err
			}
			seen := 0
			for _, n := range nodes {
				if p, ok := primaryOf[n.ID]; ok && n.Replica && n.PrimaryID == p {
					seen++
				}
			}
			if seen < len(primaryOf) {
				return fmt.Errorf("node %s knows %d of the %d replicas as such", m.id, seen, len(primaryOf))
			}
			listed, err := e.admin.SlotsReplicas(ctx, ep)
			if err != nil {
				return err
			}
			for id := range primaryOf {
				if listable[id] && !listed[id] {
					return fmt.Errorf("node %s does not list replica %s in CLUSTER SLOTS yet", m.id, id)
				}
			}
			return nil
		})
	})
}

// quickenGossip makes the cluster converge faster while it forms and
// returns what puts it back: every node pings its peers at least every
// half second (cluster-node-timeout 1000 instead of 5000; failure
// detection is the control plane's own, see ClusterDirectives), and each
// primary sends its replicas a replication PING every second instead of
// every 10, so their offsets are not 0 for long.
func (e *Emulator) quickenGossip(ctx context.Context, members []*clusterMember) func() {
	timeouts := make([]string, len(members))
	idx := make([]int, len(members))
	for i := range idx {
		idx[i] = i
	}
	_ = forEach(idx, func(i int) error {
		m := members[i]
		v, err := e.admin.ConfigGet(ctx, m.ep, "cluster-node-timeout")
		if err != nil || v == "" {
			return nil
		}
		timeouts[i] = v
		return e.admin.ConfigSet(ctx, m.ep, map[string]string{"cluster-node-timeout": "1000", "repl-ping-replica-period": "1"})
	})
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = forEach(idx, func(i int) error {
			if timeouts[i] == "" {
				return nil
			}
			return e.admin.ConfigSet(rctx, members[i].ep, map[string]string{"cluster-node-timeout": timeouts[i], "repl-ping-replica-period": "10"})
		})
	}
}

// clusterMember is one node of a cluster-mode group as formCluster sees it.
type clusterMember struct {
	id      string // member cluster id
	name    string // runtime name
	ep      engine.Endpoint
	shard   string // node group id
	primary bool   // the node group's recorded primary
	// slotless: the node group holds no slot (yet: a resharding's new one)
	slotless bool
	// nodeID is the node's Redis Cluster id; peer the address other
	// nodes reach it at.
	nodeID string
	peer   engine.Endpoint
}

// clusterMembers lists the nodes of g that run: members found down (until
// their repair restarts them: include names such a member) or that failed
// to start are left out. The recorded primary of each node group comes
// first in it.
func (e *Emulator) clusterMembers(r *region, g *replicationGroup, include ...string) []*clusterMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*clusterMember
	for _, ng := range g.nodeGroups {
		ids := append([]string{ng.primary}, slices.DeleteFunc(slices.Clone(ng.members), func(m string) bool { return m == ng.primary })...)
		for _, id := range ids {
			cl := r.clusters[id]
			if cl == nil || cl.status == statusCreateFailed || cl.status == restoreFailed || (cl.nodes[0].down && !slices.Contains(include, id)) {
				continue
			}
			n := cl.nodes[0]
			out = append(out, &clusterMember{id: id, name: n.name, ep: n.endpoint, shard: ng.id, primary: id == ng.primary, slotless: len(ng.slots) == 0})
		}
	}
	return out
}

// identify asks every member its cluster node id and peer address and
// returns those that answered; one that does not (it died meanwhile: the
// health monitor deals with it) is left out of this formation.
func (e *Emulator) identify(ctx context.Context, members []*clusterMember) []*clusterMember {
	ok := make([]bool, len(members))
	idx := make([]int, len(members))
	for i := range idx {
		idx[i] = i
	}
	_ = forEach(idx, func(i int) error {
		m := members[i]
		id, err := e.admin.ClusterMyID(ctx, m.ep)
		if err == nil {
			m.peer, err = engine.ClusterAddrOf(ctx, e.opts.Runtime, m.name, m.ep)
		}
		if err != nil {
			e.log.Warn("a cluster node does not answer; forming the cluster without it", "cluster", m.id, "err", err)
			return nil
		}
		m.nodeID, ok[i] = id, true
		return nil
	})
	var out []*clusterMember
	for i, m := range members {
		if ok[i] {
			out = append(out, m)
		}
	}
	return out
}

// clusterViews is CLUSTER NODES of every member, by member.
func (e *Emulator) clusterViews(ctx context.Context, members []*clusterMember) (map[*clusterMember][]engine.ClusterNode, error) {
	var mu sync.Mutex
	views := map[*clusterMember][]engine.ClusterNode{}
	err := forEach(members, func(m *clusterMember) error {
		v, err := e.admin.ClusterNodes(ctx, m.ep)
		if err != nil {
			return fmt.Errorf("node %s: %w", m.id, err)
		}
		mu.Lock()
		views[m] = v
		mu.Unlock()
		return nil
	})
	return views, err
}

// adoptRoles takes the cluster's word on which member is a node group's
// primary where it differs from the records: a failover finished by the
// cluster but not recorded (the emulator stopped in between) leaves the
// recorded primary a replica, and making it a primary again would lose
// what was written since.
func (e *Emulator) adoptRoles(r *region, g *replicationGroup, members []*clusterMember, views map[*clusterMember][]engine.ClusterNode) {
	actual := map[string]*clusterMember{} // a member serving slots, by node group
	demoted := map[string]bool{}          // members that say they are replicas
	for _, m := range members {
		for _, n := range views[m] {
			switch {
			case n.Myself && n.Primary && len(n.Slots) > 0:
				actual[m.shard] = m
			case n.Myself && n.Replica:
				demoted[m.id] = true
			}
		}
	}
	r.mu.Lock()
	defer e.unlock(r)
	for _, ng := range g.nodeGroups {
		m := actual[ng.id]
		if m == nil || m.id == ng.primary || !demoted[ng.primary] {
			continue
		}
		e.log.Info("the cluster has another primary than recorded; taking its word", "group", g.id, "nodeGroup", ng.id, "recorded", ng.primary, "actual", m.id)
		e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", failoverMessage(ng.primary, m.id, "the cluster reports "+m.id+" as the primary of node group "+ng.id))
		ng.primary = m.id
		for _, o := range members {
			if o.shard == ng.id {
				o.primary = o == m
			}
		}
	}
}

// forgetStrangers makes every member forget nodes that are no member:
// the earlier identity of a node that was replaced (it restarted empty,
// with a new id), or a node of a removed node group.
func (e *Emulator) forgetStrangers(ctx context.Context, members []*clusterMember, views map[*clusterMember][]engine.ClusterNode, live map[string]*clusterMember) {
	strangers := map[string]bool{}
	for _, v := range views {
		for _, n := range v {
			if live[n.ID] == nil {
				strangers[n.ID] = true
			}
		}
	}
	if len(strangers) == 0 {
		return
	}
	_ = forEach(members, func(m *clusterMember) error {
		for id := range strangers {
			if err := e.admin.ClusterForget(ctx, m.ep, id); err != nil {
				e.log.Debug("cluster forget", "node", m.id, "forget", id, "err", err)
			}
		}
		return nil
	})
	e.log.Info("cluster nodes forgot the earlier identities of replaced nodes", "count", len(strangers))
}

// meetAll has every two members that do not know each other MEET, so no
// one waits for the cluster's gossip to learn of the others (a replica
// must know its primary before CLUSTER REPLICATE); past meshLimit members
// each meets only the first one and gossip does the rest.
func (e *Emulator) meetAll(ctx context.Context, members []*clusterMember, views map[*clusterMember][]engine.ClusterNode) {
	knows := func(a, b *clusterMember) bool {
		return slices.ContainsFunc(views[a], func(n engine.ClusterNode) bool { return n.ID == b.nodeID && !n.Handshake })
	}
	_ = forEach(members, func(m *clusterMember) error {
		for i, o := range members {
			if o == m || (len(members) > meshLimit && i > 0 && m != members[0]) {
				continue
			}
			if !knows(m, o) && !knows(o, m) && m.nodeID < o.nodeID || (!knows(m, o) && knows(o, m)) {
				if err := e.admin.ClusterMeet(ctx, m.ep, o.peer); err != nil {
					e.log.Warn("cluster meet", "from", m.id, "to", o.id, "err", err)
				}
			}
		}
		return nil
	})
}

// meshLimit is the largest cluster whose members all MEET each other.
const meshLimit = 32

// awaitAcquainted waits until every member knows every other member.
func (e *Emulator) awaitAcquainted(ctx context.Context, members []*clusterMember, live map[string]*clusterMember) error {
	return forEach(members, func(m *clusterMember) error {
		return engine.WaitReady(ctx, m.ep, func(ctx context.Context, ep engine.Endpoint) error {
			v, err := e.admin.ClusterNodes(ctx, ep)
			if err != nil {
				return err
			}
			known := 0
			for _, n := range v {
				if live[n.ID] != nil && !n.Handshake && !n.NoAddr {
					known++
				}
			}
			if known < len(live) {
				return fmt.Errorf("node %s knows %d of the %d nodes", m.id, known, len(live))
			}
			return nil
		})
	})
}

// assignFreeSlots gives every slot no member owns to the primary of the
// node group that records it.
func (e *Emulator) assignFreeSlots(ctx context.Context, r *region, g *replicationGroup, members []*clusterMember, views map[*clusterMember][]engine.ClusterNode, live map[string]*clusterMember) error {
	owned := make([]bool, engine.ClusterSlots)
	for _, v := range views {
		for _, n := range v {
			if live[n.ID] == nil {
				continue
			}
			for _, rg := range n.Slots {
				for s := rg.Start; s <= rg.End; s++ {
					owned[s] = true
				}
			}
		}
	}
	r.mu.Lock()
	want := map[string][]engine.SlotRange{}
	for _, ng := range g.nodeGroups {
		want[ng.id] = slices.Clone(ng.slots)
	}
	r.mu.Unlock()
	return forEach(members, func(m *clusterMember) error {
		if !m.primary {
			return nil
		}
		var free []engine.SlotRange
		for _, rg := range want[m.shard] {
			for s := rg.Start; s <= rg.End; s++ {
				switch n := len(free); {
				case owned[s]:
				case n > 0 && free[n-1].End == s-1:
					free[n-1].End = s
				default:
					free = append(free, engine.SlotRange{Start: s, End: s})
				}
			}
		}
		if len(free) == 0 {
			return nil
		}
		if err := e.admin.ClusterAddSlots(ctx, m.ep, free); err != nil {
			return fmt.Errorf("assigning slots %s to %s: %w", engine.FormatSlotRanges(free), m.id, err)
		}
		return nil
	})
}

// attachReplicas makes every replica member follow its node group's
// primary (CLUSTER REPLICATE), unless it does already.
func (e *Emulator) attachReplicas(ctx context.Context, members []*clusterMember, views map[*clusterMember][]engine.ClusterNode) error {
	primaries := map[string]*clusterMember{}
	for _, m := range members {
		if m.primary {
			primaries[m.shard] = m
		}
	}
	return forEach(members, func(m *clusterMember) error {
		p := primaries[m.shard]
		if m.primary || p == nil {
			return nil
		}
		for _, n := range views[m] {
			if n.Myself && n.Replica && n.PrimaryID == p.nodeID {
				return nil
			}
			if n.Myself && n.Primary && len(n.Slots) == 0 {
				// A replica that came back from its saved data is a
				// primary without slots holding keys: CLUSTER REPLICATE
				// takes only an empty node, and the full sync that
				// follows brings the same data back from its primary.
				if err := e.admin.FlushAll(ctx, m.ep); err != nil {
					return err
				}
			}
		}
		if err := e.admin.ClusterReplicate(ctx, m.ep, p.nodeID); err != nil {
			return fmt.Errorf("making %s a replica of %s: %w", m.id, p.id, err)
		}
		return nil
	})
}

// forEach runs fn on every item in parallel and returns the errors joined.
func forEach[T any](items []T, fn func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clusterFailover promotes target, a replica of ng, with CLUSTER FAILOVER:
// planned, the default mode, in which the primary stops writes until the
// replica has caught up, so no acknowledged write is lost and the old
// primary becomes a replica by itself; unplanned (the primary is dead),
// TAKEOVER, which needs no agreement from the other primaries. The other
// replicas follow the new primary through the cluster's own gossip. No
// lock is held by the caller.
func (e *Emulator) clusterFailover(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, oldID, target string, newEP engine.Endpoint, planned bool, why string) (string, error) {
	mode := "TAKEOVER"
	if planned {
		mode = ""
	}
	if err := e.admin.ClusterFailover(ctx, newEP, mode); err != nil {
		return "", fmt.Errorf("promoting %s: %w", target, err)
	}
	r.mu.Lock()
	ng.primary = target
	ng.syncEndpoints(r)
	msg := failoverMessage(oldID, target, why)
	e.record(r, types.SourceTypeCacheCluster, target, "%s", msg)
	e.record(r, types.SourceTypeReplicationGroup, g.id, "%s", msg)
	e.unlock(r)
	e.log.Info("failover completed", "group", g.id, "nodeGroup", ng.id, "from", oldID, "to", target, "planned", planned, "mode", "cluster failover "+mode)
	return target, nil
}

// rejoinCluster brings a node restarted empty (a repair) back into its
// group's cluster: formCluster forgets its earlier identity, introduces
// it, gives it its node group's slots when it is still the primary, or
// makes it a replica of the primary. No lock is held by the caller.
func (e *Emulator) rejoinCluster(ctx context.Context, r *region, cl *cacheCluster) error {
	r.mu.Lock()
	g := r.groups[cl.groupID]
	r.mu.Unlock()
	if g == nil {
		return nil
	}
	return e.formCluster(ctx, r, g, cl.id)
}

// reconcileClusterNodes brings a cluster-mode group back after a start:
// adopted nodes are waited for, the others started again (from their
// saved data when they have some), then formCluster re-forms the cluster
// where nodes came back without their cluster state. A resharding in
// progress is resumed by reconcileRegion afterwards.
func (e *Emulator) reconcileClusterNodes(ctx context.Context, r *region, g *replicationGroup, fates map[string]nodeFate) error {
	r.mu.Lock()
	var members []*cacheCluster
	for _, id := range g.memberClusters() {
		if cl := r.clusters[id]; cl != nil && cl.status != statusCreateFailed && cl.status != restoreFailed {
			members = append(members, cl)
		}
	}
	e.unlock(r)
	err := forEach(members, func(cl *cacheCluster) error {
		if !fates[cl.nodes[0].name].running {
			return e.restartMember(ctx, r, g, cl, nil, fates)
		}
		err := e.awaitAdopted(ctx, cl.nodes[0].endpoint)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		e.settleMember(r, cl, nil, err)
		e.unlock(r)
		return err
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if ferr := e.formCluster(ctx, r, g); ferr != nil {
		err = errors.Join(err, ferr)
	}
	r.mu.Lock()
	g.cfg.sync(r)
	e.unlock(r)
	return err
}
