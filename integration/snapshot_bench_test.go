package integration

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// snapshotBenchBytes is the dataset size; ELASTICACHE_LOCAL_BENCH_MB
// overrides the default 1 GiB.
func snapshotBenchBytes() int64 {
	mb := int64(1024)
	if v := os.Getenv("ELASTICACHE_LOCAL_BENCH_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	return mb << 20
}

// heapPeak samples the heap in use until stop is closed.
func heapPeak(stop <-chan struct{}) *atomic.Uint64 {
	var peak atomic.Uint64
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return &peak
}

// BenchmarkSnapshotRestore1GiB snapshots a 1 GiB dataset (BGSAVE + stream to
// the directory store) and restores it into a new group, against two
// baselines measured in the same run: writing the same number of bytes
// sequentially to the same file system (fsync'd), and redis-server loading
// the same RDB straight from its own directory. It also reports the peak Go
// heap during snapshot and restore, to show the RDB is streamed.
func BenchmarkSnapshotRestore1GiB(b *testing.B) {
	size := snapshotBenchBytes()
	dataDir := ""
	e := startEmulatorWith(b, func(c *emulator.Config) { dataDir = c.DataDir })
	c := e.client
	ctx := context.Background()
	// The largest node type: its maxmemory holds any size asked for.
	createGroup(b, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("big"), CacheNodeType: aws.String("cache.r7g.16xlarge")})
	p := primaryClient(b, c, "big")
	// 1 MiB random (incompressible) values.
	rng := rand.NewChaCha8([32]byte{1})
	val := make([]byte, 1<<20)
	for i := int64(0); i < size>>20; i++ {
		rng.Read(val)
		if err := p.Set(ctx, fmt.Sprintf("blob:%d", i), val, 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	val = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse

	var snapTimes, restoreTimes, diskTimes, loadTimes, bgsaveTimes []time.Duration
	var peakSnap, peakRestore uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("big-%d", i)
		stop := make(chan struct{})
		peak := heapPeak(stop)
		start := time.Now()
		if _, err := c.CreateSnapshot(ctx, &elasticache.CreateSnapshotInput{ReplicationGroupId: aws.String("big"), SnapshotName: aws.String(name)}); err != nil {
			b.Fatal(err)
		}
		waitSnapshot(b, c, name)
		snapTimes = append(snapTimes, time.Since(start))
		close(stop)
		peakSnap = max(peakSnap, peak.Load())

		stop = make(chan struct{})
		peak = heapPeak(stop)
		start = time.Now()
		createGroup(b, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("r" + name), SnapshotName: aws.String(name)})
		restoreTimes = append(restoreTimes, time.Since(start))
		close(stop)
		peakRestore = max(peakRestore, peak.Load())

		b.StopTimer()
		if n, err := primaryClient(b, c, "r"+name).DBSize(ctx).Result(); err != nil || n != size>>20 {
			b.Fatalf("restored %d keys (%v), want %d", n, err, size>>20)
		}
		c.DeleteReplicationGroup(ctx, &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("r" + name)})
		waitDeleted(b, c, "r"+name)
		diskTimes = append(diskTimes, sequentialWrite(b, dataDir, size))
		bgsaveTimes = append(bgsaveTimes, directBGSave(b, primaryClient(b, c, "big")))
		loadTimes = append(loadTimes, rdbLoad(b, dataDir, name))
		b.StartTimer()
	}
	b.StopTimer()
	mb := float64(size) / (1 << 20)
	snap, disk := percentile(snapTimes, 50), percentile(diskTimes, 50)
	restore, load := percentile(restoreTimes, 50), percentile(loadTimes, 50)
	b.ReportMetric(mb/snap.Seconds(), "snapshot-MB/s")
	b.ReportMetric(mb/disk.Seconds(), "disk-write-MB/s")
	b.ReportMetric(float64(snap)/float64(disk), "snapshot/disk-write")
	b.ReportMetric(ms2(percentile(bgsaveTimes, 50)), "redis-bgsave-ms")
	b.ReportMetric(float64(snap)/float64(percentile(bgsaveTimes, 50)+disk), "snapshot/(bgsave+disk-write)")
	b.ReportMetric(ms2(restore), "restore-ms")
	b.ReportMetric(ms2(load), "redis-load-ms")
	b.ReportMetric(float64(restore)/float64(load), "restore/redis-load")
	b.ReportMetric(float64(peakSnap-min(peakSnap, baseHeap))/(1<<20), "snapshot-heap-growth-MB")
	b.ReportMetric(float64(peakRestore-min(peakRestore, baseHeap))/(1<<20), "restore-heap-growth-MB")
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sequentialWrite times writing size bytes to a fresh file and fsyncing it.
func sequentialWrite(b *testing.B, dir string, size int64) time.Duration {
	path := filepath.Join(dir, "seqwrite.bin")
	defer os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{2}).Read(buf)
	start := time.Now()
	for w := int64(0); w < size; w += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	f.Close()
	return d
}

// rdbLoad times redis-server starting with the snapshot's RDB already in
// its directory: the engine's own load time, with no store in between.
func rdbLoad(b *testing.B, dataDir, snapshot string) time.Duration {
	var rdb string
	filepath.Walk(filepath.Join(dataDir, "snapshots", "objects"), func(p string, info os.FileInfo, err error) error {
		if err == nil && filepath.Base(filepath.Dir(p)) == snapshot && filepath.Ext(p) == ".rdb" {
			rdb = p
		}
		return nil
	})
	if rdb == "" {
		b.Fatalf("no RDB for %s", snapshot)
	}
	rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-load", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	f, err := os.Open(rdb)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// Stage the file first (not timed), then time the start + load alone.
	ctx := context.Background()
	ep := engine.Endpoint{Host: "127.0.97.2", Port: 6379}
	if _, err := rt.Start(ctx, engine.NodeSpec{Name: "load", Engine: "redis", Endpoint: ep, InitialRDB: f}); err != nil {
		b.Fatal(err)
	}
	rt.Stop(ctx, "load")
	f.Seek(0, 0)
	start := time.Now()
	_, err = rt.Start(ctx, engine.NodeSpec{Name: "load", Engine: "redis", Endpoint: ep, InitialRDB: f})
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	rt.Stop(ctx, "load")
	return d
}

// directBGSave times the engine's own BGSAVE of the same dataset, polling
// INFO persistence: the part of a snapshot no emulator can avoid.
func directBGSave(b *testing.B, c *redis.Client) time.Duration {
	ctx := context.Background()
	start := time.Now()
	if err := c.BgSave(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(info, "rdb_bgsave_in_progress:0") {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
}
