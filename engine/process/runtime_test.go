package process

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/enginetest"
)

// addressBase keeps this package's nodes on addresses of their own
// (127.0.61.x is the docker runtime's), so test binaries running in
// parallel never collide.
const addressBase = "127.0.60.2"

// newTestRuntime returns a Runtime over dataDir, closed when the test ends.
// Without a redis-server it skips, unless CI is set.
func newTestRuntime(t *testing.T, dataDir, emulatorID string) *Runtime {
	t.Helper()
	return newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: emulatorID})
}

// newTestRuntimeWith is newTestRuntime with more options.
func newTestRuntimeWith(t *testing.T, opts Options) *Runtime {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	rt, err := New(opts)
	if errors.Is(err, ErrServerNotFound) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestContract(t *testing.T) {
	dataDir := t.TempDir()
	rt := newTestRuntime(t, dataDir, fmt.Sprintf("process-contract-%d", os.Getpid()))
	pool, err := engine.NewAddressPool(addressBase)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every node the suite started is gone, records included.
		rest, err := rt.List(t.Context())
		if err != nil || len(rest) > 0 {
			t.Errorf("after the suite: List = %+v, %v; want no nodes", rest, err)
		}
	})
	enginetest.Run(t, rt, pool, func(t *testing.T, id string) engine.Runtime {
		return newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: id, Admin: rt.Admin()})
	})
}

func TestContractTLS(t *testing.T) {
	dataDir := t.TempDir()
	pool, err := engine.NewAddressPool(addressBase)
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunTLS(t, pool, func(t *testing.T, id string, admin engine.Admin) engine.Runtime {
		return newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: id, Admin: admin})
	})
}

// memcachedAddressBase is the Memcached contract's own block.
const memcachedAddressBase = "127.0.20.2"

func TestContractMemcached(t *testing.T) {
	dataDir := t.TempDir()
	pool, err := engine.NewAddressPool(memcachedAddressBase)
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunMemcached(t, pool, func(t *testing.T, id string, admin engine.Admin) engine.Runtime {
		return newTestRuntimeWith(t, Options{DataDir: dataDir, EmulatorID: id, Admin: admin})
	})
}
