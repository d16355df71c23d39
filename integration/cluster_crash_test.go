package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"
)

// Address range of these tests' binaries, of their own (see
// restart_crash_test.go for the others).
const clusterCrashAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.236.2"

// TestClusterReshardSurvivesRestart stops the emulator in the middle of a
// scale out, by kill -9 (the nodes keep running, a slot may be left
// migrating) and by SIGTERM (the nodes save their data and stop, and come
// back without their cluster state), then starts it again: the resharding
// ends with every key present, the slots even, no slot left migrating or
// importing on any node, and no node without a record.
func TestClusterReshardSurvivesRestart(t *testing.T) {
	bin := buildBinary(t)
	for _, how := range []string{"kill", "term"} {
		t.Run(how, func(t *testing.T) {
			dataDir := t.TempDir()
			reapAtCleanup(t, dataDir)
			port := freePort(t)
			url := fmt.Sprintf("http://127.0.0.1:%d", port)
			c := newClient(url, "us-east-1")
			cmd := startBinary(t, bin, dataDir, port, clusterCrashAddressEnv)
			g := createClusterGroup(t, c, "crashy", 3, 1)
			cc := clusterClient(t, g)
			const keys = 100000
			fillCluster(t, cc, "k", keys)

			if _, err := c.ModifyReplicationGroupShardConfiguration(ctxT(t, 10*time.Second), &elasticache.ModifyReplicationGroupShardConfigurationInput{
				ReplicationGroupId: aws.String("crashy"), NodeGroupCount: aws.Int32(4), ApplyImmediately: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
			// Stop it once some keys have moved, well before the end.
			eventually(t, time.Minute, func() error {
				g := describeGroup(t, c, "crashy")
				if pm := g.PendingModifiedValues; pm != nil && pm.Resharding != nil && aws.ToFloat64(pm.Resharding.SlotMigration.ProgressPercentage) > 0 {
					return nil
				}
				if aws.ToString(g.Status) == "available" {
					t.Fatalf("the resharding ended before it could be interrupted")
				}
				return fmt.Errorf("no progress yet")
			})
			if how == "kill" {
				killBinary(t, cmd)
			} else {
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
			}
			begin := time.Now()
			startBinary(t, bin, dataDir, port, clusterCrashAddressEnv, "ELASTICACHE_LOCAL_LOG_LEVEL=info")
			waitAvailableFor(t, c, "crashy", 3*time.Minute)
			t.Logf("%s: the resharding finished %v after the restart", how, time.Since(begin).Round(time.Millisecond))
			g = describeGroup(t, c, "crashy")
			for id, n := range slotCounts(t, g) {
				if n != 4096 {
					t.Errorf("node group %s holds %d slots, want 4096 (%v)", id, n, slotCounts(t, g))
				}
			}
			if g.PendingModifiedValues != nil && g.PendingModifiedValues.Resharding != nil {
				t.Errorf("resharding still pending: %+v", g.PendingModifiedValues.Resharding)
			}
			cc = clusterClient(t, g)
			checkClusterKeys(t, cc, "k", keys)
			noSlotInTransit(t, cc)
			if bad := orphans(t, url, dataDir); bad != "" {
				t.Errorf("after the restart: %s", bad)
			}
			msgs := eventMessages(t, c, types.SourceTypeReplicationGroup, "crashy")
			t.Logf("events: %s", msgs)
		})
	}
}

// noSlotInTransit fails when any node of the cluster has a slot migrating
// or importing (CLUSTER NODES shows them as [slot->-id] / [slot-<-id]).
func noSlotInTransit(t testing.TB, cc *redis.ClusterClient) {
	t.Helper()
	err := cc.ForEachShard(ctxT(t, 10*time.Second), func(ctx context.Context, n *redis.Client) error {
		out, err := n.ClusterNodes(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "->-") || strings.Contains(line, "-<-") {
				return fmt.Errorf("node %s: %s", n.Options().Addr, line)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("a slot is left in transit: %v", err)
	}
}

// waitAvailableFor is waitAvailable with a longer bound.
func waitAvailableFor(t testing.TB, c *elasticache.Client, id string, d time.Duration) {
	t.Helper()
	w := elasticache.NewReplicationGroupAvailableWaiter(c, func(o *elasticache.ReplicationGroupAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(ctxT(t, d), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)}, d); err != nil {
		t.Fatalf("waiting for %s available: %v", id, err)
	}
}
