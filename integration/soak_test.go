package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// failoverEvents returns the events of the region that report a failover
// or a node recovery: each one is a node the emulator took for failed.
func failoverEvents(t testing.TB, c *elasticache.Client) []string {
	t.Helper()
	var out []string
	p := elasticache.NewDescribeEventsPaginator(c, &elasticache.DescribeEventsInput{Duration: aws.Int32(60)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t, 30*time.Second))
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		for _, ev := range page.Events {
			if msg := aws.ToString(ev.Message); strings.Contains(msg, "Failover") || strings.Contains(msg, "Recovering") {
				out = append(out, aws.ToString(ev.SourceIdentifier)+": "+msg)
			}
		}
	}
	return out
}

// holdQuiet polls until d has passed, failing at once if any node was
// taken for failed meanwhile.
func holdQuiet(t *testing.T, c *elasticache.Client, d time.Duration, phase string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if evs := failoverEvents(t, c); len(evs) > 0 {
			t.Fatalf("false failovers while %s (%d):\n%s", phase, len(evs), strings.Join(evs, "\n"))
		}
		select {
		case <-time.After(time.Second): // the soak's pace: one look a second
		case <-t.Context().Done():
			return
		}
	}
}

// soakLoad writes to every group at a light pace (one SET per group every
// 200 ms) and records, per group, the keys acknowledged.
type soakLoad struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked map[string][]string // group → keys
}

func startSoakLoad(t *testing.T, clients map[string]*redis.Client) *soakLoad {
	l := &soakLoad{stop: make(chan struct{}), acked: map[string][]string{}}
	for id, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				key := fmt.Sprintf("load:%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := c.Set(ctx, key, i, 0).Err()
				cancel()
				if err == nil {
					l.mu.Lock()
					l.acked[id] = append(l.acked[id], key)
					l.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *soakLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// missingKeys returns the keys of want that c does not hold.
func missingKeys(t testing.TB, c *redis.Client, want []string) []string {
	t.Helper()
	var missing []string
	for start := 0; start < len(want); start += 500 {
		batch := want[start:min(start+500, len(want))]
		vals, err := c.MGet(ctxT(t, 30*time.Second), batch...).Result()
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for i, v := range vals {
			if v == nil {
				missing = append(missing, batch[i])
			}
		}
	}
	return missing
}

// TestSoak300Nodes: 300 nodes (100 groups of 3, AWS's default node quota
// per region) on the process runtime, idle and then under light client
// load: no node is taken for failed and no key is lost. Then ten primaries
// are killed at once (kill -9): all ten fail over, with every key.
//
// ELASTICACHE_LOCAL_SOAK_DURATION sets each phase (default 30s; the issue's
// full soak is 5m) and ELASTICACHE_LOCAL_SOAK_GROUPS the group count.
func TestSoak300Nodes(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	if testRuntime() != "process" {
		t.Skip("300 nodes are soaked on the process runtime")
	}
	phase := envDuration("ELASTICACHE_LOCAL_SOAK_DURATION", 30*time.Second)
	groups := envInt("ELASTICACHE_LOCAL_SOAK_GROUPS", 100)
	killed := min(10, groups)
	e := startEmulatorWith(t, func(c *emulator.Config) {
		c.AddressBase = "127.0.240.2" // 300 nodes and their endpoints: a range no other test reaches
	})
	c := e.client
	var ids []string
	start := time.Now()
	for batch := 0; batch < groups; batch += 20 {
		ids = append(ids, createHAGroups(t, c, fmt.Sprintf("soak%d", batch/20), min(20, groups-batch), 3)...)
	}
	t.Logf("%d groups (%d nodes) available in %v", len(ids), 3*len(ids), time.Since(start).Round(time.Second))

	clients := map[string]*redis.Client{}
	seeded := map[string][]string{}
	for _, id := range ids {
		clients[id] = primaryClient(t, c, id)
		pipe := clients[id].Pipeline()
		for i := range 100 {
			key := fmt.Sprintf("seed:%d", i)
			pipe.Set(context.Background(), key, i, 0)
			seeded[id] = append(seeded[id], key)
		}
		if _, err := pipe.Exec(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("seeding %s: %v", id, err)
		}
	}

	// The web console shows all of them, each with its live role.
	if roles := consoleRoles(t, e.url); roles["primary"] != len(ids) || roles["replica"] != 2*len(ids) {
		t.Errorf("the console shows roles %v, want %d primaries and %d replicas", roles, len(ids), 2*len(ids))
	}
	holdQuiet(t, c, phase, "idle")
	load := startSoakLoad(t, clients)
	holdQuiet(t, c, phase, "under light load")
	load.halt()

	// Every acknowledged write is on its primary and, before the kills, on
	// both replicas.
	for _, id := range ids {
		want := append(seeded[id], load.acked[id]...)
		if missing := missingKeys(t, clients[id], want); len(missing) > 0 {
			t.Fatalf("%s lost %d of %d keys (first %v)", id, len(missing), len(want), missing[:min(5, len(missing))])
		}
		if n, err := clients[id].Do(ctxT(t, 10*time.Second), "WAIT", 2, 5000).Int(); err != nil || n != 2 {
			t.Fatalf("%s: WAIT for both replicas = %d (%v)", id, n, err)
		}
	}

	victims := ids[:killed]
	nodes := adminNodes(t, e.url)
	old := map[string]string{}
	for _, id := range victims {
		old[id] = primaryOf(describeGroup(t, c, id))
		if nodes[old[id]].PID == 0 {
			t.Fatalf("no pid for %s", old[id])
		}
	}
	for _, id := range victims {
		if err := syscall.Kill(nodes[old[id]].PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range victims {
		waitRecovered(t, e, id, old[id])
		want := append(seeded[id], load.acked[id]...)
		if missing := missingKeys(t, clients[id], want); len(missing) > 0 {
			t.Fatalf("%s lost %d of %d keys in its failover (first %v)", id, len(missing), len(want), missing[:min(5, len(missing))])
		}
	}
	// Only the killed primaries were failed over.
	var others []string
	for _, ev := range failoverEvents(t, c) {
		victim := false
		for _, id := range victims {
			victim = victim || strings.HasPrefix(ev, id+"-") || strings.HasPrefix(ev, id+":")
		}
		if !victim {
			others = append(others, ev)
		}
	}
	if len(others) > 0 {
		t.Fatalf("groups that were not killed failed over:\n%s", strings.Join(others, "\n"))
	}
}
