package engine

// Forming a cluster from nodes started with NodeSpec.Cluster.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ClusterMember is one node of a cluster FormCluster forms.
type ClusterMember struct {
	// Endpoint is where the control plane reaches the node, Peer where the
	// other nodes do (ClusterAddrOf).
	Endpoint, Peer Endpoint
	// Slots are the slots a primary serves.
	Slots []SlotRange
	// Replica marks a replica of the member at index Primary.
	Replica bool
	Primary int
}

// FormCluster forms a cluster of members, or completes one formed in part:
// each primary gets its Slots (ADDSLOTSRANGE), every two members that do
// not know each other MEET, each replica follows its primary (REPLICATE,
// after FlushAll when it is a primary without slots: resumed with data),
// and it returns the members' node ids, in order, once ClusterConsistent
// holds and every replica's link is up (bounded by ctx, 30 s a wait
// without a deadline). Every step is idempotent, so a formation cut short
// is finished by calling it again. Redis keeps a primary's cluster_state
// at fail for its first 2 seconds, so a cluster of nodes just started
// takes that long at least.
func (a Admin) FormCluster(ctx context.Context, members []ClusterMember) ([]string, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("engine: FormCluster without members")
	}
	ids := make([]string, len(members))
	eps := make([]Endpoint, len(members))
	for i, m := range members {
		if m.Replica && (m.Primary < 0 || m.Primary >= len(members) || members[m.Primary].Replica) {
			return nil, fmt.Errorf("engine: member %d (%s) replicates member %d, which is not a primary", i, m.Endpoint.Addr(), m.Primary)
		}
		id, err := a.ClusterMyID(ctx, m.Endpoint)
		if err != nil {
			return nil, err
		}
		ids[i], eps[i] = id, m.Endpoint
	}
	// Slots first: a MEET's handshake then shows each node the other's
	// slots at once, where gossip would take up to half the node timeout.
	for _, m := range members {
		if !m.Replica && len(m.Slots) > 0 {
			if err := a.ClusterAddSlots(ctx, m.Endpoint, m.Slots); err != nil {
				return nil, err
			}
		}
	}
	if err := a.meetAll(ctx, members); err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Replica {
			if err := a.emptyForReplication(ctx, m.Endpoint); err != nil {
				return nil, err
			}
			if err := a.ClusterReplicate(ctx, m.Endpoint, ids[m.Primary]); err != nil {
				return nil, err
			}
		}
	}
	if err := a.ClusterConsistent(ctx, eps); err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Replica {
			if err := WaitReady(ctx, m.Endpoint, a.ReplicationLinkUp); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// emptyForReplication flushes a node that is a primary serving no slot,
// e.g. a replica resumed with its data (NodeSpec.Resume): CLUSTER REPLICATE
// takes only an empty node, and the full sync brings the data back.
func (a Admin) emptyForReplication(ctx context.Context, ep Endpoint) error {
	nodes, err := a.ClusterNodes(ctx, ep)
	if err != nil {
		return err
	}
	if me := myselfOf(nodes); me != nil && me.Primary && len(me.Slots) == 0 {
		return a.FlushAll(ctx, ep)
	}
	return nil
}

// meetAll has every two members that do not know each other (nor have a
// handshake in progress) MEET, so nobody waits for gossip to learn of a
// member (a replica cannot follow a primary it does not know).
func (a Admin) meetAll(ctx context.Context, members []ClusterMember) error {
	known := make([]map[Endpoint]bool, len(members))
	for i, m := range members {
		nodes, err := a.ClusterNodes(ctx, m.Endpoint)
		if err != nil {
			return err
		}
		known[i] = map[Endpoint]bool{}
		for _, n := range nodes {
			known[i][n.PeerAddr()] = true
		}
	}
	for i, m := range members {
		var peers []Endpoint
		for j := i + 1; j < len(members); j++ {
			if !known[i][members[j].Peer] && !known[j][m.Peer] {
				peers = append(peers, members[j].Peer)
			}
		}
		if len(peers) == 0 {
			continue
		}
		err := a.WithClient(ctx, m.Endpoint, func(ctx context.Context, c *redis.Client) error {
			pipe := c.Pipeline()
			for _, p := range peers {
				pipe.ClusterMeet(ctx, p.Host, strconv.Itoa(p.Port))
			}
			_, err := pipe.Exec(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("engine: CLUSTER MEET from %s: %w", m.Endpoint.Addr(), err)
		}
	}
	return nil
}

// SplitSlots divides the 16384 slots into n contiguous ranges as even as
// possible, as redis-cli --cluster create does.
func SplitSlots(n int) [][]SlotRange {
	out := make([][]SlotRange, n)
	start := 0
	for i := range n {
		end := (i+1)*ClusterSlots/n - 1
		out[i] = []SlotRange{{start, end}}
		start = end + 1
	}
	return out
}
