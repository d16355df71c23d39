package integration

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// TestDataDirPrivate: the data dir an emulator creates, and (on the process
// runtime) every node directory and node file in it, are the user's only.
func TestDataDirPrivate(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(cfg.DataDir, "data")
	srv, err := emulator.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	node := createStandalone(t, newClient(srv.URL(), "us-east-1"), "private")
	if err := node.Set(ctxT(t, 10*time.Second), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := node.Save(ctxT(t, 10*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode %v, want %v", got, fs.FileMode(0o700))
	}
	if cfg.Runtime != "process" {
		return // node files live inside the containers
	}
	nodes := 0
	err = filepath.WalkDir(filepath.Join(cfg.DataDir, "nodes"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else if d.Name() == "dump.rdb" {
			nodes++
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nodes != 1 {
		t.Errorf("found %d dump.rdb files under the nodes directory, want 1", nodes)
	}
}
