package process

import (
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestTLSAndUsersConfig: a TLS node listens on its TLS port only, reads
// its files from its directory and talks TLS to its primary (and cluster
// peers, and MIGRATE targets); users follow the admin user; tls-* may not come from Config.
func TestTLSAndUsersConfig(t *testing.T) {
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	spec := engine.NodeSpec{Name: "n", Endpoint: engine.Endpoint{Host: "127.0.90.200", Port: 7000},
		TLS:   &engine.TLSSpec{CertPEM: []byte("c"), KeyPEM: []byte("k"), CAPEM: []byte("a")},
		Users: []engine.ACLUser{{Name: "default", Enabled: true, PasswordHashes: []string{engine.PasswordHash("pw-0123456789abcdef")}, Rules: "~* &* +@all"}}}
	conf, err := buildConfig(spec, "/d", serverCaps{}, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nport 0\n", "\ntls-port 7000\n", "\ntls-cert-file /d/" + engine.TLSCertFile + "\n",
		"\ntls-key-file /d/" + engine.TLSKeyFile + "\n", "\ntls-ca-cert-file /d/" + engine.TLSCAFile + "\n",
		"\ntls-auth-clients no\n", "\ntls-replication yes\n", "\ntls-cluster yes\n",
		"\nuser default reset on \"#" + engine.PasswordHash("pw-0123456789abcdef") + "\" ~* &* +@all\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "port 7000\n") != 1 {
		t.Errorf("a plaintext port in a TLS node's config:\n%s", conf)
	}
	if a, u := strings.Index(conf, "\nuser "+engine.AdminUser), strings.Index(conf, "\nuser default"); a < 0 || u < a {
		t.Errorf("users must follow the admin user:\n%s", conf)
	}
	spec.Cluster = true
	if conf, _ := buildConfig(spec, "/d", serverCaps{}, admin); !strings.Contains(conf, "\ntls-cluster yes\n") {
		t.Errorf("a TLS cluster node lacks tls-cluster yes:\n%s", conf)
	}
	plain := engine.NodeSpec{Name: "n", Endpoint: spec.Endpoint}
	if conf, _ := buildConfig(plain, "/d", serverCaps{}, admin); strings.Contains(conf, "tls") || !strings.Contains(conf, "\nport 7000\n") {
		t.Errorf("a plaintext node's config:\n%s", conf)
	}
	for _, k := range []string{"tls-port", "TLS-Protocols", "tls-auth-clients"} {
		plain.Config = map[string]string{k: "x"}
		if _, err := buildConfig(plain, "/d", serverCaps{}, admin); err == nil {
			t.Errorf("Config %s accepted", k)
		}
	}
	plain.Config = nil
	plain.Users = []engine.ACLUser{{Name: engine.AdminUser, Enabled: true, NoPassword: true}}
	if _, err := buildConfig(plain, "/d", serverCaps{}, admin); err == nil {
		t.Error("a user named like the admin user accepted")
	}
}
