package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/enginetest"
)

func TestClusterConfig(t *testing.T) {
	caps := serverCaps{bindSource: true}
	spec := engine.NodeSpec{Name: "c", Endpoint: engine.Endpoint{Host: "127.0.90.200", Port: 7000}, Cluster: true}
	conf, err := buildConfig(spec, "/data dir", caps, engine.Admin{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cluster-enabled yes\n", `cluster-config-file "/data dir/nodes.conf"` + "\n", "cluster-replica-no-failover yes\n",
		"cluster-require-full-coverage no\n", "cluster-node-timeout 5000\n", "cluster-announce-ip 127.0.90.200\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	spec.Config = map[string]string{"cluster-node-timeout": "3000", "cluster-allow-reads-when-down": "yes"}
	conf, err = buildConfig(spec, "/d", caps, engine.Admin{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conf, "cluster-node-timeout 5000") || !strings.Contains(conf, "cluster-node-timeout 3000") {
		t.Errorf("Config's cluster-node-timeout must replace the default:\n%s", conf)
	}
	if conf, _ := buildConfig(engine.NodeSpec{Endpoint: spec.Endpoint}, "/d", caps, engine.Admin{}); strings.Contains(conf, "cluster") {
		t.Errorf("a node without Cluster gets cluster directives:\n%s", conf)
	}
	for _, k := range []string{"cluster-enabled", "cluster-config-file", "cluster-port", "cluster-announce-ip", "Cluster-Announce-Hostname", "cluster-replica-no-failover"} {
		s := spec
		s.Config = map[string]string{k: "x"}
		if _, err := buildConfig(s, "/d", caps, engine.Admin{}); err == nil {
			t.Errorf("Config %s accepted", k)
		}
	}
	s := spec
	s.ReplicaOf = &engine.Endpoint{Host: "127.0.90.201", Port: 7000}
	if _, err := buildConfig(s, "/d", caps, engine.Admin{}); err == nil {
		t.Error("a cluster node with ReplicaOf accepted")
	}
}

// TestClusterNodeResume starts a cluster node, gives it every slot and
// data, suspends it and resumes it: the data comes back, the cluster
// identity (nodes.conf) does not.
func TestClusterNodeResume(t *testing.T) {
	dataDir := t.TempDir()
	rt := newTestRuntime(t, dataDir, fmt.Sprintf("process-cluster-%d", os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep := engine.Endpoint{Host: "127.0.90.200", Port: enginetest.ClusterPort(t, "127.0.90.200")}
	spec := engine.NodeSpec{Name: "cnode", Endpoint: ep, Cluster: true, Config: map[string]string{"cluster-node-timeout": "3000"}}
	_, err := rt.Start(ctx, spec)
	t.Cleanup(func() { _ = rt.Stop(context.Background(), spec.Name) })
	if err != nil {
		t.Fatal(err)
	}
	a := rt.Admin()
	for k, want := range map[string]string{"cluster-enabled": "yes", "cluster-node-timeout": "3000", "cluster-replica-no-failover": "yes", "cluster-require-full-coverage": "no"} {
		if got, err := a.ConfigGet(ctx, ep, k); err != nil || got != want {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", k, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(rt.NodeDir(spec.Name), engine.ClusterConfigFile)); err != nil {
		t.Errorf("nodes.conf: %v", err)
	}
	id, err := a.ClusterMyID(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	all := []engine.SlotRange{{Start: 0, End: engine.ClusterSlots - 1}}
	for range 2 { // idempotent
		if err := a.ClusterAddSlots(ctx, ep, all); err != nil {
			t.Fatal(err)
		}
	}
	if err := engine.WaitReady(ctx, ep, a.ClusterOK); err != nil {
		t.Fatal(err)
	}
	err = a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		for i := range 100 {
			if err := c.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := rt.Suspend(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	spec.Resume = true
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	id2, err := a.ClusterMyID(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id {
		t.Errorf("resumed node kept its cluster id %s: nodes.conf must not be kept", id)
	}
	var size int64
	err = a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		size, err = c.DBSize(ctx).Result()
		return err
	})
	if err != nil || size != 100 {
		t.Errorf("resumed node has %d keys (%v), want 100", size, err)
	}
	nodes, err := a.ClusterNodes(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || len(nodes[0].Slots) > 0 {
		t.Errorf("resumed node knows %d nodes and serves %s, want itself only and no slot (its claims dropped)",
			len(nodes), engine.FormatSlotRanges(nodes[0].Slots))
	}
	if err := a.ClusterAddSlots(ctx, ep, all); err != nil {
		t.Fatal(err)
	}
	if err := engine.WaitReady(ctx, ep, a.ClusterOK); err != nil {
		t.Fatal(err)
	}
	err = a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Get(ctx, "k7").Err()
	})
	if err != nil {
		t.Errorf("GET k7 once the slots are back: %v", err)
	}
}
