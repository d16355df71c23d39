package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSlotCount(t *testing.T) {
	for slots, want := range map[string]int{
		"0-16383":                 16384,
		"0-5460,10923-16383":      5460 + 1 + 5461,
		"7":                       1,
		"4096-4522,9558-9984, 12": 427 + 427 + 1,
		"":                        0,
		"9-3":                     0,
	} {
		if got := slotCount(slots); got != want {
			t.Errorf("slotCount(%q) = %d, want %d", slots, got, want)
		}
	}
}

// TestActionsRefused checks the console's own refusals, which come before
// any handler runs: actions are POSTs with the admin header in a valid
// account and region. (Origin, Sec-Fetch-Site and Host are the emulator's
// front door's; the browser test checks them end to end.)
func TestActionsRefused(t *testing.T) {
	c := New(nil, Options{AdminHeader: "X-Admin", NodesPath: "/nodes"})
	for _, tc := range []struct {
		name, method, url string
		header            bool
		want              int
	}{
		{"no admin header", http.MethodPost, Path + "failover?account=000000000000&region=us-east-1&group=g&shard=0001", false, http.StatusForbidden},
		{"a GET of an action", http.MethodGet, Path + "failover?account=000000000000&region=us-east-1&group=g&shard=0001", true, http.StatusMethodNotAllowed},
		{"a POST of the page", http.MethodPost, Path, true, http.StatusMethodNotAllowed},
		{"a bad account", http.MethodPost, Path + "snapshot?account=12&region=us-east-1&group=g", true, http.StatusBadRequest},
		{"a bad region", http.MethodPost, Path + "snapshot?account=000000000000&region=../x&group=g", true, http.StatusBadRequest},
		{"an unknown path", http.MethodGet, Path + "nothing", true, http.StatusNotFound},
		{"the path without its slash", http.MethodGet, "/_elasticache/console", false, http.StatusFound},
		{"a neighbour of the path", http.MethodGet, "/_elasticache/consoles", false, http.StatusNotFound},
	} {
		req := httptest.NewRequest(tc.method, tc.url, nil)
		if tc.header {
			req.Header.Set("X-Admin", "1")
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.url, rec.Code, tc.want)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	c := New(nil, Options{})
	for _, name := range []string{"console.js", "console.css"} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"static/"+name, nil))
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("static/%s = %d (%d bytes)", name, rec.Code, rec.Body.Len())
		}
	}
}
