package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/s3store"
)

// Keys used by RunEncrypted's stores: the default key (id "") and one named
// key. newStores must build the encrypted store with TestKeys.
var (
	DefaultKey = bytes.Repeat([]byte{0x11}, 32)
	NamedKey   = bytes.Repeat([]byte{0x22}, 32)
	// NamedKeyID is a key id as the emulator would pass it: a KMS key ARN.
	NamedKeyID = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	// TestKeys is the KeyProvider RunEncrypted expects.
	TestKeys = s3store.StaticKeys(map[string][]byte{"": DefaultKey, NamedKeyID: NamedKey, "same-as-default": DefaultKey})
)

// RunEncrypted checks an encrypted store: newStores returns an empty
// s3store.NewEncrypted(inner, TestKeys) and the inner store, which the test
// reads and rewrites to play the attacker with access to the stored bytes.
func RunEncrypted(t *testing.T, newStores func(t *testing.T) (enc, inner s3store.Store)) {
	t.Run("CiphertextHidesPlaintext", func(t *testing.T) {
		enc, inner := newStores(t)
		marker := []byte("PLAINTEXT-MARKER-that-must-not-leak-")
		plain := append([]byte(RDBMagic), bytes.Repeat(marker, 5000)...)
		MustPut(t, enc, "c/dump.rdb", plain, map[string]string{"k": "v"})
		raw, _ := MustGet(t, inner, "c/dump.rdb")
		CheckCiphertext(t, raw, plain, marker)
		st, err := enc.Stat(ctxT(t), "c/dump.rdb")
		if err != nil || st.Size != int64(len(plain)) {
			t.Errorf("Stat: %+v, %v; want the plaintext size %d", st, err, len(plain))
		}
		wantMeta(t, "Stat", st.Metadata, map[string]string{"k": "v"})
		list, err := enc.List(ctxT(t), "c/")
		if err != nil || len(list) != 1 || list[0].Size != int64(len(plain)) {
			t.Errorf("List: %+v, %v; want one object of %d bytes", list, err, len(plain))
		}
	})

	t.Run("Tampering", func(t *testing.T) {
		enc, inner := newStores(t)
		const chunk = s3store.ChunkSize
		plain := Bytes(5, 3*chunk+1000) // three full chunks and a short one
		MustPut(t, enc, "t/k", plain, nil)
		raw, _ := MustGet(t, inner, "t/k")
		rawInfo, err := inner.Stat(ctxT(t), "t/k")
		if err != nil {
			t.Fatal(err)
		}
		const header = 52
		full := chunk + 16
		mutations := map[string]func([]byte) []byte{
			"flip magic":           flip(0),
			"flip chunk size":      flip(11),
			"flip salt":            flip(20),
			"flip nonce prefix":    flip(47),
			"flip first chunk":     flip(header + 5),
			"flip first tag":       flip(header + full - 1),
			"flip last chunk":      flip(header + 3*full + 10),
			"flip last byte":       func(b []byte) []byte { return flip(len(b) - 1)(b) },
			"truncate to nothing":  cut(0),
			"truncate in header":   cut(10),
			"truncate to header":   cut(header),
			"truncate mid-chunk":   cut(header + 100),
			"truncate at boundary": cut(header + full),
			"truncate 2 chunks":    cut(header + 2*full),
			"drop last byte":       func(b []byte) []byte { return b[:len(b)-1] },
			"append a byte":        func(b []byte) []byte { return append(b, 0) },
			"append a chunk":       func(b []byte) []byte { return append(b, b[header:header+full]...) },
			"swap chunks 0 and 1": func(b []byte) []byte {
				c0 := append([]byte(nil), b[header:header+full]...)
				copy(b[header:], b[header+full:header+2*full])
				copy(b[header+full:], c0)
				return b
			},
			"drop middle chunk": func(b []byte) []byte {
				return append(b[:header+full:header+full], b[header+2*full:]...)
			},
		}
		// Each mutation is tried with the stored metadata, and without the
		// plaintext size in it (as after a Put of unknown size), so that the
		// size check alone cannot be what catches a truncation.
		noSize := map[string]string{}
		for k, v := range rawInfo.Metadata {
			if k != sizeKey(t, rawInfo.Metadata) {
				noSize[k] = v
			}
		}
		for name, mutate := range mutations {
			for _, meta := range []map[string]string{rawInfo.Metadata, noSize} {
				bad := mutate(append([]byte(nil), raw...))
				if _, err := inner.Put(ctxT(t), "t/k", bytes.NewReader(bad), int64(len(bad)), meta); err != nil {
					t.Fatalf("%s: rewrite the stored object: %v", name, err)
				}
				got, err := ReadAll(ctxT(t), enc, "t/k")
				if !errors.Is(err, s3store.ErrCorrupt) {
					t.Errorf("%s (%d metadata keys): Get read %d bytes and returned %v, want ErrCorrupt", name, len(meta), len(got), err)
				}
			}
		}
		// Untouched bytes read back fine: the failures above are the
		// mutations' doing.
		if _, err := inner.Put(ctxT(t), "t/k", bytes.NewReader(raw), int64(len(raw)), rawInfo.Metadata); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadAll(ctxT(t), enc, "t/k"); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("Get of the restored object: %d bytes, %v", len(got), err)
		}
	})

	t.Run("MetadataTampering", func(t *testing.T) {
		enc, inner := newStores(t)
		MustPut(t, enc, "m/k", Bytes(6, 1000), nil)
		raw, _ := MustGet(t, inner, "m/k")
		rawInfo, err := inner.Stat(ctxT(t), "m/k")
		if err != nil {
			t.Fatal(err)
		}
		rewrite := func(change func(map[string]string)) {
			t.Helper()
			meta := map[string]string{}
			for k, v := range rawInfo.Metadata {
				meta[k] = v
			}
			change(meta)
			if _, err := inner.Put(ctxT(t), "m/k", bytes.NewReader(raw), int64(len(raw)), meta); err != nil {
				t.Fatal(err)
			}
		}
		// Another key id naming the same key bytes: the key id is bound
		// into the object key, so this fails too.
		rewrite(func(m map[string]string) { m[s3store.MetaKMSKeyID] = "same-as-default" })
		if got, err := ReadAll(ctxT(t), enc, "m/k"); !errors.Is(err, s3store.ErrCorrupt) {
			t.Errorf("changed key id: read %d bytes, %v; want ErrCorrupt", len(got), err)
		}
		rewrite(func(m map[string]string) { m[sizeKey(t, rawInfo.Metadata)] = "999" })
		if _, err := enc.Stat(ctxT(t), "m/k"); !errors.Is(err, s3store.ErrCorrupt) {
			t.Errorf("changed plaintext size: Stat %v, want ErrCorrupt", err)
		}
		// An object the encrypted store did not write is refused.
		MustPut(t, inner, "m/plain", []byte("REDIS0011 not encrypted"), nil)
		if _, _, err := enc.Get(ctxT(t), "m/plain"); !errors.Is(err, s3store.ErrCorrupt) {
			t.Errorf("Get of a plaintext object: %v, want ErrCorrupt", err)
		}
	})

	t.Run("Keys", func(t *testing.T) {
		enc, inner := newStores(t)
		plain := Bytes(8, 70000)
		meta := map[string]string{s3store.MetaKMSKeyID: NamedKeyID, "a": "b"}
		MustPut(t, enc, "k/named", plain, meta)
		got, info := MustGet(t, enc, "k/named")
		if !bytes.Equal(got, plain) {
			t.Errorf("Get with a named key: %d bytes differ", len(got))
		}
		wantMeta(t, "Get with a named key", info.Metadata, meta)

		// A store whose keys differ cannot read it, and says so.
		wrong := s3store.NewEncrypted(inner, s3store.StaticKeys(map[string][]byte{
			"": NamedKey, NamedKeyID: DefaultKey,
		}))
		if got, err := ReadAll(ctxT(t), wrong, "k/named"); !errors.Is(err, s3store.ErrCorrupt) {
			t.Errorf("wrong named key: read %d bytes, %v; want ErrCorrupt", len(got), err)
		}
		MustPut(t, enc, "k/default", plain, nil)
		if got, err := ReadAll(ctxT(t), wrong, "k/default"); !errors.Is(err, s3store.ErrCorrupt) {
			t.Errorf("wrong default key: read %d bytes, %v; want ErrCorrupt", len(got), err)
		}
		none := s3store.NewEncrypted(inner, s3store.StaticKeys(nil))
		if _, err := ReadAll(ctxT(t), none, "k/default"); err == nil {
			t.Error("Get without the key succeeded")
		}
		if _, err := enc.Put(ctxT(t), "k/x", bytes.NewReader(plain), int64(len(plain)),
			map[string]string{s3store.MetaKMSKeyID: "unknown-key"}); err == nil {
			t.Error("Put with an unknown key id succeeded")
		}
		if _, err := enc.Put(ctxT(t), "k/x", bytes.NewReader(plain), int64(len(plain)),
			map[string]string{"x-ec-local-plaintext-size": "1"}); !errors.Is(err, s3store.ErrInvalidMetadata) {
			t.Errorf("Put with reserved metadata: %v, want ErrInvalidMetadata", err)
		}
		short := s3store.NewEncrypted(inner, func(string) ([]byte, error) { return []byte("short"), nil })
		if _, err := short.Put(ctxT(t), "k/x", bytes.NewReader(plain), int64(len(plain)), nil); err == nil {
			t.Error("Put with a 5-byte key succeeded")
		}
		if _, err := inner.Stat(ctxT(t), "k/x"); !errors.Is(err, s3store.ErrNotFound) {
			t.Errorf("failed Puts left k/x behind: %v", err)
		}
	})
}

// CheckCiphertext checks stored bytes of plain: not the RDB magic up front,
// no marker anywhere, and not smaller than the plaintext.
func CheckCiphertext(t *testing.T, stored, plain, marker []byte) {
	t.Helper()
	if bytes.HasPrefix(stored, []byte("REDIS")) {
		t.Error("stored object starts with the RDB magic")
	}
	if bytes.Contains(stored, marker) {
		t.Error("stored object contains the plaintext marker")
	}
	if bytes.Contains(stored, plain[:64]) {
		t.Error("stored object contains the plaintext's first 64 bytes")
	}
	if len(stored) <= len(plain) {
		t.Errorf("stored object has %d bytes, no more than the %d of plaintext: no room for authentication", len(stored), len(plain))
	}
}

// sizeKey finds the stored metadata key that carries the plaintext size.
func sizeKey(t *testing.T, meta map[string]string) string {
	t.Helper()
	for k := range meta {
		if strings.HasPrefix(k, s3store.ReservedMetaPrefix) && strings.Contains(k, "size") {
			return k
		}
	}
	t.Fatalf("no plaintext size in the stored metadata %v", meta)
	return ""
}

func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte { b[i] ^= 0x01; return b }
}

func cut(n int) func([]byte) []byte {
	return func(b []byte) []byte { return b[:n] }
}
