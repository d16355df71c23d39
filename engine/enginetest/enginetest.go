package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// testTimeout bounds each subtest. Container starts on a loaded CI machine
// take seconds, so it is generous; a healthy run needs a fraction of it.
const testTimeout = 2 * time.Minute

// silentTimeout is how long a paused node gets to (not) answer a PING.
const silentTimeout = 300 * time.Millisecond

// PeerFactory builds another runtime over the same records as the one under
// test (same data dir for the process runtime, same Docker scope and data
// dir for the docker runtime) and with the same admin credentials, but with
// another emulator id, as a restarted emulator would (it loads the
// credentials with engine.LoadAdmin). The factory registers the runtime's
// Close with t.Cleanup.
type PeerFactory func(t *testing.T, emulatorID string) engine.Runtime

// Run runs the contract suite against rt, taking node endpoints from pool.
// The contract subtests run in parallel; Reap and Adopt run last, one after
// the other, because they remove every node of the records that is not the
// reaping runtime's. peer may be nil, which skips those two. Nodes are
// stopped and endpoints released by t.Cleanup, also when a subtest fails.
func Run(t *testing.T, rt engine.Runtime, pool *engine.AddressPool, peer PeerFactory) {
	s := &suite{rt: rt, pool: pool}
	t.Run("contract", func(t *testing.T) {
		t.Run("StartPingSetGet", s.testStartPingSetGet)
		t.Run("StartExisting", s.testStartExisting)
		t.Run("ReplicaOf", s.testReplicaOf)
		t.Run("Promotion", s.testPromotion)
		t.Run("ListLabels", s.testListLabels)
		t.Run("StopRemoves", s.testStopRemoves)
		t.Run("Kill", s.testKill)
		t.Run("PauseResume", s.testPauseResume)
		t.Run("PausedKillStop", s.testPausedKillStop)
		t.Run("CopyFrom", s.testCopyFrom)
		t.Run("InitialRDB", s.testInitialRDB)
		t.Run("AdminUser", s.testAdminUser)
		t.Run("Alive", s.testAlive)
		t.Run("Pulse", s.testPulse)
		t.Run("SuspendResume", s.testSuspendResume)
		t.Run("LoadAdmin", testLoadAdmin)
	})
	t.Run("Reap", func(t *testing.T) { s.testReap(t, peer) })
	t.Run("Adopt", func(t *testing.T) { s.testAdopt(t, peer) })
	s.logStartTimes(t)
}

type suite struct {
	rt   engine.Runtime
	pool *engine.AddressPool

	mu     sync.Mutex
	starts []time.Duration // Start call to PING answered, per node
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// spec returns the NodeSpec of a new node on a fresh endpoint; the endpoint
// goes back to the pool when the test ends.
func (s *suite) spec(t *testing.T, name string) engine.NodeSpec {
	t.Helper()
	ep, err := s.pool.Allocate(6379)
	if err != nil {
		t.Fatalf("allocate endpoint: %v", err)
	}
	t.Cleanup(func() { s.pool.Release(ep) })
	return engine.NodeSpec{
		Name:          name,
		Labels:        map[string]string{engine.LabelCluster: "enginetest-" + name, engine.LabelNode: "0001"},
		Engine:        "redis",
		EngineVersion: "7.1",
		Endpoint:      ep,
	}
}

// start starts spec on rt and fails the test if that does not work. The
// node is stopped when the test ends; the Stop is registered before Start
// runs so that a half-started node is cleaned up too.
func (s *suite) start(t *testing.T, rt engine.Runtime, spec engine.NodeSpec) engine.Node {
	t.Helper()
	t.Cleanup(func() { stopQuietly(t, rt, spec.Name) })
	begin := time.Now()
	n, err := rt.Start(testContext(t), spec)
	if err != nil {
		t.Fatalf("Start %s: %v", spec.Name, err)
	}
	s.mu.Lock()
	s.starts = append(s.starts, time.Since(begin))
	s.mu.Unlock()
	return n
}

func stopQuietly(t *testing.T, rt engine.Runtime, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := rt.Stop(ctx, name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
		t.Errorf("cleanup: Stop %s: %v", name, err)
	}
}

func (s *suite) logStartTimes(t *testing.T) {
	s.mu.Lock()
	d := slices.Clone(s.starts)
	s.mu.Unlock()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	t.Logf("%s runtime: start-to-PING over %d starts: min %s, median %s, max %s", s.rt.Name(), len(d),
		d[0].Round(time.Microsecond), d[len(d)/2].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}

// do runs one command on the node at ep, as a user of the node (the default
// user, not the runtime's admin user), and returns its reply.
func do(ctx context.Context, ep engine.Endpoint, args ...any) (any, error) {
	var v any
	err := engine.Admin{}.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		v, err = c.Do(ctx, args...).Result()
		return err
	})
	return v, err
}

func mustDo(t *testing.T, ep engine.Endpoint, args ...any) any {
	t.Helper()
	v, err := do(testContext(t), ep, args...)
	if err != nil {
		t.Fatalf("%v on %s: %v", args, ep.Addr(), err)
	}
	return v
}

// holds returns a check that GET key on the node returns want.
func holds(key, want string) engine.Check {
	return func(ctx context.Context, ep engine.Endpoint) error {
		v, err := do(ctx, ep, "GET", key)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("GET %s = %v, want %q", key, v, want)
		}
		return nil
	}
}

func waitReady(t *testing.T, ep engine.Endpoint, checks ...engine.Check) {
	t.Helper()
	if err := engine.WaitReady(testContext(t), ep, checks...); err != nil {
		t.Fatal(err)
	}
}

// silent asserts that the node at ep does not answer PING within
// silentTimeout (refused, reset or timed out).
func silent(t *testing.T, ep engine.Endpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), silentTimeout)
	defer cancel()
	if err := (engine.Admin{}).Ping(ctx, ep); err == nil {
		t.Fatalf("%s still answers PING", ep.Addr())
	}
}

func (s *suite) testStartPingSetGet(t *testing.T) {
	t.Parallel()
	spec := s.spec(t, "et-basic")
	n := s.start(t, s.rt, spec)
	if n.Name != spec.Name || n.Endpoint != spec.Endpoint || !n.Running {
		t.Fatalf("Start returned %+v, want name %s, endpoint %s, running", n, spec.Name, spec.Endpoint.Addr())
	}
	if got := mustDo(t, n.Endpoint, "SET", "greeting", "hello"); got != "OK" {
		t.Fatalf("SET = %v", got)
	}
	if got := mustDo(t, n.Endpoint, "GET", "greeting"); got != "hello" {
		t.Fatalf("GET = %v, want hello", got)
	}
	// The runtime's fixed settings: no persistence, disk-based replication
	// syncs (which stream writes to the replica at once).
	for k, want := range map[string]string{"save": "", "appendonly": "no", "repl-diskless-sync": "no"} {
		got := mustDo(t, n.Endpoint, "CONFIG", "GET", k)
		if l, ok := got.([]any); !ok || len(l) != 2 || l[1] != want {
			t.Errorf("CONFIG GET %s = %v, want %q", k, got, want)
		}
	}
}

func (s *suite) testStartExisting(t *testing.T) {
	t.Parallel()
	spec := s.spec(t, "et-existing")
	s.start(t, s.rt, spec)
	_, err := s.rt.Start(testContext(t), spec)
	if !errors.Is(err, engine.ErrNodeExists) {
		t.Fatalf("second Start = %v, want ErrNodeExists", err)
	}
	bad := s.spec(t, "et-bad-config")
	bad.Config = map[string]string{"port": "1"}
	t.Cleanup(func() { stopQuietly(t, s.rt, bad.Name) })
	if _, err := s.rt.Start(testContext(t), bad); err == nil {
		t.Fatal("Start with Config[port] succeeded; the runtime must own the port")
	}
}

// startPair starts a primary holding key=value and a replica started with
// ReplicaOf, and waits until the replica's link is up.
func (s *suite) startPair(t *testing.T, prefix string) (primary, replica engine.Node) {
	t.Helper()
	primary = s.start(t, s.rt, s.spec(t, prefix+"-primary"))
	mustDo(t, primary.Endpoint, "SET", "before", "sync")
	rspec := s.spec(t, prefix+"-replica")
	rspec.ReplicaOf = &primary.Endpoint // the host endpoint; Start translates it
	replica = s.start(t, s.rt, rspec)
	waitReady(t, replica.Endpoint, s.rt.Admin().ReplicationLinkUp, s.rt.Admin().ReplicatingFrom(s.rt.PeerEndpoint(primary.Endpoint)))
	return primary, replica
}

func (s *suite) testReplicaOf(t *testing.T) {
	t.Parallel()
	primary, replica := s.startPair(t, "et-repl")
	waitReady(t, replica.Endpoint, holds("before", "sync"))
	mustDo(t, primary.Endpoint, "SET", "after", "stream")
	waitReady(t, replica.Endpoint, holds("after", "stream"))

	// The primary lists the replica at the endpoint the host reaches it on,
	// so callers can match INFO replication against their own records.
	info, err := s.rt.Admin().InspectReplication(testContext(t), primary.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if info.ConnectedReplicas != 1 || len(info.Replicas) != 1 || info.Replicas[0].Endpoint != replica.Endpoint {
		t.Fatalf("primary INFO replication: %d replicas %+v, want one at %s", info.ConnectedReplicas, info.Replicas, replica.Endpoint.Addr())
	}
}

// testPromotion promotes the replica and turns the old primary into its
// replica with runtime-level REPLICAOF through PeerEndpoint, as a failover
// does.
func (s *suite) testPromotion(t *testing.T) {
	t.Parallel()
	oldPrimary, newPrimary := s.startPair(t, "et-promo")
	if err := s.rt.Admin().ReplicaOf(testContext(t), newPrimary.Endpoint, nil); err != nil {
		t.Fatal(err)
	}
	waitReady(t, newPrimary.Endpoint, s.rt.Admin().PrimaryRole)
	mustDo(t, newPrimary.Endpoint, "SET", "promoted", "yes")

	peer := s.rt.PeerEndpoint(newPrimary.Endpoint)
	if err := s.rt.Admin().ReplicaOf(testContext(t), oldPrimary.Endpoint, &peer); err != nil {
		t.Fatal(err)
	}
	waitReady(t, oldPrimary.Endpoint, s.rt.Admin().ReplicatingFrom(peer), holds("promoted", "yes"))
	if got := s.rt.PeerEndpoint(peer); got != peer {
		t.Errorf("PeerEndpoint(PeerEndpoint(ep)) = %s, want %s (idempotent)", got.Addr(), peer.Addr())
	}
}

func (s *suite) testListLabels(t *testing.T) {
	t.Parallel()
	spec := s.spec(t, "et-labels")
	spec.Labels[engine.LabelGroup] = "enginetest-group"
	spec.Labels["example.com/custom"] = "a value, with spaces"
	s.start(t, s.rt, spec)
	check := func(how string, n engine.Node) {
		t.Helper()
		if n.Endpoint != spec.Endpoint || !n.Running || n.Paused {
			t.Errorf("%s: %+v, want endpoint %s, running, not paused", how, n, spec.Endpoint.Addr())
		}
		for k, v := range spec.Labels {
			if n.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q (labels %v)", how, k, n.Labels[k], v, n.Labels)
			}
		}
	}
	nodes, err := s.rt.List(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nodes, func(n engine.Node) bool { return n.Name == spec.Name })
	if i < 0 {
		t.Fatalf("List has no %s: %+v", spec.Name, nodes)
	}
	check("List", nodes[i])
	n, err := s.rt.Inspect(testContext(t), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	check("Inspect", n)
	// Returned labels are copies.
	maps.DeleteFunc(n.Labels, func(string, string) bool { return true })
	if again, _ := s.rt.Inspect(testContext(t), spec.Name); len(again.Labels) == 0 {
		t.Error("Inspect returned the runtime's own label map")
	}
}

func (s *suite) testStopRemoves(t *testing.T) {
	t.Parallel()
	spec := s.spec(t, "et-stop")
	s.start(t, s.rt, spec)
	if err := s.rt.Stop(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rt.Inspect(testContext(t), spec.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Fatalf("Inspect after Stop = %v, want ErrNodeNotFound", err)
	}
	nodes, err := s.rt.List(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(nodes, func(n engine.Node) bool { return n.Name == spec.Name }) {
		t.Fatalf("List after Stop still has %s", spec.Name)
	}
	silent(t, spec.Endpoint)
	if err := s.rt.Stop(testContext(t), spec.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Fatalf("second Stop = %v, want ErrNodeNotFound", err)
	}
	// The endpoint is free again: the same node starts on it.
	n := s.start(t, s.rt, spec)
	mustDo(t, n.Endpoint, "PING")

	// An emulator shutting down past its deadline still stops its nodes.
	late := s.spec(t, "et-stop-late")
	s.start(t, s.rt, late)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.rt.Stop(ctx, late.Name); err != nil {
		t.Fatalf("Stop with a cancelled context: %v", err)
	}
	if _, err := s.rt.Inspect(testContext(t), late.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Fatalf("Inspect after Stop with a cancelled context = %v, want ErrNodeNotFound", err)
	}
	silent(t, late.Endpoint)
}

func (s *suite) faults(t *testing.T) engine.FaultInjector {
	t.Helper()
	fi, ok := s.rt.(engine.FaultInjector)
	if !ok {
		t.Skipf("%s runtime does not implement engine.FaultInjector", s.rt.Name())
	}
	return fi
}

func (s *suite) testKill(t *testing.T) {
	t.Parallel()
	fi := s.faults(t)
	spec := s.spec(t, "et-kill")
	s.start(t, s.rt, spec)
	if err := fi.Kill(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	n, err := s.rt.Inspect(testContext(t), spec.Name)
	if err != nil {
		t.Fatalf("Inspect after Kill: %v (the record must stay until Stop)", err)
	}
	if n.Running || n.Paused {
		t.Fatalf("Inspect after Kill: %+v, want not running", n)
	}
	silent(t, spec.Endpoint)
	if err := fi.Pause(testContext(t), spec.Name); err == nil {
		t.Error("Pause of a killed node succeeded")
	}
	// A dead node's leftovers are replaced by a new Start (a reboot).
	n = s.start(t, s.rt, spec)
	mustDo(t, n.Endpoint, "PING")
}

func (s *suite) testPauseResume(t *testing.T) {
	t.Parallel()
	fi := s.faults(t)
	spec := s.spec(t, "et-pause")
	s.start(t, s.rt, spec)
	if err := fi.Pause(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	n, err := s.rt.Inspect(testContext(t), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Running || !n.Paused {
		t.Errorf("Inspect of a paused node: %+v, want running and paused", n)
	}
	silent(t, spec.Endpoint)
	if err := fi.Resume(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	waitReady(t, spec.Endpoint, s.rt.Admin().Pings)
	if n, err := s.rt.Inspect(testContext(t), spec.Name); err != nil || !n.Running || n.Paused {
		t.Errorf("Inspect after Resume: %+v, %v; want running, not paused", n, err)
	}
}

// testPausedKillStop checks that a frozen node can still be killed and
// stopped (a hung node must never block cleanup).
func (s *suite) testPausedKillStop(t *testing.T) {
	t.Parallel()
	fi := s.faults(t)
	killed := s.spec(t, "et-paused-kill")
	stopped := s.spec(t, "et-paused-stop")
	for _, spec := range []engine.NodeSpec{killed, stopped} {
		s.start(t, s.rt, spec)
		if err := fi.Pause(testContext(t), spec.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := fi.Kill(testContext(t), killed.Name); err != nil {
		t.Fatalf("Kill of a paused node: %v", err)
	}
	if n, err := s.rt.Inspect(testContext(t), killed.Name); err != nil || n.Running || n.Paused {
		t.Errorf("Inspect after killing a paused node: %+v, %v; want not running", n, err)
	}
	begin := time.Now()
	if err := s.rt.Stop(testContext(t), stopped.Name); err != nil {
		t.Fatalf("Stop of a paused node: %v", err)
	}
	t.Logf("Stop of a paused node took %s", time.Since(begin).Round(time.Millisecond))
	if _, err := s.rt.Inspect(testContext(t), stopped.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Errorf("Inspect after Stop of a paused node = %v, want ErrNodeNotFound", err)
	}
	silent(t, stopped.Endpoint)
}

func (s *suite) testCopyFrom(t *testing.T) {
	t.Parallel()
	fr, ok := s.rt.(engine.FileReader)
	if !ok {
		t.Skipf("%s runtime does not implement engine.FileReader", s.rt.Name())
	}
	spec := s.spec(t, "et-copy")
	s.start(t, s.rt, spec)
	mustDo(t, spec.Endpoint, "SET", "snap", "shot")
	if got := mustDo(t, spec.Endpoint, "SAVE"); got != "OK" {
		t.Fatalf("SAVE = %v", got)
	}
	readRDB := func(how string) {
		t.Helper()
		rc, err := fr.CopyFrom(testContext(t), spec.Name, "dump.rdb")
		if err != nil {
			t.Fatalf("%s: CopyFrom dump.rdb: %v", how, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: reading dump.rdb: %v", how, err)
		}
		if !bytes.HasPrefix(b, []byte("REDIS")) || !bytes.Contains(b, []byte("snap")) {
			t.Fatalf("%s: dump.rdb (%d bytes) does not look like an RDB holding key snap: %q", how, len(b), b[:min(len(b), 32)])
		}
	}
	readRDB("running node")

	if _, err := fr.CopyFrom(testContext(t), spec.Name, "missing.rdb"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyFrom of a missing file = %v, want fs.ErrNotExist", err)
	}
	for _, bad := range []string{"../node.json", "/etc/passwd", "", "."} {
		if rc, err := fr.CopyFrom(testContext(t), spec.Name, bad); err == nil {
			rc.Close()
			t.Errorf("CopyFrom(%q) succeeded, want an invalid path error", bad)
		}
	}
	if _, err := fr.CopyFrom(testContext(t), "et-no-such-node", "dump.rdb"); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Errorf("CopyFrom of an unknown node = %v, want ErrNodeNotFound", err)
	}
	if fi, ok := s.rt.(engine.FaultInjector); ok {
		if err := fi.Kill(testContext(t), spec.Name); err != nil {
			t.Fatal(err)
		}
		readRDB("killed node")
	}
}

// testInitialRDB seeds a node with the RDB another node saved (a snapshot
// restore) and checks that an RDB which does not load fails the Start and
// leaves nothing behind.
func (s *suite) testInitialRDB(t *testing.T) {
	t.Parallel()
	fr, ok := s.rt.(engine.FileReader)
	if !ok {
		t.Skipf("%s runtime does not implement engine.FileReader", s.rt.Name())
	}
	src := s.start(t, s.rt, s.spec(t, "et-rdb-src"))
	mustDo(t, src.Endpoint, "SET", "restored", "from-rdb")
	mustDo(t, src.Endpoint, "SAVE")
	rc, err := fr.CopyFrom(testContext(t), src.Name, "dump.rdb")
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	dst := s.spec(t, "et-rdb-dst")
	dst.InitialRDB = bytes.NewReader(rdb)
	n := s.start(t, s.rt, dst)
	if got := mustDo(t, n.Endpoint, "GET", "restored"); got != "from-rdb" {
		t.Fatalf("GET restored on the seeded node = %v, want from-rdb", got)
	}

	bad := s.spec(t, "et-rdb-bad")
	bad.InitialRDB = bytes.NewReader([]byte("this is not an RDB file"))
	t.Cleanup(func() { stopQuietly(t, s.rt, bad.Name) })
	if _, err := s.rt.Start(testContext(t), bad); err == nil {
		t.Fatal("Start with a corrupt InitialRDB succeeded")
	}
	if n, err := s.rt.Inspect(testContext(t), bad.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Errorf("Inspect after a failed Start = %+v, %v; want ErrNodeNotFound", n, err)
	}
}
