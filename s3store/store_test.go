package s3store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/s3store"
)

func TestValidateKey(t *testing.T) {
	good := []string{"a", "snapshots/000000000000/us-east-1/nightly/0001.rdb", "a..b", "..a/b..", ".hidden/x",
		"with space", "caf\u00e9", strings.Repeat("k", s3store.MaxSegmentBytes),
		strings.Repeat(strings.Repeat("k", 254)+"/", 4) + strings.Repeat("k", s3store.MaxKeyBytes-4*255)}
	for _, k := range good {
		if err := s3store.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "./a", "a/.", "a/../b", "../a", "a\\b", "a\x00", "a\x7f",
		"a\tb", "\xff", strings.Repeat("k/", s3store.MaxKeyBytes/2) + "k", strings.Repeat("k", s3store.MaxSegmentBytes+1),
		"a/" + strings.Repeat("\u00e9", 128)}
	for _, k := range bad {
		if err := s3store.ValidateKey(k); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q): %v, want ErrInvalidKey", k, err)
		}
	}
}

// TestJoinKey: every component is one valid segment; names that would
// climb out of their place, or split into several segments, are refused.
func TestJoinKey(t *testing.T) {
	if k, err := s3store.JoinKey("snapshots", "000000000000", "us-east-1", "nightly", "0001.rdb"); err != nil || k != "snapshots/000000000000/us-east-1/nightly/0001.rdb" {
		t.Errorf("JoinKey = %q, %v", k, err)
	}
	if k, err := s3store.JoinKey("a..b", "..c"); err != nil || k != "a..b/..c" {
		t.Errorf("JoinKey(a..b, ..c) = %q, %v", k, err)
	}
	for _, parts := range [][]string{
		{}, {"snapshots", "."}, {"snapshots", ".."}, {"snapshots", ""}, {"snapshots", "a/b"}, {"snapshots", "../other"},
		{"snapshots", "/abs"}, {"snapshots", "a\\b"}, {"snapshots", "a\x00"}, {"snapshots", strings.Repeat("k", s3store.MaxSegmentBytes+1)},
		{strings.Repeat("k", 255), strings.Repeat("k", 255), strings.Repeat("k", 255), strings.Repeat("k", 255), "kk"},
	} {
		if k, err := s3store.JoinKey(parts...); !errors.Is(err, s3store.ErrInvalidKey) {
			t.Errorf("JoinKey(%q) = %q, %v; want ErrInvalidKey", parts, k, err)
		}
	}
}

func TestParseS3ARN(t *testing.T) {
	for _, c := range []struct{ in, bucket, key string }{
		{"arn:aws:s3:::my-bucket/snapshots/dump.rdb", "my-bucket", "snapshots/dump.rdb"},
		{"arn:aws-cn:s3:::b.c.d/k.rdb", "b.c.d", "k.rdb"},
		{"s3://my-bucket/dir/key.rdb", "my-bucket", "dir/key.rdb"},
	} {
		b, k, err := s3store.ParseS3ARN(c.in)
		if err != nil || b != c.bucket || k != c.key {
			t.Errorf("ParseS3ARN(%q) = %q, %q, %v; want %q, %q", c.in, b, k, err, c.bucket, c.key)
		}
	}
	for _, in := range []string{
		"", "my-bucket/key", "arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/", "s3://my-bucket",
		"arn:aws:s3:us-east-1::b/k", "arn:aws:s3::123456789012:b/k", "arn:aws:ec2:::b/k",
		"arn:aws:s3:::Bad_Bucket/k", "s3://b/../etc/passwd", "s3://bucket/a//b", "http://bucket/k",
	} {
		if b, k, err := s3store.ParseS3ARN(in); err == nil {
			t.Errorf("ParseS3ARN(%q) = %q, %q, want an error", in, b, k)
		}
	}
}
