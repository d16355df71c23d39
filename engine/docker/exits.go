package docker

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/elasticache-local/elasticache-local/engine"
)

var _ engine.ExitReporter = (*Runtime)(nil)

// exitStreamRetry is how long the exit reports wait before following the
// daemon's event stream again after it broke (the daemon restarted); the
// health checks cover that gap.
const exitStreamRetry = time.Second

// ReportExits implements engine.ExitReporter with the daemon's event stream:
// a "die" event of a container of this runtime's scope names its node, the
// moment the daemon has seen the container exit, adopted ones included.
// Exits the control plane asked for (Stop, Kill) are reported too: a node
// it is not checking any more is nothing to it.
func (r *Runtime) ReportExits(fn func(name string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopExits != nil {
		r.stopExits()
		r.stopExits = nil
	}
	if fn == nil || r.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopExits = cancel
	go r.followExits(ctx, fn)
}

// followExits calls fn for every node container that dies until ctx ends,
// following the event stream again whenever it breaks.
func (r *Runtime) followExits(ctx context.Context, fn func(name string)) {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("label", LabelScope+"="+r.scope),
	)
	for ctx.Err() == nil {
		msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f})
	stream:
		for {
			select {
			case m := <-msgs:
				if name := m.Actor.Attributes[LabelNodeName]; name != "" {
					fn(name)
				}
			case err := <-errs:
				if ctx.Err() == nil {
					r.log.Debug("docker event stream broke; following it again", "err", err, "in", exitStreamRetry)
				}
				break stream
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(exitStreamRetry):
		}
	}
}
