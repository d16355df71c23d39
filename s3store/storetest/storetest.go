// Package storetest is the contract test every s3store.Store passes: the
// same subtests run against the directory store, S3 on a real MinIO server,
// and the encrypted store over each. RunEncrypted adds the checks that only
// make sense for an encrypted store and needs the store under it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/s3store"
)

// LargeSize is the size of the object that proves streaming: 32 MiB and a
// bit, so that it is not a whole number of chunks or parts.
const LargeSize = 32<<20 + 12345

// MaxAllocFraction bounds the heap a known-size Put or a Get may allocate:
// 1/MaxAllocFraction of the object's size. A store that held the object
// whole would allocate at least the whole object. The stores allocate tens to hundreds of KiB for 32 MiB (a few fixed
// buffers), so 1/32 leaves room for the race detector and minio-go.
const MaxAllocFraction = 32

// Run runs the contract against stores made by newStore; each call must
// return an empty store that the test may fill.
func Run(t *testing.T, newStore func(t *testing.T) s3store.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("UnknownSize", func(t *testing.T) { testUnknownSize(t, newStore(t)) })
	t.Run("LargeStreaming", func(t *testing.T) { testLarge(t, newStore(t)) })
	t.Run("Metadata", func(t *testing.T) { testMetadata(t, newStore(t)) })
	t.Run("Stat", func(t *testing.T) { testStat(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("FailedPutKeepsOld", func(t *testing.T) { testFailedPut(t, newStore(t)) })
	t.Run("BadKeys", func(t *testing.T) { testBadKeys(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("Describe", func(t *testing.T) {
		if newStore(t).Describe() == "" {
			t.Error("Describe is empty")
		}
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// MustPut puts data under key or fails the test.
func MustPut(t *testing.T, s s3store.Store, key string, data []byte, meta map[string]string) s3store.Info {
	t.Helper()
	info, err := s.Put(ctxT(t), key, bytes.NewReader(data), int64(len(data)), meta)
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	return info
}

// MustGet reads key whole or fails the test.
func MustGet(t *testing.T, s s3store.Store, key string) ([]byte, s3store.Info) {
	t.Helper()
	rc, info, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	t.Cleanup(func() { rc.Close() })
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %s: read: %v", key, err)
	}
	return data, info
}

// ReadAll reads key whole and returns the first error of Get or of the
// reader.
func ReadAll(ctx context.Context, s s3store.Store, key string) ([]byte, error) {
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func wantMeta(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: metadata is nil, want an empty map at least", what)
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: metadata %v, want %v", what, got, want)
	}
}

func testRoundTrip(t *testing.T, s s3store.Store) {
	for i, n := range []int64{0, 1, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1<<20 + 7} {
		key := fmt.Sprintf("snapshots/000000000000/us-east-1/rt/%04d.rdb", i)
		data := Bytes(uint64(i), n)
		info := MustPut(t, s, key, data, nil)
		if info.Key != key || info.Size != n {
			t.Errorf("Put %s: Info %+v, want key %s size %d", key, info, key, n)
		}
		got, ginfo := MustGet(t, s, key)
		if !bytes.Equal(got, data) {
			t.Errorf("Get %s: %d bytes differ from the %d put", key, len(got), n)
		}
		if ginfo.Size != n || ginfo.Key != key {
			t.Errorf("Get %s: Info %+v, want size %d", key, ginfo, n)
		}
	}
}

func testUnknownSize(t *testing.T, s s3store.Store) {
	// 3 MiB + 5 is several encryption chunks; 17 MiB + 3 is more than one
	// multipart part for S3.
	for i, n := range []int64{0, 5, 3<<20 + 5, 17<<20 + 3} {
		key := fmt.Sprintf("unknown/%d.rdb", i)
		info, err := s.Put(ctxT(t), key, Generator(uint64(100+i), n), -1, map[string]string{"n": fmt.Sprint(n)})
		if err != nil {
			t.Fatalf("Put %s with size -1: %v", key, err)
		}
		if info.Size != n {
			t.Errorf("Put %s: Info.Size %d, want %d", key, info.Size, n)
		}
		st, err := s.Stat(ctxT(t), key)
		if err != nil || st.Size != n {
			t.Errorf("Stat %s: %+v, %v; want size %d", key, st, err, n)
		}
		rc, _, err := s.Get(ctxT(t), key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		got, err := DigestOf(rc)
		rc.Close()
		want, _ := DigestOf(Generator(uint64(100+i), n))
		if err != nil || got != want {
			t.Errorf("Get %s: %d bytes, err %v; want %d bytes with the same digest", key, got.N, err, n)
		}
	}
}

// testLarge puts and gets LargeSize bytes from a generator and checks that
// neither direction allocated more than a fraction of the object.
func testLarge(t *testing.T, s s3store.Store) {
	const key = "snapshots/large/0001.rdb"
	var putErr error
	put := Measure(func() {
		_, putErr = s.Put(ctxT(t), key, Generator(7, LargeSize), LargeSize, nil)
	})
	if putErr != nil {
		t.Fatalf("Put %d bytes: %v", LargeSize, putErr)
	}
	var got Digest
	var getErr error
	get := Measure(func() {
		rc, _, err := s.Get(ctxT(t), key)
		if err != nil {
			getErr = err
			return
		}
		defer rc.Close()
		got, getErr = DigestOf(rc)
	})
	if getErr != nil {
		t.Fatalf("Get %d bytes: %v", LargeSize, getErr)
	}
	want, _ := DigestOf(Generator(7, LargeSize))
	if got != want {
		t.Fatalf("Get: %d bytes with another digest, want %d", got.N, want.N)
	}
	t.Logf("%s: %d-byte object: Put allocated %d KiB (peak heap-in-use growth %d KiB), Get allocated %d KiB (peak growth %d KiB)",
		s.Describe(), LargeSize, put.TotalAlloc>>10, put.PeakHeapInuse>>10, get.TotalAlloc>>10, get.PeakHeapInuse>>10)
	limit := uint64(LargeSize / MaxAllocFraction)
	if put.TotalAlloc > limit {
		t.Errorf("Put allocated %d bytes for a %d-byte object (limit %d): not streaming", put.TotalAlloc, LargeSize, limit)
	}
	if get.TotalAlloc > limit {
		t.Errorf("Get allocated %d bytes for a %d-byte object (limit %d): not streaming", get.TotalAlloc, LargeSize, limit)
	}
}

func testMetadata(t *testing.T, s s3store.Store) {
	meta := map[string]string{
		"Snapshot-Name":   "nightly-2026",
		"engine":          "redis",
		"engine_version":  "7.1",
		"source.cluster":  "orders-001",
		"content-type":    "text/plain", // a header name: must stay metadata
		"description":     "a value with spaces, punctuation: !#$%&'()*+,-./:;<=>?@[]^_`{|}~",
		"empty-value-key": "",
	}
	want := map[string]string{}
	for k, v := range meta {
		if v != "" { // an empty value is no value: S3 servers drop them
			want[strings.ToLower(k)] = v
		}
	}
	info := MustPut(t, s, "meta/a", []byte("x"), meta)
	wantMeta(t, "Put", info.Metadata, want)
	st, err := s.Stat(ctxT(t), "meta/a")
	if err != nil {
		t.Fatal(err)
	}
	wantMeta(t, "Stat", st.Metadata, want)
	_, ginfo := MustGet(t, s, "meta/a")
	wantMeta(t, "Get", ginfo.Metadata, want)

	MustPut(t, s, "meta/none", []byte("y"), nil)
	st, err = s.Stat(ctxT(t), "meta/none")
	if err != nil {
		t.Fatal(err)
	}
	wantMeta(t, "Stat of an object put without metadata", st.Metadata, map[string]string{})

	for name, bad := range map[string]map[string]string{
		"space in key":     {"bad key": "v"},
		"non-ascii value":  {"k": "caf\u00e9"},
		"newline in value": {"k": "a\nb"},
		"padded value":     {"k": " v"},
		"case duplicates":  {"k": "1", "K": "2"},
		"too large":        {"k": strings.Repeat("v", s3store.MaxMetadataBytes)},
	} {
		_, err := s.Put(ctxT(t), "meta/bad", strings.NewReader("z"), 1, bad)
		if !errors.Is(err, s3store.ErrInvalidMetadata) {
			t.Errorf("Put with %s metadata: %v, want ErrInvalidMetadata", name, err)
		}
	}
	if _, err := s.Stat(ctxT(t), "meta/bad"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Stat after rejected puts: %v, want ErrNotFound", err)
	}
}

func testStat(t *testing.T, s s3store.Store) {
	before := time.Now()
	MustPut(t, s, "stat/x.rdb", Bytes(3, 4097), map[string]string{"a": "b"})
	after := time.Now()
	st, err := s.Stat(ctxT(t), "stat/x.rdb")
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != "stat/x.rdb" || st.Size != 4097 || st.Metadata["a"] != "b" {
		t.Errorf("Stat: %+v", st)
	}
	// S3 keeps Last-Modified to the second.
	if st.Modified.Before(before.Add(-2*time.Second)) || st.Modified.After(after.Add(2*time.Second)) {
		t.Errorf("Stat: Modified %v, want between %v and %v", st.Modified, before, after)
	}
	if _, err := s.Stat(ctxT(t), "stat/missing"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Stat of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctxT(t), "stat"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Stat of a prefix: %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s s3store.Store) {
	keys := []string{"p/b/c", "q/x", "p/a", "p/b-d", "pz", "p/b/a/deep.rdb", "p/a.json/z"}
	for i, k := range keys {
		MustPut(t, s, k, Bytes(uint64(i), int64(10+i)), map[string]string{"i": fmt.Sprint(i)})
	}
	sizes := map[string]int64{}
	for i, k := range keys {
		sizes[k] = int64(10 + i)
	}
	for _, c := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"p/a", "p/a.json/z", "p/b-d", "p/b/a/deep.rdb", "p/b/c", "pz", "q/x"}},
		{"p/", []string{"p/a", "p/a.json/z", "p/b-d", "p/b/a/deep.rdb", "p/b/c"}},
		{"p", []string{"p/a", "p/a.json/z", "p/b-d", "p/b/a/deep.rdb", "p/b/c", "pz"}},
		{"p/b", []string{"p/b-d", "p/b/a/deep.rdb", "p/b/c"}},
		{"p/b/", []string{"p/b/a/deep.rdb", "p/b/c"}},
		{"p/a", []string{"p/a", "p/a.json/z"}},
		{"q/x", []string{"q/x"}},
		{"nothing/", nil},
		{"p/nothing", nil},
	} {
		got, err := s.List(ctxT(t), c.prefix)
		if err != nil {
			t.Errorf("List %q: %v", c.prefix, err)
			continue
		}
		var gotKeys []string
		for _, info := range got {
			gotKeys = append(gotKeys, info.Key)
			if info.Size != sizes[info.Key] {
				t.Errorf("List %q: %s has size %d, want %d", c.prefix, info.Key, info.Size, sizes[info.Key])
			}
			if info.Modified.IsZero() {
				t.Errorf("List %q: %s has no Modified", c.prefix, info.Key)
			}
		}
		if strings.Join(gotKeys, ",") != strings.Join(c.want, ",") {
			t.Errorf("List %q: %q, want %q", c.prefix, gotKeys, c.want)
		}
	}
	for _, bad := range []string{"/p", "../", "p//", "p/../q"} {
		if _, err := s.List(ctxT(t), bad); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("List %q: %v, want ErrInvalidKey", bad, err)
		}
	}
}

func testDelete(t *testing.T, s s3store.Store) {
	MustPut(t, s, "del/a/b.rdb", []byte("doomed"), map[string]string{"k": "v"})
	MustPut(t, s, "del/keep", []byte("kept"), nil)
	if err := s.Delete(ctxT(t), "del/a/b.rdb"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Get(ctxT(t), "del/a/b.rdb"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctxT(t), "del/a/b.rdb"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctxT(t), "del/a/b.rdb"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctxT(t), "del/never"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Delete of a key never put: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctxT(t), "del"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Delete of a prefix: %v, want ErrNotFound", err)
	}
	list, err := s.List(ctxT(t), "del/")
	if err != nil || len(list) != 1 || list[0].Key != "del/keep" {
		t.Errorf("List after Delete: %+v, %v; want only del/keep", list, err)
	}
	// The deleted key's name is free again, also as a prefix.
	MustPut(t, s, "del/a", []byte("reused"), nil)
	if got, _ := MustGet(t, s, "del/a"); string(got) != "reused" {
		t.Errorf("Get of a reused name: %q", got)
	}
}

func testOverwrite(t *testing.T, s s3store.Store) {
	MustPut(t, s, "ow/k", Bytes(1, 200000), map[string]string{"gen": "1", "only-first": "x"})
	MustPut(t, s, "ow/k", []byte("short"), map[string]string{"gen": "2"})
	got, info := MustGet(t, s, "ow/k")
	if string(got) != "short" || info.Size != 5 {
		t.Errorf("Get after overwrite: %d bytes, Info.Size %d; want the 5 bytes of the second put", len(got), info.Size)
	}
	wantMeta(t, "Get after overwrite (replaced, not merged)", info.Metadata, map[string]string{"gen": "2"})
}

// testFailedPut checks that a Put that fails (reader error, wrong size,
// cancelled context) leaves the previous object intact and creates nothing.
func testFailedPut(t *testing.T, s s3store.Store) {
	old := Bytes(9, 300000)
	MustPut(t, s, "fail/k", old, map[string]string{"gen": "old"})
	cases := []struct {
		name string
		put  func(ctx context.Context, key string) error
		want error
	}{
		{"reader error, known size", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, FailAfter(1, 100000), 200000, nil)
			return err
		}, nil},
		{"reader error, unknown size", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, FailAfter(1, 100000), -1, nil)
			return err
		}, nil},
		{"reader shorter than size", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, Generator(1, 1000), 1001, nil)
			return err
		}, s3store.ErrSizeMismatch},
		{"reader longer than size", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, Generator(1, 1001), 1000, nil)
			return err
		}, s3store.ErrSizeMismatch},
		{"cancelled context", func(ctx context.Context, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Put(ctx, key, Generator(1, 1000), 1000, nil)
			return err
		}, context.Canceled},
	}
	for _, c := range cases {
		err := c.put(ctxT(t), "fail/k")
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Put returned %v, want an error matching %v", c.name, err, c.want)
		}
		got, info := MustGet(t, s, "fail/k")
		if !bytes.Equal(got, old) || info.Metadata["gen"] != "old" {
			t.Errorf("%s: the failed Put changed the object (%d bytes, metadata %v)", c.name, len(got), info.Metadata)
		}
		if err := c.put(ctxT(t), "fail/new"); err == nil {
			t.Errorf("%s: Put of a new key succeeded", c.name)
		}
		if _, err := s.Stat(ctxT(t), "fail/new"); !errors.Is(err, s3store.ErrNotFound) {
			t.Errorf("%s: a failed Put created the key (Stat: %v)", c.name, err)
		}
	}
}

func testBadKeys(t *testing.T, s s3store.Store) {
	bad := []string{"", "/abs", "../x", "a/../b", "a/./b", ".", "..", "a//b", "a/", "./a", "a\\b", "a\x00b", "a\nb",
		strings.Repeat("k", s3store.MaxKeyBytes+1)}
	ctx := ctxT(t)
	for _, k := range bad {
		if _, err := s.Put(ctx, k, strings.NewReader("x"), 1, nil); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("Put %q: %v, want ErrInvalidKey", k, err)
		}
		if _, _, err := s.Get(ctx, k); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("Get %q: %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("Stat %q: %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("Delete %q: %v, want ErrInvalidKey", k, err)
		}
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("List after rejected puts: %+v, %v; want nothing", list, err)
	}
	// Unusual but valid keys work.
	for _, k := range []string{"a..b/c", "..a", "with space/and+plus=&?#.rdb", "caf\u00e9/\u5feb\u7167.rdb", strings.Repeat("k", 200)} {
		MustPut(t, s, k, []byte(k), nil)
		if got, _ := MustGet(t, s, k); string(got) != k {
			t.Errorf("Get %q: %q", k, got)
		}
	}
}

func testConcurrent(t *testing.T, s s3store.Store) {
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("conc/%d", w)
			for round := range 3 {
				data := Bytes(uint64(w*10+round), int64(70000+w))
				if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), map[string]string{"r": fmt.Sprint(round)}); err != nil {
					errs <- err
					return
				}
				got, err := ReadAll(context.Background(), s, key)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s round %d: %d bytes, %v", key, round, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
