package integration

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Per-shard high availability of cluster-mode groups: a failover or the
// death of one shard's primary must leave the other shards untouched, and
// the shard it hits must serve writes again without losing an
// acknowledged one. The load writes each shard's keys from a writer of its
// own, so an error or a stall is attributed to the shard that owns the
// key's hash slot.

// slotOwners maps every hash slot to the node group Describe gives it.
func slotOwners(t testing.TB, g types.ReplicationGroup) []string {
	t.Helper()
	owner := make([]string, engine.ClusterSlots)
	for _, ng := range g.NodeGroups {
		ranges, err := engine.ParseSlotRanges(aws.ToString(ng.Slots))
		if err != nil {
			t.Fatalf("node group %s slots %q: %v", aws.ToString(ng.NodeGroupId), aws.ToString(ng.Slots), err)
		}
		for _, rg := range ranges {
			for s := rg.Start; s <= rg.End; s++ {
				owner[s] = aws.ToString(ng.NodeGroupId)
			}
		}
	}
	for s, id := range owner {
		if id == "" {
			t.Fatalf("slot %d has no node group in Describe", s)
		}
	}
	return owner
}

// gap is a stretch of time in which a shard's writer had no write
// acknowledged.
type gap struct{ from, to time.Time }

// shardStats is what one shard's writer saw.
type shardStats struct {
	mu     sync.Mutex
	acked  []int // key numbers acknowledged
	ops    int
	errs   int
	last   error
	lastOK time.Time
	gaps   []gap // longer than gapFloor
}

// gapFloor is the pause between two acknowledged writes of one shard that
// counts as an outage; a write normally takes well under a millisecond,
// and far less than this under the race detector on a loaded machine.
const gapFloor = 250 * time.Millisecond

// shardLoad writes every shard's keys (w:N whose hash slot the shard owns)
// through one ClusterClient, one writer per shard, until halted.
type shardLoad struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	shards map[string]*shardStats
}

func startShardLoad(t testing.TB, cc *redis.ClusterClient, owner []string) *shardLoad {
	l := &shardLoad{stop: make(chan struct{}), shards: map[string]*shardStats{}}
	for _, id := range owner {
		if l.shards[id] == nil {
			l.shards[id] = &shardStats{lastOK: time.Now()}
		}
	}
	for id, st := range l.shards {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("w:%d", i)
				if owner[engine.HashSlot(key)] != id {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := cc.Set(ctx, key, i, 0).Err()
				cancel()
				st.record(i, err)
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (s *shardStats) record(i int, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops++
	if err != nil {
		s.errs++
		s.last = err
		return
	}
	s.acked = append(s.acked, i)
	if now.Sub(s.lastOK) > gapFloor {
		s.gaps = append(s.gaps, gap{s.lastOK, now})
	}
	s.lastOK = now
}

func (l *shardLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// snapshot returns a shard's counts: acknowledged writes, errors.
func (l *shardLoad) snapshot(id string) (acked, errs int) {
	s := l.shards[id]
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked), s.errs
}

// waitProgress waits until every shard has n more writes acknowledged.
func (l *shardLoad) waitProgress(t testing.TB, n int, d time.Duration) {
	t.Helper()
	base := map[string]int{}
	for id := range l.shards {
		base[id], _ = l.snapshot(id)
	}
	eventually(t, d, func() error {
		for id := range l.shards {
			if a, _ := l.snapshot(id); a < base[id]+n {
				s := l.shards[id]
				s.mu.Lock()
				defer s.mu.Unlock()
				return fmt.Errorf("shard %s: %d of %d writes acknowledged, %d errors (last %v)", id, a-base[id], n, s.errs, s.last)
			}
		}
		return nil
	})
}

// outageAfter is the longest stretch without an acknowledged write of
// shard id that ended after since.
func (l *shardLoad) outageAfter(id string, since time.Time) time.Duration {
	s := l.shards[id]
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	for _, g := range s.gaps {
		if g.to.After(since) {
			longest = max(longest, g.to.Sub(g.from))
		}
	}
	return longest
}

// checkAcked reads every acknowledged write back.
func (l *shardLoad) checkAcked(t testing.TB, cc *redis.ClusterClient) int {
	t.Helper()
	var all []int
	for _, s := range l.shards {
		s.mu.Lock()
		all = append(all, s.acked...)
		s.mu.Unlock()
	}
	ctx := ctxT(t, 2*time.Minute)
	const batch = 2000
	for i := 0; i < len(all); i += batch {
		part := all[i:min(len(all), i+batch)]
		cmds := make([]*redis.StringCmd, len(part))
		_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, n := range part {
				cmds[k] = p.Get(ctx, fmt.Sprintf("w:%d", n))
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			t.Fatalf("reading acknowledged writes: %v", err)
		}
		for k, cmd := range cmds {
			if v, err := cmd.Result(); err != nil || v != strconv.Itoa(part[k]) {
				t.Fatalf("acknowledged write w:%d = %q, %v", part[k], v, err)
			}
		}
	}
	return len(all)
}

// clusterView is a member node's own line of CLUSTER NODES, asked of the
// node itself: its role as the cluster sees it, which Describe does not
// show for a cluster-mode group (AWS lists no CurrentRole there).
type clusterView struct {
	cluster string // cache cluster id
	self    engine.ClusterNode
	known   []engine.ClusterNode // every node it knows, itself included
}

// clusterViews asks every member of group gid for its CLUSTER NODES.
func clusterViews(t testing.TB, e *emu, gid string) (map[string]clusterView, error) {
	t.Helper()
	out := map[string]clusterView{}
	for id, v := range adminNodes(t, e.url) {
		if v.ReplicationGroupID != gid {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: v.Endpoint, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1})
		text, err := c.ClusterNodes(context.Background()).Result()
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("CLUSTER NODES on %s: %w", id, err)
		}
		nodes, err := engine.ParseClusterNodes(text)
		if err != nil {
			return nil, fmt.Errorf("CLUSTER NODES of %s: %w", id, err)
		}
		cv := clusterView{cluster: id, known: nodes}
		for _, n := range nodes {
			if n.Myself {
				cv.self = n
			}
		}
		out[id] = cv
	}
	return out, nil
}

// shardPrimary is the member of node group ng that is its primary as the
// cluster sees it.
func shardPrimary(views map[string]clusterView, gid, ng string) string {
	for id, v := range views {
		if strings.HasPrefix(id, gid+"-"+ng+"-") && v.self.Primary && len(v.self.Slots) > 0 {
			return id
		}
	}
	return ""
}

// checkShardRoles checks the cluster agrees with Describe: each node group
// has one primary serving exactly the slots Describe gives it, every other
// member is a connected replica of it, and no member knows a node that is
// not a member or one it considers failed. It returns the primaries.
func checkShardRoles(t testing.TB, e *emu, g types.ReplicationGroup) (map[string]string, error) {
	t.Helper()
	gid := aws.ToString(g.ReplicationGroupId)
	views, err := clusterViews(t, e, gid)
	if err != nil {
		return nil, err
	}
	ids := map[string]string{} // cluster node id -> cache cluster id
	for id, v := range views {
		ids[v.self.ID] = id
	}
	primaries := map[string]string{}
	for _, ng := range g.NodeGroups {
		ngID := aws.ToString(ng.NodeGroupId)
		p := shardPrimary(views, gid, ngID)
		if p == "" {
			return nil, fmt.Errorf("node group %s has no primary in the cluster", ngID)
		}
		primaries[ngID] = p
		if got, want := engine.FormatSlotRanges(views[p].self.Slots), aws.ToString(ng.Slots); got != want {
			return nil, fmt.Errorf("primary %s of %s serves slots %s, Describe says %s", p, ngID, got, want)
		}
		for _, m := range ng.NodeGroupMembers {
			id := aws.ToString(m.CacheClusterId)
			v, ok := views[id]
			switch {
			case !ok:
				return nil, fmt.Errorf("member %s has no node", id)
			case id != p && (!v.self.Replica || v.self.PrimaryID != views[p].self.ID):
				return nil, fmt.Errorf("member %s of %s is not a replica of %s: %+v", id, ngID, p, v.self)
			}
		}
	}
	for id, v := range views {
		for _, n := range v.known {
			if ids[n.ID] == "" {
				return nil, fmt.Errorf("%s knows node %s (%s), which is no member", id, n.ID, n.Addr.Addr())
			}
			if n.Fail || n.PFail || !n.Connected {
				return nil, fmt.Errorf("%s sees %s as failed or disconnected", id, ids[n.ID])
			}
		}
	}
	return primaries, nil
}

// TestClusterHATestFailover: TestFailover of one node group under write
// load swaps that shard's roles without losing an acknowledged write or
// failing a write of another shard; a second one while it runs is refused.
func TestClusterHATestFailover(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "tfo", 3, 1)
	before, err := checkShardRoles(t, e, g)
	if err != nil {
		t.Fatal(err)
	}
	cc := clusterClient(t, g)
	load := startShardLoad(t, cc, slotOwners(t, g))
	load.waitProgress(t, 300, 20*time.Second)

	started := time.Now()
	out, err := e.client.TestFailover(ctxT(t, 10*time.Second), &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("tfo"), NodeGroupId: aws.String("0002")})
	if err != nil {
		t.Fatalf("TestFailover: %v", err)
	}
	if s := aws.ToString(out.ReplicationGroup.Status); s != "modifying" {
		t.Errorf("status after TestFailover = %q, want modifying", s)
	}
	for _, ng := range []string{"0002", "0001"} {
		_, err = e.client.TestFailover(ctxT(t, 10*time.Second), &elasticache.TestFailoverInput{ReplicationGroupId: aws.String("tfo"), NodeGroupId: aws.String(ng)})
		expectError(t, err, "InvalidReplicationGroupState", 400)
	}
	waitAvailable(t, e.client, "tfo")
	took := time.Since(started)
	load.waitProgress(t, 300, 20*time.Second)

	var after map[string]string
	eventually(t, 20*time.Second, func() (err error) {
		after, err = checkShardRoles(t, e, describeGroup(t, e.client, "tfo"))
		return err
	})
	if after["0002"] == before["0002"] || after["0002"] != "tfo-0002-002" {
		t.Errorf("primary of 0002 = %s after the failover (was %s), want tfo-0002-002", after["0002"], before["0002"])
	}
	for _, ng := range []string{"0001", "0003"} {
		if after[ng] != before[ng] {
			t.Errorf("primary of %s moved from %s to %s", ng, before[ng], after[ng])
		}
	}
	load.halt()
	for _, id := range []string{"0001", "0003"} {
		if _, errs := load.snapshot(id); errs != 0 {
			t.Errorf("shard %s, untouched by the failover, saw %d write errors (last %v)", id, errs, load.shards[id].last)
		}
	}
	acked := load.checkAcked(t, cc)
	_, errs := load.snapshot("0002")
	t.Logf("TestFailover of 0002 took %v; shard 0002: longest write pause %v, %d write errors; %d acknowledged writes, none lost",
		took.Round(time.Millisecond), load.outageAfter("0002", started).Round(time.Millisecond), errs, acked)
	msgs := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "tfo")
	if want := "Failover from primary node tfo-0002-001 to replica node tfo-0002-002 completed"; !strings.Contains(msgs, want) {
		t.Errorf("events lack %q:\n%s", want, msgs)
	}
}

// TestClusterHAKillPrimary kills (kill -9) the primary of each shard in
// turn under write load: the shard's writes resume once a replica took
// over, the other shards' writes never fail, the killed node comes back
// as a replica of the new primary, and no acknowledged write is lost.
func TestClusterHAKillPrimary(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	g := createClusterGroup(t, e.client, "kill", 3, 1)
	owner := slotOwners(t, g)
	cc := clusterClient(t, g)
	load := startShardLoad(t, cc, owner)
	load.waitProgress(t, 300, 20*time.Second)

	var outages []time.Duration
	for _, ng := range []string{"0002", "0003", "0001"} {
		views, err := clusterViews(t, e, "kill")
		if err != nil {
			t.Fatal(err)
		}
		victim := shardPrimary(views, "kill", ng)
		if victim == "" {
			t.Fatalf("node group %s has no primary", ng)
		}
		errsBefore := map[string]int{}
		for id := range load.shards {
			_, errsBefore[id] = load.snapshot(id)
		}
		killed := time.Now()
		killFromOutside(t, e, victim)

		// The shard's writes resume, then the group heals: available, the
		// killed node back as a replica of the new primary.
		ackedAtKill, _ := load.snapshot(ng)
		defer func() {
			if t.Failed() {
				dumpCluster(t, e, "kill")
			}
		}()
		eventually(t, 60*time.Second, func() error {
			if a, _ := load.snapshot(ng); a < ackedAtKill+100 {
				s := load.shards[ng]
				s.mu.Lock()
				defer s.mu.Unlock()
				return fmt.Errorf("shard %s: %d writes acknowledged since the kill, %d errors (last %v)", ng, a-ackedAtKill, s.errs, s.last)
			}
			return nil
		})
		resumed := time.Since(killed)
		var primaries map[string]string
		eventually(t, 60*time.Second, func() error {
			g = describeGroup(t, e.client, "kill")
			if s := aws.ToString(g.Status); s != "available" {
				return fmt.Errorf("group %s", s)
			}
			var err error
			primaries, err = checkShardRoles(t, e, g)
			return err
		})
		healed := time.Since(killed)
		if primaries[ng] == victim {
			t.Fatalf("the killed node %s is still the primary of %s", victim, ng)
		}
		outage := load.outageAfter(ng, killed)
		outages = append(outages, outage)
		for id := range load.shards {
			if _, errs := load.snapshot(id); id != ng && errs != errsBefore[id] {
				t.Errorf("shard %s saw %d write errors while the primary of %s was down (last %v)", id, errs-errsBefore[id], ng, load.shards[id].last)
			}
		}
		_, errs := load.snapshot(ng)
		t.Logf("killed %s (primary of %s): writes resumed after %v (longest pause %v, %d errors), %s took over, group healed after %v",
			victim, ng, resumed.Round(time.Millisecond), outage.Round(time.Millisecond), errs-errsBefore[ng], primaries[ng], healed.Round(time.Millisecond))
		// The repaired node holds its new primary's data.
		nodes := adminNodes(t, e.url)
		pc := redis.NewClient(&redis.Options{Addr: nodes[primaries[ng]].Endpoint})
		rc := redis.NewClient(&redis.Options{Addr: nodes[victim].Endpoint})
		eventually(t, 20*time.Second, func() error {
			a, err1 := pc.DBSize(context.Background()).Result()
			b, err2 := rc.DBSize(context.Background()).Result()
			if err1 != nil || err2 != nil || a != b || a == 0 {
				return fmt.Errorf("primary %s has %d keys (%v), the repaired %s %d (%v)", primaries[ng], a, err1, victim, b, err2)
			}
			return nil
		})
		pc.Close()
		rc.Close()
		load.waitProgress(t, 100, 20*time.Second)
	}
	load.halt()
	acked := load.checkAcked(t, cc)
	sorted := slices.Clone(outages)
	slices.Sort(sorted)
	var perShard []string
	for _, id := range slices.Sorted(maps.Keys(load.shards)) {
		a, errs := load.snapshot(id)
		perShard = append(perShard, fmt.Sprintf("%s: %d acked, %d errors", id, a, errs))
	}
	t.Logf("write outage after a primary kill: p50 %v, max %v over %d kills; %s; %d acknowledged writes, none lost",
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), len(sorted), strings.Join(perShard, "; "), acked)
	if worst := sorted[len(sorted)-1]; worst > 30*time.Second {
		t.Errorf("a shard could not write for %v after its primary died", worst)
	}
}

// hostPort splits "host:port".
func hostPort(t testing.TB, addr string) (string, int32) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return h, int32(n)
}

// sortedMembers lists the member ids of each node group, sorted.
func sortedMembers(g types.ReplicationGroup) map[string][]string {
	out := map[string][]string{}
	for _, ng := range g.NodeGroups {
		var ids []string
		for _, m := range ng.NodeGroupMembers {
			ids = append(ids, aws.ToString(m.CacheClusterId))
		}
		sort.Strings(ids)
		out[aws.ToString(ng.NodeGroupId)] = ids
	}
	return out
}

// dumpCluster logs every member's CLUSTER NODES, to tell why a test
// waiting for the cluster failed.
func dumpCluster(t testing.TB, e *emu, gid string) {
	for id, v := range adminNodes(t, e.url) {
		if v.ReplicationGroupID != gid {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: v.Endpoint, DialTimeout: time.Second, MaxRetries: -1})
		text, err := c.ClusterNodes(context.Background()).Result()
		info, _ := c.ClusterInfo(context.Background()).Result()
		c.Close()
		t.Logf("CLUSTER NODES of %s (%s, %v):\n%s%s", id, v.Endpoint, err, text, info)
	}
}
