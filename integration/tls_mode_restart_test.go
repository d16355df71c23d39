package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// transitRestartAddressEnv is the node address range of this test's
// binary, of its own.
const transitRestartAddressEnv = "ELASTICACHE_LOCAL_NODE_ADDRESS_BASE=127.0.50.2"

// TestTransitEncryptionRestartAfterKill9: the emulator is killed (kill -9)
// while a group's transit encryption changes, once in the middle of
// restarting its members (plaintext → preferred) and once right after the
// request (preferred → required). The next start goes on: the group ends
// available in the mode asked for, nothing pending, every endpoint serving
// what the mode says, no node without a record and no key lost.
func TestTransitEncryptionRestartAfterKill9(t *testing.T) {
	t.Parallel()
	b := newBinaryRun(t)
	bin, dataDir, port, url, c := b.bin, b.dataDir, b.port, b.url, b.client
	cmd := startBinary(t, bin, dataDir, port, transitRestartAddressEnv)
	pool, _ := fetchCA(t, url)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("tk"),
		NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true)})
	primary := describeGroup(t, c, "tk").NodeGroups[0].PrimaryEndpoint
	seed := redisClient(t, aws.ToString(primary.Address), aws.ToInt32(primary.Port))
	const keys = 500
	for i := range keys {
		if err := seed.Set(ctxT(t, 5*time.Second), fmt.Sprintf("k:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	seed.Close()

	for _, step := range []struct {
		enabled *bool
		mode    types.TransitEncryptionMode
		// midway: killed once a member's restart began, else at once.
		midway bool
	}{
		{aws.Bool(true), types.TransitEncryptionModePreferred, true},
		{nil, types.TransitEncryptionModeRequired, false},
	} {
		if _, err := c.ModifyReplicationGroup(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("tk"),
			ApplyImmediately: aws.Bool(true), TransitEncryptionEnabled: step.enabled, TransitEncryptionMode: step.mode}); err != nil {
			t.Fatal(err)
		}
		if step.midway {
			eventually(t, time.Minute, func() error {
				if !strings.Contains(eventMessages(t, c, types.SourceTypeCacheCluster, "tk-002"), "replacement started") {
					return fmt.Errorf("no member restarted yet")
				}
				return nil
			})
		}
		killBinary(t, cmd)
		cmd = startBinary(t, bin, dataDir, port, transitRestartAddressEnv)
		waitAvailableFor(t, c, "tk", 2*time.Minute)
		g := describeGroup(t, c, "tk")
		if !aws.ToBool(g.TransitEncryptionEnabled) || g.TransitEncryptionMode != step.mode ||
			g.PendingModifiedValues.TransitEncryptionEnabled != nil || g.PendingModifiedValues.TransitEncryptionMode != "" {
			t.Fatalf("after the restart: TLS %v mode %q pending %+v, want mode %q and nothing pending",
				aws.ToBool(g.TransitEncryptionEnabled), g.TransitEncryptionMode, g.PendingModifiedValues, step.mode)
		}
		checkServes(t, c, g, pool, "", true, step.mode == types.TransitEncryptionModePreferred)
		if bad := orphans(t, url, dataDir); bad != "" {
			t.Fatalf("after the restart in mode %s: %s", step.mode, bad)
		}
		if n, err := tlsClient(t, g.NodeGroups[0].PrimaryEndpoint, pool, "").DBSize(ctxT(t, 5*time.Second)).Result(); err != nil || n != keys {
			t.Fatalf("mode %s: %d keys (%v), want %d", step.mode, n, err, keys)
		}
	}
	stopBinary(t, cmd, dataDir)
}
