package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/elasticache-local/elasticache-local/engine"
)

func TestClusterArgs(t *testing.T) {
	spec := engine.NodeSpec{Name: "c", Endpoint: engine.Endpoint{Host: "127.0.90.100", Port: 6379}, Cluster: true}
	args, err := serverArgs(spec, nil, engine.Admin{}, false)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"--cluster-enabled yes", "--cluster-config-file /data/nodes.conf", "--cluster-replica-no-failover yes",
		"--cluster-require-full-coverage no", "--cluster-node-timeout 5000",
		"--cluster-announce-hostname 127.0.90.100", "--cluster-preferred-endpoint-type hostname",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args lack %q: %s", want, line)
		}
	}
	if strings.Contains(line, "cluster-announce-port") || strings.Contains(line, "cluster-announce-ip") {
		t.Errorf("the port is the same inside and out, the IP learnt from the bus: %s", line)
	}
	for _, k := range []string{"cluster-enabled", "cluster-announce-hostname", "cluster-port", "cluster-preferred-endpoint-type"} {
		s := spec
		s.Config = map[string]string{k: "x"}
		if _, err := serverArgs(s, nil, engine.Admin{}, false); err == nil {
			t.Errorf("Config %s accepted", k)
		}
	}
	if _, err := serverArgs(spec, &engine.Endpoint{Host: "node-x", Port: 6379}, engine.Admin{}, false); err == nil {
		t.Error("a cluster node with ReplicaOf accepted")
	}
}

// TestCluster forms a 3 × 1 cluster of containers, uses it from the host
// with a cluster client (redirected to the announced host endpoints), moves
// slots to a fourth primary over the container network and fails a shard
// over after a kill.
func TestCluster(t *testing.T) {
	for _, mode := range []string{NetworkAuto, NetworkBridge} {
		t.Run(mode, func(t *testing.T) { testCluster(t, mode) })
	}
}

// testCluster forms and checks a cluster of containers in a network mode.
func testCluster(t *testing.T, mode string) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-cluster-%s-%d", mode, os.Getpid())
	assertNoLeftovers(t, cli, scope)
	rt := newTestRuntime(t, Options{EmulatorID: scope, Scope: scope, DataDir: t.TempDir(), NetworkMode: mode})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pool, err := engine.NewAddressPool("127.0.90.100")
	if err != nil {
		t.Fatal(err)
	}
	a := rt.Admin()

	var (
		mu      sync.Mutex
		members = make([]engine.ClusterMember, 7)
		names   = []string{"p0", "p1", "p2", "p0-r", "p1-r", "p2-r", "p3"}
	)
	slots := engine.SplitSlots(3)
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		ep, err := pool.Allocate(6379)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
				t.Error(err)
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := rt.Start(ctx, engine.NodeSpec{Name: name, Endpoint: ep, Cluster: true}); err != nil {
				errs[i] = err
				return
			}
			peer, err := engine.ClusterAddrOf(ctx, rt, name, ep)
			if err != nil {
				errs[i] = err
				return
			}
			m := engine.ClusterMember{Endpoint: ep, Peer: peer}
			switch {
			case i < 3:
				m.Slots = slots[i]
			case i < 6:
				m.Replica, m.Primary = true, i-3
			}
			mu.Lock()
			members[i] = m
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		switch {
		case rt.HostNetwork() && m.Peer != m.Endpoint:
			t.Errorf("ClusterAddr %s of %s on the host's network: want the endpoint", m.Peer.Addr(), m.Endpoint.Addr())
		case !rt.HostNetwork() && (strings.HasPrefix(m.Peer.Host, "127.") || m.Peer.Port != m.Endpoint.Port):
			t.Errorf("ClusterAddr %s of %s: want the container's network IP and the same port", m.Peer.Addr(), m.Endpoint.Addr())
		}
	}
	begin := time.Now()
	ids, err := a.FormCluster(ctx, members)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("formed 3 × 1 + 1 containers in %s", time.Since(begin).Round(time.Millisecond))

	var addrs []string
	hosts := map[string]bool{}
	for _, m := range members {
		addrs = append(addrs, m.Endpoint.Addr())
		hosts[m.Endpoint.Addr()] = true
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs[:1], DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { cc.Close() })
	cs, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range cs {
		for _, n := range s.Nodes {
			if !hosts[n.Addr] {
				t.Errorf("CLUSTER SLOTS %d-%d names %s, not a host endpoint", s.Start, s.End, n.Addr)
			}
		}
	}
	nodes, err := a.ClusterNodes(ctx, members[0].Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		i := slices.Index(ids, n.ID)
		if i < 0 || n.Addr != members[i].Endpoint || n.PeerAddr() != members[i].Peer {
			t.Errorf("CLUSTER NODES line %+v: want address %s (announced) and %s (bus)", n, members[i].Endpoint.Addr(), members[i].Peer.Addr())
		}
	}

	const keys = 5000
	set := func(i int) error { return cc.Set(ctx, "key:"+strconv.Itoa(i), i, 0).Err() }
	check := func() {
		t.Helper()
		for i := range keys {
			if got, err := cc.Get(ctx, "key:"+strconv.Itoa(i)).Int(); err != nil || got != i {
				t.Fatalf("GET key:%d = %d, %v", i, got, err)
			}
		}
	}
	for i := range keys {
		if err := set(i); err != nil {
			t.Fatal(err)
		}
	}

	// Move 64 slots of p0 to p3: MIGRATE (as the admin user) between containers.
	var moves []engine.SlotMove
	for s := range 64 {
		moves = append(moves, engine.SlotMove{
			Slot: s, Source: members[0].Endpoint, Target: members[6].Endpoint, TargetPeer: members[6].Peer,
			SourceID: ids[0], TargetID: ids[6], Others: addrsOf(members[1:6]),
		})
	}
	moved, err := a.MoveSlots(ctx, moves, 4)
	if err != nil {
		t.Fatal(err)
	}
	eps := addrsOf(members)
	if err := a.ClusterConsistent(ctx, eps); err != nil {
		t.Fatal(err)
	}
	check()
	want := 0
	for i := range keys {
		if engine.HashSlot("key:"+strconv.Itoa(i)) < 64 {
			want++
		}
	}
	if moved != want {
		t.Errorf("moved %d keys, want %d", moved, want)
	}

	// Replicas caught up, p1 dies and its replica takes over.
	for i := 3; i < 6; i++ {
		if err := a.CatchUp(ctx, members[i-3].Endpoint, members[i].Endpoint); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Kill(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := a.ClusterFailover(ctx, members[4].Endpoint, "TAKEOVER"); err != nil {
		t.Fatal(err)
	}
	var rest []engine.Endpoint
	for i, ep := range eps {
		if i != 1 {
			rest = append(rest, ep)
			if err := a.ClusterForget(ctx, ep, ids[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.ClusterConsistent(ctx, rest); err != nil {
		t.Fatal(err)
	}
	cc = redis.NewClusterClient(&redis.ClusterOptions{ // the old one would still try p1 first
		Addrs: addrs[2:3], DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { cc.Close() })
	check()
}

func addrsOf(ms []engine.ClusterMember) []engine.Endpoint {
	eps := make([]engine.Endpoint, len(ms))
	for i, m := range ms {
		eps[i] = m.Endpoint
	}
	return eps
}

// TestClusterNodeResume suspends a cluster node holding keys and resumes
// it: a new container, a fresh cluster node (new id, no slot claimed) with
// the keys, serving them again once given the slots.
func TestClusterNodeResume(t *testing.T) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-cluster-resume-%d", os.Getpid())
	assertNoLeftovers(t, cli, scope)
	rt := newTestRuntime(t, Options{EmulatorID: scope, Scope: scope, DataDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pool, err := engine.NewAddressPool("127.0.90.120")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := pool.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	spec := engine.NodeSpec{Name: "resume", Endpoint: ep, Cluster: true}
	t.Cleanup(func() {
		if err := rt.Stop(context.Background(), spec.Name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			t.Error(err)
		}
	})
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	a := rt.Admin()
	id, err := a.ClusterMyID(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	all := []engine.SlotRange{{Start: 0, End: engine.ClusterSlots - 1}}
	if err := a.ClusterAddSlots(ctx, ep, all); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, ep, a.ClusterOK); err != nil {
		t.Fatal(err)
	}
	do := func(fn func(ctx context.Context, c *redis.Client) error) {
		t.Helper()
		if err := a.WithClient(ctx, ep, fn); err != nil {
			t.Fatal(err)
		}
	}
	do(func(ctx context.Context, c *redis.Client) error {
		for i := range 50 {
			if err := c.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err := rt.Suspend(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	spec.Resume = true
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	nodes, err := a.ClusterNodes(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].ID == id || len(nodes[0].Slots) > 0 {
		t.Errorf("resumed node: %+v; want a new id (old %s), no peer and no slot", nodes, id)
	}
	if err := a.ClusterAddSlots(ctx, ep, all); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, ep, a.ClusterOK); err != nil {
		t.Fatal(err)
	}
	do(func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		if err == nil && n != 50 {
			err = fmt.Errorf("DBSIZE %d, want 50", n)
		}
		if err == nil {
			err = c.Get(ctx, "k7").Err()
		}
		return err
	})
}
