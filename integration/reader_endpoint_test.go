package integration

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// runIDOf is the run_id of the node a connection reached (INFO server).
func runIDOf(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no run_id in INFO server")
}

// memberRunIDs maps the run_id of each member's node (through its own
// ReadEndpoint) to its cache cluster id.
func memberRunIDs(t *testing.T, g types.ReplicationGroup) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range g.NodeGroups[0].NodeGroupMembers {
		c := redisClient(t, aws.ToString(m.ReadEndpoint.Address), aws.ToInt32(m.ReadEndpoint.Port))
		id, err := runIDOf(ctxT(t, 5*time.Second), c)
		if err != nil {
			t.Fatalf("%s: %v", aws.ToString(m.CacheClusterId), err)
		}
		out[id] = aws.ToString(m.CacheClusterId)
	}
	return out
}

// readerReaches opens a new connection through the reader endpoint and
// returns it with the member it reached (by run_id); the caller closes it.
func readerReaches(ctx context.Context, ep *types.Endpoint, members map[string]string) (*redis.Client, string, error) {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port)),
		DialTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
	id, err := runIDOf(ctx, c)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	m, ok := members[id]
	if !ok {
		c.Close()
		return nil, "", fmt.Errorf("reached a node that is no member (run_id %s)", id)
	}
	return c, m, nil
}

// TestReaderEndpointSpreadsOverReplicas: new connections through the reader
// endpoint reach every healthy replica over time and never the primary,
// and a connection stays on the replica it reached when the endpoint moves
// on (as a DNS change leaves open connections be).
func TestReaderEndpointSpreadsOverReplicas(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.ReaderEndpointRotation = 200 * time.Millisecond })
	g := haGroup(t, e.client, "spread", 3)
	primary := primaryOf(g)
	members := memberRunIDs(t, g)
	rep := g.NodeGroups[0].ReaderEndpoint
	first, firstOn, err := readerReaches(ctxT(t, 5*time.Second), rep, members)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if e.runtime == "process" {
		// No forwarder in between: the replica itself accepted the
		// connection on the reader endpoint's address.
		info, err := first.ClientInfo(ctxT(t, 5*time.Second)).Result()
		if want := fmt.Sprintf("%s:%d", aws.ToString(rep.Address), aws.ToInt32(rep.Port)); err != nil || info.LAddr != want {
			t.Fatalf("CLIENT INFO laddr %+v (%v), want the reader endpoint %s", info, err, want)
		}
	}
	seen := map[string]bool{}
	eventually(t, 20*time.Second, func() error {
		c, m, err := readerReaches(ctxT(t, 5*time.Second), rep, members)
		if err != nil {
			return err // a connect in the moment the address moves
		}
		c.Close()
		if m == primary {
			t.Fatalf("a connection through the reader endpoint reached the primary %s", m)
		}
		seen[m] = true
		if len(seen) < 2 {
			return fmt.Errorf("reached only %v", seen)
		}
		return nil
	})
	if id, err := runIDOf(ctxT(t, 5*time.Second), first); err != nil || members[id] != firstOn {
		t.Fatalf("the first connection (on %s) after the endpoint moved on: %s, %v", firstOn, members[id], err)
	}
}

// TestReaderEndpointMovesOffAKilledReplica: the replica the reader endpoint
// is on dies; new connections through it reach another replica (never the
// primary) at once, long before the dead one is rebuilt.
func TestReaderEndpointMovesOffAKilledReplica(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.ReaderEndpointRotation = time.Hour })
	g := haGroup(t, e.client, "readers", 3)
	primary := primaryOf(g)
	members := memberRunIDs(t, g)
	rep := g.NodeGroups[0].ReaderEndpoint
	c, on, err := readerReaches(ctxT(t, 5*time.Second), rep, members)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if on == primary {
		t.Fatalf("the reader endpoint is on the primary %s", on)
	}
	killFromOutside(t, e, on)
	killed := time.Now()
	eventually(t, 5*time.Second, func() error {
		c, m, err := readerReaches(ctxT(t, time.Second), rep, members)
		if err != nil {
			return err
		}
		c.Close()
		if m == primary {
			t.Fatalf("after %s died the reader endpoint reached the primary %s", on, m)
		}
		if m == on {
			return fmt.Errorf("still on the killed %s", on)
		}
		return nil
	})
	t.Logf("a new connection through the reader endpoint reached another replica %v after the kill", time.Since(killed).Round(time.Millisecond))
	// The dead replica is rebuilt; the endpoint still serves a replica.
	waitAvailable(t, e.client, "readers")
	eventually(t, 20*time.Second, func() error {
		members = memberRunIDs(t, describeGroup(t, e.client, "readers"))
		c, m, err := readerReaches(ctxT(t, time.Second), rep, members)
		if err != nil {
			return err
		}
		c.Close()
		if m == primary {
			t.Fatalf("the reader endpoint reached the primary %s", m)
		}
		return nil
	})
}

// TestReaderEndpointAfterPromotion: the replica the reader endpoint is on
// is promoted; the primary endpoint reaches it, the reader endpoint leaves
// it (its connections through the reader endpoint are closed, as a DNS flip
// makes clients reconnect) for another replica.
func TestReaderEndpointAfterPromotion(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.ReaderEndpointRotation = time.Hour })
	g := haGroup(t, e.client, "promo", 3)
	old := primaryOf(g)
	members := memberRunIDs(t, g)
	ng := g.NodeGroups[0]
	c, on, err := readerReaches(ctxT(t, 5*time.Second), ng.ReaderEndpoint, members)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := e.client.ModifyReplicationGroup(ctxT(t, 10*time.Second), &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("promo"), PrimaryClusterId: aws.String(on), ApplyImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatalf("promote %s: %v", on, err)
	}
	g = waitRecovered(t, e, "promo", old)
	if p := primaryOf(g); p != on {
		t.Fatalf("primary = %s, want %s", p, on)
	}
	members = memberRunIDs(t, g)
	eventually(t, 10*time.Second, func() error {
		p, m, err := readerReaches(ctxT(t, time.Second), ng.PrimaryEndpoint, members)
		if err != nil {
			return err
		}
		defer p.Close()
		if m != on {
			return fmt.Errorf("the primary endpoint reaches %s, want %s", m, on)
		}
		if err := p.Set(ctxT(t, time.Second), "after-promotion", "1", 0).Err(); err != nil {
			return fmt.Errorf("write through the primary endpoint: %w", err)
		}
		r, m, err := readerReaches(ctxT(t, time.Second), ng.ReaderEndpoint, members)
		if err != nil {
			return err
		}
		r.Close()
		if m == on {
			return fmt.Errorf("the reader endpoint still reaches the promoted %s", m)
		}
		return nil
	})
	if err := c.Ping(ctxT(t, 2*time.Second)).Err(); err == nil {
		if id, _ := runIDOf(ctxT(t, 2*time.Second), c); members[id] == on {
			t.Fatalf("a connection through the reader endpoint still talks to the promoted %s", on)
		}
	}
}

// TestReaderEndpointStaysWhileUnused: a reader endpoint nobody connects to
// stays on its replica however often the rotation is due (a move would
// change nothing a client sees, and costs rebinds and connections to both
// replicas); one client connecting through it makes it move on at the next
// rotation.
func TestReaderEndpointStaysWhileUnused(t *testing.T) {
	moves := &messageCount{message: "reader endpoint moved on to the next healthy replica"}
	e := startEmulatorWith(t, func(c *emulator.Config) {
		c.ReaderEndpointRotation = 50 * time.Millisecond
		c.Logger = slog.New(teeHandler{c.Logger.Handler(), moves})
	})
	g := haGroup(t, e.client, "unused", 3)
	rep := g.NodeGroups[0].ReaderEndpoint
	// Whatever the emulator did to the replicas while the group was made
	// available may count as use once; after that, 20 rotations are due
	// within a second with nobody connecting.
	eventually(t, 10*time.Second, func() error {
		before := moves.load()
		time.Sleep(time.Second) // an observation window, not a wait for a condition
		if n := moves.load() - before; n > 0 {
			return fmt.Errorf("the unused reader endpoint moved %d times in a second", n)
		}
		return nil
	})
	// Nor does it ask its holder every rotation: 40 rotations are due in
	// the next two seconds, and the checks back off to one every 8.
	nodes := memberClients(t, e.client, "unused")
	for _, n := range nodes {
		if err := n.ConfigResetStat(ctxT(t, 5*time.Second)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // an observation window, not a wait for a condition
	asked := 0
	for _, n := range nodes {
		stats, err := n.Info(ctxT(t, 5*time.Second), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		if _, rest, ok := strings.Cut(stats, "cmdstat_info:calls="); ok {
			calls, _, _ := strings.Cut(rest, ",")
			k, _ := strconv.Atoi(calls)
			asked += k
		}
	}
	if asked > 12 {
		t.Fatalf("the unused reader endpoint asked its holder %d times in 2 s of 40 rotations", asked)
	}
	t.Logf("the unused reader endpoint asked its holder %d times in 2 s of 40 rotations", asked)

	before := moves.load()
	c := redisClient(t, aws.ToString(rep.Address), aws.ToInt32(rep.Port))
	if err := c.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if moves.load() == before {
			return fmt.Errorf("no move after a client connected through the reader endpoint")
		}
		return nil
	})
}

// messageCount is a slog handler counting the records with one message.
type messageCount struct {
	message string
	n       atomic.Int64
}

func (m *messageCount) load() int64 { return m.n.Load() }

func (m *messageCount) Enabled(context.Context, slog.Level) bool { return true }

func (m *messageCount) Handle(_ context.Context, r slog.Record) error {
	if r.Message == m.message {
		m.n.Add(1)
	}
	return nil
}

func (m *messageCount) WithAttrs([]slog.Attr) slog.Handler { return m }

func (m *messageCount) WithGroup(string) slog.Handler { return m }
