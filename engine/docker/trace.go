package docker

import (
	"context"
	"log/slog"
	"time"
)

// stepTracer logs, at debug level, how long each step of a node's start
// took, so a slow create shows which daemon call it waited on.
type stepTracer struct {
	log   *slog.Logger
	node  string
	begin time.Time
	last  time.Time
}

func (r *Runtime) tracer(node string) *stepTracer {
	now := time.Now()
	return &stepTracer{log: r.log, node: node, begin: now, last: now}
}

// step logs the step that just ended with its own duration and the time
// since the start began.
func (t *stepTracer) step(name string) {
	if !t.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	now := time.Now()
	t.log.Debug("node start step", "node", t.node, "step", name,
		"took", now.Sub(t.last).Round(time.Microsecond), "since", now.Sub(t.begin).Round(time.Microsecond))
	t.last = now
}
