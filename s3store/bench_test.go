package s3store_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/s3test"
	"github.com/elasticache-local/elasticache-local/s3store/storetest"
)

// benchSize is one snapshot of a small cache.
const benchSize = 32 << 20

// benchPayload is generated once and held in memory, so that the generator's
// cost is in neither the store's time nor the baseline's.
var benchPayload = sync.OnceValue(func() []byte { return storetest.Bytes(42, benchSize) })

// benchStores are the stores benchmarked. MinIO runs for the whole
// benchmark (its start is not measured); without the binary its entries are
// skipped and the others still run.
func benchStores(b *testing.B) []struct {
	name string
	new  func(b *testing.B) s3store.Store
} {
	var m *minioServer
	if _, ok := s3test.Binary(); ok || os.Getenv("CI") != "" {
		m = startMinIO(b)
	}
	minio := func(b *testing.B) s3store.Store {
		if m == nil {
			b.Skip("MinIO server binary not found: run scripts/install-minio")
		}
		return m.newStore(b)
	}
	dir := func(b *testing.B) s3store.Store {
		d, err := s3store.NewDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	return []struct {
		name string
		new  func(b *testing.B) s3store.Store
	}{
		{"dir", dir},
		{"encrypted-dir", func(b *testing.B) s3store.Store { return s3store.NewEncrypted(dir(b), storetest.TestKeys) }},
		{"minio", minio},
		{"encrypted-minio", func(b *testing.B) s3store.Store { return s3store.NewEncrypted(minio(b), storetest.TestKeys) }},
	}
}

// BenchmarkPut reports each store's MB/s putting a 32 MiB object of known
// size, the MB/s of a plain os.File write of the same bytes in the same run
// (write, fsync, close: what the directory store does too) as file-MB/s,
// and the store's throughput over the file's as x-file.
func BenchmarkPut(b *testing.B) {
	for _, s := range benchStores(b) {
		b.Run(s.name, func(b *testing.B) {
			store := s.new(b)
			base := fileWriteMBps(b)
			data := benchPayload()
			ctx := context.Background()
			b.SetBytes(benchSize)
			n := 0
			for b.Loop() {
				if _, err := store.Put(ctx, "bench/put.rdb", bytes.NewReader(data), benchSize, nil); err != nil {
					b.Fatal(err)
				}
				n++
			}
			report(b, n, base)
		})
	}
}

// BenchmarkGet reports each store's MB/s reading a 32 MiB object to its end
// and, as file-MB/s and x-file, the same for a plain os.File sequential read
// of the same bytes (from the page cache, as the stores' reads are).
func BenchmarkGet(b *testing.B) {
	for _, s := range benchStores(b) {
		b.Run(s.name, func(b *testing.B) {
			store := s.new(b)
			ctx := context.Background()
			if _, err := store.Put(ctx, "bench/get.rdb", bytes.NewReader(benchPayload()), benchSize, nil); err != nil {
				b.Fatal(err)
			}
			base := fileReadMBps(b)
			buf := make([]byte, 256<<10)
			b.SetBytes(benchSize)
			n := 0
			for b.Loop() {
				rc, _, err := store.Get(ctx, "bench/get.rdb")
				if err != nil {
					b.Fatal(err)
				}
				got, err := io.CopyBuffer(io.Discard, rc, buf)
				rc.Close()
				if err != nil || got != benchSize {
					b.Fatalf("read %d bytes: %v", got, err)
				}
				n++
			}
			report(b, n, base)
		})
	}
}

func report(b *testing.B, n int, baseMBps float64) {
	mbps := float64(benchSize) * float64(n) / 1e6 / b.Elapsed().Seconds()
	b.ReportMetric(baseMBps, "file-MB/s")
	b.ReportMetric(mbps/baseMBps, "x-file")
}

// baselineRuns is how many times the baseline runs; the median is taken.
const baselineRuns = 5

func fileWriteMBps(b *testing.B) float64 {
	b.Helper()
	data := benchPayload()
	path := filepath.Join(b.TempDir(), "baseline.rdb")
	return medianMBps(b, func() error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

func fileReadMBps(b *testing.B) float64 {
	b.Helper()
	path := filepath.Join(b.TempDir(), "baseline.rdb")
	if err := os.WriteFile(path, benchPayload(), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	return medianMBps(b, func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(io.Discard, f, buf)
		return err
	})
}

func medianMBps(b *testing.B, run func() error) float64 {
	b.Helper()
	var rates []float64
	for range baselineRuns {
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		rates = append(rates, float64(benchSize)/1e6/time.Since(start).Seconds())
	}
	slices.Sort(rates)
	return rates[len(rates)/2]
}
