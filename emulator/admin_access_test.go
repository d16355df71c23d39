package emulator

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAdminGate: the admin paths (and the console's) follow the AdminAPI setting (loopback
// clients only by default, 404 when off), every other path passes.
func TestAdminGate(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		mode, method, path, remote string
		want                       int
	}{
		{"", http.MethodGet, AdminNodesPath, "127.0.0.1:5000", http.StatusTeapot},
		{"", http.MethodPost, AdminNodesPath + "/c1/kill", "127.0.0.9:5000", http.StatusTeapot},
		{"", http.MethodGet, AdminNodesPath, "[::1]:5000", http.StatusTeapot},
		{"", http.MethodGet, AdminNodesPath, "[::ffff:127.0.0.1]:5000", http.StatusTeapot},
		{AdminAPILoopback, http.MethodGet, AdminNodesPath, "192.168.1.20:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodPost, AdminNodesPath + "/c1/kill", "10.0.0.5:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodPost, "/_elasticache/x/../nodes/c1/pause", "172.17.0.1:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodGet, AdminNodesPath + "/", "[2001:db8::1]:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodGet, AdminNodesPath, "garbage", http.StatusForbidden},
		{AdminAPILoopback, http.MethodPost, "/", "192.168.1.20:5000", http.StatusTeapot},
		{AdminAPILoopback, http.MethodGet, HealthPath, "192.168.1.20:5000", http.StatusTeapot},
		{AdminAPILoopback, http.MethodGet, "/_elasticache/nodesx", "192.168.1.20:5000", http.StatusTeapot},
		{AdminAPIAny, http.MethodPost, AdminNodesPath + "/c1/kill", "192.168.1.20:5000", http.StatusTeapot},
		{AdminAPIOff, http.MethodGet, AdminNodesPath, "127.0.0.1:5000", http.StatusNotFound},
		{AdminAPIOff, http.MethodPost, AdminNodesPath + "/c1/resume", "127.0.0.1:5000", http.StatusNotFound},
		{AdminAPIOff, http.MethodGet, HealthPath, "127.0.0.1:5000", http.StatusTeapot},
		{AdminAPIOff, http.MethodPost, "/", "127.0.0.1:5000", http.StatusTeapot},
		// The web console's buttons kill nodes: it follows the same setting.
		{"", http.MethodGet, "/_elasticache/console/", "127.0.0.1:5000", http.StatusTeapot},
		{AdminAPILoopback, http.MethodGet, "/_elasticache/console/", "192.168.1.20:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodPost, "/_elasticache/console/failover", "192.168.1.20:5000", http.StatusForbidden},
		{AdminAPILoopback, http.MethodGet, "/_elasticache/console", "192.168.1.20:5000", http.StatusForbidden},
		{AdminAPIAny, http.MethodGet, "/_elasticache/console/state", "192.168.1.20:5000", http.StatusTeapot},
		{AdminAPIOff, http.MethodGet, "/_elasticache/console/", "127.0.0.1:5000", http.StatusNotFound},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.path, nil)
		r.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		newAdminGate(next, c.mode, log).ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("mode %q %s %s from %s: %d, want %d (%s)", c.mode, c.method, c.path, c.remote, w.Code, c.want, w.Body)
		}
	}
}

func TestCheckAccess(t *testing.T) {
	for _, cfg := range []Config{
		{}, {AdminAPI: AdminAPIOff}, {AdminAPI: AdminAPIAny}, {Credentials: map[string]string{"AKID": "s"}},
	} {
		if err := checkAccess(cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	for _, cfg := range []Config{
		{AdminAPI: "public"}, {Credentials: map[string]string{"AKID": ""}}, {Credentials: map[string]string{"": "s"}},
		{Credentials: map[string]string{"AK/ID": "s"}},
	} {
		if err := checkAccess(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
