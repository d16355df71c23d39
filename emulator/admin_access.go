package emulator

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"github.com/elasticache-local/elasticache-local/emulator/console"
)

// Who may reach the admin API (Config.AdminAPI). It kills and freezes
// nodes and is not part of AWS, so neither SigV4 (Config.Credentials) nor
// anything else of the API's access control covers it; this setting alone
// does. The default keeps it to clients on the same machine even when the
// API listens on every address.
const (
	// AdminAPILoopback serves the admin API to clients connecting from a
	// loopback address only (the default).
	AdminAPILoopback = "loopback"
	// AdminAPIAny serves it to every client that reaches the listener.
	AdminAPIAny = "any"
	// AdminAPIOff answers 404 for every admin path, as if it did not exist.
	AdminAPIOff = "off"
)

// checkAccess validates the settings of who may call what: the admin API
// mode and the API's credentials.
func checkAccess(cfg Config) error {
	switch cfg.AdminAPI {
	case "", AdminAPILoopback, AdminAPIAny, AdminAPIOff:
	default:
		return fmt.Errorf("emulator: admin API setting %q is not %s, %s or %s", cfg.AdminAPI, AdminAPILoopback, AdminAPIAny, AdminAPIOff)
	}
	for key, secret := range cfg.Credentials {
		if key == "" || secret == "" || strings.ContainsAny(key, "/ ,=") {
			return fmt.Errorf("emulator: credentials need an access key id (without '/', ',', '=' or spaces) and a secret for each key; got key %q", key)
		}
	}
	return nil
}

// adminGate stands in front of the router and applies Config.AdminAPI to
// the admin paths; every other request passes untouched.
type adminGate struct {
	next http.Handler
	mode string
	log  *slog.Logger
}

func newAdminGate(next http.Handler, mode string, log *slog.Logger) http.Handler {
	if mode == "" {
		mode = AdminAPILoopback
	}
	if mode == AdminAPIAny {
		return next
	}
	return &adminGate{next: next, mode: mode, log: log}
}

// isAdminPath reports whether p (cleaned as the router cleans it) is the
// admin API's or the web console's (package console), which the admin
// API's access setting covers too: its buttons kill nodes.
func isAdminPath(p string) bool {
	p = path.Clean("/" + p)
	for _, prefix := range []string{AdminNodesPath, strings.TrimSuffix(console.Path, "/")} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

func (g *adminGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isAdminPath(r.URL.Path) {
		g.next.ServeHTTP(w, r)
		return
	}
	switch {
	case g.mode == AdminAPIOff:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found: the admin API is turned off (--admin-api=off)"})
	case !loopbackClient(r.RemoteAddr):
		g.log.Warn("admin request refused: the client is not on loopback", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the admin API answers clients on loopback only; " +
			"start elasticache-local with --admin-api=any (ELASTICACHE_LOCAL_ADMIN_API=any) to serve it to others"})
	default:
		g.next.ServeHTTP(w, r)
	}
}

// loopbackClient reports whether a connection's remote address is a
// loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6).
func loopbackClient(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}
