package s3store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
)

// KeyProvider returns the 32-byte AES-256 key for a key id; "" is the
// default key. The emulator maps KMS key ids (or ARNs) to keys with it.
type KeyProvider func(keyID string) ([]byte, error)

// Metadata keys of the Encrypted store. Keys starting with
// ReservedMetaPrefix belong to it: Put refuses others of that prefix.
const (
	ReservedMetaPrefix = "x-ec-local-"
	// MetaKMSKeyID chooses the key of an object on Put and reports it on
	// Get and Stat. Absent (or empty) means the default key, and is then
	// absent from the returned metadata too.
	MetaKMSKeyID = "x-ec-local-kms-key-id"
	// metaEncryption marks an object as written by this format.
	metaEncryption = "x-ec-local-encryption"
	// metaPlainSize is the plaintext size, so Stat need not read the object.
	metaPlainSize = "x-ec-local-plaintext-size"
)

// The stored object is a header followed by chunks:
//
//	header: magic "ECLSENC1" | chunk size (uint32 BE) | salt (32) | nonce prefix (8)
//	chunk i: AES-256-GCM(key, nonce = prefix || uint32 BE i,
//	                     plaintext = chunk size bytes (the last: 0..chunk size),
//	                     aad = header || last-flag byte)
//
// The key of each object is HKDF-SHA256(master key, salt, info || key id):
// a fresh key per object means nonces cannot repeat across objects, and the
// key id in info means an object whose key-id metadata was altered does not
// decrypt. The counter in the nonce detects reordered or dropped chunks; the
// last-flag in the AAD detects a stream cut at a chunk boundary (its final
// chunk was sealed as not-last) and data appended after the last chunk.
const (
	encMagic       = "ECLSENC1"
	encHeaderSize  = 8 + 4 + 32 + 8
	encTagSize     = 16
	encVersion     = "aes256gcm-chunked-v1"
	encInfo        = "elasticache-local s3store " + encVersion + "\x00"
	maxChunkSize   = 16 << 20
	maxChunkCount  = 1 << 32
	encLastChunk   = 1
	encMiddleChunk = 0
)

// ChunkSize is the plaintext bytes per chunk: big enough that the 16-byte
// tag per chunk costs 0.02%, small enough that buffers stay tiny.
const ChunkSize = 64 << 10

// Encrypted is a Store that encrypts objects at rest in another Store.
type Encrypted struct {
	inner Store
	keys  KeyProvider
}

// NewEncrypted returns a Store that encrypts every object it puts into
// inner (chunked AES-256-GCM, streaming both ways) with keys from keys. The
// key id of an object is metadata MetaKMSKeyID given to Put; Get and Stat
// report the plaintext size and the user metadata, not the format's own.
func NewEncrypted(inner Store, keys KeyProvider) Store {
	return &Encrypted{inner: inner, keys: keys}
}

// StaticKeys is a KeyProvider over a fixed map of key ids to 32-byte keys.
func StaticKeys(keys map[string][]byte) KeyProvider {
	keys = maps.Clone(keys)
	return func(id string) ([]byte, error) {
		k, ok := keys[id]
		if !ok {
			return nil, fmt.Errorf("s3store: unknown encryption key id %q", id)
		}
		return k, nil
	}
}

// DerivedKeys is a KeyProvider that accepts any key id and derives its key
// from master, so an emulated KMS needs to store no per-key material.
func DerivedKeys(master []byte) KeyProvider {
	master = append([]byte(nil), master...)
	return func(id string) ([]byte, error) {
		return hkdf.Key(sha256.New, master, nil, "elasticache-local kms key\x00"+id, 32)
	}
}

// Describe implements Store.
func (e *Encrypted) Describe() string { return "encrypted(" + e.inner.Describe() + ")" }

// objectAEAD derives the object's AEAD from its key id and salt.
func (e *Encrypted) objectAEAD(keyID string, salt []byte) (cipher.AEAD, error) {
	master, err := e.keys(keyID)
	if err != nil {
		return nil, fmt.Errorf("s3store: encryption key %q: %w", keyID, err)
	}
	if len(master) != 32 {
		return nil, fmt.Errorf("s3store: encryption key %q has %d bytes, want 32", keyID, len(master))
	}
	key, err := hkdf.Key(sha256.New, master, salt, encInfo+keyID, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// chunkCount is the number of chunks of n plaintext bytes; an empty object
// still has one (empty, last) chunk, so its end is authenticated too.
func chunkCount(n, chunk int64) int64 {
	if n == 0 {
		return 1
	}
	return (n + chunk - 1) / chunk
}

func ciphertextSize(n int64) int64 {
	return encHeaderSize + n + encTagSize*chunkCount(n, ChunkSize)
}

// plaintextSize inverts ciphertextSize; -1 for a size no object can have.
func plaintextSize(c int64) int64 {
	body := c - encHeaderSize
	if body < encTagSize {
		return -1
	}
	k := (body + ChunkSize + encTagSize - 1) / (ChunkSize + encTagSize)
	return body - encTagSize*k
}

// Put implements Store. It encrypts while inner reads, so nothing is
// buffered beyond one chunk.
func (e *Encrypted) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	meta, err := normalizeMetadata(meta)
	if err != nil {
		return Info{}, err
	}
	keyID := meta[MetaKMSKeyID]
	for k := range meta {
		if strings.HasPrefix(k, ReservedMetaPrefix) && k != MetaKMSKeyID {
			return Info{}, fmt.Errorf("%w: key %q is reserved", ErrInvalidMetadata, k)
		}
	}
	if keyID == "" {
		delete(meta, MetaKMSKeyID)
	}
	header := make([]byte, encHeaderSize)
	copy(header, encMagic)
	binary.BigEndian.PutUint32(header[8:], ChunkSize)
	rand.Read(header[12:]) // salt and nonce prefix; crypto/rand never fails
	aead, err := e.objectAEAD(keyID, header[12:44])
	if err != nil {
		return Info{}, err
	}
	enc := newEncryptReader(newExactReader(r, size), aead, header, ChunkSize)
	innerSize := int64(-1)
	innerMeta := maps.Clone(meta)
	innerMeta[metaEncryption] = encVersion
	if size >= 0 {
		innerSize = ciphertextSize(size)
		innerMeta[metaPlainSize] = strconv.FormatInt(size, 10)
	}
	// With an unknown size the plaintext size is not known until the end,
	// after inner has taken the metadata; Stat then computes it from the
	// ciphertext size instead.
	info, err := e.inner.Put(ctx, key, enc, innerSize, innerMeta)
	if err != nil {
		return Info{}, err
	}
	info.Size = enc.plainBytes
	info.Metadata = meta
	return info, nil
}

// outer turns the inner store's Info into the plaintext view; it rejects
// objects not written by Encrypted.
func (e *Encrypted) outer(info Info) (Info, error) {
	if v := info.Metadata[metaEncryption]; v != encVersion {
		return Info{}, fmt.Errorf("s3store: %s: %w: not an object of the %s format (marker %q)", info.Key, ErrCorrupt, encVersion, v)
	}
	size := plaintextSize(info.Size)
	if s, ok := info.Metadata[metaPlainSize]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n != size {
			return Info{}, fmt.Errorf("s3store: %s: %w: plaintext size %q does not fit the stored %d bytes", info.Key, ErrCorrupt, s, info.Size)
		}
	}
	if size < 0 {
		return Info{}, fmt.Errorf("s3store: %s: %w: %d bytes is too short to be encrypted", info.Key, ErrCorrupt, info.Size)
	}
	meta := make(map[string]string, len(info.Metadata))
	for k, v := range info.Metadata {
		if k == MetaKMSKeyID || !strings.HasPrefix(k, ReservedMetaPrefix) {
			meta[k] = v
		}
	}
	info.Size, info.Metadata = size, meta
	return info, nil
}

// Stat implements Store.
func (e *Encrypted) Stat(ctx context.Context, key string) (Info, error) {
	info, err := e.inner.Stat(ctx, key)
	if err != nil {
		return Info{}, err
	}
	return e.outer(info)
}

// Get implements Store. The header is read and checked before Get returns;
// each chunk is released only after its tag verifies, and the reader fails
// with ErrCorrupt on any tampering, reordering or truncation.
func (e *Encrypted) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	rc, info, err := e.inner.Get(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	info, err = e.outer(info)
	if err != nil {
		rc.Close()
		return nil, Info{}, err
	}
	corrupt := func(format string, args ...any) error {
		rc.Close()
		return fmt.Errorf("s3store: %s: %w: "+format, append([]any{key, ErrCorrupt}, args...)...)
	}
	header := make([]byte, encHeaderSize)
	if _, err := io.ReadFull(rc, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, Info{}, corrupt("truncated header")
		}
		rc.Close()
		return nil, Info{}, fmt.Errorf("s3store: get %s: %w", key, err)
	}
	chunk := int64(binary.BigEndian.Uint32(header[8:]))
	if string(header[:8]) != encMagic || chunk == 0 || chunk > maxChunkSize {
		return nil, Info{}, corrupt("bad header")
	}
	aead, err := e.objectAEAD(info.Metadata[MetaKMSKeyID], header[12:44])
	if err != nil {
		rc.Close()
		return nil, Info{}, err
	}
	return newDecryptReader(rc, key, aead, header, int(chunk), info.Size), info, nil
}

// Delete implements Store.
func (e *Encrypted) Delete(ctx context.Context, key string) error {
	return e.inner.Delete(ctx, key)
}

// List implements Store, reporting plaintext sizes (computed from the
// ciphertext sizes, so listing costs no extra request).
func (e *Encrypted) List(ctx context.Context, prefix string) ([]Info, error) {
	infos, err := e.inner.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	for i := range infos {
		infos[i].Size = max(plaintextSize(infos[i].Size), 0)
	}
	return infos, nil
}

var _ Store = (*Encrypted)(nil)

// nonce builds chunk i's nonce from the header's prefix.
func chunkNonce(dst []byte, header []byte, i uint64) {
	copy(dst, header[44:52])
	binary.BigEndian.PutUint32(dst[8:], uint32(i))
}

// encryptReader yields header then sealed chunks of src. It reads one byte
// past a full chunk to learn whether that chunk is the last, carrying the
// byte over to the next chunk.
type encryptReader struct {
	src        io.Reader
	aead       cipher.AEAD
	header     []byte
	plain      []byte // chunk+1 bytes: a chunk and the look-ahead byte
	have       int
	out        []byte // sealed bytes not yet returned
	sealed     []byte // backing array of out
	aad, nonce []byte
	chunk      int
	counter    uint64
	plainBytes int64
	done       bool
	err        error
}

func newEncryptReader(src io.Reader, aead cipher.AEAD, header []byte, chunk int) *encryptReader {
	return &encryptReader{
		src: src, aead: aead, header: header, chunk: chunk,
		plain:  make([]byte, chunk+1),
		out:    header,
		sealed: make([]byte, 0, chunk+encTagSize),
		aad:    append(append(make([]byte, 0, encHeaderSize+1), header...), 0),
		nonce:  make([]byte, aead.NonceSize()),
	}
}

// Read fills p with as many chunks as fit, so that a large buffer means
// few large writes downstream.
func (e *encryptReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.out) == 0 {
			if e.err != nil || e.done {
				break
			}
			e.fill()
			continue
		}
		c := copy(p[n:], e.out)
		e.out = e.out[c:]
		n += c
	}
	if n > 0 {
		return n, nil
	}
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// fill seals the next chunk into out, or records an error.
func (e *encryptReader) fill() {
	n, err := io.ReadFull(e.src, e.plain[e.have:])
	e.have += n
	last := false
	switch {
	case err == nil: // a full chunk and one byte more: not the last
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		e.err = err
		return
	}
	size := min(e.have, e.chunk)
	if e.counter >= maxChunkCount {
		e.err = errors.New("s3store: object too large to encrypt")
		return
	}
	chunkNonce(e.nonce, e.header, e.counter)
	e.aad[encHeaderSize] = encMiddleChunk
	if last {
		e.aad[encHeaderSize] = encLastChunk
	}
	e.out = e.aead.Seal(e.sealed[:0], e.nonce, e.plain[:size], e.aad)
	e.counter++
	e.plainBytes += int64(size)
	if last {
		e.done = true
		return
	}
	e.plain[0] = e.plain[e.chunk]
	e.have = 1
}

// decryptReader opens chunks of src; see encryptReader for the look-ahead.
type decryptReader struct {
	src        io.ReadCloser
	key        string
	aead       cipher.AEAD
	header     []byte
	buf        []byte // chunk+tag+1 bytes
	have       int
	out        []byte
	aad, nonce []byte
	chunk      int
	counter    uint64
	plainBytes int64
	wantBytes  int64
	carry      bool // buf[chunk+tag] holds the next chunk's first byte
	done       bool
	err        error
}

func newDecryptReader(src io.ReadCloser, key string, aead cipher.AEAD, header []byte, chunk int, want int64) *decryptReader {
	return &decryptReader{
		src: src, key: key, aead: aead, header: header, chunk: chunk, wantBytes: want,
		buf:   make([]byte, chunk+encTagSize+1),
		aad:   append(append(make([]byte, 0, encHeaderSize+1), header...), 0),
		nonce: make([]byte, aead.NonceSize()),
	}
}

// Read fills p with as many chunks as fit, so that a large buffer means
// few large writes downstream.
func (d *decryptReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(d.out) == 0 {
			if d.err != nil || d.done {
				break
			}
			d.fill()
			continue
		}
		c := copy(p[n:], d.out)
		d.out = d.out[c:]
		n += c
	}
	if n > 0 {
		return n, nil
	}
	if d.err != nil {
		return 0, d.err
	}
	return 0, io.EOF
}

func (d *decryptReader) corrupt(why string) {
	d.err = fmt.Errorf("s3store: %s: %w: %s", d.key, ErrCorrupt, why)
}

func (d *decryptReader) fill() {
	full := d.chunk + encTagSize
	if d.carry {
		d.buf[0] = d.buf[full]
		d.have, d.carry = 1, false
	}
	n, err := io.ReadFull(d.src, d.buf[d.have:])
	d.have += n
	last := false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		d.err = fmt.Errorf("s3store: get %s: %w", d.key, err)
		return
	}
	size := min(d.have, full)
	if size < encTagSize {
		d.corrupt("truncated")
		return
	}
	chunkNonce(d.nonce, d.header, d.counter)
	d.aad[encHeaderSize] = encMiddleChunk
	if last {
		d.aad[encHeaderSize] = encLastChunk
	}
	// Open in place: the plaintext overwrites the ciphertext it came from.
	plain, oerr := d.aead.Open(d.buf[:0], d.nonce, d.buf[:size], d.aad)
	if oerr != nil {
		d.corrupt(fmt.Sprintf("chunk %d fails authentication", d.counter))
		return
	}
	d.counter++
	d.plainBytes += int64(len(plain))
	if last {
		if d.plainBytes != d.wantBytes {
			d.corrupt(fmt.Sprintf("%d plaintext bytes, metadata says %d", d.plainBytes, d.wantBytes))
			return
		}
		d.out, d.done = plain, true
		return
	}
	// Opening in place left the look-ahead byte at buf[full] untouched;
	// the next fill (which runs only once out is drained) moves it to the
	// front.
	d.out = plain
	d.have = 0
	d.carry = true
}

func (d *decryptReader) Close() error { return d.src.Close() }
