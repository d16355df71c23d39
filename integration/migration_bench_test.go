package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"
)

// BenchmarkOnlineMigration measures how long an online migration takes to
// bring a 2-node group in sync with a self-managed server holding
// ELASTICACHE_LOCAL_BENCH_MIGRATION_KEYS keys (default 200,000): from
// StartMigration until the primary and its replica hold every key with
// their links up and no sync running. The baseline, alternated with it
// round by round in the same run, is the same replication done straight by
// two bare redis-servers started beforehand (one REPLICAOF the source, the
// other REPLICAOF the first, with a managed node's sync settings). The
// source keeps redis-server's defaults, so its own 5 s diskless-sync delay
// is in both. Each emulator round ends with CompleteMigration, timed until
// the group is available again.
func BenchmarkOnlineMigration(b *testing.B) {
	keys := envInt("ELASTICACHE_LOCAL_BENCH_MIGRATION_KEYS", 200000)
	port, src := migrationSource(b, "--enable-debug-command", "yes")
	ctx := context.Background()
	if err := src.Do(ctx, "DEBUG", "POPULATE", keys, "key", 64).Err(); err != nil {
		b.Fatal(err)
	}
	e := startEmulator(b)
	c := e.client
	createGroup(b, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("bench-mig"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(true)})
	var members []*redis.Client
	for _, rc := range memberClients(b, c, "bench-mig") {
		members = append(members, rc)
	}
	var migrate, direct, complete []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		begin := time.Now()
		if _, err := c.StartMigration(ctx, &elasticache.StartMigrationInput{ReplicationGroupId: aws.String("bench-mig"),
			CustomerNodeEndpointList: sourceList(port)}); err != nil {
			b.Fatal(err)
		}
		awaitReplicasSynced(b, members, keys)
		migrate = append(migrate, time.Since(begin))
		begin = time.Now()
		if _, err := c.CompleteMigration(ctx, &elasticache.CompleteMigrationInput{ReplicationGroupId: aws.String("bench-mig")}); err != nil {
			b.Fatal(err)
		}
		waitAvailable(b, c, "bench-mig")
		complete = append(complete, time.Since(begin))

		b.StopTimer()
		// With a managed node's sync settings (engine/process conf.go), so
		// the relay hop does not wait for a diskless sync's 5 s delay the
		// group's primary does not have.
		nodeLike := []string{"--repl-diskless-sync", "no", "--repl-diskless-sync-delay", "0"}
		_, first := migrationSource(b, nodeLike...)
		_, second := migrationSource(b, nodeLike...)
		b.StartTimer()
		begin = time.Now()
		if err := first.ReplicaOf(ctx, "127.0.0.1", fmt.Sprint(port)).Err(); err != nil {
			b.Fatal(err)
		}
		firstPort := strings.TrimPrefix(first.Options().Addr, "127.0.0.1:")
		if err := second.ReplicaOf(ctx, "127.0.0.1", firstPort).Err(); err != nil {
			b.Fatal(err)
		}
		awaitReplicasSynced(b, []*redis.Client{first, second}, keys)
		direct = append(direct, time.Since(begin))
	}
	b.StopTimer()
	m, d := percentile(migrate, 50), percentile(direct, 50)
	b.ReportMetric(ms(m), "migrate-p50-ms")
	b.ReportMetric(ms(d), "direct-replication-p50-ms")
	b.ReportMetric(float64(m)/float64(d), "migrate/direct")
	b.ReportMetric(ms(percentile(complete, 50)), "complete-p50-ms")
	b.Logf("%d keys: migrate %v, direct %v, complete %v", keys, migrate, direct, complete)
}

// awaitReplicasSynced waits until every node behind clients holds keys keys
// with its replication link up and no sync running.
func awaitReplicasSynced(b *testing.B, clients []*redis.Client, keys int) {
	eventually(b, 5*time.Minute, func() error {
		for _, rc := range clients {
			info, err := rc.Info(context.Background(), "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_sync_in_progress:0") {
				return fmt.Errorf("%s: not in sync yet", rc.Options().Addr)
			}
			n, err := rc.DBSize(context.Background()).Result()
			if err != nil || n != int64(keys) {
				return fmt.Errorf("%s: %d keys (%v), want %d", rc.Options().Addr, n, err, keys)
			}
		}
		return nil
	})
}
