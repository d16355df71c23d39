package s3store_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/storetest"
)

func TestEncryptedDir(t *testing.T) {
	storetest.Run(t, func(t *testing.T) s3store.Store {
		return s3store.NewEncrypted(newDir(t), storetest.TestKeys)
	})
	storetest.RunEncrypted(t, func(t *testing.T) (s3store.Store, s3store.Store) {
		d := newDir(t)
		return s3store.NewEncrypted(d, storetest.TestKeys), d
	})
}

// TestEncryptedDirOnDisk looks at the file the directory store wrote, as an
// operator with the data directory would.
func TestEncryptedDirOnDisk(t *testing.T) {
	d := newDir(t)
	enc := s3store.NewEncrypted(d, storetest.TestKeys)
	marker := []byte("ON-DISK-MARKER-which-must-stay-hidden")
	plain := append([]byte(storetest.RDBMagic), bytes.Repeat(marker, 10000)...)
	storetest.MustPut(t, enc, "snapshots/x/0001.rdb", plain, nil)
	p, err := d.ObjectPath("snapshots/x/0001.rdb")
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckCiphertext(t, onDisk, plain, marker)
	if got := enc.Describe(); got != "encrypted("+d.Describe()+")" {
		t.Errorf("Describe: %q", got)
	}

	// The same plaintext put twice is stored differently (fresh salt and
	// nonce prefix per object).
	storetest.MustPut(t, enc, "snapshots/x/0002.rdb", plain, nil)
	p2, _ := d.ObjectPath("snapshots/x/0002.rdb")
	again, _ := os.ReadFile(p2)
	if bytes.Equal(onDisk[:4096], again[:4096]) {
		t.Error("two puts of the same plaintext produced the same ciphertext")
	}
}

func TestDerivedKeys(t *testing.T) {
	keys := s3store.DerivedKeys([]byte("master secret of the emulator"))
	a1, err1 := keys("alias/a")
	a2, err2 := keys("alias/a")
	b, err3 := keys("alias/b")
	if err1 != nil || err2 != nil || err3 != nil || len(a1) != 32 || !bytes.Equal(a1, a2) || bytes.Equal(a1, b) {
		t.Fatalf("DerivedKeys: %x %x %x (%v %v %v)", a1, a2, b, err1, err2, err3)
	}
	enc := s3store.NewEncrypted(newDir(t), keys)
	data := storetest.Bytes(1, 100000)
	storetest.MustPut(t, enc, "k", data, map[string]string{s3store.MetaKMSKeyID: "alias/anything"})
	if got, err := storetest.ReadAll(context.Background(), enc, "k"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("round trip with derived keys: %d bytes, %v", len(got), err)
	}
}
