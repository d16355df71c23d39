package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/aws/smithy-go"
)

// keptAddressEnv is a node address range of this test's own; keptGroup is
// the group every round changes and whose data every restart must keep.
const (
	keptAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.125.2"
	keptGroup      = "keep"
)

// TestCrashLoopKeepsState kills the emulator binary (kill -9) in a loop
// with its state kept between runs. Round 0 creates "keep" (three nodes,
// automatic failover) with 1000 keys of every type. Every later round
// starts the binary on the same data dir, checks what the kill before it
// left, fires at once a group create, a standalone cluster create, the
// deletes of what earlier rounds left, and a replica count change and/or a
// TestFailover of "keep", and kills the emulator at a point that moves
// every round: after the k-th new node server appeared, or after a delay
// growing with the round. After every restart, within a deadline: nothing
// stays transitional (available, create-failed or gone); nothing answered
// is lost (a create answered exists, a delete answered is gone, a replica
// change answered has its member count, a resource not touched is as
// available as before); no ghost; no orphan (every node server belongs to
// a record, every record's node runs, a create-failed one's does not);
// "keep" holds its keys on every node, with exactly one primary; every
// available group answers on its primary endpoint. A final SIGTERM stop
// leaves nothing of the data dir.
func TestCrashLoopKeepsState(t *testing.T) {
	bin, dataDir, port := buildBinary(t), t.TempDir(), freePort(t)
	reapAtCleanup(t, dataDir)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := newClient(url, "us-east-1")
	// A docker round takes several times a process one.
	rounds, step := envInt("ELASTICACHE_LOCAL_TEST_CRASH_ROUNDS", 12), 80*time.Millisecond
	if testRuntime() == "docker" {
		rounds, step = envInt("ELASTICACHE_LOCAL_TEST_CRASH_ROUNDS", 6), 600*time.Millisecond
	}
	logs := &runLogs{dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			logs.dump(t)
		}
	})

	cmd := logs.start(t, bin, dataDir, port, "round 0")
	haGroup(t, c, keptGroup, 3)
	restartData(t, primaryClient(t, c, keptGroup), keptGroup, 1000)
	want, err := dataChecksum(ctxT(t, 2*time.Minute), checksumClient(t, describeGroup(t, c, keptGroup).NodeGroups[0].PrimaryEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	// Every replica caught up: a failover of a later round loses nothing.
	expectGroupData(t, c, keptGroup, want)
	t.Logf("round 0: %s holds %s", keptGroup, want)
	exp := expectation{replicas: 2, prev: map[string]string{"group/" + keptGroup: "available"}}
	killBinary(t, cmd)

	for round := 1; round <= rounds; round++ {
		cmd = logs.start(t, bin, dataDir, port, fmt.Sprintf("round %d", round))
		begin := time.Now()
		view, found := checkKept(t, c, url, dataDir, round, exp, want)
		if found {
			logs.dump(t) // what led to the findings of this restart
		}
		t.Logf("round %d: what the kill before left checked in %v", round, time.Since(begin).Round(time.Millisecond))

		baseline := runningInstances(t, dataDir)
		ops := keptOps(c, round, view)
		ops.fire()
		var killAt string
		if round%2 == 1 {
			k := 1 + (round/2)%5
			killAt = fmt.Sprintf("after %d new node servers", k)
			if got := waitNewServers(t, c, dataDir, baseline, k, ops); got < k {
				killAt = fmt.Sprintf("once all settled with %d new node servers (of %d)", got, k)
			}
		} else {
			d := time.Duration(round/2-1) * step
			killAt = fmt.Sprintf("after %v", d)
			<-time.After(d) // the kill point itself, not a wait for a condition
		}
		killBinary(t, cmd)
		<-ops.finished
		t.Logf("round %d: killed %s; %d node servers running; calls: %s", round, killAt, len(runningInstances(t, dataDir)), ops.summary())
		exp = ops.expect(view)
	}

	cmd = logs.start(t, bin, dataDir, port, "final")
	if _, found := checkKept(t, c, url, dataDir, rounds+1, exp, want); found {
		logs.dump(t)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if left := nodeServers(t, dataDir, false); len(left) > 0 {
		t.Errorf("after the final SIGTERM stop, node servers (or containers) of the data dir remain: %v", left)
	}
}

// expectation is what the next restart must show, from the calls of the
// killed run and their answers, by "group/<id>" or "cluster/<id>"
// (standalone): prev must still be there, with the status it had before
// the round ("answered": a create answered); maybe (a create or delete not
// answered) may be there or not; gone (a delete answered) must not be.
// "keep" must have replicas replicas (-1: either count).
type expectation struct {
	prev        map[string]string
	maybe, gone map[string]bool
	replicas    int
}

// roundOps are the calls of one round, fired at once; finished is closed
// once every call has returned.
type roundOps struct {
	calls    []opCall
	finished chan struct{}
}

// opCall is one call: what it does (kind: create, delete, replicas or
// failover) to which resource (target, keyed as in expectation).
type opCall struct {
	name, target, kind string
	replicas           int // the count a replica change asks for
	run                func(ctx context.Context) error
	err                error
	took               time.Duration
}

// keptOps builds round's calls from the state view checkKept returned:
// create "kg-<round>" (two or three nodes) and "kc-<round>", delete every
// kg-/kc- an earlier round left, and change "keep" (round%3 0: its replica
// count, between two and three; 1: TestFailover; 2: both).
func keptOps(c *elasticache.Client, round int, view settledView) *roundOps {
	ops := &roundOps{}
	add := func(name, target, kind string, replicas int, run func(ctx context.Context) error) {
		ops.calls = append(ops.calls, opCall{name: name, target: target, kind: kind, replicas: replicas, run: run})
	}
	gid, cid := fmt.Sprintf("kg-%d", round), fmt.Sprintf("kc-%d", round)
	add("create "+gid, "group/"+gid, "create", 0, func(ctx context.Context) error {
		return errOf(c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(gid), ReplicationGroupDescription: aws.String("crash loop, state kept"),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(int32(2 + round%2)), AutomaticFailoverEnabled: aws.Bool(true)}))
	})
	add("create "+cid, "cluster/"+cid, "create", 0, func(ctx context.Context) error {
		return errOf(c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String(cid), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis")}))
	})
	for _, key := range slices.Sorted(maps.Keys(resources(view))) {
		if kind, id, _ := strings.Cut(key, "/"); id != keptGroup {
			add("delete "+id, key, "delete", 0, func(ctx context.Context) error {
				if kind == "group" {
					return errOf(c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String(id)}))
				}
				return errOf(c.DeleteCacheCluster(ctx, &elasticache.DeleteCacheClusterInput{CacheClusterId: aws.String(id)}))
			})
		}
	}
	keep := aws.String(keptGroup)
	if current := len(view.groups[keptGroup].MemberClusters) - 1; round%3 != 1 && current >= 3 {
		add(fmt.Sprintf("decrease %s to %d replicas", keptGroup, current-1), "group/"+keptGroup, "replicas", current-1, func(ctx context.Context) error {
			return errOf(c.DecreaseReplicaCount(ctx, &elasticache.DecreaseReplicaCountInput{ReplicationGroupId: keep, NewReplicaCount: aws.Int32(int32(current - 1)), ApplyImmediately: aws.Bool(true)}))
		})
	} else if round%3 != 1 {
		add(fmt.Sprintf("increase %s to %d replicas", keptGroup, current+1), "group/"+keptGroup, "replicas", current+1, func(ctx context.Context) error {
			return errOf(c.IncreaseReplicaCount(ctx, &elasticache.IncreaseReplicaCountInput{ReplicationGroupId: keep, NewReplicaCount: aws.Int32(int32(current + 1)), ApplyImmediately: aws.Bool(true)}))
		})
	}
	if round%3 != 0 {
		add("failover "+keptGroup, "group/"+keptGroup, "failover", 0, func(ctx context.Context) error {
			return errOf(c.TestFailover(ctx, &elasticache.TestFailoverInput{ReplicationGroupId: keep, NodeGroupId: aws.String("0001")}))
		})
	}
	return ops
}

// errOf is the error of a call's two results.
func errOf[T any](_ T, err error) error { return err }

// fire starts every call at once.
func (o *roundOps) fire() {
	var wg sync.WaitGroup
	for i := range o.calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			begin := time.Now()
			o.calls[i].err = o.calls[i].run(ctx)
			o.calls[i].took = time.Since(begin)
		})
	}
	o.finished = make(chan struct{})
	go func() { wg.Wait(); close(o.finished) }()
}

// summary lists every call with how it ended.
func (o *roundOps) summary() string {
	var parts []string
	for _, c := range o.calls {
		res := "ok"
		if c.err != nil {
			res, _, _ = strings.Cut(c.err.Error(), "\n")
			res = "error: " + res[:min(len(res), 160)]
		}
		parts = append(parts, fmt.Sprintf("%s (%v) %s", c.name, c.took.Round(time.Millisecond), res))
	}
	return strings.Join(parts, "; ")
}

// expect derives what the next restart must show from the state before
// the round (view) and how its calls ended.
func (o *roundOps) expect(view settledView) expectation {
	exp := expectation{prev: resources(view), maybe: map[string]bool{}, gone: map[string]bool{},
		replicas: len(view.groups[keptGroup].MemberClusters) - 1}
	for _, c := range o.calls {
		// A call the emulator refused (an API error) changed nothing; one
		// the kill cut short (no answer) may have or not. A create retried
		// by the SDK after its first attempt got through is refused as
		// existing: it counts as cut short.
		var ae smithy.APIError
		refused := errors.As(c.err, &ae) && !strings.Contains(ae.ErrorCode(), "AlreadyExists")
		switch {
		case c.err != nil && refused:
		case c.kind == "create" && c.err == nil:
			exp.prev[c.target] = "answered"
		case c.kind == "create":
			exp.maybe[c.target] = true
		case c.kind == "delete":
			delete(exp.prev, c.target)
			exp.gone[c.target], exp.maybe[c.target] = c.err == nil, c.err != nil
		case c.kind == "replicas" && c.err == nil:
			exp.replicas = c.replicas
		case c.kind == "replicas":
			exp.replicas = -1
		}
	}
	return exp
}

// waitNewServers waits until k node servers not in baseline have appeared
// (counted as they appear), or until every call was answered and nothing
// is transitional any more (no more will appear), and returns how many
// appeared.
func waitNewServers(t *testing.T, c *elasticache.Client, dataDir string, baseline map[string]bool, k int, ops *roundOps) int {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		for inst := range runningInstances(t, dataDir) {
			if !baseline[inst] {
				seen[inst] = true
			}
		}
		if len(seen) >= k {
			return len(seen)
		}
		select {
		case <-ops.finished:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := describeAll(ctx, c)
			cancel()
			if err == nil && keptUnsettled(v, expectation{}) == "" {
				return len(seen)
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("neither %d new node servers (%d appeared) nor everything settled within 3m before the kill; calls: %s", k, len(seen), ops.summary())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkKept checks, within deadlines, what a restart after a kill shows
// (see TestCrashLoopKeepsState), returns the settled view and whether it
// found something. Only a view that does not settle, or a "keep" not
// available, stops the loop: every other finding is an error and the
// rounds go on.
func checkKept(t *testing.T, c *elasticache.Client, url, dataDir string, round int, exp expectation, want string) (settledView, bool) {
	t.Helper()
	found := false
	fail := func(err error) {
		t.Helper()
		if err != nil {
			found = true
			t.Errorf("round %d: after the restart, %v", round, err)
		}
	}
	var v settledView
	if err := within(3*time.Minute, func() error {
		var err error
		if v, err = describeAll(context.Background(), c); err != nil {
			return err
		}
		return describe(keptUnsettled(v, exp))
	}); err != nil {
		fail(err)
		t.FailNow()
	}
	fail(describe(keptLost(v, exp)))
	fail(within(time.Minute, func() error { return describe(keptOrphans(t, url, dataDir)) }))
	for id, cl := range v.clusters {
		if aws.ToString(cl.CacheClusterStatus) == "create-failed" {
			t.Logf("round %d: cluster %s is create-failed; its events:\n%s", round, id, eventMessages(t, c, types.SourceTypeCacheCluster, id))
		}
	}
	keep := v.groups[keptGroup]
	if s := aws.ToString(keep.Status); s != "available" {
		fail(fmt.Errorf("%s is %q", keptGroup, s))
		t.FailNow()
	}
	if n := len(keep.MemberClusters) - 1; exp.replicas >= 0 && n != exp.replicas {
		fail(fmt.Errorf("%s has %d replicas, want %d (the count before, or the one of a change answered)", keptGroup, n, exp.replicas))
	}
	roles, primaries := map[string]string{}, 0
	for _, m := range keep.NodeGroups[0].NodeGroupMembers {
		if roles[aws.ToString(m.CacheClusterId)] = aws.ToString(m.CurrentRole); aws.ToString(m.CurrentRole) == "primary" {
			primaries++
		}
	}
	if primaries != 1 {
		fail(fmt.Errorf("%s lists %d primaries: %v", keptGroup, primaries, roles))
	}
	// The nodes agree: the listed primary says primary, every other
	// member (but a create-failed one) is its replica with the link up.
	primary := primaryOf(keep)
	fail(within(time.Minute, func() error {
		nodes := adminNodes(t, url)
		for _, m := range keep.MemberClusters {
			switch n := nodes[m]; {
			case n.Status == "create-failed":
			case m == primary && n.Role != "primary":
				return fmt.Errorf("%s's listed primary %s says %s", keptGroup, m, n.Role)
			case m != primary && (n.Role != "replica" || !n.LinkUp):
				return fmt.Errorf("%s's replica %s says %s, link up %v", keptGroup, m, n.Role, n.LinkUp)
			}
		}
		return nil
	}))
	// Every key is kept, on the primary and on every available member.
	if got, err := dataChecksum(ctxT(t, 2*time.Minute), checksumClient(t, keep.NodeGroups[0].PrimaryEndpoint)); err != nil || got != want {
		fail(fmt.Errorf("%s through its primary endpoint holds %s (%v), want %s", keptGroup, got, err, want))
	}
	for id, cl := range v.clusters {
		if aws.ToString(cl.ReplicationGroupId) == keptGroup && aws.ToString(cl.CacheClusterStatus) == "available" {
			rc := checksumClient(t, cl.CacheNodes[0].Endpoint)
			fail(within(time.Minute, func() error {
				if got, err := dataChecksum(context.Background(), rc); err != nil || got != want {
					return fmt.Errorf("%s's member %s holds %s (%v), want %s", keptGroup, id, got, err, want)
				}
				return nil
			}))
		}
	}
	for id, g := range v.groups {
		if aws.ToString(g.Status) == "available" {
			ep := g.NodeGroups[0].PrimaryEndpoint
			rc := redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port))
			fail(within(time.Minute, func() error {
				role, err := rc.Do(context.Background(), "ROLE").Slice()
				if err != nil || len(role) == 0 || role[0] != "master" {
					return fmt.Errorf("group %s: ROLE through the primary endpoint %s = %v (%v), want master", id, aws.ToString(ep.Address), role, err)
				}
				return nil
			}))
		}
	}
	return v, found
}

// within is eventually returning the last error instead of failing.
func within(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("within %v: %w", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// describe is an error saying bad (nil for "").
func describe(bad string) error {
	if bad == "" {
		return nil
	}
	return errors.New(bad)
}

// resources maps every group and standalone cluster to its status.
func resources(v settledView) map[string]string {
	out := map[string]string{}
	for id, g := range v.groups {
		out["group/"+id] = aws.ToString(g.Status)
	}
	for id, cl := range v.clusters {
		if aws.ToString(cl.ReplicationGroupId) == "" {
			out["cluster/"+id] = aws.ToString(cl.CacheClusterStatus)
		}
	}
	return out
}

// keptUnsettled says what of a view is transitional, or still listed
// though its delete was answered ("" when nothing is): a group, cluster or
// node must be available or create-failed.
func keptUnsettled(v settledView, exp expectation) string {
	var bad []string
	check := func(what, s string) {
		if s != "available" && s != "create-failed" {
			bad = append(bad, what+" "+s)
		}
	}
	for id, g := range v.groups {
		check("group "+id, aws.ToString(g.Status))
		if exp.gone["group/"+id] {
			bad = append(bad, "group "+id+" listed though its delete was answered")
		}
	}
	for id, cl := range v.clusters {
		check("cluster "+id, aws.ToString(cl.CacheClusterStatus))
		for _, n := range cl.CacheNodes {
			check("node "+id+"/"+aws.ToString(n.CacheNodeId), aws.ToString(n.CacheNodeStatus))
		}
		if g := aws.ToString(cl.ReplicationGroupId); (g == "" && exp.gone["cluster/"+id]) || (g != "" && exp.gone["group/"+g]) {
			bad = append(bad, "cluster "+id+" listed though its delete (or its group's) was answered")
		}
	}
	for name, s := range v.snapshots {
		if s != "available" && s != "failed" {
			bad = append(bad, "snapshot "+name+" "+s)
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, ", ")
}

// keptLost says what of a settled view breaks the expectation ("" when
// nothing does): a resource lost, one no longer available that was, a
// ghost (listed though nothing created it), a group whose members and
// member clusters disagree.
func keptLost(v settledView, exp expectation) string {
	var bad []string
	here := resources(v)
	for id, g := range v.groups {
		var members []string
		for cid, cl := range v.clusters {
			if aws.ToString(cl.ReplicationGroupId) == id {
				members = append(members, cid)
			}
		}
		sort.Strings(members)
		if listed := slices.Sorted(slices.Values(g.MemberClusters)); !slices.Equal(listed, members) {
			bad = append(bad, fmt.Sprintf("group %s lists members %v, the clusters of the group are %v", id, listed, members))
		}
	}
	for id, cl := range v.clusters {
		if _, listed := v.groups[aws.ToString(cl.ReplicationGroupId)]; aws.ToString(cl.ReplicationGroupId) != "" && !listed {
			bad = append(bad, fmt.Sprintf("cluster %s belongs to group %s, which is not listed", id, aws.ToString(cl.ReplicationGroupId)))
		}
	}
	for key, was := range exp.prev {
		switch now, ok := here[key]; {
		case !ok && was == "answered":
			bad = append(bad, key+" is gone though its create was answered")
		case !ok:
			bad = append(bad, key+" is gone though no call deleted it (it was "+was+")")
		case was == "available" && now != "available":
			bad = append(bad, key+" is "+now+", it was available")
		}
	}
	for key := range here {
		if _, ok := exp.prev[key]; !ok && !exp.maybe[key] {
			bad = append(bad, key+" is listed though nothing created it (ghost)")
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, "; ")
}

// keptOrphans is orphans where a record whose create failed must have no
// node running (AWS shows none) and every other record its node running;
// every node server running belongs to a record.
func keptOrphans(t testing.TB, url, dataDir string) string {
	t.Helper()
	running := runningInstances(t, dataDir)
	status := map[string]string{}
	for id, n := range adminNodes(t, url) {
		status[id] = n.Status
	}
	var bad []string
	owned := map[string]bool{}
	for cluster, inst := range recordedInstances(t, url) {
		switch runs := inst != "" && running[inst]; {
		case !runs && status[cluster] != "create-failed":
			bad = append(bad, fmt.Sprintf("cluster %s (%s) has no running node (%q)", cluster, status[cluster], inst))
		case runs && status[cluster] == "create-failed":
			bad = append(bad, fmt.Sprintf("cluster %s is create-failed but its node %s runs", cluster, inst))
		}
		owned[inst] = true
	}
	for inst := range running {
		if !owned[inst] {
			bad = append(bad, "node server "+inst+" belongs to no record")
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, "; ")
}

// runLogs keeps each run's stderr (at level info) in a file of its own, so
// that a finding comes with what the killed run and the restart logged;
// dumped is how many runs there were at the last dump (each is shown once).
type runLogs struct {
	dir    string
	names  []string
	dumped int
}

// start runs the emulator binary as startBinary does, its stderr to a new
// log file, with this test's address range and a TestFailover quota no
// round reaches.
func (l *runLogs) start(t *testing.T, bin, dataDir string, port int, name string) *exec.Cmd {
	t.Helper()
	path := filepath.Join(l.dir, fmt.Sprintf("%02d.log", len(l.names)))
	l.names = append(l.names, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("ELASTICACHE_LOCAL_LISTEN=127.0.0.1:%d", port), "ELASTICACHE_LOCAL_DATA_DIR="+dataDir,
		"ELASTICACHE_LOCAL_RUNTIME="+testRuntime(), "ELASTICACHE_LOCAL_LOG_LEVEL=info", "ELASTICACHE_LOCAL_TEST_FAILOVER_QUOTA=1000", keptAddressEnv)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	eventually(t, time.Minute, func() error {
		// A zombie child has exited (its Wait is left to the test). The run
		// killed before is dead and reaped: say who holds the lock, if any.
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil || strings.Contains(string(stat), ") Z ") {
			holders, _ := exec.Command("fuser", "-v", filepath.Join(dataDir, "emulator.lock")).CombinedOutput()
			t.Fatalf("%s: the emulator exited before serving; fuser on the data dir's lock file: %s; its stderr:\n%s", name, holders, readTail(path, 20))
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/_elasticache/health", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})
	return cmd
}

// readTail is the last n lines of a file.
func readTail(path string, n int) string {
	return readEnds(path, 0, n)
}

// readEnds returns the first head and the last tail lines of the file at
// path, with a line saying how many were left out between them.
func readEnds(path string, head, tail int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) <= head+tail {
		return strings.Join(lines, "\n")
	}
	out := slices.Clone(lines[:head])
	if head > 0 {
		out = append(out, fmt.Sprintf("[... %d lines ...]", len(lines)-head-tail))
	}
	return strings.Join(append(out, lines[len(lines)-tail:]...), "\n")
}

// dump logs the last two runs' stderr not shown yet: the run killed and
// the restart after it, each its first lines (what a restart adopted,
// resumed and decided) and its last.
func (l *runLogs) dump(t *testing.T) {
	from := max(l.dumped, len(l.names)-2)
	l.dumped = len(l.names)
	for i := from; i < len(l.names); i++ {
		t.Logf("stderr of the emulator, %s (its first 150 and last 60 lines):\n%s", l.names[i], readEnds(filepath.Join(l.dir, fmt.Sprintf("%02d.log", i)), 150, 60))
	}
}
