package engine

// Moving hash slots between primaries live (resharding) with the standard
// protocol: SETSLOT IMPORTING on the target, MIGRATING on the source, the
// keys in MIGRATE batches, then SETSLOT NODE everywhere. Clients keep
// working throughout: the source serves the keys it still has and redirects
// the others with ASK to the target.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// DefaultMigrateBatch is SlotMove.Batch when unset: keys per MIGRATE.
	DefaultMigrateBatch = 1000
	// migrateTimeout is MIGRATE's timeout argument: how long the sending
	// node waits on the receiving one. MIGRATE blocks the sending node, so
	// a hung peer must not freeze it for long.
	migrateTimeout = 5 * time.Second
	// DefaultMoveParallel is MoveSlots' parallelism when unset.
	DefaultMoveParallel = 8
)

// SlotMove describes moving one hash slot from one primary to another.
type SlotMove struct {
	Slot int
	// Source and Target are the addresses the control plane uses.
	Source, Target Endpoint
	// TargetPeer is the target as the source node reaches it (ClusterAddrOf).
	// When zero it is read from the source's CLUSTER NODES.
	TargetPeer         Endpoint
	SourceID, TargetID string
	// Others are every other node (primaries and replicas) to tell SETSLOT
	// NODE; errors on these are not fatal (replicas refuse SETSLOT on Redis
	// 7.0 and learn from their primary; gossip informs any node missed).
	Others []Endpoint
	// Batch is the number of keys per MIGRATE (DefaultMigrateBatch when 0).
	Batch int
	// Progress, when set, is called after each batch with its key count.
	Progress func(keysMoved int)
}

func (m SlotMove) validate() error {
	switch {
	case m.Slot < 0 || m.Slot >= ClusterSlots:
		return fmt.Errorf("engine: slot %d is not within 0-%d", m.Slot, ClusterSlots-1)
	case m.SourceID == "" || m.TargetID == "":
		return errors.New("engine: a slot move needs the source and target node ids")
	case m.SourceID == m.TargetID:
		return fmt.Errorf("engine: slot %d: source and target are the same node %s", m.Slot, m.SourceID)
	}
	return nil
}

// MoveSlot moves one hash slot live, as redis-cli --cluster reshard does
// but with large MIGRATE batches, and returns the number of keys moved.
// It sets the slot IMPORTING on the target and MIGRATING on the source,
// moves the keys with GETKEYSINSLOT and MIGRATE … REPLACE AUTH2 (as the
// admin user, so it works with the default user disabled) KEYS, then sets
// SETSLOT NODE target on the target (which takes the slot over with a new
// config epoch), the source, and Others.
//
// It is safe to call again after a failure or a crash at any point: an
// importing or migrating state left earlier is overwritten, keys already on
// the target are replaced by the source's copy (the one clients saw), and
// a slot the target owns already only gets its keys still on the source
// moved and the NODE announcement finished. A slot served by a third node
// is an error. ctx is checked between commands: a cancelled move leaves the
// slot migrating, to be finished by MoveSlot or undone by RollbackSlot.
func (a Admin) MoveSlot(ctx context.Context, m SlotMove) (keys int, err error) {
	cs := a.newClientSet(1)
	defer cs.close()
	return a.moveSlot(ctx, cs, m)
}

// MoveSlots runs moves, parallel of them at a time (DefaultMoveParallel
// when parallel <= 0), over connections shared between them, and returns
// the number of keys moved. Moves of different slots are independent, so
// they may share a source and a target. The first failure stops the moves
// not started yet and is returned once those in flight end; every move
// that ended is complete, the failed ones are left as MoveSlot leaves them.
func (a Admin) MoveSlots(ctx context.Context, moves []SlotMove, parallel int) (int, error) {
	if parallel <= 0 {
		parallel = DefaultMoveParallel
	}
	parallel = min(parallel, len(moves))
	cs := a.newClientSet(parallel)
	defer cs.close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu    sync.Mutex
		total int
		next  int
		wg    sync.WaitGroup
	)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(moves) {
					return
				}
				n, err := a.moveSlot(ctx, cs, moves[i])
				mu.Lock()
				total += n
				mu.Unlock()
				if err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return total, err
	}
	return total, nil
}

func (a Admin) moveSlot(ctx context.Context, cs *clientSet, m SlotMove) (int, error) {
	if err := m.validate(); err != nil {
		return 0, err
	}
	src, tgt := cs.get(m.Source), cs.get(m.Target)
	wrap := func(step string, err error) error {
		return fmt.Errorf("engine: moving slot %d from %s to %s: %s: %w", m.Slot, m.Source.Addr(), m.Target.Addr(), step, err)
	}
	peer := m.TargetPeer
	if peer == (Endpoint{}) {
		var err error
		if peer, err = peerAddrOf(ctx, src, m.TargetID); err != nil {
			return 0, wrap("looking up the target's address", err)
		}
	}
	tOwns := false
	if err := setSlot(ctx, tgt, m.Slot, "IMPORTING", m.SourceID); err != nil {
		if !strings.Contains(err.Error(), "already the owner") {
			return 0, wrap("on the target", err)
		}
		tOwns = true
	}
	if err := setSlot(ctx, src, m.Slot, "MIGRATING", m.TargetID); err != nil {
		if !strings.Contains(err.Error(), "not the owner") {
			return 0, wrap("on the source", err)
		}
		if !tOwns {
			// Neither end serves the slot: unless the source has learned
			// that the target does, a third node does.
			nodes, nerr := clusterNodes(ctx, src)
			if nerr != nil {
				return 0, wrap("reading the source's view", nerr)
			}
			if owner := slotOwners(nodes)[m.Slot]; owner != m.TargetID {
				_ = setSlot(ctx, tgt, m.Slot, "STABLE")
				return 0, wrap("checking the owner", fmt.Errorf("slot served by %q, neither the source nor the target", owner))
			}
		}
	}
	keys, err := a.migrateKeys(ctx, src, tgt, peer, m.Slot, m.Batch, true, m.Progress)
	if err != nil {
		return keys, wrap("migrating keys", err)
	}
	if err := ctx.Err(); err != nil {
		return keys, wrap("announcing the new owner", err)
	}
	// The target first: it ends importing and takes the slot with a bumped
	// epoch, so the source, told next, gives the slot to a node that has it.
	if err := setSlot(ctx, tgt, m.Slot, "NODE", m.TargetID); err != nil {
		return keys, wrap("on the target", err)
	}
	if err := setSlot(ctx, src, m.Slot, "NODE", m.TargetID); err != nil {
		return keys, wrap("on the source", err)
	}
	var wg sync.WaitGroup
	for _, ep := range m.Others {
		if ep == m.Source || ep == m.Target {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = setSlot(ctx, cs.get(ep), m.Slot, "NODE", m.TargetID) // gossip informs a node missed
		}()
	}
	wg.Wait()
	return keys, nil
}

// RollbackSlot undoes a move that did not finish: the slot stays with
// SourceID. The source is set STABLE (it serves the slot alone again), the
// keys already on the target are MIGRATEd back, and the target is set
// STABLE. While they move back (a few milliseconds per thousand keys) a
// client may miss a key still on the target; a client that writes it
// meanwhile wins: where a key is on both nodes the source's copy is kept.
// (The source cannot stay MIGRATING meanwhile: it would answer the keys
// coming back with ASK.) A move that got as far as giving the target the
// slot is reversed with MoveSlot instead, which clients do not notice. Safe
// to call again.
func (a Admin) RollbackSlot(ctx context.Context, m SlotMove) error {
	if err := m.validate(); err != nil {
		return err
	}
	cs := a.newClientSet(1)
	defer cs.close()
	src, tgt := cs.get(m.Source), cs.get(m.Target)
	wrap := func(step string, err error) error {
		return fmt.Errorf("engine: rolling back slot %d from %s to %s: %s: %w", m.Slot, m.Source.Addr(), m.Target.Addr(), step, err)
	}
	sourcePeer, err := peerAddrOf(ctx, tgt, m.SourceID)
	if err != nil {
		return wrap("looking up the source's address", err)
	}
	// Re-entering IMPORTING lets the target's keys be deleted (ASKING) and
	// tells whether the target has taken the slot over.
	if err := setSlot(ctx, tgt, m.Slot, "IMPORTING", m.SourceID); err != nil {
		if !strings.Contains(err.Error(), "already the owner") {
			return wrap("on the target", err)
		}
		if err := setSlot(ctx, src, m.Slot, "STABLE"); err != nil {
			return wrap("on the source", err)
		}
		back := SlotMove{
			Slot: m.Slot, Source: m.Target, Target: m.Source, TargetPeer: sourcePeer,
			SourceID: m.TargetID, TargetID: m.SourceID, Others: m.Others, Batch: m.Batch, Progress: m.Progress,
		}
		if _, err := a.moveSlot(ctx, cs, back); err != nil {
			return wrap("moving the slot back", err)
		}
		return nil
	}
	if err := setSlot(ctx, src, m.Slot, "STABLE"); err != nil {
		return wrap("on the source", err)
	}
	if _, err := a.migrateKeys(ctx, tgt, tgt, sourcePeer, m.Slot, m.Batch, false, m.Progress); err != nil {
		return wrap("migrating keys back", err)
	}
	if err := setSlot(ctx, tgt, m.Slot, "STABLE"); err != nil {
		return wrap("on the target", err)
	}
	return nil
}

// migrateKeys moves every key of slot from the node of from to the node
// reached (from from) at to, batch keys per MIGRATE, and returns how many
// it moved. With replace the sender's copy wins (REPLACE); without it a
// key the receiver has already stays there and the sender's copy is
// deleted, through owner, a client of the sender in IMPORTING state
// (ASKING lets it delete keys of a slot it does not serve).
func (a Admin) migrateKeys(ctx context.Context, from, owner *redis.Client, to Endpoint, slot, batch int, replace bool, progress func(int)) (int, error) {
	if batch <= 0 {
		batch = DefaultMigrateBatch
	}
	head := []any{"MIGRATE", to.Host, to.Port, "", 0, migrateTimeout.Milliseconds()}
	if replace {
		head = append(head, "REPLACE")
	}
	if a.user != "" {
		head = append(head, "AUTH2", a.user, a.password)
	}
	head = append(head, "KEYS")
	moved := 0
	for {
		if err := ctx.Err(); err != nil {
			return moved, err
		}
		keys, err := from.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		if err != nil {
			return moved, fmt.Errorf("CLUSTER GETKEYSINSLOT %d: %w", slot, err)
		}
		if len(keys) == 0 {
			return moved, nil
		}
		args := append(append(make([]any, 0, len(head)+len(keys)), head...), toAny(keys)...)
		err = from.Do(ctx, args...).Err()
		if err != nil && !replace && strings.Contains(err.Error(), "BUSYKEY") {
			// MIGRATE moved the others and kept these: the receiver's win.
			pipe := owner.Pipeline()
			pipe.Do(ctx, "ASKING")
			pipe.Del(ctx, keys...)
			_, err = pipe.Exec(ctx)
		}
		if err != nil {
			return moved, fmt.Errorf("MIGRATE %d keys to %s: %w", len(keys), to.Addr(), err)
		}
		moved += len(keys)
		if progress != nil {
			progress(len(keys))
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// peerAddrOf returns where the node of c reaches node id (its CLUSTER
// NODES ip and client port).
func peerAddrOf(ctx context.Context, c *redis.Client, id string) (Endpoint, error) {
	nodes, err := clusterNodes(ctx, c)
	if err != nil {
		return Endpoint{}, err
	}
	for _, n := range nodes {
		if n.ID == id {
			if n.IP == "" || n.Addr.Port == 0 {
				return Endpoint{}, fmt.Errorf("node %s has no address yet", id)
			}
			return n.PeerAddr(), nil
		}
	}
	return Endpoint{}, fmt.Errorf("node %s is unknown to %s", id, c.Options().Addr)
}

// clientSet keeps one go-redis client per endpoint for the commands of a
// slot move (thousands of short commands: a connection each would cost a
// dial and an AUTH each, and leave a TIME_WAIT socket each).
type clientSet struct {
	a    Admin
	size int

	mu      sync.Mutex
	clients map[Endpoint]*redis.Client
}

func (a Admin) newClientSet(size int) *clientSet {
	return &clientSet{a: a, size: size, clients: make(map[Endpoint]*redis.Client)}
}

// get returns the client of ep, created on first use with the admin's
// options: no retries, up to size connections, and a read timeout that
// outlasts MIGRATE's own.
func (cs *clientSet) get(ep Endpoint) *redis.Client {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.clients[ep]
	if c == nil {
		opts := cs.a.Options(ep)
		opts.PoolSize = cs.size
		opts.DialerRetries = 1
		opts.ReadTimeout = migrateTimeout + ioTimeout
		c = redis.NewClient(opts)
		cs.clients[ep] = c
	}
	return c
}

func (cs *clientSet) close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.clients {
		_ = c.Close()
	}
}
