package process

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestReportExits: a node killed from outside is reported by name, and
// Inspect already reports it not running when the report comes.
func TestReportExits(t *testing.T) {
	rt := newTestRuntime(t, t.TempDir(), fmt.Sprintf("process-exits-%d", os.Getpid()))
	pool, err := engine.NewAddressPool("127.0.63.2")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := pool.Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	exits := make(chan string, 4)
	rt.ReportExits(func(name string) { exits <- name })
	node, err := rt.Start(t.Context(), engine.NodeSpec{Name: "exits-0001", Engine: "redis", EngineVersion: "7.0", Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(t.Context(), node.Name) })
	if err := syscall.Kill(node.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-exits:
		if name != node.Name {
			t.Fatalf("reported %q, want %q", name, node.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the exit of a killed node was not reported")
	}
	got, err := rt.Inspect(t.Context(), node.Name)
	if err != nil || got.Running {
		t.Fatalf("Inspect after the report = %+v, %v; want not running", got, err)
	}
}
