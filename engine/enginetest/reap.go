package enginetest

// Reap, and nodes that outlive a runtime instance: Suspend/Resume, Adopt.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// testReap starts nodes on the runtime under test and on a peer runtime
// (another emulator id over the same records), then has the peer Reap: the
// first runtime's nodes are gone, the peer's own node is untouched.
func (s *suite) testReap(t *testing.T, peer PeerFactory) {
	if peer == nil {
		t.Skip("no PeerFactory")
	}
	other := peer(t, fmt.Sprintf("enginetest-peer-%d", time.Now().UnixNano()))
	reaper, ok := other.(engine.Reaper)
	if !ok {
		t.Skipf("%s runtime does not implement engine.Reaper", other.Name())
	}
	var victims []engine.NodeSpec
	for _, name := range []string{"et-reap-a", "et-reap-b"} {
		spec := s.spec(t, name)
		s.start(t, s.rt, spec)
		victims = append(victims, spec)
	}
	own := s.spec(t, "et-reap-own")
	s.start(t, other, own)

	n, err := reaper.Reap(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if n < len(victims) {
		t.Errorf("Reap removed %d nodes, want at least %d", n, len(victims))
	}
	listed, err := other.List(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range victims {
		if slices.ContainsFunc(listed, func(n engine.Node) bool { return n.Name == v.Name }) {
			t.Errorf("the reaping runtime still lists %s", v.Name)
		}
		// The reaped runtime may remember a node it started until it notices
		// the exit (the process runtime does); it must not report it running.
		waitGone(t, s.rt, v.Name)
		silent(t, v.Endpoint)
	}
	if got, err := other.Inspect(testContext(t), own.Name); err != nil || !got.Running {
		t.Errorf("the reaping runtime's own node: %+v, %v; want running", got, err)
	}
	mustDo(t, own.Endpoint, "PING")
}

// waitGone polls until rt reports the node as not found or not running.
func waitGone(t *testing.T, rt engine.Runtime, name string) {
	t.Helper()
	ctx := testContext(t)
	tick := time.NewTicker(engine.PollInterval)
	defer tick.Stop()
	for {
		n, err := rt.Inspect(ctx, name)
		if errors.Is(err, engine.ErrNodeNotFound) || err == nil && !n.Running {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: Inspect %s = %+v, %v; want not found or not running", rt.Name(), name, n, err)
		case <-tick.C:
		}
	}
}
