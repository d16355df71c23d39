package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// startTestNodes starts one node per name on rt, on endpoints of pool.
func startTestNodes(t *testing.T, rt *Runtime, pool *engine.AddressPool, names ...string) map[string]engine.Endpoint {
	t.Helper()
	eps := make(map[string]engine.Endpoint)
	for _, name := range names {
		ep, err := pool.Allocate(6379)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Release(ep) })
		t.Cleanup(func() {
			if err := rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
				t.Errorf("cleanup: Stop %s: %v", name, err)
			}
		})
		if _, err := rt.Start(t.Context(), engine.NodeSpec{Name: name, Endpoint: ep}); err != nil {
			t.Fatalf("Start %s: %v", name, err)
		}
		eps[name] = ep
	}
	return eps
}

// unrecordPID makes node name's label say pid 0, as an emulator killed
// between writing the label and recording the pid leaves it.
func unrecordPID(t *testing.T, rt *Runtime, name string) {
	t.Helper()
	lbl, err := readLabel(rt.NodeDir(name))
	if err != nil {
		t.Fatal(err)
	}
	lbl.PID = 0
	if err := writeLabel(rt.NodeDir(name), lbl); err != nil {
		t.Fatal(err)
	}
}

// serversOfDir lists the live processes whose command line mentions dir.
func serversOfDir(t *testing.T, dir string) map[int]string {
	t.Helper()
	procs, err := listProcesses()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]string)
	for pid, cmdline := range procs {
		if strings.Contains(cmdline, dir) && strings.Contains(cmdline, "-server") {
			out[pid] = cmdline
		}
	}
	return out
}

// TestReapUnrecordedServers recreates what an emulator killed at each
// instant of a start leaves behind, and has the next run Reap: every server
// goes, whether its label has a pid, no pid, or is missing with or without
// its directory; a program that merely reads a node's redis.conf is no
// server and lives on.
func TestReapUnrecordedServers(t *testing.T) {
	dataDir := t.TempDir()
	crashed := newTestRuntime(t, dataDir, "crashed-run")
	pool, err := engine.NewAddressPool("127.0.62.2")
	if err != nil {
		t.Fatal(err)
	}
	eps := startTestNodes(t, crashed, pool, "labelled", "no-pid", "no-label", "no-dir")

	unrecordPID(t, crashed, "no-pid")
	// Killed before the label existed (how earlier versions ordered a
	// start), and the same after an earlier reaper removed the directory.
	if err := os.Remove(filepath.Join(crashed.NodeDir("no-label"), labelFileName)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(crashed.NodeDir("no-dir")); err != nil {
		t.Fatal(err)
	}
	// Not a server: a reader of a node's configuration.
	readerDir := filepath.Join(dataDir, "nodes", "reader")
	if err := os.MkdirAll(readerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	readerConf := filepath.Join(readerDir, confFileName)
	if err := os.WriteFile(readerConf, []byte("port 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reader := exec.Command("tail", "-f", readerConf)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	t.Cleanup(func() {
		reader.Process.Kill()
		<-readerDone
	})
	if n := len(serversOfDir(t, dataDir)); n != len(eps) {
		t.Fatalf("%d servers of the data dir before Reap, want %d", n, len(eps))
	}

	next := newTestRuntime(t, dataDir, "next-run")
	n, err := next.Reap(t.Context())
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if n != len(eps) {
		t.Errorf("Reap reported %d nodes, want %d", n, len(eps))
	}
	if left := serversOfDir(t, dataDir); len(left) > 0 {
		t.Errorf("servers of the data dir left after Reap: %v", left)
	}
	for name, ep := range eps {
		c := redis.NewClient(&redis.Options{Addr: ep.Addr(), MaxRetries: -1, DialTimeout: time.Second})
		if err := c.Ping(t.Context()).Err(); err == nil {
			t.Errorf("node %s still answers on %s after Reap", name, ep.Addr())
		}
		c.Close()
	}
	select {
	case err := <-readerDone:
		readerDone <- err
		t.Errorf("Reap killed a process that only reads a node's redis.conf: %v", err)
	default:
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "nodes")); len(entries) > 0 {
		t.Errorf("node directories left after Reap: %v", entries)
	}
}

// TestStopUnrecordedServer: Stop of a node whose label has no pid (a start
// cut short) stops the server that runs anyway.
func TestStopUnrecordedServer(t *testing.T) {
	dataDir := t.TempDir()
	crashed := newTestRuntime(t, dataDir, "crashed-run")
	pool, err := engine.NewAddressPool("127.0.62.100")
	if err != nil {
		t.Fatal(err)
	}
	startTestNodes(t, crashed, pool, "no-pid")
	unrecordPID(t, crashed, "no-pid")
	next := newTestRuntime(t, dataDir, "next-run")
	if err := next.Stop(t.Context(), "no-pid"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if left := serversOfDir(t, dataDir); len(left) > 0 {
		t.Errorf("servers left after Stop: %v", left)
	}
}

// TestNodeFilesPrivate: the nodes directory, node directories and every file
// of a node (configuration, label, log, the RDB the server saves and the one
// a node is seeded with) are the user's only.
func TestNodeFilesPrivate(t *testing.T) {
	dataDir := t.TempDir()
	rt := newTestRuntime(t, dataDir, "modes")
	pool, err := engine.NewAddressPool("127.0.62.150")
	if err != nil {
		t.Fatal(err)
	}
	eps := startTestNodes(t, rt, pool, "modes")
	c := redis.NewClient(&redis.Options{Addr: eps["modes"].Addr()})
	defer c.Close()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	rdb, err := os.ReadFile(filepath.Join(rt.NodeDir("modes"), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := pool.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Release(ep)
	t.Cleanup(func() { rt.Stop(context.Background(), "seeded") })
	if _, err := rt.Start(t.Context(), engine.NodeSpec{Name: "seeded", Endpoint: ep, InitialRDB: strings.NewReader(string(rdb))}); err != nil {
		t.Fatal(err)
	}

	want := map[string]os.FileMode{
		filepath.Join(dataDir, "nodes"):                 0o700,
		rt.NodeDir("modes"):                             0o700,
		rt.NodeDir("seeded"):                            0o700,
		filepath.Join(rt.NodeDir("seeded"), "dump.rdb"): 0o600,
	}
	for _, f := range []string{confFileName, labelFileName, logFileName, "dump.rdb"} {
		want[filepath.Join(rt.NodeDir("modes"), f)] = 0o600
	}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %v, want %v", path, got, mode)
		}
	}
}
