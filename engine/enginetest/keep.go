package enginetest

// Nodes that outlive one run of the emulator (engine.Keeper): a clean
// shutdown suspends them and the next run resumes them; after a crash the
// next run adopts them as they run.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

func (s *suite) keeper(t *testing.T, rt engine.Runtime) engine.Keeper {
	t.Helper()
	k, ok := rt.(engine.Keeper)
	if !ok {
		t.Skipf("%s runtime does not implement engine.Keeper", rt.Name())
	}
	return k
}

// inspect returns rt's view of the node, failing the test on an error.
func inspect(t *testing.T, rt engine.Runtime, name string) engine.Node {
	t.Helper()
	n, err := rt.Inspect(testContext(t), name)
	if err != nil {
		t.Fatalf("Inspect %s: %v", name, err)
	}
	return n
}

// suspend suspends the node and checks what Inspect says of it after.
func suspend(t *testing.T, rt engine.Runtime, ctx context.Context, spec engine.NodeSpec, wantData bool) {
	t.Helper()
	begin := time.Now()
	if err := rt.(engine.Keeper).Suspend(ctx, spec.Name); err != nil {
		t.Fatalf("Suspend %s: %v", spec.Name, err)
	}
	t.Logf("%s runtime: Suspend %s took %s", rt.Name(), spec.Name, time.Since(begin).Round(time.Millisecond))
	n := inspect(t, rt, spec.Name)
	if n.Running || n.HasData != wantData || n.Endpoint != spec.Endpoint {
		t.Fatalf("Inspect of suspended %s: %+v; want not running, HasData %v, endpoint %s", spec.Name, n, wantData, spec.Endpoint.Addr())
	}
	silent(t, spec.Endpoint)
}

// testSuspendResume: Suspend saves the dataset and stops the node; Start
// with Resume brings it back on the same endpoint, as a new instance. A
// paused node is suspended too; past the context's deadline the node is
// killed and what it saved before is kept; Resume without kept data starts
// empty; Stop discards kept data.
func (s *suite) testSuspendResume(t *testing.T) {
	t.Parallel()
	s.keeper(t, s.rt)
	fi := s.faults(t)
	spec := s.spec(t, "et-suspend")
	n := s.start(t, s.rt, spec)
	mustDo(t, spec.Endpoint, "SET", "kept", "across-runs")
	mustDo(t, spec.Endpoint, "HSET", "h", "f", "v")
	mustDo(t, spec.Endpoint, "SET", "volatile", "x", "EX", "3600")
	if err := fi.Pause(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	suspend(t, s.rt, testContext(t), spec, true)
	suspend(t, s.rt, testContext(t), spec, true) // again: nothing changes
	if _, err := s.rt.Start(testContext(t), engine.NodeSpec{Name: spec.Name, Endpoint: spec.Endpoint, Resume: true,
		InitialRDB: strings.NewReader("")}); err == nil {
		t.Fatal("Start with both Resume and InitialRDB succeeded")
	}

	resumed := spec
	resumed.Resume = true
	again := s.start(t, s.rt, resumed)
	if again.Endpoint != spec.Endpoint || !again.Running || again.ID == "" || again.ID == n.ID {
		t.Fatalf("Start with Resume: %+v; want running on %s as a new instance (old ID %s)", again, spec.Endpoint.Addr(), n.ID)
	}
	if got := mustDo(t, spec.Endpoint, "GET", "kept"); got != "across-runs" {
		t.Fatalf("GET kept after Resume = %v", got)
	}
	if got := mustDo(t, spec.Endpoint, "HGET", "h", "f"); got != "v" {
		t.Fatalf("HGET h f after Resume = %v", got)
	}
	if ttl, ok := mustDo(t, spec.Endpoint, "TTL", "volatile").(int64); !ok || ttl <= 0 {
		t.Fatalf("TTL volatile after Resume = %v, want the expiry kept", ttl)
	}
	if n := inspect(t, s.rt, spec.Name); n.HasData || !n.Running {
		t.Errorf("Inspect after Resume: %+v; want running, no kept data left", n)
	}

	// Past the deadline: killed, keeping what the last SAVE wrote.
	mustDo(t, spec.Endpoint, "SET", "saved", "yes")
	mustDo(t, spec.Endpoint, "SAVE")
	mustDo(t, spec.Endpoint, "SET", "unsaved", "lost")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	suspend(t, s.rt, done, spec, true)
	s.start(t, s.rt, resumed)
	if got := mustDo(t, spec.Endpoint, "GET", "saved"); got != "yes" {
		t.Errorf("GET saved after a suspend past its deadline = %v, want yes", got)
	}
	if _, err := do(testContext(t), spec.Endpoint, "GET", "unsaved"); !errors.Is(err, redis.Nil) {
		t.Errorf("GET unsaved after a suspend past its deadline = %v, want nil (the node was killed)", err)
	}

	// A killed node keeps its record, no data; Resume starts it empty.
	if err := fi.Kill(testContext(t), spec.Name); err != nil {
		t.Fatal(err)
	}
	suspend(t, s.rt, testContext(t), spec, false)
	s.start(t, s.rt, resumed)
	if got := mustDo(t, spec.Endpoint, "DBSIZE"); got != int64(0) {
		t.Errorf("DBSIZE after resuming a node suspended dead = %v, want 0", got)
	}
	fresh := s.spec(t, "et-resume-nothing")
	fresh.Resume = true
	s.start(t, s.rt, fresh)
	if got := mustDo(t, fresh.Endpoint, "DBSIZE"); got != int64(0) {
		t.Errorf("DBSIZE of a node resumed without kept data = %v, want 0", got)
	}

	// Stop discards what Suspend kept (an empty dataset, saved).
	suspend(t, s.rt, testContext(t), spec, true)
	if err := s.rt.Stop(testContext(t), spec.Name); err != nil {
		t.Fatalf("Stop of a suspended node: %v", err)
	}
	if _, err := s.rt.Inspect(testContext(t), spec.Name); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Errorf("Inspect after Stop of a suspended node = %v, want ErrNodeNotFound", err)
	}
}

// testLoadAdmin: the admin credentials persist across loads, the file is
// private, and a file that does not hold credentials is refused, not
// replaced.
func testLoadAdmin(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "admin.json")
	a, err := engine.LoadAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.User() != engine.AdminUser || a == (engine.Admin{}) {
		t.Fatalf("LoadAdmin = %v, want the admin user", a)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", fi, err)
	}
	// Admin values differ by their TLS registry: compare the credentials.
	creds := func(a engine.Admin) [2]string {
		o := a.Options(engine.Endpoint{})
		return [2]string{o.Username, o.Password}
	}
	again, err := engine.LoadAdmin(path)
	if err != nil || creds(again) != creds(a) {
		t.Fatalf("second LoadAdmin: %v (equal: %v); want the stored credentials", err, creds(again) == creds(a))
	}
	other, err := engine.LoadAdmin(filepath.Join(t.TempDir(), "admin.json"))
	if err != nil || creds(other) == creds(a) {
		t.Fatalf("LoadAdmin of another file: %v (equal: %v); want fresh credentials", err, creds(other) == creds(a))
	}
	for _, bad := range []string{"", "{", `{"user":"elasticache-local"}`, `{"user":"x","password":"short"}`,
		`{"user":"x y","password":"0123456789abcdef0123"}`, `{"user":"u","password":"0123456789abcdef0123","extra":1}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := engine.LoadAdmin(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadAdmin of %q = %v; want an error naming the file", bad, err)
		}
		if b, _ := os.ReadFile(path); string(b) != bad {
			t.Errorf("LoadAdmin replaced the malformed file %q with %q", bad, b)
		}
	}
	if os.Getuid() != 0 { // root reads any file
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := engine.LoadAdmin(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadAdmin of an unreadable file = %v; want an error naming the file", err)
		}
	}
}

// testAdopt drops a runtime instance with nodes in every state (as a killed
// emulator leaves them) and has a new instance adopt those its records own:
// running ones keep their ID and the connections open to them, paused ones
// stay paused, the killed and the suspended ones come back as stopped (with
// and without data), and nodes nothing owns are reaped, kept data
// included. The adopted nodes then work as nodes of the new instance:
// replication, Pause/Resume, Kill, Suspend, Stop, Resume, and a new replica
// of an adopted primary.
func (s *suite) testAdopt(t *testing.T, peer PeerFactory) {
	if peer == nil {
		t.Skip("no PeerFactory")
	}
	id := time.Now().UnixNano()
	// Cleanup goes through a runtime of its own: the first one is dropped.
	sweeper := peer(t, fmt.Sprintf("enginetest-sweeper-%d", id))
	first := peer(t, fmt.Sprintf("enginetest-first-%d", id))
	s.keeper(t, first)
	fi, ok := first.(engine.FaultInjector)
	if !ok {
		t.Skip("the runtime injects no faults")
	}
	ctx := testContext(t)
	specs := map[string]engine.NodeSpec{}
	startOn := func(rt engine.Runtime, name string, replicaOf *engine.Endpoint) engine.Node {
		spec := s.spec(t, name)
		spec.ReplicaOf = replicaOf
		specs[name] = spec
		t.Cleanup(func() { stopQuietly(t, sweeper, name) })
		n, err := rt.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start %s: %v", name, err)
		}
		return n
	}
	primary := startOn(first, "et-adopt-primary", nil)
	mustDo(t, primary.Endpoint, "SET", "before", "adoption")
	replica := startOn(first, "et-adopt-replica", &primary.Endpoint)
	waitReady(t, replica.Endpoint, first.Admin().ReplicationLinkUp, holds("before", "adoption"))
	paused := startOn(first, "et-adopt-paused", nil)
	startOn(first, "et-adopt-killed", nil)
	suspended := startOn(first, "et-adopt-suspended", nil)
	mustDo(t, suspended.Endpoint, "SET", "suspended", "data")
	orphan := startOn(first, "et-adopt-orphan", nil)
	orphanKept := startOn(first, "et-adopt-orphan-kept", nil)
	for _, step := range []struct {
		do   func(context.Context, string) error
		name string
	}{
		{fi.Pause, paused.Name}, {fi.Kill, "et-adopt-killed"},
		{first.(engine.Keeper).Suspend, suspended.Name}, {first.(engine.Keeper).Suspend, orphanKept.Name},
	} {
		if err := step.do(ctx, step.name); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	// A client of the primary, connected before the emulator "dies".
	client := redis.NewClient(&redis.Options{Addr: primary.Endpoint.Addr(), PoolSize: 1, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { client.Close() })
	clientID, err := client.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil { // the emulator dies: nodes stay
		t.Fatalf("Close: %v", err)
	}

	second := peer(t, fmt.Sprintf("enginetest-second-%d", id))
	owned := map[string]bool{primary.Name: true, replica.Name: true, paused.Name: true, "et-adopt-killed": true, suspended.Name: true}
	var offered []string
	a, err := second.(engine.Keeper).Adopt(ctx, func(n engine.Node) bool {
		if spec, ok := specs[n.Name]; ok && (n.Endpoint != spec.Endpoint || n.Labels[engine.LabelCluster] != spec.Labels[engine.LabelCluster]) {
			t.Errorf("Adopt offered %+v; want endpoint %s and the spec's labels", n, spec.Endpoint.Addr())
		}
		offered = append(offered, n.Name)
		return owned[n.Name]
	})
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	byName := func(nodes []engine.Node) map[string]engine.Node {
		m := map[string]engine.Node{}
		for _, n := range nodes {
			m[n.Name] = n
		}
		return m
	}
	running, stopped := byName(a.Running), byName(a.Stopped)
	for _, n := range []engine.Node{primary, replica, paused} {
		got, ok := running[n.Name]
		if !ok || got.ID != n.ID || got.Paused != (n.Name == paused.Name) {
			t.Errorf("adopted %s: %+v (found %v); want running with ID %s", n.Name, got, ok, n.ID)
		}
	}
	if n, ok := stopped["et-adopt-killed"]; !ok || n.Running || n.HasData {
		t.Errorf("adopted killed node: %+v (found %v); want stopped without data", n, ok)
	}
	if n, ok := stopped[suspended.Name]; !ok || n.Running || !n.HasData {
		t.Errorf("adopted suspended node: %+v (found %v); want stopped with data", n, ok)
	}
	if len(a.Running) != 3 || len(a.Stopped) != 2 || a.Reaped != 2 {
		t.Errorf("Adopt: %d running, %d stopped, %d reaped (offered %v); want 3, 2, 2", len(a.Running), len(a.Stopped), a.Reaped, offered)
	}
	for _, name := range []string{orphan.Name, orphanKept.Name} {
		if n, err := second.Inspect(ctx, name); !errors.Is(err, engine.ErrNodeNotFound) {
			t.Errorf("Inspect of reaped %s: %+v, %v; want ErrNodeNotFound", name, n, err)
		}
	}
	silent(t, orphan.Endpoint)

	// The connection opened before adoption is the same one and works.
	if got, err := client.ClientID(ctx).Result(); err != nil || got != clientID {
		t.Fatalf("CLIENT ID after adoption = %d, %v; want %d on the same connection", got, err, clientID)
	}
	if err := client.Set(ctx, "after", "adoption", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, replica.Endpoint, holds("after", "adoption"))
	if again, err := second.(engine.Keeper).Adopt(ctx, func(engine.Node) bool { return false }); err != nil || again.Reaped != 0 || len(again.Running)+len(again.Stopped) != 0 {
		t.Errorf("second Adopt: %+v, %v; want nothing (all is the runtime's now)", again, err)
	}
	if n, err := second.(engine.Reaper).Reap(ctx); err != nil || n != 0 {
		t.Errorf("Reap after Adopt = %d, %v; want 0: adopted and stopped nodes are the runtime's", n, err)
	}
	if n := inspect(t, second, primary.Name); !n.Running || n.ID != primary.ID {
		t.Errorf("Inspect of the adopted primary after Reap: %+v", n)
	}

	// A new replica of the adopted primary (over the runtime's network).
	newReplica := startOn(second, "et-adopt-new-replica", &primary.Endpoint)
	waitReady(t, newReplica.Endpoint, second.Admin().ReplicatingFrom(second.PeerEndpoint(primary.Endpoint)), holds("after", "adoption"))

	// Faults, suspend and stop work on adopted nodes.
	sfi := second.(engine.FaultInjector)
	if err := sfi.Resume(ctx, paused.Name); err != nil {
		t.Fatalf("Resume of an adopted paused node: %v", err)
	}
	waitReady(t, paused.Endpoint, second.Admin().Pings)
	if err := sfi.Pause(ctx, paused.Name); err != nil {
		t.Fatalf("Pause of an adopted node: %v", err)
	}
	if n := inspect(t, second, paused.Name); !n.Paused {
		t.Errorf("Inspect after Pause of an adopted node: %+v", n)
	}
	if err := second.Stop(ctx, paused.Name); err != nil {
		t.Fatalf("Stop of an adopted paused node: %v", err)
	}
	silent(t, paused.Endpoint)
	if err := sfi.Kill(ctx, replica.Name); err != nil {
		t.Fatalf("Kill of an adopted node: %v", err)
	}
	if n := inspect(t, second, replica.Name); n.Running {
		t.Errorf("Inspect after Kill of an adopted node: %+v", n)
	}
	suspend(t, second, ctx, specs[primary.Name], true)
	// The emulator's shutdown sweep runs after its Suspends: it spares them.
	if n, err := second.(engine.Reaper).Reap(ctx); err != nil || n != 0 {
		t.Errorf("Reap after Suspend = %d, %v; want 0: suspended nodes are the runtime's", n, err)
	}
	if n := inspect(t, second, primary.Name); !n.HasData {
		t.Errorf("Inspect of a suspended node after Reap: %+v; want its data kept", n)
	}
	resume := func(name string) engine.Node {
		spec := specs[name]
		spec.ReplicaOf = nil
		spec.Resume = true
		n, err := second.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start %s with Resume: %v", name, err)
		}
		return n
	}
	resume(primary.Name)
	if got := mustDo(t, primary.Endpoint, "GET", "after"); got != "adoption" {
		t.Errorf("GET after on the adopted primary suspended and resumed = %v", got)
	}
	resume(suspended.Name)
	if got := mustDo(t, suspended.Endpoint, "GET", "suspended"); got != "data" {
		t.Errorf("GET suspended on the node suspended before adoption = %v", got)
	}
	resume("et-adopt-killed")
	if got := mustDo(t, specs["et-adopt-killed"].Endpoint, "DBSIZE"); got != int64(0) {
		t.Errorf("DBSIZE of the killed node resumed = %v, want 0", got)
	}

	// A fresh start (Reap by yet another instance) removes everything.
	third := peer(t, fmt.Sprintf("enginetest-third-%d", id))
	suspend(t, second, ctx, specs[suspended.Name], true)
	if _, err := third.(engine.Reaper).Reap(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := third.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(nodes, func(n engine.Node) bool { return strings.HasPrefix(n.Name, "et-adopt-") }); i >= 0 {
		t.Errorf("after a fresh Reap, List still has %+v", nodes[i])
	}
}
