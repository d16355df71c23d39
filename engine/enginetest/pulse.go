package enginetest

import (
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// testPulse: a runtime that reads its nodes' pulse (engine.Pulser) reads
// one that moves while the node idles, shows it stopped while the node is
// paused and moving again once resumed, and fails to read it once the
// node is gone.
func (s *suite) testPulse(t *testing.T) {
	t.Parallel()
	pr, ok := s.rt.(engine.Pulser)
	if !ok {
		t.Skip("the runtime reads no pulse")
	}
	fi, ok := s.rt.(engine.FaultInjector)
	if !ok {
		t.Skip("the runtime injects no faults")
	}
	ctx := testContext(t)
	n := s.start(t, s.rt, s.spec(t, "et-pulse"))
	pulse, err := pr.Pulse(n.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pulse.Close() })
	moves := func(what string) {
		t.Helper()
		first, stopped, err := pulse.Read()
		if err != nil || stopped {
			t.Fatalf("%s: pulse %d, stopped %v, %v", what, first, stopped, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			beats, stopped, err := pulse.Read()
			if err != nil || stopped {
				t.Fatalf("%s: pulse %d, stopped %v, %v", what, beats, stopped, err)
			}
			if beats > first {
				return // its cron ran: an idle node is scheduled several times a second
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the pulse stayed at %d for 10 s", what, beats)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	moves("an idle node")
	if err := fi.Pause(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	if _, stopped, err := pulse.Read(); err != nil || !stopped {
		t.Fatalf("a paused node: stopped %v, %v; want stopped", stopped, err)
	}
	if err := fi.Resume(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	moves("a resumed node")
	if err := fi.Kill(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := pulse.Read()
		if err != nil {
			return // the process is gone, and its pulse with it
		}
		if time.Now().After(deadline) {
			t.Fatal("the pulse of a killed node still reads 10 s after the kill")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
