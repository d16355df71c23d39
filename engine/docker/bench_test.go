package docker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// BenchmarkStartToPing compares, in one run, how long Start takes until the
// node answers PING on its host endpoint: a container versus a local
// redis-server process. Stop is outside the timed part and reported as
// stop-ms/op.
//
//	go test ./engine/docker -run '^$' -bench StartToPing -benchtime 10x
func BenchmarkStartToPing(b *testing.B) {
	b.Run("process", func(b *testing.B) {
		rt, err := process.New(process.Options{DataDir: b.TempDir(), EmulatorID: "bench-process", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { rt.Close() })
		benchStart(b, rt)
	})
	b.Run("docker", func(b *testing.B) {
		cli := requireDocker(b)
		id := fmt.Sprintf("bench-docker-%d", os.Getpid())
		assertNoLeftovers(b, cli, id)
		benchStart(b, newTestRuntime(b, Options{EmulatorID: id, Scope: id, DataDir: b.TempDir()}))
	})
}

func benchStart(b *testing.B, rt engine.Runtime) {
	ep, err := testPool(b).Allocate(6379)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { testPool(b).Release(ep) })
	spec := engine.NodeSpec{Name: "bench", Engine: "redis", EngineVersion: "7.1", Endpoint: ep}
	ctx := b.Context()
	b.Cleanup(func() { _ = rt.Stop(context.Background(), spec.Name) })
	var stops time.Duration
	b.ResetTimer()
	for range b.N {
		if _, err := rt.Start(ctx, spec); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		begin := time.Now()
		if err := rt.Stop(ctx, spec.Name); err != nil {
			b.Fatal(err)
		}
		stops += time.Since(begin)
		b.StartTimer()
	}
	b.ReportMetric(float64(stops.Milliseconds())/float64(b.N), "stop-ms/op")
}
