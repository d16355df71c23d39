package integration

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
)

// logCounter is a slog handler that counts the records with one message
// (at any level) and passes warnings and errors on to next.
type logCounter struct {
	next    slog.Handler
	message string
	count   *atomic.Int64
}

func (h logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.message {
		h.count.Add(1)
	}
	if r.Level >= slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	h.next = h.next.WithAttrs(as)
	return h
}

func (h logCounter) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}

// countLogs makes the emulator's logger count the records with message.
func countLogs(c *emulator.Config, message string) *atomic.Int64 {
	n := new(atomic.Int64)
	c.Logger = slog.New(logCounter{next: c.Logger.Handler(), message: message, count: n})
	return n
}

// createHAGroups creates count groups prefix-0… of nodes nodes with
// automatic failover, all at once, and waits until every one is available.
func createHAGroups(t testing.TB, c *elasticache.Client, prefix string, count int, nodes int32) []string {
	t.Helper()
	ids := make([]string, count)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		if _, err := c.CreateReplicationGroup(ctxT(t, 30*time.Second), &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(ids[i]), ReplicationGroupDescription: aws.String(prefix),
			CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(nodes),
			AutomaticFailoverEnabled: aws.Bool(true),
		}); err != nil {
			t.Fatalf("create %s: %v", ids[i], err)
		}
	}
	for _, id := range ids {
		waitAvailable(t, c, id)
	}
	return ids
}

// recoveries lists the clusters of ids whose events show a failover or a
// node recovery.
func recoveries(t *testing.T, c *elasticache.Client, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		for _, m := range describeGroup(t, c, id).MemberClusters {
			if msgs := eventMessages(t, c, types.SourceTypeCacheCluster, m); strings.Contains(msgs, "Failover") || strings.Contains(msgs, "Recovering") {
				out = append(out, m+": "+strings.ReplaceAll(msgs, "\n", " | "))
			}
		}
	}
	return out
}

// TestStarvedMachineIsNotDeadNodes: when most nodes stop answering at once
// (SIGSTOP, as when the machine is too loaded to run them), the emulator
// is starved, not the nodes dead: no node is killed, restarted empty or
// failed over, and no key is lost. A node whose process died meanwhile is
// still failed over.
func TestStarvedMachineIsNotDeadNodes(t *testing.T) {
	var uncounted *atomic.Int64
	e := startEmulatorWith(t, func(c *emulator.Config) {
		uncounted = countLogs(c, "health round not counted: the emulator looks starved")
	})
	ctx := ctxT(t, 2*time.Minute)
	ids := createHAGroups(t, e.client, "starve", 4, 2)
	for _, id := range ids {
		if err := primaryClient(t, e.client, id).Set(ctx, "k", id, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hung, dead := ids[:3], ids[3]
	var frozen []string
	for _, id := range hung {
		frozen = append(frozen, describeGroup(t, e.client, id).MemberClusters...)
	}
	var wg sync.WaitGroup
	for _, cl := range frozen {
		wg.Add(1)
		go func() { defer wg.Done(); adminFault(t, e.url, cl, "pause") }()
	}
	wg.Wait()
	resumed := false
	t.Cleanup(func() {
		if !resumed { // the test failed with nodes frozen
			for _, cl := range frozen {
				adminFault(t, e.url, cl, "resume")
			}
		}
	})
	before := uncounted.Load()
	deadPrimary := primaryOf(describeGroup(t, e.client, dead))
	killFromOutside(t, e, deadPrimary)

	// The dead primary is failed over although most nodes are silent.
	eventually(t, time.Minute, func() error {
		g := describeGroup(t, e.client, dead)
		if p := primaryOf(g); p == deadPrimary || aws.ToString(g.Status) != "available" {
			return fmt.Errorf("group %s is %s with primary %s", dead, aws.ToString(g.Status), p)
		}
		return nil
	})
	// Several times as many rounds as mark a hung node down.
	eventually(t, time.Minute, func() error {
		if got := recoveries(t, e.client, hung...); len(got) > 0 {
			t.Fatalf("nodes of a starved machine were failed over or restarted:\n%s", strings.Join(got, "\n"))
		}
		if n := uncounted.Load() - before; n < 10 {
			return fmt.Errorf("%d starved rounds so far", n)
		}
		return nil
	})
	if got := recoveries(t, e.client, hung...); len(got) > 0 {
		t.Fatalf("nodes of a starved machine were failed over or restarted:\n%s", strings.Join(got, "\n"))
	}

	for _, cl := range frozen {
		adminFault(t, e.url, cl, "resume")
	}
	resumed = true
	for _, id := range ids {
		p := primaryClient(t, e.client, id)
		eventually(t, 30*time.Second, func() error {
			if v, err := p.Get(ctx, "k").Result(); err != nil || v != id {
				return fmt.Errorf("%s: k = %q (%v)", id, v, err)
			}
			return nil
		})
	}
	if got := recoveries(t, e.client, hung...); len(got) > 0 {
		t.Fatalf("nodes were failed over or restarted after the machine recovered:\n%s", strings.Join(got, "\n"))
	}
}

// TestNoFailoverIntoStaleReplica: a primary dies while its only replica's
// link has been down for a while (it cannot authenticate to the primary, so
// it misses every write since): the stale replica is not promoted; the
// primary is repaired in place with an event saying why.
func TestNoFailoverIntoStaleReplica(t *testing.T) {
	e := startEmulator(t)
	ctx := ctxT(t, 2*time.Minute)
	g := haGroup(t, e.client, "stale", 2)
	old := primaryOf(g)
	p := primaryClient(t, e.client, "stale")
	replica := adminNodes(t, e.url)["stale-002"]
	rc := redisClient(t, strings.Split(replica.Endpoint, ":")[0], aws.ToInt32(g.NodeGroups[0].PrimaryEndpoint.Port))
	// Cut the replica off: it can no longer authenticate to its primary.
	if err := rc.ConfigSet(ctx, "masteruser", "nobody").Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		text, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		info, err := engine.ParseReplicationInfo(text)
		if err != nil {
			return err
		}
		if info.LinkUp || info.LinkDownSeconds < 4 {
			return fmt.Errorf("replica link up=%v, down for %ds", info.LinkUp, info.LinkDownSeconds)
		}
		return nil
	})
	if err := p.Set(ctx, "missed-by-the-replica", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	killFromOutside(t, e, old)

	eventually(t, time.Minute, func() error {
		msgs := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "stale")
		if !strings.Contains(msgs, "Failover of node group 0001 skipped") {
			return fmt.Errorf("no skipped failover yet:\n%s", msgs)
		}
		if c := eventMessages(t, e.client, types.SourceTypeCacheCluster, old); !strings.Contains(c, "Finished recovery for cache nodes 0001") {
			return fmt.Errorf("%s not recovered yet:\n%s", old, c)
		}
		return nil
	})
	g = describeGroup(t, e.client, "stale")
	if got := primaryOf(g); got != old {
		t.Fatalf("the stale replica was promoted: primary %s, want %s repaired in place", got, old)
	}
	if msgs := eventMessages(t, e.client, types.SourceTypeReplicationGroup, "stale"); strings.Contains(msgs, "Failover from primary node") {
		t.Fatalf("a failover into the stale replica happened:\n%s", msgs)
	}
}
