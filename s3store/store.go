package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"
	"unicode/utf8"
)

// Info describes a stored object.
type Info struct {
	// Key is the object's slash-separated key.
	Key string
	// Size is the object's size in bytes; an Encrypted store reports the
	// plaintext size.
	Size int64
	// Modified is when the object was last written.
	Modified time.Time
	// Metadata is the object's user metadata, keys lowercased. List leaves
	// it nil (S3 listings carry no user metadata); Put, Get and Stat fill it.
	Metadata map[string]string
}

// Errors callers test with errors.Is; the stores wrap them with the key.
var (
	// ErrNotFound: the key holds no object.
	ErrNotFound = errors.New("s3store: object not found")
	// ErrInvalidKey: the key is empty, absolute, has empty, "." or ".."
	// segments, a trailing slash, a backslash or a control character.
	ErrInvalidKey = errors.New("s3store: invalid key")
	// ErrInvalidMetadata: a metadata key or value S3 cannot carry as a
	// header, or more than MaxMetadataBytes in all.
	ErrInvalidMetadata = errors.New("s3store: invalid metadata")
	// ErrSizeMismatch: Put was given a size the reader did not deliver.
	ErrSizeMismatch = errors.New("s3store: reader size does not match the declared size")
	// ErrCorrupt: the stored object failed a check (decryption, its
	// metadata); its data must not be trusted.
	ErrCorrupt = errors.New("s3store: object is corrupt or was tampered with")
)

// MaxKeyBytes is S3's limit on an object key.
const MaxKeyBytes = 1024

// MaxSegmentBytes is the limit on one slash-separated segment of a key: a
// Dir stores each segment as a file or directory name, and file systems
// refuse names longer than 255 bytes.
const MaxSegmentBytes = 255

// MaxMetadataBytes is S3's limit on user metadata (keys plus values); every
// store enforces it so that an object that fits one store fits all.
const MaxMetadataBytes = 2048

// Store is a snapshot object store. Implementations stream: Put and Get
// never hold a whole object in memory. They are safe for concurrent use.
type Store interface {
	// Put stores the bytes of r under key, replacing any object there. size
	// is the exact number of bytes r delivers, or -1 when unknown; a reader
	// that delivers another number fails with ErrSizeMismatch. A Put that
	// fails leaves the key as it was.
	Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) (Info, error)
	// Get opens the object for reading; the caller closes the reader. A
	// reader error other than io.EOF means the data read so far is not to
	// be trusted.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat returns the object's Info.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; a missing key is ErrNotFound.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose keys start with prefix (a plain string
	// prefix, as in S3), sorted by key. Metadata is nil: use Stat.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Describe names the store for logs, e.g. "dir:/var/x" or "s3://bucket".
	Describe() string
}

// ValidateKey checks that key is a relative slash-separated path that every
// store can hold: non-empty, at most MaxKeyBytes, valid UTF-8, no leading or
// trailing slash, no empty, "." or ".." segment, no segment longer than
// MaxSegmentBytes, no backslash (a separator on Windows) and no control
// character.
func ValidateKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyBytes:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyBytes))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("absolute")
	case strings.HasSuffix(key, "/"):
		return bad("trailing slash")
	case strings.ContainsRune(key, '\\'):
		return bad("backslash")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty segment")
		case ".", "..":
			return bad("relative segment " + seg)
		}
		if len(seg) > MaxSegmentBytes {
			return bad(fmt.Sprintf("a segment longer than %d bytes", MaxSegmentBytes))
		}
	}
	return nil
}

// JoinKey builds a key from components that must each be exactly one
// segment: a component holding a slash, or one that is empty, "." or "..",
// is refused rather than joined, so a name taken from a request can never
// reach another key's place (another snapshot, another account's tree).
func JoinKey(components ...string) (string, error) {
	if len(components) == 0 {
		return "", fmt.Errorf("%w: no components", ErrInvalidKey)
	}
	for _, c := range components {
		if strings.Contains(c, "/") {
			return "", fmt.Errorf("%w: component %q holds a slash", ErrInvalidKey, c)
		}
		if err := ValidateKey(c); err != nil {
			return "", fmt.Errorf("%w: component %q", ErrInvalidKey, c)
		}
	}
	key := strings.Join(components, "/")
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// validatePrefix accepts "" and any beginning of a valid key: every segment
// but the last must be a valid whole segment; the last may be partial (or
// empty after a trailing slash).
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	segs := strings.Split(prefix, "/")
	last := segs[len(segs)-1]
	probe := prefix
	if last == "" || last == "." || last == ".." {
		// "a/" and "a/.." are fine prefixes ("a/..b" is a valid key): check
		// the whole segments with a stand-in last segment.
		probe = strings.Join(segs[:len(segs)-1], "/") + "/x"
		probe = strings.TrimPrefix(probe, "/")
		if len(segs) == 1 {
			probe = "x"
		}
	}
	if err := ValidateKey(probe); err != nil || len(prefix) > MaxKeyBytes || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w: list prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}

// normalizeMetadata lowercases metadata keys, drops empty values (S3
// servers drop empty headers, so "" cannot round-trip) and checks that every pair can
// travel as an S3 user-metadata header unchanged: keys of [a-z0-9._-],
// values of printable ASCII without surrounding spaces (HTTP trims them),
// MaxMetadataBytes in all. It returns a fresh map (never nil) so callers may
// keep it.
func normalizeMetadata(meta map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(meta))
	seen := make(map[string]bool, len(meta))
	total := 0
	for k, v := range meta {
		lk := strings.ToLower(k)
		if lk == "" {
			return nil, fmt.Errorf("%w: empty key", ErrInvalidMetadata)
		}
		for _, c := range lk {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return nil, fmt.Errorf("%w: key %q: only letters, digits, '-', '_' and '.'", ErrInvalidMetadata, k)
			}
		}
		if _, dup := seen[lk]; dup {
			return nil, fmt.Errorf("%w: key %q given twice (keys are case-insensitive)", ErrInvalidMetadata, k)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return nil, fmt.Errorf("%w: value of %q: only printable ASCII", ErrInvalidMetadata, k)
			}
		}
		if strings.TrimSpace(v) != v {
			return nil, fmt.Errorf("%w: value of %q has surrounding spaces", ErrInvalidMetadata, k)
		}
		seen[lk] = true
		total += len(lk) + len(v)
		if v != "" {
			out[lk] = v
		}
	}
	if total > MaxMetadataBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidMetadata, total, MaxMetadataBytes)
	}
	return out, nil
}

// cloneMeta returns a copy that is never nil, so Info.Metadata from Put, Get
// and Stat can be ranged and compared without nil checks.
func cloneMeta(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// exactReader enforces a declared size. It holds back the final bytes until
// it has checked that the source has nothing more, so a consumer that stops
// at the declared length (net/http with a Content-Length does) still sees
// the error and never commits a silently truncated object.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

func newExactReader(r io.Reader, size int64) io.Reader {
	if size < 0 {
		return r
	}
	return &exactReader{r: r, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		e.err = e.probeEnd()
		return 0, e.err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		// Check for surplus before handing over the last bytes.
		if perr := e.probeEnd(); perr != io.EOF {
			e.err = perr
			return 0, perr
		}
		return n, nil
	case err == io.EOF:
		e.err = fmt.Errorf("%w: reader ended %d bytes short", ErrSizeMismatch, e.left)
		return n, e.err
	}
	return n, err
}

// probeEnd reports io.EOF when the source is exhausted and ErrSizeMismatch
// when it has more bytes.
func (e *exactReader) probeEnd() error {
	var one [1]byte
	for range 100 { // bounded: a reader may return (0, nil) repeatedly
		n, err := e.r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: reader has more bytes than declared", ErrSizeMismatch)
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ctxReader fails reads once ctx is done, so a Put copying a long stream
// stops promptly when its caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ObjectGetter is implemented by stores whose object and metadata are
// written in two steps (Dir): GetObject reads an object whose metadata a
// crash left behind (see Dir.GetObject).
type ObjectGetter interface {
	GetObject(ctx context.Context, key string) (io.ReadCloser, error)
}
