package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// ErrBucketNotFound: the bucket does not exist. Operations on objects in a
// missing bucket match both it and ErrNotFound.
var ErrBucketNotFound = errors.New("s3store: bucket not found")

// S3Options configures NewS3.
type S3Options struct {
	// Endpoint is "host:port" or a URL ("http://host:port"); a URL's scheme
	// overrides Secure.
	Endpoint string
	// AccessKey and SecretKey sign requests (SigV4).
	AccessKey, SecretKey string
	// Bucket holds the objects.
	Bucket string
	// Region is the signing region; empty means us-east-1. Setting it spares
	// a GetBucketLocation round trip before the first request.
	Region string
	// Secure selects HTTPS for a host:port endpoint.
	Secure bool
	// CreateBucket creates Bucket when it does not exist; otherwise NewS3
	// fails with ErrBucketNotFound.
	CreateBucket bool
	// PartSize is the multipart part size, used only when a Put's size is
	// unknown or beyond the single-PUT limit: each such upload buffers one
	// part. Zero means 16 MiB (with S3's 10,000 parts, 156 GiB at most for
	// an unknown size); S3 needs at least 5 MiB.
	PartSize uint64
}

// singlePutLimit is S3's limit on a single PUT. Up to it a Put of known
// size is one streamed request (no part buffer); past it, multipart.
const singlePutLimit = 5 << 30

const defaultPartSize = 16 << 20

// S3 is a Store on an S3 bucket (path-style addressing, so it works with
// MinIO and other S3 servers without wildcard DNS).
type S3 struct {
	client   *minio.Client
	bucket   string
	endpoint string
	partSize uint64
}

// NewS3 connects to an S3 endpoint and checks (or creates) the bucket.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	host, secure := o.Endpoint, o.Secure
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("s3store: endpoint: %w", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("s3store: endpoint %q: want host:port or http(s)://host:port", o.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	if host == "" {
		return nil, errors.New("s3store: empty S3 endpoint")
	}
	if err := s3utils.CheckValidBucketName(o.Bucket); err != nil {
		return nil, fmt.Errorf("s3store: bucket %q: %w", o.Bucket, err)
	}
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	partSize := o.PartSize
	if partSize == 0 {
		partSize = defaultPartSize
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:       secure,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		// CRC32C trailers on uploads: see DisableContentSha256 in Put.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: S3 client: %w", err)
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	s := &S3{client: client, bucket: o.Bucket, endpoint: scheme + host, partSize: partSize}
	if o.CreateBucket {
		err := client.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return nil, fmt.Errorf("s3store: create bucket %s at %s: %w", o.Bucket, s.endpoint, err)
		}
	}
	ok, err := client.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3store: bucket %s at %s: %w", o.Bucket, s.endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3store: %s at %s: %w", o.Bucket, s.endpoint, ErrBucketNotFound)
	}
	return s, nil
}

// Bucket returns a Store view of another bucket on the same endpoint and
// credentials (CopySnapshot exports, restores from SnapshotArns). It does
// not check that the bucket exists: operations then fail with
// ErrBucketNotFound.
func (s *S3) Bucket(name string) Store {
	c := *s
	c.bucket = name
	return &c
}

// BucketName returns the bucket this store uses.
func (s *S3) BucketName() string { return s.bucket }

// Describe implements Store.
func (s *S3) Describe() string { return "s3://" + s.bucket + " at " + s.endpoint }

// mapErr wraps err with the operation and turns S3's "no such" codes into
// ErrNotFound / ErrBucketNotFound.
func (s *S3) mapErr(op, key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey":
		return fmt.Errorf("s3store: %s s3://%s/%s: %w", op, s.bucket, key, ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("s3store: %s s3://%s/%s: %w (%w)", op, s.bucket, key, ErrNotFound, ErrBucketNotFound)
	}
	return fmt.Errorf("s3store: %s s3://%s/%s: %w", op, s.bucket, key, err)
}

// Put implements Store. A known size up to 5 GiB is one streamed PUT;
// otherwise minio-go uploads parts of PartSize, buffering one at a time.
// User metadata travels as x-amz-meta-* headers.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	meta, err := normalizeMetadata(meta)
	if err != nil {
		return Info{}, err
	}
	headers := make(map[string]string, len(meta))
	for k, v := range meta {
		// Always prefixed: minio-go would send a bare "content-type" or
		// "x-amz-acl" as that header rather than as metadata.
		headers["x-amz-meta-"+k] = v
	}
	opts := minio.PutObjectOptions{
		UserMetadata: headers,
		ContentType:  "application/octet-stream",
		// Over plain HTTP minio-go would otherwise sign every 64 KiB of the
		// body with SHA-256 (streaming SigV4): a third of the throughput
		// and an allocation per chunk. Unsigned payload with a CRC32C
		// trailer (TrailingHeaders in NewS3) still has the server check the
		// bytes; HTTPS endpoints send unsigned payload anyway.
		DisableContentSha256: true,
	}
	if size >= 0 && size <= singlePutLimit {
		opts.DisableMultipart = true
	} else if size < 0 {
		// minio-go's default for an unknown size is a ~537 MiB part buffer.
		opts.PartSize = s.partSize
	}
	up, err := s.client.PutObject(ctx, s.bucket, key, newExactReader(r, size), size, opts)
	if err != nil {
		// A reader's own error (ErrSizeMismatch among them) comes back
		// wrapped by net/http; keep it visible to errors.Is.
		return Info{}, s.mapErr("put", key, err)
	}
	mod := up.LastModified
	if mod.IsZero() {
		mod = time.Now()
	}
	return Info{Key: key, Size: up.Size, Modified: mod, Metadata: cloneMeta(meta)}, nil
}

func (s *S3) info(oi minio.ObjectInfo) Info {
	meta := make(map[string]string, len(oi.UserMetadata))
	for k, v := range oi.UserMetadata {
		meta[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = v
	}
	return Info{Key: oi.Key, Size: oi.Size, Modified: oi.LastModified, Metadata: meta}
}

// Get implements Store. The object's first request happens here (through
// Stat), so a missing key fails Get rather than the first Read, and the
// Info and the bytes come from the same response.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.mapErr("get", key, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, Info{}, s.mapErr("get", key, err)
	}
	return obj, s.info(oi), nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.mapErr("stat", key, err)
	}
	return s.info(oi), nil
}

// Delete implements Store. S3 answers a delete of a missing key with
// success, so Delete asks first to report ErrNotFound like the other stores.
func (s *S3) Delete(ctx context.Context, key string) error {
	if _, err := s.Stat(ctx, key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.mapErr("delete", key, err)
	}
	return nil
}

// List implements Store. Keys that no store could hold (S3 "folder"
// markers ending in "/", for one) are left out.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	var out []Info
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, s.mapErr("list", prefix, oi.Err)
		}
		if ValidateKey(oi.Key) != nil {
			continue
		}
		out = append(out, Info{Key: oi.Key, Size: oi.Size, Modified: oi.LastModified})
	}
	// S3 lists in UTF-8 byte order already; sorting costs little and holds
	// the contract for servers that do not.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

var _ Store = (*S3)(nil)

// ParseS3ARN splits "arn:aws:s3:::bucket/key" (any partition: aws-cn,
// aws-us-gov) or "s3://bucket/key" into its bucket and key. Both parts are
// required and checked: the bucket by S3's naming rules, the key by
// ValidateKey.
func ParseS3ARN(arn string) (bucket, key string, err error) {
	var rest string
	switch {
	case strings.HasPrefix(arn, "s3://"):
		rest = strings.TrimPrefix(arn, "s3://")
	case strings.HasPrefix(arn, "arn:"):
		parts := strings.SplitN(arn, ":", 6)
		if len(parts) != 6 || parts[1] == "" || parts[2] != "s3" || parts[3] != "" || parts[4] != "" {
			return "", "", fmt.Errorf("s3store: %q is not an S3 object ARN (arn:aws:s3:::bucket/key)", arn)
		}
		rest = parts[5]
	default:
		return "", "", fmt.Errorf("s3store: %q is neither an S3 ARN nor an s3:// URL", arn)
	}
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || key == "" {
		return "", "", fmt.Errorf("s3store: %q names no object key", arn)
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("s3store: %q: bucket %q: %w", arn, bucket, err)
	}
	if err := ValidateKey(key); err != nil {
		return "", "", fmt.Errorf("s3store: %q: %w", arn, err)
	}
	return bucket, key, nil
}
