package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// inProcess is an emulator of a test that stops and starts it again on the
// same Config; whatever runs when the test ends is shut down then.
type inProcess struct {
	t   *testing.T
	cfg emulator.Config
	srv *emulator.Server
}

func newInProcess(t *testing.T, cfg emulator.Config) *inProcess {
	p := &inProcess{t: t, cfg: cfg}
	t.Cleanup(func() {
		if p.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = p.srv.Shutdown(ctx)
		}
	})
	return p
}

// start starts the emulator on the Config (with tweak applied to a copy).
func (p *inProcess) start(tweak func(*emulator.Config)) (*emulator.Server, error) {
	cfg := p.cfg
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := emulator.Start(context.Background(), cfg)
	if srv != nil {
		p.srv = srv
	}
	return srv, err
}

func (p *inProcess) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := p.srv
	p.srv = nil
	return srv.Shutdown(ctx)
}

// restartSet is what createRestartResources made: the checksum of each
// group's and of the standalone cluster's data.
type restartSet struct {
	sums       map[string]string
	standalone string
}

// createRestartResources creates, all available: a parameter group
// rs-params with a non-default maxmemory-policy, a subnet group rs-subnets,
// groups rs-a (using rs-params) and rs-b (using rs-subnets, port 6380,
// settings of its own) of three nodes with keys keys each, a standalone
// cluster rs-c, a snapshot rs-snap of rs-b, changes pending for rs-b's
// maintenance window, and tags on a group, a cluster, the snapshot and the
// parameter group.
func createRestartResources(t *testing.T, c *elasticache.Client, keys int) restartSet {
	t.Helper()
	ctx := ctxT(t, 5*time.Minute)
	tags := func(v string) []types.Tag {
		return []types.Tag{{Key: aws.String("team"), Value: aws.String(v)}, {Key: aws.String("env"), Value: aws.String("restart")}}
	}
	if _, err := c.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("rs-params"), CacheParameterGroupFamily: aws.String("redis7"),
		Description: aws.String("restart params"), Tags: tags("params"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyCacheParameterGroup(ctx, &elasticache.ModifyCacheParameterGroupInput{CacheParameterGroupName: aws.String("rs-params"),
		ParameterNameValues: []types.ParameterNameValue{{ParameterName: aws.String("maxmemory-policy"), ParameterValue: aws.String("allkeys-lru")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCacheSubnetGroup(ctx, &elasticache.CreateCacheSubnetGroupInput{
		CacheSubnetGroupName: aws.String("rs-subnets"), CacheSubnetGroupDescription: aws.String("restart subnets"),
		SubnetIds: []string{"subnet-0aaa", "subnet-0bbb"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*elasticache.CreateReplicationGroupInput{
		{ReplicationGroupId: aws.String("rs-a"), CacheParameterGroupName: aws.String("rs-params"),
			AutomaticFailoverEnabled: aws.Bool(true), Tags: tags("group")},
		{ReplicationGroupId: aws.String("rs-b"), CacheSubnetGroupName: aws.String("rs-subnets"), Port: aws.Int32(6380),
			SnapshotRetentionLimit: aws.Int32(3), PreferredMaintenanceWindow: aws.String("sun:05:00-sun:06:00"),
			SnapshotWindow: aws.String("02:00-03:00")},
	} {
		in.ReplicationGroupDescription, in.CacheNodeType, in.NumCacheClusters = aws.String("restart"), aws.String("cache.t4g.micro"), aws.Int32(3)
		if _, err := c.CreateReplicationGroup(ctx, in); err != nil {
			t.Fatalf("create %s: %v", aws.ToString(in.ReplicationGroupId), err)
		}
	}
	if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
		CacheClusterId: aws.String("rs-c"), CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"), Tags: tags("cluster"),
	}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "rs-a")
	waitAvailable(t, c, "rs-b")
	standalone := checksumClient(t, waitClusterAvailable(t, c, "rs-c").CacheNodes[0].Endpoint)

	fillStart := time.Now()
	var wg sync.WaitGroup
	for _, g := range []string{"rs-a", "rs-b"} {
		rc := primaryClient(t, c, g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			restartData(t, rc, g, keys)
		}()
	}
	restartData(t, standalone, "rs-c", keys/10)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("wrote %d keys into each group in %v", keys, time.Since(fillStart).Round(time.Millisecond))

	set := restartSet{sums: map[string]string{}}
	for _, g := range []string{"rs-a", "rs-b"} {
		begin := time.Now()
		sum, err := dataChecksum(ctxT(t, 2*time.Minute), memberClients(t, c, g)[primaryOfGroup(t, c, g)])
		if err != nil {
			t.Fatalf("checksum of %s: %v", g, err)
		}
		t.Logf("the checksum of %s's data took %v", g, time.Since(begin).Round(time.Millisecond))
		if !strings.HasPrefix(sum, fmt.Sprint(keys)+":") {
			t.Fatalf("group %s holds %s, want %d keys", g, sum, keys)
		}
		set.sums[g] = sum
	}
	var err error
	if set.standalone, err = dataChecksum(ctxT(t, 2*time.Minute), standalone); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("rs-b"),
		SnapshotName: aws.String("rs-snap"), Tags: tags("snapshot")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "rs-snap")
	waitAvailable(t, c, "rs-b")
	// Changes pending for rs-b's maintenance window (days away) are kept
	// too: automatic failover, and a promotion.
	far := strings.ToLower(time.Now().UTC().AddDate(0, 0, 3).Weekday().String()[:3])
	if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("rs-b"),
		PreferredMaintenanceWindow: aws.String(far + ":05:00-" + far + ":06:00"), AutomaticFailoverEnabled: aws.Bool(true),
		PrimaryClusterId: aws.String("rs-b-002")}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, "rs-b")
	if p := describeGroup(t, c, "rs-b").PendingModifiedValues; p.AutomaticFailoverStatus != "enabled" || aws.ToString(p.PrimaryClusterId) != "rs-b-002" {
		t.Fatalf("rs-b pending %+v, want automatic failover and rs-b-002", p)
	}
	// The checks run on the data after the restart must hold before it.
	checkRestartData(t, c, set)
	return set
}

// checkRestartData checks every node's data against the checksums and
// every node of rs-a for rs-params' maxmemory-policy.
func checkRestartData(t *testing.T, c *elasticache.Client, set restartSet) {
	t.Helper()
	for g, sum := range set.sums {
		expectGroupData(t, c, g, sum)
	}
	ep := waitClusterAvailable(t, c, "rs-c").CacheNodes[0].Endpoint
	if got, err := dataChecksum(ctxT(t, 2*time.Minute), checksumClient(t, ep)); err != nil || got != set.standalone {
		t.Errorf("rs-c holds %s (%v), want %s", got, err, set.standalone)
	}
	for id, rc := range memberClients(t, c, "rs-a") {
		got, err := rc.ConfigGet(ctxT(t, 10*time.Second), "maxmemory-policy").Result()
		if err != nil || got["maxmemory-policy"] != "allkeys-lru" {
			t.Errorf("rs-a member %s: CONFIG GET maxmemory-policy = %v (%v), want allkeys-lru", id, got, err)
		}
	}
}

// TestRestartKeepsEverything: after Shutdown and a Start on the same Config
// every resource is back as it was (every Describe field, tags, events),
// every node holds its data and rs-a's nodes run with its parameter group.
func TestRestartKeepsEverything(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := newInProcess(t, cfg)
	srv, err := p.start(nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := newClient(srv.URL(), "us-east-1")
	set := createRestartResources(t, c, 100_000)
	before := captureWorld(t, c)
	nodes := len(runningInstances(t, cfg.DataDir))

	begin := time.Now()
	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped := time.Since(begin)
	if left := nodeServers(t, cfg.DataDir, true); len(left) > 0 {
		t.Errorf("node servers still running after Shutdown: %v", left)
	}

	begin = time.Now()
	srv, err = p.start(nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	serving := time.Since(begin)
	waitSettled(t, c, 3*time.Minute)
	t.Logf("%s runtime, %d nodes, %d keys per group: Shutdown took %v; the restart served after %v and had everything available after %v",
		testRuntime(), nodes, 100_000, stopped.Round(time.Millisecond), serving.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	if added := compareWorlds(t, before, captureWorld(t, c)); len(added) > 0 {
		t.Logf("events added by the restart:\n%s", strings.Join(added, "\n"))
	}
	checkRestartData(t, c, set)
	if bad := orphans(t, srv.URL(), cfg.DataDir); bad != "" {
		t.Errorf("after the restart: %s", bad)
	}
}

// TestCorruptStateStopsStart: a state file that is garbage, truncated,
// empty or of a foreign version stops Start with an error naming the file
// and --fresh, and nothing is deleted or rewritten; the intact file starts
// with everything back; Fresh starts empty but keeps the snapshots.
func TestCorruptStateStopsStart(t *testing.T) {
	cfg := testConfig(t)
	p := newInProcess(t, cfg)
	srv, err := p.start(nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	c := newClient(srv.URL(), "us-east-1")
	dataset(t, createStandalone(t, c, "corrupt-c"), 1000)
	if _, err := c.CreateCacheParameterGroup(ctxT(t, 10*time.Second), &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("corrupt-params"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("d"),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSnapshot(ctxT(t, 10*time.Second), &elasticache.CreateSnapshotInput{CacheClusterId: aws.String("corrupt-c"), SnapshotName: aws.String("corrupt-snap")}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c, "corrupt-snap")
	waitClusterAvailable(t, c, "corrupt-c")
	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	path := filepath.Join(cfg.DataDir, "state", "000000000000-us-east-1.json")
	if files, _ := filepath.Glob(filepath.Join(cfg.DataDir, "state", "*.json")); len(files) != 1 || files[0] != path {
		t.Fatalf("state files after a shutdown: %v, want just %s", files, path)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(orig, &fields); err != nil || fields["version"] == nil {
		t.Fatalf("the state file is no JSON object with a version (%v): %.200s", err, orig)
	}
	fields["version"] = json.RawMessage("999")
	foreign, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	files := dataDirFiles(t, cfg.DataDir)

	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"garbage", []byte("\x00\x01\x02 this is not a state file {{{")},
		{"truncated", orig[:len(orig)/2]},
		{"empty", nil},
		{"foreign version", foreign},
	} {
		if err := os.WriteFile(path, tc.content, 0o600); err != nil {
			t.Fatal(err)
		}
		srv, err := p.start(nil)
		if err == nil {
			t.Errorf("%s: Start succeeded on a %s state file", tc.name, tc.name)
			if err := p.shutdown(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if srv != nil {
			t.Errorf("%s: Start failed (%v) but returned a server", tc.name, err)
			p.srv = nil
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "--fresh") {
			t.Errorf("%s: Start's error does not name the file %s and --fresh: %v", tc.name, path, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.content) {
			t.Errorf("%s: Start changed the state file (%d bytes, was %d)", tc.name, len(got), len(tc.content))
		}
		for f := range files {
			if _, err := os.Lstat(f); err != nil {
				t.Errorf("%s: the failed Start removed %s: %v", tc.name, f, err)
			}
		}
		if left := nodeServers(t, cfg.DataDir, true); len(left) > 0 {
			t.Errorf("%s: node servers running after the failed Start: %v", tc.name, left)
		}
	}

	// The intact file brings everything back: what failed was the file.
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if srv, err = p.start(nil); err != nil {
		t.Fatalf("start on the intact state file: %v", err)
	}
	c = newClient(srv.URL(), "us-east-1")
	ep := waitClusterAvailable(t, c, "corrupt-c").CacheNodes[0].Endpoint
	checkDataset(t, redisClient(t, aws.ToString(ep.Address), aws.ToInt32(ep.Port)), 1000)
	if err := p.shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// Fresh starts empty even on a corrupt file; the snapshot stays.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if srv, err = p.start(func(cfg *emulator.Config) { cfg.Fresh = true }); err != nil {
		t.Fatalf("fresh start: %v", err)
	}
	c = newClient(srv.URL(), "us-east-1")
	v, err := describeAll(ctxT(t, 10*time.Second), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.groups) != 0 || len(v.clusters) != 0 {
		t.Errorf("a fresh start lists groups %v and clusters %v", v.groups, v.clusters)
	}
	if v.snapshots["corrupt-snap"] != "available" {
		t.Errorf("a fresh start lost the snapshot: %v", v.snapshots)
	}
	_, err = c.DescribeCacheParameterGroups(ctxT(t, 10*time.Second), &elasticache.DescribeCacheParameterGroupsInput{CacheParameterGroupName: aws.String("corrupt-params")})
	expectError(t, err, "CacheParameterGroupNotFound", 404)
	if left := nodeServers(t, cfg.DataDir, true); len(left) > 0 {
		t.Errorf("node servers running after a fresh start: %v", left)
	}
	restoreFrom(t, c, "corrupt-r", "corrupt-snap", 1000)
}

// dataDirFiles lists every file under dir.
func dataDirFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out[path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
