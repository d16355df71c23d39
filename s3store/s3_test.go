package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/s3test"
	"github.com/elasticache-local/elasticache-local/s3store/storetest"
)

// minioServer is one MinIO server for a test; every store it hands out gets
// a bucket of its own, so subtests start empty.
type minioServer struct {
	endpoint, access, secret string
}

func startMinIO(t testing.TB) *minioServer {
	t.Helper()
	e, a, s := s3test.StartMinIO(t)
	return &minioServer{endpoint: e, access: a, secret: s}
}

func (m *minioServer) options(bucket string) s3store.S3Options {
	return s3store.S3Options{Endpoint: m.endpoint, AccessKey: m.access, SecretKey: m.secret, Bucket: bucket, CreateBucket: true}
}

func (m *minioServer) newStore(t testing.TB) *s3store.S3 {
	t.Helper()
	s, err := s3store.NewS3(context.Background(), m.options(randomBucket()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBucket() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

func TestS3(t *testing.T) {
	m := startMinIO(t)
	storetest.Run(t, func(t *testing.T) s3store.Store { return m.newStore(t) })
}

func TestEncryptedS3(t *testing.T) {
	m := startMinIO(t)
	storetest.Run(t, func(t *testing.T) s3store.Store {
		return s3store.NewEncrypted(m.newStore(t), storetest.TestKeys)
	})
	storetest.RunEncrypted(t, func(t *testing.T) (s3store.Store, s3store.Store) {
		s := m.newStore(t)
		return s3store.NewEncrypted(s, storetest.TestKeys), s
	})
}

// TestS3Buckets covers what the emulator does with buckets other than its
// own: exports to a customer bucket and restores from an object ARN.
func TestS3Buckets(t *testing.T) {
	ctx := context.Background()
	m := startMinIO(t)
	own := m.newStore(t)
	if !strings.HasPrefix(own.Describe(), "s3://"+own.BucketName()) {
		t.Errorf("Describe: %q", own.Describe())
	}

	export := m.newStore(t).BucketName() // another existing bucket
	view := own.Bucket(export)
	data := storetest.Bytes(1, 100000)
	storetest.MustPut(t, view, "exports/nightly.rdb", data, map[string]string{"k": "v"})
	bucket, key, err := s3store.ParseS3ARN("arn:aws:s3:::" + export + "/exports/nightly.rdb")
	if err != nil {
		t.Fatal(err)
	}
	got, info := storetest.MustGet(t, own.Bucket(bucket), key)
	if !bytes.Equal(got, data) || info.Metadata["k"] != "v" {
		t.Errorf("read back through the ARN: %d bytes, %v", len(got), info.Metadata)
	}
	if _, err := own.Stat(ctx, "exports/nightly.rdb"); !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("the export landed in the store's own bucket: %v", err)
	}

	missing := own.Bucket("no-such-bucket-here")
	if _, err := missing.Put(ctx, "k", strings.NewReader("x"), 1, nil); !errors.Is(err, s3store.ErrBucketNotFound) {
		t.Errorf("Put into a missing bucket: %v, want ErrBucketNotFound", err)
	}
	if _, _, err := missing.Get(ctx, "k"); !errors.Is(err, s3store.ErrBucketNotFound) || !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Get from a missing bucket: %v, want ErrBucketNotFound and ErrNotFound", err)
	}
	if _, err := missing.List(ctx, ""); !errors.Is(err, s3store.ErrBucketNotFound) {
		t.Errorf("List of a missing bucket: %v, want ErrBucketNotFound", err)
	}
}

func TestNewS3(t *testing.T) {
	ctx := context.Background()
	m := startMinIO(t)

	o := m.options(randomBucket())
	o.CreateBucket = false
	if _, err := s3store.NewS3(ctx, o); !errors.Is(err, s3store.ErrBucketNotFound) {
		t.Errorf("NewS3 of a missing bucket without CreateBucket: %v, want ErrBucketNotFound", err)
	}
	// CreateBucket on an existing bucket is fine; a URL endpoint works.
	o.CreateBucket = true
	if _, err := s3store.NewS3(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Endpoint = "http://" + m.endpoint
	s, err := s3store.NewS3(ctx, o)
	if err != nil {
		t.Fatalf("NewS3 with a URL endpoint: %v", err)
	}
	storetest.MustPut(t, s, "k", []byte("v"), nil)

	bad := m.options(randomBucket())
	bad.SecretKey = "wrong-secret-key"
	if _, err := s3store.NewS3(ctx, bad); err == nil {
		t.Error("NewS3 with a wrong secret key succeeded")
	}
	for _, ep := range []string{"", "ftp://" + m.endpoint, "http://" + m.endpoint + "/path"} {
		o := m.options(randomBucket())
		o.Endpoint = ep
		if _, err := s3store.NewS3(ctx, o); err == nil {
			t.Errorf("NewS3 with endpoint %q succeeded", ep)
		}
	}
	if _, err := s3store.NewS3(ctx, m.options("Bad_Bucket")); err == nil {
		t.Error("NewS3 with an invalid bucket name succeeded")
	}
}

// TestS3PartSize puts an object of unknown size over several multipart
// parts of the smallest size S3 accepts.
func TestS3PartSize(t *testing.T) {
	m := startMinIO(t)
	o := m.options(randomBucket())
	o.PartSize = 5 << 20
	s, err := s3store.NewS3(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12<<20 + 1
	var putErr error
	grow := storetest.Measure(func() {
		_, putErr = s.Put(context.Background(), "multi", storetest.Generator(3, n), -1, nil)
	})
	if putErr != nil {
		t.Fatal(putErr)
	}
	t.Logf("unknown-size put of %d bytes in 5 MiB parts allocated %d KiB", n, grow.TotalAlloc>>10)
	rc, info, err := s.Get(context.Background(), "multi")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := storetest.DigestOf(rc)
	want, _ := storetest.DigestOf(storetest.Generator(3, n))
	if err != nil || got != want || info.Size != n {
		t.Errorf("Get: %d bytes (Info.Size %d), %v", got.N, info.Size, err)
	}
}
