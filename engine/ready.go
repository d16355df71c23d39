package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Check is one readiness condition of a node, in the style of testcontainers
// wait strategies: it returns nil when the condition holds. WaitReady polls a
// list of checks until all hold at once. A check that can never succeed
// (the process exited, …) returns an error wrapped with Permanent to stop the
// wait early.
type Check func(ctx context.Context, ep Endpoint) error

// PollInterval is how often WaitReady re-runs the checks.
const PollInterval = 10 * time.Millisecond

// DefaultReadyTimeout bounds WaitReady when ctx has no deadline.
const DefaultReadyTimeout = 30 * time.Second

// attemptTimeout bounds one run of one check, so a hung node (SIGSTOP) does
// not keep a single attempt busy until the overall deadline.
const attemptTimeout = 2 * time.Second

var _ Check = PortOpen
var _ Check = Admin{}.Pings
var _ Check = Admin{}.ReplicationLinkUp
var _ Check = Admin{}.PrimaryRole

// PortOpen holds when a TCP connection to ep succeeds.
func PortOpen(ctx context.Context, ep Endpoint) error {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		return err
	}
	return c.Close()
}

// Pings holds when the node answers PING (so it has finished loading).
func (a Admin) Pings(ctx context.Context, ep Endpoint) error { return a.Ping(ctx, ep) }

// ReplicationLinkUp holds when the node is a replica whose link to its
// primary is up and no full sync is in progress, i.e. it has loaded the
// primary's data set and is streaming.
func (a Admin) ReplicationLinkUp(ctx context.Context, ep Endpoint) error {
	info, err := a.InspectReplication(ctx, ep)
	if err != nil {
		return err
	}
	return linkUp(info)
}

// ReplicatingFrom is ReplicationLinkUp that also requires the replica to
// follow primary (useful after a failover re-points replicas).
func (a Admin) ReplicatingFrom(primary Endpoint) Check {
	return func(ctx context.Context, ep Endpoint) error {
		info, err := a.InspectReplication(ctx, ep)
		if err != nil {
			return err
		}
		if info.IsReplica() && info.Master() != primary {
			return fmt.Errorf("engine: %s replicates from %s, not %s", ep.Addr(), info.Master().Addr(), primary.Addr())
		}
		return linkUp(info)
	}
}

// PrimaryRole holds when the node reports role:master.
func (a Admin) PrimaryRole(ctx context.Context, ep Endpoint) error {
	info, err := a.InspectReplication(ctx, ep)
	if err != nil {
		return err
	}
	if !info.IsPrimary() {
		return fmt.Errorf("engine: %s has role %s, want master", ep.Addr(), info.Role)
	}
	return nil
}

func linkUp(info ReplicationInfo) error {
	switch {
	case !info.IsReplica():
		return fmt.Errorf("engine: node has role %s, not a replica", info.Role)
	case !info.LinkUp:
		return fmt.Errorf("engine: replication link to %s is down", info.Master().Addr())
	case info.SyncInProgress:
		return fmt.Errorf("engine: full sync from %s in progress", info.Master().Addr())
	}
	return nil
}

// permanentError marks a check failure that polling cannot cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that WaitReady stops polling and returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// WaitReady polls checks, in order, every PollInterval until all of them
// succeed in one round, and returns nil. It gives up when ctx is done (or
// after DefaultReadyTimeout if ctx has no deadline), returning an error that
// wraps both the context error and the last check failure, or at once when a
// check returns a Permanent error. It needs at least one check.
func WaitReady(ctx context.Context, ep Endpoint, checks ...Check) error {
	if len(checks) == 0 {
		return errors.New("engine: WaitReady without checks")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last error
	for attempt := 0; ; attempt++ {
		select {
		case <-ctx.Done():
			if last == nil {
				last = errors.New("no attempt completed")
			}
			return fmt.Errorf("engine: %s not ready after %s (%d attempts): %w: %w",
				ep.Addr(), time.Since(start).Round(time.Millisecond), attempt, ctx.Err(), last)
		case <-timer.C:
		}
		last = runChecks(ctx, ep, checks)
		if last == nil {
			return nil
		}
		var perm permanentError
		if errors.As(last, &perm) {
			return fmt.Errorf("engine: %s not ready: %w", ep.Addr(), last)
		}
		timer.Reset(PollInterval)
	}
}

func runChecks(ctx context.Context, ep Endpoint, checks []Check) error {
	for _, check := range checks {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := check(actx, ep)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
