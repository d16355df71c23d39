// Package s3store stores snapshot objects (RDB files) for the emulator:
// CreateSnapshot writes them, CopySnapshot exports them to a customer
// bucket, and restores read them back, from the emulator's own store or
// from an S3 object named by an ARN in SnapshotArns.
//
// # Stores
//
// Every store implements Store and streams: Put reads its source and Get
// hands out a reader, each holding at most a small fixed buffer, never a
// whole snapshot.
//
//   - Dir (NewDir) keeps objects as plain files under a directory, with
//     metadata in a parallel tree of JSON sidecars. Puts are atomic: written
//     to a temporary file, fsynced, then renamed over the key. Directories
//     are 0700 and files 0600. Every open Dir holds a shared lock on the
//     root, so NewDir knows when no one else has it open and removes every
//     temporary file a crash left (otherwise only those older than an hour).
//   - S3 (NewS3) keeps them in an S3 bucket through minio-go, with
//     path-style addressing so that MinIO and other S3 servers work without
//     wildcard DNS. A Put of known size up to 5 GiB is one streamed PUT; an
//     unknown size (or a larger one) is a multipart upload holding one part
//     (S3Options.PartSize, 16 MiB by default) at a time. S3.Bucket gives a
//     Store on another bucket of the same endpoint; ParseS3ARN reads
//     "arn:aws:s3:::bucket/key" and "s3://bucket/key".
//   - Encrypted (NewEncrypted) encrypts at rest in any other Store.
//
// # Keys and metadata
//
// Keys are relative slash-separated paths, such as
// "snapshots/<account>/<region>/<name>/0001.rdb"; ValidateKey states the
// rules (no "..", no absolute or empty keys, no segment past 255 bytes).
// JoinKey builds a key from components that must each be one such segment,
// so a name taken from a request cannot climb into another key's place. List takes a plain string
// prefix, as S3 does, and returns keys in byte order without metadata; Stat
// returns the metadata.
//
// Metadata is a small string map stored with the object (a sidecar for Dir,
// x-amz-meta-* headers for S3). So that every store round-trips the same
// maps, keys are case-insensitive and come back lowercased, limited to
// letters, digits, '-', '_' and '.'; values are printable ASCII without
// surrounding spaces; an empty value is the same as no key; all of it fits
// S3's 2 KiB (MaxMetadataBytes).
//
// # Encryption at rest
//
// An Encrypted store writes objects as chunked AES-256-GCM: 64 KiB plaintext
// chunks (ChunkSize), each sealed with a nonce of a random per-object prefix
// and the chunk's counter, under a per-object key derived (HKDF-SHA256) from
// the master key, a random per-object salt and the key id. The AAD of every
// chunk holds the object's header and a last-chunk flag, so a reader detects
// flipped bytes, reordered, dropped or appended chunks, and truncation even
// at a chunk boundary; Get's reader then fails with ErrCorrupt instead of
// returning short or altered data. It releases each chunk only after its tag
// verifies, but earlier chunks have been returned before a later one fails:
// a consumer must not commit what it read until the reader returned io.EOF.
//
// The key of an object is chosen by its metadata: MetaKMSKeyID
// ("x-ec-local-kms-key-id") given to Put names the key id passed to the
// KeyProvider; absent means the default key (id ""). Get and Stat return it
// in the metadata (when not the default), report the plaintext size, and
// hide the store's other reserved "x-ec-local-" keys, which Put refuses.
// StaticKeys and DerivedKeys are ready-made KeyProviders.
//
// # Errors
//
// Callers test with errors.Is: ErrNotFound (also for Delete of a missing
// key), ErrInvalidKey, ErrInvalidMetadata, ErrSizeMismatch, ErrCorrupt and,
// for S3, ErrBucketNotFound. A failed Put leaves the key as it was.
//
// # Tests
//
// The contract test is package storetest; S3 tests run against a real
// MinIO server started by package s3test from the binary that
// scripts/install-minio builds.
package s3store
