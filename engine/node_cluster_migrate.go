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
	"strconv"
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
	if err := m.validate(); err != nil {
		return 0, err
	}
	cs := a.newClientSet(1)
	defer cs.close()
	return a.moveGroup(ctx, cs, []SlotMove{m})
}

// MoveSlots runs moves as MoveSlot would and returns the number of keys
// moved, faster: moves that share their source, target and Others go in
// groups of up to 64 slots, each step of a group one pipeline to each node
// (so a node saves its nodes.conf once per step, not once per slot), and
// parallel groups (DefaultMoveParallel when parallel <= 0) run at once
// over shared connections. The first failure stops the groups not started
// yet and is returned once those in flight end; slots are left as MoveSlot
// leaves them, each moved or movable again.
func (a Admin) MoveSlots(ctx context.Context, moves []SlotMove, parallel int) (int, error) {
	seen := make(map[int]bool, len(moves))
	for _, m := range moves {
		if err := m.validate(); err != nil {
			return 0, err
		}
		if seen[m.Slot] {
			return 0, fmt.Errorf("engine: slot %d is moved twice", m.Slot)
		}
		seen[m.Slot] = true
	}
	if parallel <= 0 {
		parallel = DefaultMoveParallel
	}
	groups := groupMoves(moves, parallel)
	parallel = min(parallel, len(groups))
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
				if i >= len(groups) {
					return
				}
				n, err := a.moveGroup(ctx, cs, groups[i])
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

// maxGroupSlots bounds the slots of one group of moves: its pipelines, and
// how long its slots stay migrating.
const maxGroupSlots = 64

// groupMoves splits moves into groups of the same source, target and
// Others, each small enough that there are about parallel groups to run.
func groupMoves(moves []SlotMove, parallel int) [][]SlotMove {
	type key struct {
		src, tgt, peer     Endpoint
		srcID, tgtID, rest string
	}
	byKey := map[key][]SlotMove{}
	var order []key
	for _, m := range moves {
		var rest strings.Builder
		for _, ep := range m.Others {
			rest.WriteString(ep.Addr() + " ")
		}
		k := key{m.Source, m.Target, m.TargetPeer, m.SourceID, m.TargetID, rest.String()}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], m)
	}
	size := max(1, min(maxGroupSlots, (len(moves)+parallel-1)/parallel))
	var groups [][]SlotMove
	for _, k := range order {
		ms := byKey[k]
		for len(ms) > 0 {
			n := min(size, len(ms))
			groups = append(groups, ms[:n:n])
			ms = ms[n:]
		}
	}
	return groups
}

// moveGroup moves the slots of ms, which share their source, target and
// Others, each step one pipeline per node.
func (a Admin) moveGroup(ctx context.Context, cs *clientSet, ms []SlotMove) (int, error) {
	m := ms[0]
	slots := make([]int, len(ms))
	for i, mv := range ms {
		slots[i] = mv.Slot
	}
	src, tgt := cs.get(m.Source), cs.get(m.Target)
	wrap := func(step string, err error) error {
		what := "slot " + strconv.Itoa(m.Slot)
		if len(ms) > 1 {
			what = fmt.Sprintf("%d slots (%d, …)", len(ms), m.Slot)
		}
		return fmt.Errorf("engine: moving %s from %s to %s: %s: %w", what, m.Source.Addr(), m.Target.Addr(), step, err)
	}
	peer := m.TargetPeer
	if peer == (Endpoint{}) {
		var err error
		if peer, err = peerAddrOf(ctx, src, m.TargetID); err != nil {
			return 0, wrap("looking up the target's address", err)
		}
	}
	// IMPORTING first: a source MIGRATING sends clients to the target with
	// ASK, which a target not importing would bounce back with MOVED.
	tOwns := make([]bool, len(ms))
	for i, err := range setSlots(ctx, tgt, slots, "IMPORTING", m.SourceID) {
		if err != nil {
			if !strings.Contains(err.Error(), "already the owner") {
				return 0, wrap("on the target", err)
			}
			tOwns[i] = true
		}
	}
	var owners []string // the source's view, read when needed
	for i, err := range setSlots(ctx, src, slots, "MIGRATING", m.TargetID) {
		if err == nil || tOwns[i] {
			continue
		}
		if !strings.Contains(err.Error(), "not the owner") {
			return 0, wrap("on the source", err)
		}
		// Neither end serves the slot: unless the source has learned that
		// the target does, a third node does.
		if owners == nil {
			nodes, nerr := clusterNodes(ctx, src)
			if nerr != nil {
				return 0, wrap("reading the source's view", nerr)
			}
			owners = slotOwners(nodes)
		}
		if owner := owners[slots[i]]; owner != m.TargetID {
			_ = setSlot(ctx, tgt, slots[i], "STABLE")
			return 0, wrap("checking the owner", fmt.Errorf("slot %d served by %q, neither the source nor the target", slots[i], owner))
		}
	}
	keys, err := a.migrateSlots(ctx, src, tgt, peer, ms, true)
	if err != nil {
		return keys, wrap("migrating keys", err)
	}
	if err := ctx.Err(); err != nil {
		return keys, wrap("announcing the new owner", err)
	}
	// The target first: it ends importing and takes the slots with a bumped
	// epoch, so the source, told next, gives them to a node that has them.
	if err := errors.Join(setSlots(ctx, tgt, slots, "NODE", m.TargetID)...); err != nil {
		return keys, wrap("on the target", err)
	}
	if err := errors.Join(setSlots(ctx, src, slots, "NODE", m.TargetID)...); err != nil {
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
			setSlots(ctx, cs.get(ep), slots, "NODE", m.TargetID) // errors ignored: gossip informs a node missed
		}()
	}
	wg.Wait()
	return keys, nil
}

// setSlots sends CLUSTER SETSLOT <slot> args… for every slot in one
// pipeline and returns the error of each.
func setSlots(ctx context.Context, c *redis.Client, slots []int, args ...string) []error {
	pipe := c.Pipeline()
	cmds := make([]*redis.Cmd, len(slots))
	for i, slot := range slots {
		cmd := []any{"CLUSTER", "SETSLOT", slot}
		for _, s := range args {
			cmd = append(cmd, s)
		}
		cmds[i] = pipe.Do(ctx, cmd...)
	}
	_, _ = pipe.Exec(ctx)
	errs := make([]error, len(slots))
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs[i] = fmt.Errorf("CLUSTER SETSLOT %d %s: %w", slots[i], strings.Join(args, " "), err)
		}
	}
	return errs
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
		if _, err := a.moveGroup(ctx, cs, []SlotMove{back}); err != nil {
			return wrap("moving the slot back", err)
		}
		return nil
	}
	if err := setSlot(ctx, src, m.Slot, "STABLE"); err != nil {
		return wrap("on the source", err)
	}
	if _, err := a.migrateSlots(ctx, tgt, tgt, sourcePeer, []SlotMove{m}, false); err != nil {
		return wrap("migrating keys back", err)
	}
	if err := setSlot(ctx, tgt, m.Slot, "STABLE"); err != nil {
		return wrap("on the target", err)
	}
	return nil
}

// migrateSlots moves every key of the slots of ms from the node of from
// to the node reached (from from) at to, and returns how many it moved.
// Each round reads up to Batch keys of every slot not known to be empty
// (GETKEYSINSLOT, one pipeline) and sends them, one MIGRATE per slot, in
// pipelines of about Batch keys; a slot that gave fewer keys than asked is
// empty then, and stays so: a MIGRATING node creates no key of the slot
// (it sends clients to the target), and a node that has the slot otherwise
// is not sent clients. With replace the sender's copy wins (REPLACE);
// without it a key the receiver has already stays there and the sender's
// copy is deleted, through owner, a client of the sender in IMPORTING
// state (ASKING lets it delete keys of a slot it does not serve).
func (a Admin) migrateSlots(ctx context.Context, from, owner *redis.Client, to Endpoint, ms []SlotMove, replace bool) (int, error) {
	batch := ms[0].Batch
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
	pending := ms
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return moved, err
		}
		pipe := from.Pipeline()
		gets := make([]*redis.StringSliceCmd, len(pending))
		for i, m := range pending {
			gets[i] = pipe.ClusterGetKeysInSlot(ctx, m.Slot, batch)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return moved, fmt.Errorf("CLUSTER GETKEYSINSLOT: %w", err)
		}
		var more []SlotMove
		var sends []SlotMove
		var sendKeys [][]string
		queued := 0
		flush := func() error {
			n, err := a.sendMigrates(ctx, from, owner, to, head, replace, sends, sendKeys)
			moved += n
			sends, sendKeys, queued = nil, nil, 0
			return err
		}
		for i, m := range pending {
			keys := gets[i].Val()
			if len(keys) == 0 {
				continue
			}
			if len(keys) == batch {
				more = append(more, m)
			}
			sends = append(sends, m)
			sendKeys = append(sendKeys, keys)
			if queued += len(keys); queued >= batch {
				if err := flush(); err != nil {
					return moved, err
				}
			}
		}
		if len(sends) > 0 {
			if err := flush(); err != nil {
				return moved, err
			}
		}
		pending = more
	}
	return moved, nil
}

// sendMigrates sends one MIGRATE per slot of ms (its keys) in a pipeline
// and returns how many keys went; see migrateSlots.
func (a Admin) sendMigrates(ctx context.Context, from, owner *redis.Client, to Endpoint, head []any, replace bool, ms []SlotMove, keys [][]string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	pipe := from.Pipeline()
	cmds := make([]*redis.Cmd, len(ms))
	for i := range ms {
		args := append(append(make([]any, 0, len(head)+len(keys[i])), head...), toAny(keys[i])...)
		cmds[i] = pipe.Do(ctx, args...)
	}
	_, _ = pipe.Exec(ctx)
	moved := 0
	for i, m := range ms {
		err := cmds[i].Err()
		if err != nil && !replace && strings.Contains(err.Error(), "BUSYKEY") {
			// MIGRATE moved the others and kept these: the receiver's win.
			del := owner.Pipeline()
			del.Do(ctx, "ASKING")
			del.Del(ctx, keys[i]...)
			_, err = del.Exec(ctx)
		}
		if err != nil {
			return moved, fmt.Errorf("MIGRATE %d keys of slot %d to %s: %w", len(keys[i]), m.Slot, to.Addr(), err)
		}
		moved += len(keys[i])
		if m.Progress != nil {
			m.Progress(len(keys[i]))
		}
	}
	return moved, nil
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
