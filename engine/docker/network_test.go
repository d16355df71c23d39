package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestAutoKeepsBridgeContainers: NetworkAuto stays on the bridge network
// while the scope has containers there (an earlier run's, to be adopted:
// a node on the host's network could not reach them), and takes the host's
// network once none is left.
func TestAutoKeepsBridgeContainers(t *testing.T) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-automode-%d", os.Getpid())
	assertNoLeftovers(t, cli, scope)
	dataDir := t.TempDir()
	auto := func(id string) *Runtime {
		return newTestRuntime(t, Options{EmulatorID: scope + "-" + id, Scope: scope, DataDir: dataDir, NetworkMode: NetworkAuto})
	}
	if !auto("probe").HostNetwork() {
		t.Skip("the host's network is not the emulator's here")
	}
	bridge := newTestRuntime(t, Options{EmulatorID: scope + "-bridge", Scope: scope, DataDir: dataDir, NetworkMode: NetworkBridge})
	ep, err := testPool(t).Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testPool(t).Release(ep) })
	const name = "automode"
	t.Cleanup(func() {
		if err := bridge.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			t.Error(err)
		}
	})
	if _, err := bridge.Start(t.Context(), engine.NodeSpec{Name: name, Engine: "redis", EngineVersion: "7.0", Endpoint: ep}); err != nil {
		t.Fatal(err)
	}
	if auto("beside").HostNetwork() {
		t.Error("auto chose the host's network beside a container of the scope on its bridge network")
	}
	if err := bridge.Stop(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if !auto("after").HostNetwork() {
		t.Error("auto stayed on the bridge network with no container of the scope left there")
	}
}
