package engine

// Cluster mode (Redis Cluster): forming a cluster (MEET, ADDSLOTSRANGE,
// REPLICATE, FORGET), reading its state (CLUSTER NODES, CLUSTER INFO) and
// the manual failover. Slot migration is in node_cluster_migrate.go, slot
// ranges and the key hash in node_cluster_slots.go, the nodes' cluster
// directives in node_cluster_conf.go.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID string
	// Addr is the client address as the node announces it: the announced
	// hostname when there is one (docker: the host IP of the published
	// endpoint), else IP, and the client port. Clients on the host use it.
	Addr Endpoint
	// IP is the address the nodes reach this one at (on docker the
	// container's IP on its network): what ClusterMeet takes, with
	// Addr.Port, and what the node's MIGRATE peers use.
	IP      string
	BusPort int

	Myself, Primary, Replica, Fail, PFail, Handshake, NoAddr bool

	// PrimaryID is the id of the primary a replica follows ("" otherwise).
	PrimaryID string
	// Connected is link-state connected (always true for myself).
	Connected bool
	// Slots are the slots a primary serves, merged and sorted.
	Slots []SlotRange
	// Migrating and Importing map a slot to the peer node id; CLUSTER NODES
	// shows them on the line of myself only.
	Migrating, Importing map[int]string
}

// PeerAddr is the node's address as the other nodes reach it (IP and the
// client port), the argument of ClusterMeet and of a MIGRATE to it.
func (n ClusterNode) PeerAddr() Endpoint { return Endpoint{Host: n.IP, Port: n.Addr.Port} }

// ClusterInfo is the parsed CLUSTER INFO of a node.
type ClusterInfo struct {
	// State is "ok" or "fail".
	State                                    string
	SlotsAssigned, SlotsOK, KnownNodes, Size int
	CurrentEpoch                             int64
}

// ClusterMyID returns the node's cluster id (CLUSTER MYID).
func (a Admin) ClusterMyID(ctx context.Context, ep Endpoint) (string, error) {
	var id string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		id, err = c.ClusterMyID(ctx).Result()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("engine: CLUSTER MYID on %s: %w", ep.Addr(), err)
	}
	return id, nil
}

// ClusterMeet introduces peer to the node at ep (CLUSTER MEET ip port, the
// bus port being port+10000); gossip then spreads the acquaintance. peer is
// the address nodes reach each other at (ClusterAddrOf), an IP. Meeting a
// node already known is harmless.
func (a Admin) ClusterMeet(ctx context.Context, ep Endpoint, peer Endpoint) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.ClusterMeet(ctx, peer.Host, strconv.Itoa(peer.Port)).Err()
	})
	if err != nil {
		return fmt.Errorf("engine: CLUSTER MEET %s on %s: %w", peer.Addr(), ep.Addr(), err)
	}
	return nil
}

// ClusterAddSlots assigns ranges to the node at ep (CLUSTER ADDSLOTSRANGE).
// Slots ep already owns are left out, so a retry after a partial failure
// succeeds; a slot the node knows another owner of is an error.
func (a Admin) ClusterAddSlots(ctx context.Context, ep Endpoint, ranges []SlotRange) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		nodes, err := clusterNodes(ctx, c)
		if err != nil {
			return err
		}
		var owned []SlotRange
		if me := myselfOf(nodes); me != nil {
			owned = me.Slots
		}
		missing := subtractSlotRanges(ranges, owned)
		if len(missing) == 0 {
			return nil
		}
		args := []any{"CLUSTER", "ADDSLOTSRANGE"}
		for _, r := range missing {
			args = append(args, r.Start, r.End)
		}
		return c.Do(ctx, args...).Err()
	})
	if err != nil {
		return fmt.Errorf("engine: CLUSTER ADDSLOTSRANGE %s on %s: %w", FormatSlotRanges(ranges), ep.Addr(), err)
	}
	return nil
}

// ClusterReplicate makes the node at ep a replica of primaryID (CLUSTER
// REPLICATE). A node that follows primaryID already is left alone. Right
// after a MEET the node may not know primaryID yet: "Unknown node" is
// retried until the node learns it by gossip or ctx ends (30 s without a
// deadline). Redis refuses a primary that holds keys or slots ("must be
// empty"), returned at once: a replica resumed with its data (see
// NodeSpec.Resume) needs FlushAll first.
func (a Admin) ClusterReplicate(ctx context.Context, ep Endpoint, primaryID string) error {
	err := WaitReady(ctx, ep, func(ctx context.Context, ep Endpoint) error {
		return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
			nodes, err := clusterNodes(ctx, c)
			if err != nil {
				return err
			}
			if me := myselfOf(nodes); me != nil && me.Replica && me.PrimaryID == primaryID {
				return nil
			}
			err = c.ClusterReplicate(ctx, primaryID).Err()
			if err != nil && !strings.Contains(strings.ToLower(err.Error()), "unknown node") {
				return Permanent(err)
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("engine: CLUSTER REPLICATE %s on %s: %w", primaryID, ep.Addr(), err)
	}
	return nil
}

// ClusterDropSlots makes the node at ep serve no slot (CLUSTER
// DELSLOTSRANGE of those it serves), keeping its keys. Runtimes call it on
// a cluster node they start with data (NodeSpec.Resume, InitialRDB), before
// any other node knows it: Redis has a fresh cluster node claim the slots
// of the keys it loads, and a resumed replica claiming its primary's slots
// would fight the primary over them once they meet (the loser of the
// config epoch collision deletes its keys of those slots). Without claims
// the control plane hands out the slots from its records instead.
func (a Admin) ClusterDropSlots(ctx context.Context, ep Endpoint) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		nodes, err := clusterNodes(ctx, c)
		if err != nil {
			return err
		}
		me := myselfOf(nodes)
		if me == nil || len(me.Slots) == 0 {
			return nil
		}
		args := []any{"CLUSTER", "DELSLOTSRANGE"}
		for _, r := range me.Slots {
			args = append(args, r.Start, r.End)
		}
		return c.Do(ctx, args...).Err()
	})
	if err != nil {
		return fmt.Errorf("engine: dropping the slots of %s: %w", ep.Addr(), err)
	}
	return nil
}

// ClusterNodes returns the parsed CLUSTER NODES of the node at ep.
func (a Admin) ClusterNodes(ctx context.Context, ep Endpoint) ([]ClusterNode, error) {
	var nodes []ClusterNode
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		nodes, err = clusterNodes(ctx, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: CLUSTER NODES on %s: %w", ep.Addr(), err)
	}
	return nodes, nil
}

func clusterNodes(ctx context.Context, c *redis.Client) ([]ClusterNode, error) {
	text, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	return ParseClusterNodes(text)
}

// ParseClusterNodes parses the text of CLUSTER NODES (one node a line:
// id ip:port@cport[,hostname] flags primary ping pong epoch link slots…).
func ParseClusterNodes(text string) ([]ClusterNode, error) {
	var nodes []ClusterNode
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("engine: malformed CLUSTER NODES line %q", line)
		}
		n := ClusterNode{ID: f[0], Connected: f[7] == "connected"}
		addr, aux, _ := strings.Cut(f[1], ",")
		hostport, cport, _ := strings.Cut(addr, "@")
		if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
			n.IP = strings.Trim(hostport[:i], "[]")
			n.Addr = Endpoint{Host: n.IP, Port: atoi(hostport[i+1:])}
		}
		n.BusPort = atoi(cport)
		for _, field := range strings.Split(aux, ",") {
			// 7.0 appends the hostname alone; later versions may name fields.
			host, named := strings.CutPrefix(field, "hostname=")
			if field != "" && (named || !strings.Contains(field, "=")) {
				if host != "" {
					n.Addr.Host = host
				}
			}
		}
		for _, flag := range strings.Split(f[2], ",") {
			switch flag {
			case "myself":
				n.Myself = true
			case "master":
				n.Primary = true
			case "slave":
				n.Replica = true
			case "fail":
				n.Fail = true
			case "fail?":
				n.PFail = true
			case "handshake":
				n.Handshake = true
			case "noaddr":
				n.NoAddr = true
			}
		}
		if f[3] != "-" {
			n.PrimaryID = f[3]
		}
		if n.Myself {
			n.Connected = true
		}
		for _, s := range f[8:] {
			if err := n.addSlotField(s); err != nil {
				return nil, fmt.Errorf("engine: CLUSTER NODES line of %s: %w", n.ID, err)
			}
		}
		n.Slots = mergeSlotRanges(n.Slots)
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// addSlotField adds one slot field of CLUSTER NODES: "0-5460", "7",
// "[93->-<id>]" (migrating to id) or "[93-<-<id>]" (importing from id).
func (n *ClusterNode) addSlotField(s string) error {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner = strings.TrimSuffix(inner, "]")
		if slot, peer, ok := strings.Cut(inner, "->-"); ok {
			if n.Migrating == nil {
				n.Migrating = map[int]string{}
			}
			n.Migrating[atoi(slot)] = peer
			return nil
		}
		if slot, peer, ok := strings.Cut(inner, "-<-"); ok {
			if n.Importing == nil {
				n.Importing = map[int]string{}
			}
			n.Importing[atoi(slot)] = peer
			return nil
		}
		return fmt.Errorf("unknown slot field %q", s)
	}
	r, err := ParseSlotRanges(s)
	if err != nil {
		return err
	}
	n.Slots = append(n.Slots, r...)
	return nil
}

// myselfOf returns the node flagged myself, or nil.
func myselfOf(nodes []ClusterNode) *ClusterNode {
	for i := range nodes {
		if nodes[i].Myself {
			return &nodes[i]
		}
	}
	return nil
}

// slotOwners maps every slot to the id of the primary serving it in the
// view of nodes ("" for an unassigned slot).
func slotOwners(nodes []ClusterNode) []string {
	owners := make([]string, ClusterSlots)
	for _, n := range nodes {
		if !n.Primary {
			continue
		}
		for _, r := range n.Slots {
			for s := r.Start; s <= r.End; s++ {
				owners[s] = n.ID
			}
		}
	}
	return owners
}

// ClusterInfo returns the parsed CLUSTER INFO of the node at ep.
func (a Admin) ClusterInfo(ctx context.Context, ep Endpoint) (ClusterInfo, error) {
	var text string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		text, err = c.ClusterInfo(ctx).Result()
		return err
	})
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("engine: CLUSTER INFO on %s: %w", ep.Addr(), err)
	}
	kv := parseInfo(text)
	info := ClusterInfo{
		State:         kv["cluster_state"],
		SlotsAssigned: atoi(kv["cluster_slots_assigned"]),
		SlotsOK:       atoi(kv["cluster_slots_ok"]),
		KnownNodes:    atoi(kv["cluster_known_nodes"]),
		Size:          atoi(kv["cluster_size"]),
		CurrentEpoch:  atoi64(kv["cluster_current_epoch"]),
	}
	if info.State == "" {
		return info, fmt.Errorf("engine: CLUSTER INFO on %s has no cluster_state", ep.Addr())
	}
	return info, nil
}

// ClusterForget makes the node at ep forget node id for a minute (CLUSTER
// FORGET); send it to every remaining node so gossip does not bring the
// node back. An id the node does not know is not an error.
func (a Admin) ClusterForget(ctx context.Context, ep Endpoint, id string) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := c.ClusterForget(ctx, id).Err()
		if err != nil && strings.Contains(strings.ToLower(err.Error()), "unknown node") {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("engine: CLUSTER FORGET %s on %s: %w", id, ep.Addr(), err)
	}
	return nil
}

// ClusterFailover promotes the replica at replica (CLUSTER FAILOVER [mode]:
// "" for a coordinated failover with a live primary, "FORCE" without the
// primary's agreement, "TAKEOVER" without any vote, which is what the
// control plane uses once it has decided a primary is dead) and returns once
// the node reports role master, polling until ctx ends (30 s without a
// deadline). A node that is a primary already is left alone.
func (a Admin) ClusterFailover(ctx context.Context, replica Endpoint, mode string) error {
	mode = strings.ToUpper(mode)
	if mode != "" && mode != "FORCE" && mode != "TAKEOVER" {
		return fmt.Errorf("engine: CLUSTER FAILOVER mode %q (want \"\", FORCE or TAKEOVER)", mode)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
	}
	info, err := a.InspectReplication(ctx, replica)
	if err != nil {
		return err
	}
	if info.IsPrimary() {
		return nil
	}
	err = a.WithClient(ctx, replica, func(ctx context.Context, c *redis.Client) error {
		args := []any{"CLUSTER", "FAILOVER"}
		if mode != "" {
			args = append(args, mode)
		}
		return c.Do(ctx, args...).Err()
	})
	if err != nil {
		return fmt.Errorf("engine: CLUSTER FAILOVER %s on %s: %w", mode, replica.Addr(), err)
	}
	return WaitReady(ctx, replica, a.PrimaryRole)
}

// ClusterSetSlotStable clears the importing or migrating state of slot on
// the node at ep (CLUSTER SETSLOT slot STABLE).
func (a Admin) ClusterSetSlotStable(ctx context.Context, ep Endpoint, slot int) error {
	return a.setSlot(ctx, ep, slot, "STABLE")
}

// ClusterSetSlotNode tells the node at ep that node id serves slot (CLUSTER
// SETSLOT slot NODE id), the last step of a slot move. A node that still
// holds keys of a slot it gives away refuses.
func (a Admin) ClusterSetSlotNode(ctx context.Context, ep Endpoint, slot int, id string) error {
	return a.setSlot(ctx, ep, slot, "NODE", id)
}

func (a Admin) setSlot(ctx context.Context, ep Endpoint, slot int, args ...string) error {
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return setSlot(ctx, c, slot, args...)
	})
	if err != nil {
		return fmt.Errorf("engine: on %s: %w", ep.Addr(), err)
	}
	return nil
}

func setSlot(ctx context.Context, c *redis.Client, slot int, args ...string) error {
	cmd := []any{"CLUSTER", "SETSLOT", slot}
	for _, s := range args {
		cmd = append(cmd, s)
	}
	if err := c.Do(ctx, cmd...).Err(); err != nil {
		return fmt.Errorf("CLUSTER SETSLOT %d %s: %w", slot, strings.Join(args, " "), err)
	}
	return nil
}

// CountKeysInSlot returns how many keys of slot the node at ep holds
// (CLUSTER COUNTKEYSINSLOT).
func (a Admin) CountKeysInSlot(ctx context.Context, ep Endpoint, slot int) (int, error) {
	var n int64
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		n, err = c.ClusterCountKeysInSlot(ctx, slot).Result()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("engine: CLUSTER COUNTKEYSINSLOT %d on %s: %w", slot, ep.Addr(), err)
	}
	return int(n), nil
}

// ClusterOK is a Check: nil when the node reports cluster_state:ok.
func (a Admin) ClusterOK(ctx context.Context, ep Endpoint) error {
	info, err := a.ClusterInfo(ctx, ep)
	if err != nil {
		return err
	}
	if info.State != "ok" {
		return fmt.Errorf("engine: %s reports cluster_state:%s", ep.Addr(), info.State)
	}
	return nil
}

var _ Check = Admin{}.ClusterOK

// ClusterConsistent waits until the nodes at eps, which must be every node
// of the cluster, agree: each knows exactly the others (no handshake in
// progress, none it takes for failed, none outside eps), reports
// cluster_state:ok, and sees the same owner for every slot. It polls until
// then or until ctx ends (30 s without a deadline), returning the last
// disagreement. Gossip spreads a slot assignment (ADDSLOTS) within about
// half the node timeout; a finished MoveSlot has told every node already.
func (a Admin) ClusterConsistent(ctx context.Context, eps []Endpoint) error {
	if len(eps) == 0 {
		return errors.New("engine: ClusterConsistent without nodes")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
	}
	// One connection per node for the whole wait: polling opens none.
	cs := a.newClientSet(1)
	defer cs.close()
	begin := time.Now()
	tick := time.NewTicker(consistentPoll)
	defer tick.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := a.clusterConsistent(actx, cs, eps)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("engine: cluster of %d nodes not consistent after %s: %w: %w",
				len(eps), time.Since(begin).Round(time.Millisecond), ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// consistentPoll is how often ClusterConsistent looks again: gossip needs
// tens of milliseconds at least, and each look reads every node.
const consistentPoll = 50 * time.Millisecond

func (a Admin) clusterConsistent(ctx context.Context, cs *clientSet, eps []Endpoint) error {
	views := make([][]ClusterNode, len(eps))
	ids := make(map[string]Endpoint, len(eps))
	for i, ep := range eps {
		pipe := cs.get(ep).Pipeline()
		info := pipe.ClusterInfo(ctx)
		text := pipe.ClusterNodes(ctx)
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("engine: CLUSTER INFO and NODES on %s: %w", ep.Addr(), err)
		}
		if state := parseInfo(info.Val())["cluster_state"]; state != "ok" {
			return fmt.Errorf("engine: %s reports cluster_state:%s", ep.Addr(), state)
		}
		nodes, err := ParseClusterNodes(text.Val())
		if err != nil {
			return err
		}
		me := myselfOf(nodes)
		if me == nil {
			return fmt.Errorf("engine: CLUSTER NODES of %s has no myself line", ep.Addr())
		}
		if other, dup := ids[me.ID]; dup {
			return fmt.Errorf("engine: %s and %s are the same node %s", other.Addr(), ep.Addr(), me.ID)
		}
		ids[me.ID] = ep
		views[i] = nodes
	}
	var want []string
	for i, nodes := range views {
		ep := eps[i]
		seen := 0
		for _, n := range nodes {
			switch _, known := ids[n.ID]; {
			case n.Handshake:
				return fmt.Errorf("engine: %s has a handshake in progress with %s", ep.Addr(), n.IP)
			case !known:
				return fmt.Errorf("engine: %s knows node %s (%s), which is not among the nodes", ep.Addr(), n.ID, n.Addr.Addr())
			case n.Fail || n.NoAddr:
				return fmt.Errorf("engine: %s flags node %s (%s) failed", ep.Addr(), n.ID, ids[n.ID].Addr())
			}
			seen++
		}
		if seen != len(eps) {
			return fmt.Errorf("engine: %s knows %d of the %d nodes", ep.Addr(), seen, len(eps))
		}
		owners := slotOwners(nodes)
		if want == nil {
			want = owners
			continue
		}
		for s := range owners {
			if owners[s] != want[s] {
				return fmt.Errorf("engine: slot %d is served by %q for %s but by %q for %s",
					s, owners[s], ep.Addr(), want[s], eps[0].Addr())
			}
		}
	}
	return nil
}

// subtractSlotRanges returns the slots of ranges not in minus, merged.
func subtractSlotRanges(ranges, minus []SlotRange) []SlotRange {
	var out []SlotRange
	minus = mergeSlotRanges(minus)
	for _, r := range mergeSlotRanges(ranges) {
		start := r.Start
		for _, m := range minus {
			if m.End < start || m.Start > r.End {
				continue
			}
			if m.Start > start {
				out = append(out, SlotRange{start, m.Start - 1})
			}
			start = m.End + 1
		}
		if start <= r.End {
			out = append(out, SlotRange{start, r.End})
		}
	}
	return out
}
