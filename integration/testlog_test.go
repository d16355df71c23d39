package integration

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// testLogLines is how many of the last lines of an emulator's debug log a
// failed test prints: enough to see the operation that hung, small enough
// to stay readable in a CI log.
const testLogLines = 600

// testLogger is the logger of one emulator a test starts: warnings and
// errors go to stderr as they happen (or everything, with
// ELASTICACHE_LOCAL_TEST_LOG), and the whole debug log is kept in memory
// and printed if the test fails, so an intermittent failure under CI's
// load can be read from its one run.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("ELASTICACHE_LOCAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tail := &logTail{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the emulator's log (last %d lines at most):\n%s", testLogLines, tail.String())
		}
	})
	return slog.New(teeHandler{
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		quietHandler{slog.NewTextHandler(tail, &slog.HandlerOptions{Level: slog.LevelDebug})},
	})
}

// quietHandler leaves out the debug records a test's polling makes by the
// thousand (a Describe call's request line, a forwarded connection), which
// would push the lines that tell what happened out of the tail.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && (r.Message == "proxy connection forwarded" || r.Message == "elasticache request" && readCall(r)) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

// readCall reports whether r logs a Describe or List call.
func readCall(r slog.Record) bool {
	read := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "action" {
			v := a.Value.String()
			read = strings.HasPrefix(v, "Describe") || strings.HasPrefix(v, "List")
			return false
		}
		return true
	})
	return read
}

// logTail keeps the last testLogLines lines written to it; slog's text
// handler writes one record per Write.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(bytes.TrimRight(p, "\n")))
	if len(l.lines) > 2*testLogLines {
		l.lines = append(l.lines[:0], l.lines[len(l.lines)-testLogLines:]...)
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-testLogLines):], "\n")
}

// teeHandler sends each record to every handler that takes its level.
type teeHandler []slog.Handler

func (h teeHandler) Enabled(ctx context.Context, level slog.Level) bool {
	for _, x := range h {
		if x.Enabled(ctx, level) {
			return true
		}
	}
	return false
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, x := range h {
		if x.Enabled(ctx, r.Level) {
			if err := x.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (h teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithAttrs(attrs)
	}
	return out
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithGroup(name)
	}
	return out
}
