package emulator

import (
	"testing"
	"time"
)

// TestInMaintenanceWindow: weekly windows, one that wraps past Saturday
// midnight included, on the emulator's clock (UTC).
func TestInMaintenanceWindow(t *testing.T) {
	wed := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) // a Wednesday
	for _, tc := range []struct {
		window string
		at     time.Time
		want   bool
	}{
		{"wed:03:00-wed:04:00", wed.Add(3*time.Hour + 10*time.Minute), true},
		{"wed:03:00-wed:04:00", wed.Add(4 * time.Hour), false},
		{"wed:03:00-wed:04:00", wed.Add(2*time.Hour + 59*time.Minute), false},
		{"tue:23:30-wed:00:30", wed.Add(10 * time.Minute), true},
		{"sat:23:00-sun:01:00", time.Date(2026, 12, 6, 0, 30, 0, 0, time.UTC), true}, // Sunday
		{"sat:23:00-sun:01:00", time.Date(2026, 12, 5, 22, 59, 0, 0, time.UTC), false},
		{"someday", wed, false},
	} {
		if got := inMaintenanceWindow(tc.at, tc.window); got != tc.want {
			t.Errorf("inMaintenanceWindow(%s, %q) = %v, want %v", tc.at.Format(time.RFC1123), tc.window, got, tc.want)
		}
	}
}

// TestNodeChangeMerge: a later modification's values win over a pending
// one's, and an engine change brings its parameter group along.
func TestNodeChangeMerge(t *testing.T) {
	v71 := engineVersion{"redis", "7.1", "7.1.0", "redis7"}
	pending := &nodeChange{nodeType: "cache.r7g.large"}
	got := pending.merge(&nodeChange{engine: &v71, paramGroup: "default.redis7"})
	if got.nodeType != "cache.r7g.large" || got.engine == nil || *got.engine != v71 || got.paramGroup != "default.redis7" {
		t.Fatalf("merge = %+v", got)
	}
	if got := (*nodeChange)(nil).merge(nil); got != nil {
		t.Fatalf("nil merge nil = %+v", got)
	}
	var slot *nodeChange
	if run := takeNodeChange(&slot, pending, false); run != nil || slot != pending {
		t.Fatalf("without ApplyImmediately: run %+v, pending %+v", run, slot)
	}
	if run := takeNodeChange(&slot, nil, true); run != pending || slot != nil {
		t.Fatalf("ApplyImmediately: run %+v, pending %+v", run, slot)
	}
}
