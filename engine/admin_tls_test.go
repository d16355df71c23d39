package engine

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestAdminTLSRegistry: copies of an Admin share its TLS endpoints, WithCA
// sets the roots of the copy it returns, Options carries a TLS
// configuration for registered endpoints only, and an Admin loaded again
// from the same file starts with none registered.
func TestAdminTLSRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.json")
	a, err := LoadAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	withCA := a.WithCA(pool)
	copied := withCA
	ep, other := Endpoint{Host: "127.0.0.2", Port: 6379}, Endpoint{Host: "127.0.0.3", Port: 6379}
	if a.TLS(ep) || a.Options(ep).TLSConfig != nil {
		t.Fatal("an endpoint is TLS before UseTLS")
	}
	copied.UseTLS(ep, true)
	for _, adm := range []Admin{a, withCA, copied} {
		if !adm.TLS(ep) || adm.TLS(other) {
			t.Errorf("%v: TLS(ep) = %v, TLS(other) = %v; want the registration shared by copies", adm, adm.TLS(ep), adm.TLS(other))
		}
	}
	cfg := withCA.Options(ep).TLSConfig
	if cfg == nil || cfg.RootCAs != pool || cfg.ServerName != ep.Host || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("Options TLSConfig = %+v; want RootCAs of WithCA, ServerName %s, TLS 1.2 at least", cfg, ep.Host)
	}
	if cfg := a.Options(ep).TLSConfig; cfg == nil || cfg.RootCAs != nil {
		t.Errorf("Options of the Admin before WithCA: %+v; want TLS with the system's roots", cfg)
	}
	if withCA.Options(other).TLSConfig != nil {
		t.Error("Options of an unregistered endpoint has a TLS configuration")
	}
	again, err := LoadAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.TLS(ep) {
		t.Error("an Admin loaded again shares the registry of the first")
	}
	withCA.UseTLS(ep, false)
	if a.TLS(ep) {
		t.Error("UseTLS(false) did not unregister the endpoint")
	}
	zero := Admin{}.WithCA(pool)
	zero.UseTLS(ep, true)
	if !zero.TLS(ep) || a.TLS(ep) {
		t.Error("WithCA on the zero Admin: want a registry of its own")
	}
	defer func() {
		if recover() == nil {
			t.Error("UseTLS on the zero Admin did not panic")
		}
	}()
	Admin{}.UseTLS(ep, true)
}
