package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Environment of the dying emulator TestNodesSurviveKill9 runs: the test
// binary itself, re-executed.
const (
	dyingDataDirEnv = "ELASTICACHE_LOCAL_TEST_DYING_DATA_DIR"
	dyingNodesEnv   = "ELASTICACHE_LOCAL_TEST_DYING_NODES" // name=host:port,...
	dyingPausedNode = "survivor-paused"
)

// TestNodesSurviveKill9 starts nodes from another process, as the emulator
// does, one of them paused, and kills that process with SIGKILL. The nodes
// must outlive it, each in a process group of its own, and a runtime of a
// new process must adopt them with the credentials LoadAdmin persisted
// (the paused one paused again: the kernel continues it when its parent
// dies, see setProcAttrs), keep their data, and stop them.
func TestNodesSurviveKill9(t *testing.T) {
	if os.Getenv(dyingDataDirEnv) != "" {
		runDyingEmulator(t)
		return
	}
	if !hasProc {
		t.Skip("needs /proc to check process groups")
	}
	dataDir := t.TempDir()
	pool, err := engine.NewAddressPool("127.0.62.200")
	if err != nil {
		t.Fatal(err)
	}
	eps := map[string]engine.Endpoint{}
	var arg []string
	for _, name := range []string{"survivor", dyingPausedNode} {
		ep, err := pool.Allocate(6379)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Release(ep) })
		eps[name] = ep
		arg = append(arg, name+"="+ep.Addr())
	}
	// Whatever happens, nothing of the data dir outlives the test.
	t.Cleanup(func() {
		if _, err := newTestRuntime(t, dataDir, "sweeper").Reap(context.Background()); err != nil {
			t.Errorf("cleanup: Reap: %v", err)
		}
	})

	cmd := exec.Command(os.Args[0], "-test.run=^TestNodesSurviveKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), dyingDataDirEnv+"="+dataDir, dyingNodesEnv+"="+strings.Join(arg, ","))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the dying emulator ended with %v, want SIGKILL; output:\n%s", err, out.String())
	}

	admin, err := engine.LoadAdmin(filepath.Join(dataDir, "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: "next", Admin: admin})
	a, err := rt.Adopt(t.Context(), func(engine.Node) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Running) != 2 || len(a.Stopped) != 0 || a.Reaped != 0 {
		t.Fatalf("Adopt after the emulator's SIGKILL: %+v; want both nodes running\n%s", a, out.String())
	}
	for _, n := range a.Running {
		if n.Paused != (n.Name == dyingPausedNode) {
			t.Errorf("adopted %s: paused %v, want %v", n.Name, n.Paused, n.Name == dyingPausedNode)
		}
		if !processStopped(n.PID) != !n.Paused {
			t.Errorf("adopted %s: process stopped %v, Paused %v", n.Name, processStopped(n.PID), n.Paused)
		}
		if pgrp := processGroupOf(t, n.PID); pgrp != n.PID {
			t.Errorf("node %s (pid %d) is in process group %d, want a group of its own", n.Name, n.PID, pgrp)
		}
	}
	if err := rt.Resume(t.Context(), dyingPausedNode); err != nil {
		t.Fatal(err)
	}
	for name, ep := range eps {
		var got string
		err := rt.Admin().WithClient(t.Context(), ep, func(ctx context.Context, c *redis.Client) error {
			got, err = c.Get(ctx, "written-by").Result()
			return err
		})
		if err != nil || got != "dying-emulator" {
			t.Errorf("node %s: GET with the persisted admin credentials = %q, %v", name, got, err)
		}
		if err := rt.Stop(t.Context(), name); err != nil {
			t.Errorf("Stop %s: %v", name, err)
		}
	}
}

// runDyingEmulator is the emulator of TestNodesSurviveKill9: it starts the
// nodes, writes a key into each, pauses one and kills itself.
func runDyingEmulator(t *testing.T) {
	dataDir := os.Getenv(dyingDataDirEnv)
	admin, err := engine.LoadAdmin(filepath.Join(dataDir, "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: "dying", Admin: admin})
	for _, kv := range strings.Split(os.Getenv(dyingNodesEnv), ",") {
		name, addr, _ := strings.Cut(kv, "=")
		host, port, _ := strings.Cut(addr, ":")
		p, _ := strconv.Atoi(port)
		ep := engine.Endpoint{Host: host, Port: p}
		if _, err := rt.Start(t.Context(), engine.NodeSpec{Name: name, Endpoint: ep}); err != nil {
			t.Fatal(err)
		}
		if err := admin.WithClient(t.Context(), ep, func(ctx context.Context, c *redis.Client) error {
			return c.Set(ctx, "written-by", "dying-emulator", 0).Err()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Pause(t.Context(), dyingPausedNode); err != nil {
		t.Fatal(err)
	}
	fmt.Println("nodes started; dying")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// processGroupOf returns the process group id of pid (field 5 of
// /proc/<pid>/stat).
func processGroupOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state ppid
	// pgrp session ...
	i := bytes.LastIndexByte(b, ')')
	sc := bufio.NewScanner(bytes.NewReader(b[i+1:]))
	sc.Split(bufio.ScanWords)
	var fields []string
	for sc.Scan() {
		fields = append(fields, sc.Text())
	}
	if len(fields) < 3 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	pgrp, _ := strconv.Atoi(fields[2])
	return pgrp
}
