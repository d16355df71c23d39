package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine/docker"
)

// world is everything the API shows of one account and region, each
// resource as JSON by a key naming it ("group/orders", "tags/arn:..."), so
// two views compare resource by resource; events are kept apart because
// a restart may add some.
type world struct {
	resources map[string]string
	events    []string
	// arns of every group, cluster, snapshot, parameter and subnet group.
	arns []string
}

// captureWorld describes every group, cluster (with its nodes), snapshot
// (with its node groups), parameter group (with its parameters), subnet
// group, their tags, and the events of the last 14 days.
func captureWorld(t testing.TB, c *elasticache.Client) world {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	w := world{resources: map[string]string{}}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal %s: %v", key, err)
		}
		if _, dup := w.resources[key]; dup {
			t.Errorf("%s listed twice", key)
		}
		w.resources[key] = string(b)
	}
	fail := func(what string, err error) { t.Fatalf("%s: %v", what, err) }

	groups := elasticache.NewDescribeReplicationGroupsPaginator(c, &elasticache.DescribeReplicationGroupsInput{})
	for groups.HasMorePages() {
		out, err := groups.NextPage(ctx)
		if err != nil {
			fail("DescribeReplicationGroups", err)
		}
		for _, g := range out.ReplicationGroups {
			put("group/"+aws.ToString(g.ReplicationGroupId), g)
			w.arns = append(w.arns, aws.ToString(g.ARN))
		}
	}
	clusters := elasticache.NewDescribeCacheClustersPaginator(c, &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true)})
	for clusters.HasMorePages() {
		out, err := clusters.NextPage(ctx)
		if err != nil {
			fail("DescribeCacheClusters", err)
		}
		for _, cl := range out.CacheClusters {
			put("cluster/"+aws.ToString(cl.CacheClusterId), cl)
			w.arns = append(w.arns, aws.ToString(cl.ARN))
		}
	}
	snaps := elasticache.NewDescribeSnapshotsPaginator(c, &elasticache.DescribeSnapshotsInput{ShowNodeGroupConfig: aws.Bool(true)})
	for snaps.HasMorePages() {
		out, err := snaps.NextPage(ctx)
		if err != nil {
			fail("DescribeSnapshots", err)
		}
		for _, s := range out.Snapshots {
			put("snapshot/"+aws.ToString(s.SnapshotName), s)
			w.arns = append(w.arns, aws.ToString(s.ARN))
		}
	}
	pgs := elasticache.NewDescribeCacheParameterGroupsPaginator(c, &elasticache.DescribeCacheParameterGroupsInput{})
	for pgs.HasMorePages() {
		out, err := pgs.NextPage(ctx)
		if err != nil {
			fail("DescribeCacheParameterGroups", err)
		}
		for _, pg := range out.CacheParameterGroups {
			name := aws.ToString(pg.CacheParameterGroupName)
			put("paramgroup/"+name, pg)
			w.arns = append(w.arns, aws.ToString(pg.ARN))
			if aws.ToBool(pg.IsGlobal) || strings.HasPrefix(name, "default.") {
				continue // the built-in ones never change
			}
			var params []types.Parameter
			pp := elasticache.NewDescribeCacheParametersPaginator(c, &elasticache.DescribeCacheParametersInput{CacheParameterGroupName: pg.CacheParameterGroupName})
			for pp.HasMorePages() {
				page, err := pp.NextPage(ctx)
				if err != nil {
					fail("DescribeCacheParameters "+name, err)
				}
				params = append(params, page.Parameters...)
			}
			put("parameters/"+name, params)
		}
	}
	subnets := elasticache.NewDescribeCacheSubnetGroupsPaginator(c, &elasticache.DescribeCacheSubnetGroupsInput{})
	for subnets.HasMorePages() {
		out, err := subnets.NextPage(ctx)
		if err != nil {
			fail("DescribeCacheSubnetGroups", err)
		}
		for _, sg := range out.CacheSubnetGroups {
			put("subnetgroup/"+aws.ToString(sg.CacheSubnetGroupName), sg)
			w.arns = append(w.arns, aws.ToString(sg.ARN))
		}
	}
	for _, arn := range w.arns {
		if arn == "" {
			continue
		}
		out, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: aws.String(arn)})
		if err != nil {
			fail("ListTagsForResource "+arn, err)
		}
		var kv []string
		for _, tag := range out.TagList {
			kv = append(kv, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
		}
		sort.Strings(kv)
		put("tags/"+arn, kv)
	}
	events := elasticache.NewDescribeEventsPaginator(c, &elasticache.DescribeEventsInput{Duration: aws.Int32(20160), MaxRecords: aws.Int32(100)})
	for events.HasMorePages() {
		out, err := events.NextPage(ctx)
		if err != nil {
			fail("DescribeEvents", err)
		}
		for _, ev := range out.Events {
			w.events = append(w.events, fmt.Sprintf("%s %s %s: %s", aws.ToTime(ev.Date).UTC().Format(time.RFC3339Nano),
				ev.SourceType, aws.ToString(ev.SourceIdentifier), aws.ToString(ev.Message)))
		}
	}
	return w
}

// compareWorlds reports every resource missing, added or changed between
// two views, and every event of before that after lacks. Nothing is
// ignored: a restart changes no field AWS would show. It returns the
// events after has beyond before.
func compareWorlds(t testing.TB, before, after world) []string {
	t.Helper()
	keys := map[string]bool{}
	for k := range before.resources {
		keys[k] = true
	}
	for k := range after.resources {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		b, inBefore := before.resources[k]
		a, inAfter := after.resources[k]
		switch {
		case !inAfter:
			t.Errorf("%s is gone after the restart; it was %s", k, b)
		case !inBefore:
			t.Errorf("%s appeared after the restart: %s", k, a)
		case a != b:
			t.Errorf("%s changed across the restart:\nbefore %s\nafter  %s", k, b, a)
		}
	}
	left := slices.Clone(after.events)
	for _, ev := range before.events {
		i := slices.Index(left, ev)
		if i < 0 {
			t.Errorf("event lost across the restart: %s", ev)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	return left
}

// restartData writes n keys of every type (strings, hashes, lists, sets,
// sorted sets; every tenth with a TTL), their values naming prefix so that
// two groups' data differ, with pipelining.
func restartData(t testing.TB, c *redis.Client, prefix string, n int) {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	for start := 0; start < n; start += 2000 {
		pipe := c.Pipeline()
		for i := start; i < min(start+2000, n); i++ {
			k, v := fmt.Sprintf("%s:%d", prefix, i), fmt.Sprintf("%s-%d", prefix, i)
			switch i % 5 {
			case 0:
				pipe.Set(ctx, k, v, 0)
			case 1:
				pipe.HSet(ctx, k, "f", v, "g", i)
			case 2:
				pipe.RPush(ctx, k, v, i, "tail")
			case 3:
				pipe.SAdd(ctx, k, v, i)
			case 4:
				pipe.ZAdd(ctx, k, redis.Z{Score: float64(i), Member: v}, redis.Z{Score: 0.5, Member: "half"})
			}
			if i%10 == 0 {
				pipe.Expire(ctx, k, 2*time.Hour)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("writing %s data: %v", prefix, err)
		}
	}
}

// checksumScript hashes a node's whole keyspace in one read-only call:
// every key in sorted order with its type, its value in a canonical order
// (hash fields and set members sorted) and whether it has a TTL (not the
// TTL itself, which runs down). Runs on replicas too (EVAL_RO).
const checksumScript = `
local keys = redis.call('KEYS', '*')
table.sort(keys)
local parts = {}
for i, k in ipairs(keys) do
  local t = redis.call('TYPE', k)['ok']
  local v
  if t == 'string' then
    v = redis.call('GET', k)
  elseif t == 'hash' then
    local h = redis.call('HGETALL', k)
    local fields = {}
    for j = 1, #h, 2 do fields[#fields + 1] = h[j] .. '=' .. h[j + 1] end
    table.sort(fields)
    v = table.concat(fields, ',')
  elseif t == 'list' then
    v = table.concat(redis.call('LRANGE', k, 0, -1), ',')
  elseif t == 'set' then
    local m = redis.call('SMEMBERS', k)
    table.sort(m)
    v = table.concat(m, ',')
  elseif t == 'zset' then
    v = table.concat(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES'), ',')
  else
    v = '?'
  end
  local ttl = 'persist'
  if redis.call('PTTL', k) > 0 then ttl = 'expires' end
  parts[#parts + 1] = k .. '\0' .. t .. '\0' .. v .. '\0' .. ttl
end
return {#keys, redis.sha1hex(table.concat(parts, '\n'))}`

// dataChecksum is "<keys>:<sha1>" of the node behind c (see checksumScript).
func dataChecksum(ctx context.Context, c *redis.Client) (string, error) {
	res, err := c.EvalRO(ctx, checksumScript, nil).Slice()
	if err != nil {
		return "", err
	}
	if len(res) != 2 {
		return "", fmt.Errorf("checksum script answered %v", res)
	}
	return fmt.Sprintf("%v:%v", res[0], res[1]), nil
}

// checksumClient opens a client on a node endpoint that waits as long as
// checksumScript may run (seconds for 100k keys on a loaded machine).
func checksumClient(t testing.TB, ep *types.Endpoint) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port)),
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Minute, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// memberClients opens a client on the node of every member cluster of a
// group, by cluster id.
func memberClients(t testing.TB, c *elasticache.Client, group string) map[string]*redis.Client {
	t.Helper()
	out, err := c.DescribeCacheClusters(ctxT(t, 10*time.Second), &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true)})
	if err != nil {
		t.Fatalf("DescribeCacheClusters: %v", err)
	}
	clients := map[string]*redis.Client{}
	for _, cl := range out.CacheClusters {
		if aws.ToString(cl.ReplicationGroupId) != group {
			continue
		}
		clients[aws.ToString(cl.CacheClusterId)] = checksumClient(t, cl.CacheNodes[0].Endpoint)
	}
	if len(clients) == 0 {
		t.Fatalf("group %s has no member clusters", group)
	}
	return clients
}

// expectGroupData checks that every node of a group holds the keyspace of
// checksum want: the primary at once, the replicas once they caught up.
func expectGroupData(t testing.TB, c *elasticache.Client, group, want string) {
	t.Helper()
	primary := primaryOfGroup(t, c, group)
	for id, rc := range memberClients(t, c, group) {
		if id == primary {
			got, err := dataChecksum(ctxT(t, 2*time.Minute), rc)
			if err != nil || got != want {
				t.Errorf("group %s: primary %s holds %s (%v), want %s", group, id, got, err, want)
			}
			continue
		}
		eventually(t, time.Minute, func() error {
			got, err := dataChecksum(context.Background(), rc)
			if err != nil || got != want {
				return fmt.Errorf("group %s: replica %s holds %s (%v), want %s", group, id, got, err, want)
			}
			return nil
		})
	}
}

// primaryOfGroup is the primary's cluster id as DescribeReplicationGroups
// reports it.
func primaryOfGroup(t testing.TB, c *elasticache.Client, group string) string {
	t.Helper()
	out, err := c.DescribeReplicationGroups(ctxT(t, 10*time.Second), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(group)})
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	p := primaryOf(out.ReplicationGroups[0])
	if p == "" {
		t.Fatalf("group %s lists no primary", group)
	}
	return p
}

// settledView is what waitSettled saw last.
type settledView struct {
	groups    map[string]types.ReplicationGroup
	clusters  map[string]types.CacheCluster
	snapshots map[string]string
}

// unsettled says what of a view is in a transitional status: a group or
// cluster not available, a node not available, a snapshot neither
// available nor failed ("" when nothing is).
func (v settledView) unsettled() string {
	var bad []string
	for id, g := range v.groups {
		if s := aws.ToString(g.Status); s != "available" {
			bad = append(bad, "group "+id+" "+s)
		}
	}
	for id, cl := range v.clusters {
		if s := aws.ToString(cl.CacheClusterStatus); s != "available" {
			bad = append(bad, "cluster "+id+" "+s)
		}
		for _, n := range cl.CacheNodes {
			if s := aws.ToString(n.CacheNodeStatus); s != "available" {
				bad = append(bad, "node "+id+"/"+aws.ToString(n.CacheNodeId)+" "+s)
			}
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

// describeAll lists every group, cluster (with nodes) and snapshot status.
func describeAll(ctx context.Context, c *elasticache.Client) (settledView, error) {
	v := settledView{groups: map[string]types.ReplicationGroup{}, clusters: map[string]types.CacheCluster{}, snapshots: map[string]string{}}
	groups, err := c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{MaxRecords: aws.Int32(100)})
	if err != nil {
		return v, err
	}
	for _, g := range groups.ReplicationGroups {
		v.groups[aws.ToString(g.ReplicationGroupId)] = g
	}
	clusters, err := c.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true), MaxRecords: aws.Int32(100)})
	if err != nil {
		return v, err
	}
	for _, cl := range clusters.CacheClusters {
		v.clusters[aws.ToString(cl.CacheClusterId)] = cl
	}
	snaps, err := c.DescribeSnapshots(ctx, &elasticache.DescribeSnapshotsInput{MaxRecords: aws.Int32(50)})
	if err != nil {
		return v, err
	}
	for _, s := range snaps.Snapshots {
		v.snapshots[aws.ToString(s.SnapshotName)] = aws.ToString(s.SnapshotStatus)
	}
	return v, nil
}

// waitSettled polls until nothing is in a transitional status.
func waitSettled(t testing.TB, c *elasticache.Client, d time.Duration) settledView {
	t.Helper()
	var v settledView
	eventually(t, d, func() error {
		var err error
		if v, err = describeAll(context.Background(), c); err != nil {
			return err
		}
		if bad := v.unsettled(); bad != "" {
			return fmt.Errorf("still in a transitional status: %s", bad)
		}
		return nil
	})
	return v
}

// statusWatch polls from its start until stop and remembers the first
// problem a poll reported.
type statusWatch struct {
	done  chan struct{}
	over  sync.WaitGroup
	polls int
	first string
}

// watchPolls runs poll until stop; poll returns "" when all is well, else
// what was wrong.
func watchPolls(poll func(ctx context.Context) string) *statusWatch {
	w := &statusWatch{done: make(chan struct{})}
	w.over.Add(1)
	go func() {
		defer w.over.Done()
		for {
			select {
			case <-w.done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			bad := poll(ctx)
			cancel()
			w.polls++
			if bad != "" && w.first == "" {
				w.first = fmt.Sprintf("poll %d: %s", w.polls, bad)
			}
		}
	}()
	return w
}

// watchStatuses watches every group, cluster and snapshot for a
// transitional status.
func watchStatuses(c *elasticache.Client) *statusWatch {
	return watchPolls(func(ctx context.Context) string {
		v, err := describeAll(ctx, c)
		if err != nil {
			return fmt.Sprintf("failed: %v", err)
		}
		return v.unsettled()
	})
}

// stop ends the watch and returns how many polls it made and the first
// problem seen ("" if none).
func (w *statusWatch) stop() (int, string) {
	close(w.done)
	w.over.Wait()
	return w.polls, w.first
}

// runningInstances are the node servers of dataDir now running: process
// ids on the process runtime, full container ids on docker.
func runningInstances(t testing.TB, dataDir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if testRuntime() == "docker" {
		ids, err := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "label="+docker.LabelScope+"="+dataDir).Output()
		if err != nil {
			t.Fatalf("docker ps: %v", err)
		}
		for _, id := range strings.Fields(string(ids)) {
			out[id] = true
		}
		return out
	}
	for _, s := range nodeServers(t, dataDir, true) {
		pid, _, _ := strings.Cut(s, ":")
		out[pid] = true
	}
	return out
}

// recordedInstances maps every cluster the emulator has a record of to
// its node's running process id or container id ("" when none runs).
func recordedInstances(t testing.TB, url string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, v := range adminNodes(t, url) {
		switch {
		case testRuntime() == "docker":
			ids, err := exec.Command("docker", "ps", "-q", "--no-trunc", "--filter", "label="+docker.LabelNodeName+"="+v.Node).Output()
			if err != nil {
				t.Fatalf("docker ps: %v", err)
			}
			out[id] = strings.TrimSpace(string(ids))
		case v.PID != 0:
			out[id] = fmt.Sprint(v.PID)
		default:
			out[id] = ""
		}
	}
	return out
}

// orphans says what breaks "every node server running belongs to a record
// and every record's node runs" ("" when nothing does).
func orphans(t testing.TB, url, dataDir string) string {
	t.Helper()
	running := runningInstances(t, dataDir)
	var bad []string
	owned := map[string]bool{}
	for cluster, inst := range recordedInstances(t, url) {
		if inst == "" || !running[inst] {
			bad = append(bad, fmt.Sprintf("cluster %s has no running node (%q)", cluster, inst))
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

// reapAtCleanup removes, when the test ends, every node server of dataDir
// still there (a test that failed between a kill -9 and its final
// shutdown leaves them): processes by id; on docker every container of the
// scope, then its networks.
func reapAtCleanup(t *testing.T, dataDir string) {
	t.Cleanup(func() {
		if testRuntime() == "docker" {
			scope := "label=" + docker.LabelScope + "=" + dataDir
			out, _ := exec.Command("docker", "ps", "-aq", "--filter", scope).Output()
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("docker", "rm", "-f", id).Run()
			}
			out, _ = exec.Command("docker", "network", "ls", "-q", "--filter", scope).Output()
			for _, id := range strings.Fields(string(out)) {
				_ = exec.Command("docker", "network", "rm", id).Run()
			}
			return
		}
		for inst := range runningInstances(t, dataDir) {
			var pid int
			if _, err := fmt.Sscan(inst, &pid); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	})
}
