package docker

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/tlsca"
)

// TestTLSBindMounts: with bind-mounted data the TLS files are written in
// the node's host directory, the key readable by its owner only, and the
// node serves TLS with them.
func TestTLSBindMounts(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir()
	assertNoLeftovers(t, cli, dataDir)
	ca, err := tlsca.LoadOrCreate(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntime(t, Options{EmulatorID: fmt.Sprintf("docker-tls-bind-%d", os.Getpid()), DataDir: dataDir, BindMounts: true, Admin: admin.WithCA(ca.Pool())})
	ep, err := testPool(t).Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testPool(t).Release(ep) })
	cert, key, err := ca.Issue([]string{ep.Host}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	spec := engine.NodeSpec{Name: "tls-bind", Endpoint: ep, TLS: &engine.TLSSpec{CertPEM: cert, KeyPEM: key, CAPEM: ca.CertPEM()}}
	t.Cleanup(func() { _ = rt.Stop(t.Context(), spec.Name) })
	if _, err := rt.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	for _, f := range engine.TLSFiles(spec) {
		fi, err := os.Stat(filepath.Join(rt.nodeDir(spec.Name), f.Name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f.Name, fi, err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: ep.Addr(), TLSConfig: &tls.Config{RootCAs: ca.Pool()}, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Errorf("PING over TLS: %v", err)
	}
}
