package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// migrationSource runs a self-managed redis-server (what online migration
// copies from) on a free port of 127.0.0.1 and returns its port and a
// client (extra are more redis-server options). It is killed at cleanup,
// registered before anything can fail.
func migrationSource(t testing.TB, extra ...string) (int, *redis.Client) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redisClient(t, "127.0.0.1", int32(port))
	eventually(t, 10*time.Second, func() error { return c.Ping(context.Background()).Err() })
	return port, c
}

func sourceList(port int) []types.CustomerNodeEndpoint {
	return []types.CustomerNodeEndpoint{{Address: aws.String("127.0.0.1"), Port: aws.Int32(int32(port))}}
}

// waitGroupEvent waits until a group has an event containing want.
func waitGroupEvent(t *testing.T, c *elasticache.Client, group, want string) {
	t.Helper()
	eventually(t, time.Minute, func() error {
		if msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, group); !strings.Contains(msgs, want) {
			return fmt.Errorf("no event %q yet; events: %s", want, msgs)
		}
		return nil
	})
}

// TestOnlineMigration migrates a self-managed redis-server into a 3-node
// group: the requests AWS refuses are refused and change nothing;
// TestMigration reports on a dead and a live source; StartMigration turns
// the group "migrating" and fills every node with the source's data by
// replication (the group's own key is gone, writes through the group are
// refused, writes to the source arrive); a primary killed during the
// migration is replaced by a replica that follows the source too;
// CompleteMigration promotes the primary: "available", writable, every
// source key there, and the source's later writes no longer arrive.
func TestOnlineMigration(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, 3*time.Minute)
	port, src := migrationSource(t)
	restartData(t, src, "src", 3000)
	want, err := dataChecksum(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("mig"),
		NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(true)})
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("single")})
	if err := primaryClient(t, c, "mig").Set(ctx, "target-only", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Refused, as AWS refuses them; nothing changes.
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("mig"),
		CustomerNodeEndpointList: append(sourceList(port), sourceList(port)...)})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("single"), CustomerNodeEndpointList: sourceList(port)})
	expectError(t, err, "InvalidParameterCombination", 400) // no Multi-AZ
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("ghost"), CustomerNodeEndpointList: sourceList(port)})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)
	node := describeCacheCluster(t, c, "single-001").CacheNodes[0].Endpoint
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("mig"),
		CustomerNodeEndpointList: []types.CustomerNodeEndpoint{{Address: node.Address, Port: node.Port}}})
	expectError(t, err, "InvalidParameterValue", 400) // an ElastiCache node is no source
	pe := describeGroup(t, c, "mig").NodeGroups[0].PrimaryEndpoint
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("mig"),
		CustomerNodeEndpointList: []types.CustomerNodeEndpoint{{Address: pe.Address, Port: pe.Port}}})
	expectError(t, err, "InvalidParameterValue", 400) // nor its own primary endpoint
	_, err = c.CompleteMigration(ctx, &elasticache.CompleteMigrationInput{ReplicationGroupId: aws.String("mig")})
	expectError(t, err, "ReplicationGroupNotUnderMigrationFault", 400)
	if s := aws.ToString(describeGroup(t, c, "mig").Status); s != "available" {
		t.Fatalf("status after refused requests: %s", s)
	}

	// TestMigration answers at once; its verdict is an event.
	if _, err := c.TestMigration(ctx, &elasticache.TestMigrationInput{ReplicationGroupId: aws.String("mig"), CustomerNodeEndpointList: sourceList(freePort(t))}); err != nil {
		t.Fatal(err)
	}
	waitGroupEvent(t, c, "mig", "Test Migration failed for mig: cannot connect")
	if _, err := c.TestMigration(ctx, &elasticache.TestMigrationInput{ReplicationGroupId: aws.String("mig"), CustomerNodeEndpointList: sourceList(port)}); err != nil {
		t.Fatal(err)
	}
	waitGroupEvent(t, c, "mig", "Test Migration successful for mig")

	out, err := c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("mig"), CustomerNodeEndpointList: sourceList(port)})
	if err != nil {
		t.Fatal(err)
	}
	if s := aws.ToString(out.ReplicationGroup.Status); s != "migrating" {
		t.Fatalf("StartMigration answered status %s", s)
	}
	_, err = c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("mig"), CustomerNodeEndpointList: sourceList(port)})
	expectError(t, err, "ReplicationGroupAlreadyUnderMigrationFault", 400)
	_, err = c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("mig"), SnapshotRetentionLimit: aws.Int32(1)})
	expectError(t, err, "InvalidReplicationGroupState", 400)
	waitGroupEvent(t, c, "mig", "is in sync with 127.0.0.1:"+strconv.Itoa(port))
	expectGroupData(t, c, "mig", want)
	pc := primaryClient(t, c, "mig")
	if err := pc.Set(ctx, "through-the-group", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("a write through the primary endpoint while migrating: %v, want READONLY", err)
	}

	// A primary killed during the migration: its replacement follows the
	// source as well.
	old := primaryOfGroup(t, c, "mig")
	killFromOutside(t, e, old)
	eventually(t, time.Minute, func() error {
		if p := primaryOfGroup(t, c, "mig"); p == old {
			return errors.New("no failover yet")
		}
		return nil
	})
	if err := src.Set(ctx, "after-failover", "y", 0).Err(); err != nil {
		t.Fatal(err)
	}
	want, err = dataChecksum(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		got, err := dataChecksum(ctx, primaryClient(t, c, "mig"))
		if err != nil || got != want {
			return fmt.Errorf("new primary holds %s (%v), want the source's %s", got, err, want)
		}
		return nil
	})
	if s := aws.ToString(describeGroup(t, c, "mig").Status); s != "migrating" {
		t.Fatalf("status after a failover during the migration: %s", s)
	}

	out2, err := c.CompleteMigration(ctx, &elasticache.CompleteMigrationInput{ReplicationGroupId: aws.String("mig")})
	if err != nil {
		t.Fatal(err)
	}
	if s := aws.ToString(out2.ReplicationGroup.Status); s != "migrating" {
		t.Fatalf("CompleteMigration answered status %s", s)
	}
	waitAvailable(t, c, "mig")
	waitGroupEvent(t, c, "mig", "Complete Migration successful for mig")
	expectGroupData(t, c, "mig", want)
	if err := primaryClient(t, c, "mig").Set(ctx, "after-cutover", "z", 0).Err(); err != nil {
		t.Fatalf("a write through the primary endpoint after the cutover: %v", err)
	}
	if err := src.Set(ctx, "source-after-cutover", "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The source's later write must not arrive: its absence is checked
	// after a write to the group has reached every replica (replication
	// is ordered), so the check cannot pass by being early.
	if err := primaryClient(t, c, "mig").Set(ctx, "marker", "m", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for id, rc := range memberClients(t, c, "mig") {
		eventually(t, time.Minute, func() error { return rc.Get(context.Background(), "marker").Err() })
		if n, err := rc.Exists(ctx, "source-after-cutover", "target-only").Result(); err != nil || n != 0 {
			t.Fatalf("member %s after the cutover: %d of the source's later key and the group's old key (%v)", id, n, err)
		}
	}
}

// TestMigrationCrashLoop kills the emulator (kill -9) at a point that
// moves every round: right after StartMigration answered (round 0), then
// 2, 5, 20 ms after it, and the same after CompleteMigration. After every
// restart, within a deadline: a migration answered is migrating and its
// primary follows the source (a key written to the source after the
// restart arrives); a completion answered ends available, writable, with
// the source's data; no orphan. The group migrates and completes four
// times over.
func TestMigrationCrashLoop(t *testing.T) {
	t.Parallel() // its binary has an address range of its own
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	ctx := ctxT(t, 5*time.Minute)
	const env = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.118.2"
	cmd := startBinary(t, bin, dataDir, port, env)
	sport, src := migrationSource(t)
	restartData(t, src, "src", 2000)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("loop"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(true)})
	for round, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		if _, err := c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("loop"), CustomerNodeEndpointList: sourceList(sport)}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		<-time.After(delay) // the kill point itself, not a wait for a condition
		killBinary(t, cmd)
		cmd = startBinary(t, bin, dataDir, port, env)
		marker := fmt.Sprintf("round-%d", round)
		if err := src.Set(ctx, marker, "after the restart", 0).Err(); err != nil {
			t.Fatal(err)
		}
		want, err := dataChecksum(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		// The primary follows the source again once the resumed migration
		// has pointed it there and it has synced.
		eventually(t, time.Minute, func() error {
			got, err := dataChecksum(ctx, primaryClient(t, c, "loop"))
			if err != nil || got != want {
				return fmt.Errorf("round %d: primary holds %s (%v), want the source's %s", round, got, err, want)
			}
			return nil
		})
		expectGroupData(t, c, "loop", want)
		if s := aws.ToString(describeGroup(t, c, "loop").Status); s != "migrating" {
			t.Fatalf("round %d: status after a kill %v after StartMigration: %s", round, delay, s)
		}

		if _, err := c.CompleteMigration(ctx, &elasticache.CompleteMigrationInput{ReplicationGroupId: aws.String("loop")}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		<-time.After(delay)
		killBinary(t, cmd)
		cmd = startBinary(t, bin, dataDir, port, env)
		waitAvailable(t, c, "loop")
		expectGroupData(t, c, "loop", want)
		if err := primaryClient(t, c, "loop").Set(ctx, marker, "written after the cutover", 0).Err(); err != nil {
			t.Fatalf("round %d: a write after the resumed cutover: %v", round, err)
		}
		eventually(t, 30*time.Second, func() error {
			if bad := orphans(t, url, dataDir); bad != "" {
				return errors.New(bad)
			}
			return nil
		})
		t.Logf("round %d: killed %v after StartMigration and after CompleteMigration; resumed both", round, delay)
	}
	stopBinary(t, cmd, dataDir)
}
