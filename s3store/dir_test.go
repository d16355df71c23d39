package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/s3store"
	"github.com/elasticache-local/elasticache-local/s3store/storetest"
)

func newDir(t *testing.T) *s3store.Dir {
	t.Helper()
	d, err := s3store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDir(t *testing.T) {
	storetest.Run(t, func(t *testing.T) s3store.Store { return newDir(t) })
}

func TestDirLayout(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if got := d.Describe(); got != "dir:"+d.Root() {
		t.Errorf("Describe: %q", got)
	}
	data := storetest.Bytes(1, 5000)
	storetest.MustPut(t, d, "snapshots/a/0001.rdb", data, map[string]string{"k": "v"})

	// The object is a plain file holding exactly the bytes put.
	p, err := d.ObjectPath("snapshots/a/0001.rdb")
	if err != nil {
		t.Fatal(err)
	}
	if onDisk, err := os.ReadFile(p); err != nil || !bytes.Equal(onDisk, data) {
		t.Errorf("file %s: %d bytes, %v; want the %d bytes put", p, len(onDisk), err, len(data))
	}
	if _, err := d.ObjectPath("../x"); !errors.Is(err, s3store.ErrInvalidKey) {
		t.Errorf("ObjectPath(../x): %v", err)
	}
	// Nothing is left in tmp/ after puts, failed ones included.
	d.Put(ctx, "snapshots/a/0002.rdb", storetest.FailAfter(1, 1000), -1, nil)
	if left, _ := os.ReadDir(filepath.Join(d.Root(), "tmp")); len(left) != 0 {
		t.Errorf("tmp/ holds %d files after the puts", len(left))
	}

	// Delete prunes the directories it emptied, in both trees.
	if err := d.Delete(ctx, "snapshots/a/0001.rdb"); err != nil {
		t.Fatal(err)
	}
	for _, tree := range []string{"objects", "meta"} {
		if _, err := os.Stat(filepath.Join(d.Root(), tree, "snapshots")); !os.IsNotExist(err) {
			t.Errorf("%s/snapshots still exists after the last object under it was deleted (%v)", tree, err)
		}
	}
}

// TestDirPrefixConflict: a directory store cannot hold "a" and "a/b" at
// once (S3 can); the second put fails cleanly and the first object stays.
func TestDirPrefixConflict(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	storetest.MustPut(t, d, "a", []byte("file"), nil)
	if _, err := d.Put(ctx, "a/b", strings.NewReader("x"), 1, nil); !errors.Is(err, s3store.ErrInvalidKey) {
		t.Errorf("Put a/b over object a: %v, want ErrInvalidKey", err)
	}
	storetest.MustPut(t, d, "c/d", []byte("x"), nil)
	if _, err := d.Put(ctx, "c", strings.NewReader("x"), 1, nil); !errors.Is(err, s3store.ErrInvalidKey) {
		t.Errorf("Put c over prefix c/: %v, want ErrInvalidKey", err)
	}
	if got, _ := storetest.MustGet(t, d, "a"); string(got) != "file" {
		t.Errorf("a: %q", got)
	}
	if left, _ := os.ReadDir(filepath.Join(d.Root(), "tmp")); len(left) != 0 {
		t.Errorf("tmp/ holds %d files after the failed puts", len(left))
	}
}

// TestDirCrashLeftovers plays what a crash leaves: a stale temporary file,
// which NewDir removes, and an object whose sidecar belongs to an older put,
// which is reported as corrupt instead of served with the wrong metadata.
func TestDirCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := s3store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "tmp", "put-stale")
	fresh := filepath.Join(root, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half a snapshot"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	if _, err := s3store.NewDir(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file survived NewDir: %v", err)
	}
	// A fresh one may belong to a put in progress in another process.
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}

	storetest.MustPut(t, d, "k", []byte("new object"), map[string]string{"gen": "2"})
	p, _ := d.ObjectPath("k")
	if err := os.WriteFile(p, []byte("an object of another size"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "k"); !errors.Is(err, s3store.ErrCorrupt) {
		t.Errorf("Stat with a mismatched sidecar: %v, want ErrCorrupt", err)
	}
	if _, _, err := d.Get(ctx, "k"); !errors.Is(err, s3store.ErrCorrupt) {
		t.Errorf("Get with a mismatched sidecar: %v, want ErrCorrupt", err)
	}
	// Delete still works, and a new put repairs the key.
	if err := d.Delete(ctx, "k"); err != nil {
		t.Errorf("Delete: %v", err)
	}

	// A file copied in by hand (no sidecar) is an object without metadata.
	hand := filepath.Join(root, "objects", "imported", "dump.rdb")
	os.MkdirAll(filepath.Dir(hand), 0o755)
	if err := os.WriteFile(hand, []byte("REDIS0011..."), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stat(ctx, "imported/dump.rdb")
	if err != nil || st.Size != 12 || len(st.Metadata) != 0 {
		t.Errorf("Stat of a hand-copied file: %+v, %v", st, err)
	}
}

func TestNewDirErrors(t *testing.T) {
	if _, err := s3store.NewDir(""); err == nil {
		t.Error("NewDir(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := s3store.NewDir(file); err == nil {
		t.Error("NewDir on a file succeeded")
	}
}

// TestDirFileModes: snapshots are readable by their owner only, in a new
// store and in one an older version created 0755/0644.
func TestDirFileModes(t *testing.T) {
	root := t.TempDir()
	for _, sub := range []string{"objects", "meta", "tmp"} {
		os.MkdirAll(filepath.Join(root, sub), 0o755)
	}
	os.Chmod(root, 0o755)
	d, err := s3store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	storetest.MustPut(t, d, "snapshots/acct/region/name/0001.rdb", []byte("REDIS0011"), map[string]string{"k": "v"})
	err = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := e.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirRemovesTempsOfDeadRun: a temporary file of a put cut off by a
// crash is removed by the next NewDir at once (not an hour later) when no
// other Dir has the root open; while one has, a fresh temp may be its put in
// progress and stays.
func TestDirRemovesTempsOfDeadRun(t *testing.T) {
	root := t.TempDir()
	d, err := s3store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(root, "tmp", "put-interrupted")
	if err := os.WriteFile(temp, []byte("half a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := s3store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(temp); err != nil || second.RemovedTemps() != 0 {
		t.Fatalf("a fresh temp removed while another Dir has the root open: %v (removed %d)", err, second.RemovedTemps())
	}
	second.Close()
	d.Close()
	// Every Dir on the root is gone (as after kill -9): the temp is dead.
	third, err := s3store.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := os.Stat(temp); !os.IsNotExist(err) || third.RemovedTemps() != 1 {
		t.Fatalf("temp of a dead run survived NewDir: %v (removed %d)", err, third.RemovedTemps())
	}
	// The store works after the cleanup.
	storetest.MustPut(t, third, "k", []byte("v"), nil)
}

// TestDirGetObjectAfterCrashBetweenRenames: Put renames the object into
// place before its sidecar; a crash between the two leaves the new object
// beside the old sidecar. Get reports it corrupt (the sizes differ);
// GetObject reads the object, which is whole.
func TestDirGetObjectAfterCrashBetweenRenames(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	storetest.MustPut(t, d, "snapshots/a/snapshot.json", []byte(`{"status":"creating"}`), nil)
	p, err := d.ObjectPath("snapshots/a/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	newer := []byte(`{"status":"available"}`)
	if err := os.WriteFile(p, newer, 0o600); err != nil { // the object renamed, the sidecar not
		t.Fatal(err)
	}
	if _, _, err := d.Get(ctx, "snapshots/a/snapshot.json"); !errors.Is(err, s3store.ErrCorrupt) {
		t.Fatalf("Get after the crash: %v, want ErrCorrupt", err)
	}
	var og s3store.ObjectGetter = d
	rc, err := og.GetObject(ctx, "snapshots/a/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, newer) {
		t.Fatalf("GetObject = %q, %v; want %q", got, err, newer)
	}
	if _, err := og.GetObject(ctx, "../x"); !errors.Is(err, s3store.ErrInvalidKey) {
		t.Errorf("GetObject(../x): %v", err)
	}
}
