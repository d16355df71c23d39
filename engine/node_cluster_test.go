package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/enginetest"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// Real-server tests of cluster mode on the process runtime. Addresses come
// from 127.0.90.x, on a port of the test's own whose bus port (+10000) is
// free as well.
const clusterBase = "127.0.90.2"

// clusterHarness starts cluster nodes on the process runtime.
type clusterHarness struct {
	t    testing.TB
	rt   *process.Runtime
	pool *engine.AddressPool
	port int
}

func newClusterHarness(t testing.TB) *clusterHarness {
	t.Helper()
	rt, err := process.New(process.Options{DataDir: t.TempDir(), EmulatorID: "engine-cluster-test"})
	if errors.Is(err, process.ErrServerNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	pool, err := engine.NewAddressPool(clusterBase)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterHarness{t: t, rt: rt, pool: pool, port: enginetest.ClusterPort(t, clusterBase)}
}

// testCluster is a cluster formed with FormCluster.
type testCluster struct {
	h       *clusterHarness
	prefix  string // of the node names
	members []engine.ClusterMember
	names   []string
	ids     []string
}

// startClusterNode starts a cluster node, stopped when the test ends.
func (h *clusterHarness) startClusterNode(ctx context.Context, name string) engine.Endpoint {
	h.t.Helper()
	ep, err := h.pool.Allocate(h.port)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { h.pool.Release(ep) })
	_, err = h.rt.Start(ctx, engine.NodeSpec{Name: name, Endpoint: ep, Engine: "redis", Cluster: true})
	h.t.Cleanup(func() {
		if err := h.rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			h.t.Errorf("stop %s: %v", name, err)
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return ep
}

// formCluster starts primaries × (1 + replicas) nodes named prefix-p<i>
// and prefix-p<i>-r<j>, and forms a cluster of them, the slots split
// evenly.
func formCluster(t testing.TB, h *clusterHarness, ctx context.Context, prefix string, primaries, replicas int) *testCluster {
	t.Helper()
	c := &testCluster{h: h, prefix: prefix}
	slots := engine.SplitSlots(primaries)
	for p := range primaries {
		c.add(ctx, fmt.Sprintf("p%d", p), engine.ClusterMember{Slots: slots[p]})
	}
	for p := range primaries {
		for r := range replicas {
			c.add(ctx, fmt.Sprintf("p%d-r%d", p, r), engine.ClusterMember{Replica: true, Primary: p})
		}
	}
	begin := time.Now()
	ids, err := h.rt.Admin().FormCluster(ctx, c.members)
	if err != nil {
		t.Fatal(err)
	}
	c.ids = ids
	t.Logf("formed %d primaries × %d replicas in %s", primaries, replicas, time.Since(begin).Round(time.Millisecond))
	return c
}

func (c *testCluster) add(ctx context.Context, name string, m engine.ClusterMember) int {
	name = c.prefix + "-" + name
	m.Endpoint = c.h.startClusterNode(ctx, name)
	peer, err := engine.ClusterAddrOf(ctx, c.h.rt, name, m.Endpoint)
	if err != nil {
		c.h.t.Fatal(err)
	}
	m.Peer = peer
	c.members = append(c.members, m)
	c.names = append(c.names, name)
	return len(c.members) - 1
}

func (c *testCluster) endpoints() []engine.Endpoint {
	eps := make([]engine.Endpoint, len(c.members))
	for i, m := range c.members {
		eps[i] = m.Endpoint
	}
	return eps
}

// client is a cluster client as users connect (the default user).
func (c *testCluster) client(t testing.TB) *redis.ClusterClient {
	var addrs []string
	for _, ep := range c.endpoints() {
		addrs = append(addrs, ep.Addr())
	}
	return newClusterClient(t, addrs)
}

// newClusterClient returns a cluster client of the default user, or of
// the user and password of credentials.
func newClusterClient(t testing.TB, addrs []string, credentials ...string) *redis.ClusterClient {
	user, pass := "", ""
	if len(credentials) == 2 {
		user, pass = credentials[0], credentials[1]
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                    addrs,
		Username:                 user,
		Password:                 pass,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// writeKeys sets n keys prefix:i = v<i> with pipelines.
func writeKeys(t testing.TB, ctx context.Context, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	for start := 0; start < n; start += 5000 {
		_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(n, start+5000); i++ {
				p.Set(ctx, prefix+strconv.Itoa(i), "v"+strconv.Itoa(i), 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkKeys reads the n keys writeKeys wrote.
func checkKeys(t testing.TB, ctx context.Context, cc *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	for start := 0; start < n; start += 5000 {
		cmds, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(n, start+5000); i++ {
				p.Get(ctx, prefix+strconv.Itoa(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for j, cmd := range cmds {
			if got, want := cmd.(*redis.StringCmd).Val(), "v"+strconv.Itoa(start+j); got != want {
				t.Fatalf("%s%d = %q, want %q", prefix, start+j, got, want)
			}
		}
	}
}

// disableDefaultUser switches the default user off on every node, as a
// user of the cluster may, after creating user app (password app-secret)
// for the test's clients. Only the admin user is left to the control plane
// and to replication.
func disableDefaultUser(t testing.TB, ctx context.Context, a engine.Admin, eps []engine.Endpoint) {
	t.Helper()
	for _, ep := range eps {
		err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
			if err := c.Do(ctx, "ACL", "SETUSER", "app", "on", ">app-secret", "~*", "&*", "+@all").Err(); err != nil {
				return err
			}
			return c.Do(ctx, "ACL", "SETUSER", "default", "off").Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// load writes and reads keys through cc until stop is closed, and returns
// how many keys it wrote and the errors it saw.
func load(ctx context.Context, cc *redis.ClusterClient, stop <-chan struct{}) (written int, errs []error) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return i, errs
		default:
		}
		k := "load:" + strconv.Itoa(i)
		if err := cc.Set(ctx, k, "v"+strconv.Itoa(i), 0).Err(); err != nil {
			errs = append(errs, fmt.Errorf("SET %s: %w", k, err))
			continue
		}
		r := "key:" + strconv.Itoa(rand.IntN(20000))
		if err := cc.Get(ctx, r).Err(); err != nil {
			errs = append(errs, fmt.Errorf("GET %s: %w", r, err))
		}
	}
}

// moves returns the SlotMoves of slots [from, to] from member src to dst.
func (c *testCluster) moves(from, to, src, dst, batch int) []engine.SlotMove {
	var others []engine.Endpoint
	for i, m := range c.members {
		if i != src && i != dst {
			others = append(others, m.Endpoint)
		}
	}
	var ms []engine.SlotMove
	for s := from; s <= to; s++ {
		ms = append(ms, engine.SlotMove{
			Slot: s, Source: c.members[src].Endpoint, Target: c.members[dst].Endpoint,
			TargetPeer: c.members[dst].Peer, SourceID: c.ids[src], TargetID: c.ids[dst],
			Others: others, Batch: batch,
		})
	}
	return ms
}

func TestClusterMoveSlotsUnderLoad(t *testing.T) {
	h := newClusterHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := h.rt.Admin()
	c := formCluster(t, h, ctx, "move", 3, 1)
	cc := c.client(t)
	writeKeys(t, ctx, cc, "key:", 20000)

	// CLUSTER SLOTS sends clients to the nodes' own 127.x endpoints.
	eps := map[string]bool{}
	for _, ep := range c.endpoints() {
		eps[ep.Addr()] = true
	}
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		for _, n := range s.Nodes {
			if !eps[n.Addr] {
				t.Errorf("CLUSTER SLOTS %d-%d names %s, not a node endpoint", s.Start, s.End, n.Addr)
			}
		}
	}

	// A fourth, empty primary joins.
	p3 := c.add(ctx, "p3", engine.ClusterMember{})
	ids, err := a.FormCluster(ctx, c.members)
	if err != nil {
		t.Fatal(err)
	}
	c.ids = ids

	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		written int
		errs    []error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		written, errs = load(ctx, cc, stop)
	}()

	// 512 slots of p0 one MoveSlot at a time, 1024 of p1 with MoveSlots.
	begin := time.Now()
	var progressed atomic.Int64
	keys := 0
	for _, m := range c.moves(0, 511, 0, p3, 0) {
		m.Progress = func(n int) { progressed.Add(int64(n)) }
		n, err := a.MoveSlot(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		keys += n
	}
	n, err := a.MoveSlots(ctx, c.moves(5461, 6484, 1, p3, 0), 4)
	if err != nil {
		t.Fatal(err)
	}
	keys += n
	took := time.Since(begin)
	close(stop)
	wg.Wait()
	t.Logf("moved 1536 slots, %d keys, in %s under load (%d writes meanwhile)", keys, took.Round(time.Millisecond), written)
	if int64(keys) < progressed.Load() {
		t.Errorf("progress reported %d keys, MoveSlot %d", progressed.Load(), keys)
	}
	for _, err := range errs[:min(len(errs), 5)] {
		t.Errorf("load: %v", err)
	}
	if len(errs) > 0 || written == 0 {
		t.Fatalf("%d errors in %d writes under load", len(errs), written)
	}
	if err := a.ClusterConsistent(ctx, c.endpoints()); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, ctx, cc, "key:", 20000)
	checkKeys(t, ctx, cc, "load:", written)

	// The moved slots' keys are all on p3 now.
	want := 0
	for i := range 20000 {
		if s := engine.HashSlot("key:" + strconv.Itoa(i)); s <= 511 || s >= 5461 && s <= 6484 {
			want++
		}
	}
	onP3 := 0
	for _, r := range []engine.SlotRange{{Start: 0, End: 511}, {Start: 5461, End: 6484}} {
		for s := r.Start; s <= r.End; s++ {
			n, err := a.CountKeysInSlot(ctx, c.members[p3].Endpoint, s)
			if err != nil {
				t.Fatal(err)
			}
			onP3 += n
		}
	}
	if onP3 < want || keys < want {
		t.Errorf("p3 holds %d keys of the moved slots and MoveSlot moved %d; the 20000 keys have %d there", onP3, keys, want)
	}
	nodes, err := a.ClusterNodes(ctx, c.members[p3].Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == c.ids[p3] && engine.FormatSlotRanges(n.Slots) != "0-511,5461-6484" {
			t.Errorf("p3 serves %s", engine.FormatSlotRanges(n.Slots))
		}
	}
	// Moving a slot the target owns already only repeats the announcement.
	if n, err := a.MoveSlot(ctx, c.moves(0, 0, 0, p3, 0)[0]); err != nil || n != 0 {
		t.Errorf("MoveSlot again = %d, %v", n, err)
	}
}

func TestClusterFailoverTakeover(t *testing.T) {
	h := newClusterHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := h.rt.Admin()
	c := formCluster(t, h, ctx, "takeover", 3, 1)
	writeKeys(t, ctx, c.client(t), "key:", 5000)
	// Replicas have every key before the primary dies.
	for i, m := range c.members {
		if m.Replica {
			if err := a.CatchUp(ctx, c.members[m.Primary].Endpoint, m.Endpoint); err != nil {
				t.Fatalf("%s: %v", c.names[i], err)
			}
		}
	}
	// With the default user off, a replica still authenticates to its
	// primary (masteruser): a coordinated failover of p1 makes the old
	// primary sync from its replica.
	disableDefaultUser(t, ctx, a, c.endpoints())
	if err := a.ClusterFailover(ctx, c.members[4].Endpoint, ""); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, c.members[1].Endpoint, a.ReplicationLinkUp); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Kill(ctx, c.names[0]); err != nil {
		t.Fatal(err)
	}
	replica := 3 // p0-r0
	begin := time.Now()
	if err := a.ClusterFailover(ctx, c.members[replica].Endpoint, "TAKEOVER"); err != nil {
		t.Fatal(err)
	}
	t.Logf("TAKEOVER after kill -9: %s", time.Since(begin).Round(time.Millisecond))
	var rest []engine.Endpoint
	var addrs []string
	for i, m := range c.members {
		if i == 0 {
			continue
		}
		rest = append(rest, m.Endpoint)
		addrs = append(addrs, m.Endpoint.Addr())
		if err := a.ClusterForget(ctx, m.Endpoint, c.ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ClusterConsistent(ctx, rest); err != nil {
		t.Fatal(err)
	}
	nodes, err := a.ClusterNodes(ctx, c.members[replica].Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Myself && (!n.Primary || engine.FormatSlotRanges(n.Slots) != "0-5460") {
			t.Errorf("promoted replica: %+v", n)
		}
	}
	checkKeys(t, ctx, newClusterClient(t, addrs, "app", "app-secret"), "key:", 5000)
	// Forgetting an unknown node and failing over a primary are no-ops.
	if err := a.ClusterForget(ctx, rest[0], c.ids[0]); err != nil {
		t.Error(err)
	}
	if err := a.ClusterFailover(ctx, c.members[replica].Endpoint, "TAKEOVER"); err != nil {
		t.Error(err)
	}
}

func TestClusterRollbackSlot(t *testing.T) {
	h := newClusterHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := h.rt.Admin()
	c := formCluster(t, h, ctx, "rollback", 3, 0)
	cc := c.client(t)
	const keys = 3000
	writeKeys(t, ctx, cc, "{roll}:", keys)
	slot := engine.HashSlot("roll")
	src := 0
	for i, r := range engine.SplitSlots(3) {
		if slot >= r[0].Start && slot <= r[0].End {
			src = i
		}
	}
	dst := (src + 1) % 3
	m := c.moves(slot, slot, src, dst, 100)[0]
	count := func(i int) int {
		n, err := a.CountKeysInSlot(ctx, c.members[i].Endpoint, slot)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	interrupted := func() {
		t.Helper()
		mctx, mcancel := context.WithCancel(ctx)
		defer mcancel()
		m := m
		m.Progress = func(int) { mcancel() }
		n, err := a.MoveSlot(mctx, m)
		if !errors.Is(err, context.Canceled) || n != 100 {
			t.Fatalf("interrupted MoveSlot = %d, %v; want 100 and context.Canceled", n, err)
		}
		if s, d := count(src), count(dst); s+d != keys || d < 100 {
			t.Fatalf("half-way: source has %d keys, target %d", s, d)
		}
		checkKeys(t, ctx, cc, "{roll}:", keys) // the source ASKs clients to the target
	}
	stable := func() {
		t.Helper()
		for _, i := range []int{src, dst} {
			nodes, err := a.ClusterNodes(ctx, c.members[i].Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if n.Myself && (len(n.Migrating) > 0 || len(n.Importing) > 0) {
					t.Errorf("%s still migrating %v / importing %v", c.names[i], n.Migrating, n.Importing)
				}
			}
		}
		if err := a.ClusterConsistent(ctx, c.endpoints()); err != nil {
			t.Fatal(err)
		}
		checkKeys(t, ctx, cc, "{roll}:", keys)
	}

	// Interrupted, then rolled back: every key is back on the source.
	interrupted()
	if err := a.RollbackSlot(ctx, m); err != nil {
		t.Fatal(err)
	}
	if s, d := count(src), count(dst); s != keys || d != 0 {
		t.Errorf("after the rollback: source has %d keys, target %d", s, d)
	}
	stable()
	if err := a.RollbackSlot(ctx, m); err != nil {
		t.Errorf("RollbackSlot again: %v", err)
	}

	// Interrupted, then finished by MoveSlot again.
	interrupted()
	if n, err := a.MoveSlot(ctx, m); err != nil || n != keys-100 {
		t.Fatalf("MoveSlot after an interruption = %d, %v; want %d", n, err, keys-100)
	}
	if s, d := count(src), count(dst); s != 0 || d != keys {
		t.Errorf("after the move: source has %d keys, target %d", s, d)
	}
	stable()

	// A move cut short after the target took the slot over (the source
	// not told yet) rolls back by moving the slot back.
	back := c.moves(slot, slot, dst, src, 0)[0]
	do(t, ctx, back.Target, func(ctx context.Context, r *redis.Client) error {
		return r.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", back.SourceID).Err()
	})
	do(t, ctx, back.Source, func(ctx context.Context, r *redis.Client) error {
		if err := r.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", back.TargetID).Err(); err != nil {
			return err
		}
		ks, err := r.ClusterGetKeysInSlot(ctx, slot, keys).Result()
		if err != nil {
			return err
		}
		args := []any{"MIGRATE", back.Target.Host, back.Target.Port, "", 0, 5000, "KEYS"}
		for _, k := range ks {
			args = append(args, k)
		}
		return r.Do(ctx, args...).Err()
	})
	if err := a.ClusterSetSlotNode(ctx, back.Target, slot, back.TargetID); err != nil {
		t.Fatal(err)
	}
	if err := a.RollbackSlot(ctx, back); err != nil {
		t.Fatal(err)
	}
	if s, d := count(src), count(dst); s != 0 || d != keys {
		t.Errorf("after rolling back a move past the takeover: %s has %d keys, %s %d", c.names[dst], d, c.names[src], s)
	}
	stable()

	// MIGRATE authenticates as the admin user: moves work with the
	// default user off.
	disableDefaultUser(t, ctx, a, c.endpoints())
	if n, err := a.MoveSlot(ctx, back); err != nil || n != keys {
		t.Fatalf("MoveSlot with the default user off = %d, %v; want %d", n, err, keys)
	}
	if s, d := count(src), count(dst); s != keys || d != 0 {
		t.Errorf("after the move back: source has %d keys, target %d", s, d)
	}
	if err := a.ClusterConsistent(ctx, c.endpoints()); err != nil {
		t.Fatal(err)
	}
}

// TestClusterReformAfterResume suspends every node of a cluster and
// resumes them (fresh cluster nodes with their data, as after a graceful
// restart of the emulator), and forms the cluster again: every key is
// back, served by the primaries that had it.
func TestClusterReformAfterResume(t *testing.T) {
	h := newClusterHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := h.rt.Admin()
	c := formCluster(t, h, ctx, "resume", 3, 1)
	writeKeys(t, ctx, c.client(t), "key:", 5000)
	for _, m := range c.members {
		if m.Replica {
			if err := a.CatchUp(ctx, c.members[m.Primary].Endpoint, m.Endpoint); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range c.names {
		if err := h.rt.Suspend(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range c.names {
		if _, err := h.rt.Start(ctx, engine.NodeSpec{Name: name, Endpoint: c.members[i].Endpoint, Cluster: true, Resume: true}); err != nil {
			t.Fatal(err)
		}
	}
	begin := time.Now()
	ids, err := a.FormCluster(ctx, c.members)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-formed in %s", time.Since(begin).Round(time.Millisecond))
	for i, id := range ids {
		if id == c.ids[i] {
			t.Errorf("%s kept its node id", c.names[i])
		}
	}
	checkKeys(t, ctx, c.client(t), "key:", 5000)
}
