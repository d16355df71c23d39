package engine_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestBGSave: BGSave waits out a save already running, then runs its own,
// and returns once dump.rdb holds the data written before the call.
func TestBGSave(t *testing.T) {
	h := newHarness(t, "127.0.7.140")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := h.rt.Admin()
	ep := h.start(ctx, "saver", nil).Endpoint
	saves := func() int {
		t.Helper()
		var n int
		do(t, ctx, ep, func(ctx context.Context, c *redis.Client) error {
			text, err := c.Info(ctx, "persistence").Result()
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rdb_saves:"); ok {
					n, _ = strconv.Atoi(v)
				}
			}
			return err
		})
		return n
	}
	before := saves()
	// A save slowed down to ~200 ms (20 keys × 10 ms) is running when
	// BGSave is called, so its BGSAVE is refused "in progress" at first.
	do(t, ctx, ep, func(ctx context.Context, c *redis.Client) error {
		for i := range 20 {
			if err := c.Set(ctx, "filler:"+strconv.Itoa(i), i, 0).Err(); err != nil {
				return err
			}
		}
		if err := c.ConfigSet(ctx, "rdb-key-save-delay", "10000").Err(); err != nil {
			return err
		}
		if err := c.BgSave(ctx).Err(); err != nil {
			return err
		}
		if err := c.ConfigSet(ctx, "rdb-key-save-delay", "0").Err(); err != nil {
			return err
		}
		return c.Set(ctx, "written-before-the-call", "yes", 0).Err()
	})
	if err := admin.BGSave(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if got := saves(); got != before+2 {
		t.Errorf("rdb_saves went from %d to %d, want the running save and BGSave's own", before, got)
	}
	rc, err := h.rt.CopyFrom(ctx, "saver", "dump.rdb")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rdb, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rdb, []byte("written-before-the-call")) {
		t.Errorf("dump.rdb (%d bytes) lacks the key written before BGSave", len(rdb))
	}

	if err := admin.BGSave(ctx, engine.Endpoint{Host: "127.0.7.149", Port: 1}); err == nil {
		t.Error("BGSave on an unreachable node succeeded")
	}
}
