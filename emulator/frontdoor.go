package emulator

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// frontDoor refuses requests a web page made, before any handler runs. A
// page on any site can send a form POST to the emulator without a CORS
// preflight (application/x-www-form-urlencoded is a "simple" request), or
// load a Query API GET as an image; and through DNS rebinding its own
// host name can resolve to 127.0.0.1 and read the answers. So:
//
//   - a request with an Origin header is refused unless the origin is
//     allow-listed (empty by default; "*" allows any, as LocalStack's
//     DISABLE_CORS_CHECKS does) or is the emulator's own;
//   - a request without one that the browser marks cross-site
//     (Sec-Fetch-Site: cross-site or same-site; "same-site" includes
//     another port of localhost) is refused;
//   - a request whose Host is not a local name is refused: localhost, a
//     loopback address, the listen address, the address the connection came
//     in on, or an allow-listed name (e.g. a docker-compose service name).
//
// Clients that are not browsers (SDKs, the AWS CLI, Terraform, curl) send
// neither header and a local Host, and pass.
type frontDoor struct {
	next    http.Handler
	log     *slog.Logger
	origins map[string]bool // lower-case scheme://host[:port]
	hosts   map[string]bool // lower-case names, without port
	// anyOrigin and anyHost are set by "*" in the allow-lists.
	anyOrigin, anyHost bool
	// listenHost is the host of the listen address unless it is a
	// wildcard (0.0.0.0, ::), which names no host.
	listenHost string
}

func newFrontDoor(next http.Handler, log *slog.Logger, listen string, origins, hosts []string) *frontDoor {
	f := &frontDoor{next: next, log: log, origins: map[string]bool{}, hosts: map[string]bool{}}
	for _, o := range origins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		f.anyOrigin = f.anyOrigin || o == "*"
		if o != "" {
			f.origins[o] = true
		}
	}
	for _, h := range hosts {
		h = normalHost(strings.TrimSpace(h))
		f.anyHost = f.anyHost || h == "*"
		if h != "" {
			f.hosts[h] = true
		}
	}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
			f.listenHost = normalHost(host)
		}
	}
	return f
}

// normalHost is a host name as compared: lower-case, without a trailing
// dot or IPv6 brackets.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if host := r.Host; host != "" && !f.localHost(r) {
		f.refuse(w, r, "host", host, "Host %.128s is not a local name of elasticache-local: requests through other names "+
			"(DNS rebinding) are refused. Allow it with --allowed-hosts (ELASTICACHE_LOCAL_ALLOWED_HOSTS).", host)
		return
	}
	origin := r.Header.Get("Origin")
	switch {
	case origin != "" && !f.originAllowed(origin, r.Host):
		f.refuse(w, r, "origin", origin, "Requests from origin %.128s are not allowed: web pages may not drive elasticache-local. "+
			"Allow the origin with --allowed-origins (ELASTICACHE_LOCAL_ALLOWED_ORIGINS).", origin)
		return
	case origin != "":
		// An allow-listed page gets what CORS needs to call the API.
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "x-amzn-RequestId")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		// Browsers withhold Origin from some cross-site requests (an
		// image's GET), but not Sec-Fetch-Site.
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			f.refuse(w, r, "fetch-site", site, "Cross-site requests (Sec-Fetch-Site: %.128s) are not allowed: web pages may not drive "+
				"elasticache-local. Allow the page's origin with --allowed-origins (ELASTICACHE_LOCAL_ALLOWED_ORIGINS).", site)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

// originAllowed reports whether a page of origin may call the emulator:
// an allow-listed origin, or the emulator's own (its Host was found local).
func (f *frontDoor) originAllowed(origin, host string) bool {
	origin = strings.ToLower(origin)
	return f.anyOrigin || f.origins[origin] || origin == "http://"+strings.ToLower(host)
}

// localHost reports whether the request's Host names this emulator.
func (f *frontDoor) localHost(r *http.Request) bool {
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = normalHost(name)
	if f.anyHost || f.hosts[name] || name == f.listenHost || name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(name)
	if err != nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	// Listening on a wildcard address, the address a client reached is
	// the one its connection came in on.
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(local.String()); err == nil && ap.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

func (f *frontDoor) refuse(w http.ResponseWriter, r *http.Request, what, value, format string, args ...any) {
	// Header values are client input of up to a megabyte: logged and
	// answered cut short (%.128s).
	f.log.Warn("request refused: it may come from a web page", "reason", what, what, fmt.Sprintf("%.128s", value),
		"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	queryapi.WriteError(w, queryapi.AccessDenied(format, args...))
}
