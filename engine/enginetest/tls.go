package enginetest

// TLS nodes (NodeSpec.TLS) and node users (NodeSpec.Users): the contract
// of RunTLS.

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/tlsca"
)

// Factory builds a runtime of the kind under test with the given emulator
// id and admin, over records of its own that every runtime it builds
// shares (one data dir, one Docker scope), as a restarted emulator would
// be built (its admin from engine.LoadAdmin of the same file, WithCA of
// the same CA). It registers the runtime's Close with t.Cleanup.
type Factory func(t *testing.T, emulatorID string, admin engine.Admin) engine.Runtime

// tlsSuite holds what the TLS subtests share: the CA, the admin
// credentials' file, and the runtime the parallel subtests use.
type tlsSuite struct {
	suite
	newRuntime Factory
	ca         *tlsca.CA
	adminPath  string
}

// RunTLS runs the contract of TLS nodes and node users against runtimes
// newRuntime builds, taking endpoints from pool: a TLS primary and replica
// refuse plaintext clients and serve clients trusting the CA, replicate
// over TLS and are watched by engine.Watch; a TLS cluster of a primary and
// a replica forms and serves a cluster client; NodeSpec.Users lock the
// default user; a runtime adopting TLS nodes (running and suspended) an
// earlier one left makes its admin reach them. The adoption runs last: it
// reaps what the records hold besides.
// newTLSSuite is a suite with a CA of its own and a runtime (named after
// prefix) whose admin credentials persist, as the emulator keeps them.
func newTLSSuite(t *testing.T, pool *engine.AddressPool, newRuntime Factory, prefix string) *tlsSuite {
	ca, err := tlsca.LoadOrCreate(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsSuite{newRuntime: newRuntime, ca: ca, adminPath: filepath.Join(t.TempDir(), "admin.json")}
	s.pool = pool
	s.rt = newRuntime(t, fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()), s.loadAdmin(t))
	return s
}

func RunTLS(t *testing.T, pool *engine.AddressPool, newRuntime Factory) {
	s := newTLSSuite(t, pool, newRuntime, "enginetest-tls")
	t.Run("tls", func(t *testing.T) {
		t.Run("Replication", s.testTLSReplication)
		t.Run("Cluster", s.testTLSCluster)
		t.Run("Users", s.testUsers)
	})
	t.Run("TLSAdopt", s.testTLSAdopt)
	s.logStartTimes(t)
}

// loadAdmin returns the suite's admin credentials, loaded anew (a registry
// of TLS endpoints of its own), trusting the suite's CA.
func (s *tlsSuite) loadAdmin(t *testing.T) engine.Admin {
	t.Helper()
	a, err := engine.LoadAdmin(s.adminPath)
	if err != nil {
		t.Fatal(err)
	}
	return a.WithCA(s.ca.Pool())
}

// tlsSpec is spec with a certificate for the node's endpoint.
func (s *tlsSuite) tlsSpec(t *testing.T, name string) engine.NodeSpec {
	t.Helper()
	spec := s.spec(t, name)
	cert, key, err := s.ca.Issue([]string{spec.Endpoint.Host}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	spec.TLS = &engine.TLSSpec{CertPEM: cert, KeyPEM: key, CAPEM: s.ca.CertPEM()}
	return spec
}

// tlsConfig is what a client of the nodes needs: the CA, and the host it
// dials as the name to verify.
func (s *tlsSuite) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12}
}

// client returns a go-redis client of the node at ep, over TLS when cfg is
// set, closed when the test ends.
func client(t *testing.T, ep engine.Endpoint, cfg *tls.Config) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: ep.Addr(), TLSConfig: cfg, MaxRetries: -1, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

// refusesPlaintext asserts that a plaintext client gets no reply from the
// node at ep (the TLS listener drops it), and neither does the zero Admin.
func refusesPlaintext(t *testing.T, ep engine.Endpoint) {
	t.Helper()
	ctx := testContext(t)
	err := client(t, ep, nil).Ping(ctx).Err()
	if err == nil || engine.IsReply(err) {
		t.Errorf("plaintext PING of TLS node %s = %v; want the connection dropped", ep.Addr(), err)
	}
	if err := (engine.Admin{}).Ping(ctx, ep); err == nil || engine.IsReply(err) {
		t.Errorf("plaintext admin PING of TLS node %s = %v; want the connection dropped", ep.Addr(), err)
	}
}

// gets returns a check that GET key through c returns want.
func gets(c redis.Cmdable, key, want string) engine.Check {
	return func(ctx context.Context, _ engine.Endpoint) error {
		v, err := c.Get(ctx, key).Result()
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("GET %s = %q, want %q", key, v, want)
		}
		return nil
	}
}

// testTLSReplication: a TLS primary and a TLS replica, labelled, refuse
// plaintext, replicate over TLS and serve clients trusting the CA (and
// only those); Watch sees a TLS node's exit over plain TCP.
func (s *tlsSuite) testTLSReplication(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	admin := s.rt.Admin()
	pspec := s.tlsSpec(t, "et-tls-primary")
	primary := s.start(t, s.rt, pspec)
	rspec := s.tlsSpec(t, "et-tls-replica")
	rspec.ReplicaOf = &primary.Endpoint
	replica := s.start(t, s.rt, rspec)
	for _, n := range []engine.Node{primary, replica} {
		if n.Labels[engine.LabelTLS] != engine.LabelTLSRequired || inspect(t, s.rt, n.Name).Labels[engine.LabelTLS] != engine.LabelTLSRequired {
			t.Errorf("labels of TLS node %s: %v; want %s=%s", n.Name, n.Labels, engine.LabelTLS, engine.LabelTLSRequired)
		}
		if n.Labels[engine.LabelCluster] == "" {
			t.Errorf("labels of TLS node %s: %v; want the spec's too", n.Name, n.Labels)
		}
		if !admin.TLS(n.Endpoint) {
			t.Errorf("Start did not register %s with the admin (UseTLS)", n.Endpoint.Addr())
		}
		refusesPlaintext(t, n.Endpoint)
	}
	waitReady(t, replica.Endpoint, admin.ReplicationLinkUp, admin.ReplicatingFrom(s.rt.PeerEndpoint(primary.Endpoint)))

	pc, rc := client(t, primary.Endpoint, s.tlsConfig()), client(t, replica.Endpoint, s.tlsConfig())
	if err := pc.Set(ctx, "over", "tls", 0).Err(); err != nil {
		t.Fatalf("SET on the TLS primary: %v", err)
	}
	waitReady(t, replica.Endpoint, gets(rc, "over", "tls"))
	if err := rc.Set(ctx, "on", "replica", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("SET on the TLS replica = %v; want READONLY", err)
	}
	for k, want := range map[string]string{"port": "0", "tls-port": fmt.Sprint(primary.Endpoint.Port), "tls-replication": "yes", "tls-auth-clients": "no"} {
		if got, err := admin.ConfigGet(ctx, primary.Endpoint, k); err != nil || got != want {
			t.Errorf("CONFIG GET %s = %q, %v; want %q", k, got, err, want)
		}
	}
	other, err := tlsca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := client(t, primary.Endpoint, &tls.Config{RootCAs: other.Pool()}).Ping(ctx).Err(); err == nil {
		t.Error("a client trusting another CA reached the TLS primary")
	}
	// A Stop unregisters; a plaintext node on the endpoint is plaintext
	// for the admin again.
	closed := make(chan struct{})
	w, err := engine.Watch(replica.Endpoint, time.Second, func() { close(closed) })
	if err != nil {
		t.Fatalf("Watch of a TLS node: %v", err)
	}
	defer w.Close()
	// The watch connection sends nothing, so it stays open (a TLS listener
	// waits for its handshake) while the node serves.
	if err := admin.Ping(ctx, replica.Endpoint); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
		t.Fatal("the watch connection to a running TLS node closed")
	default:
	}
	if err := s.rt.Stop(ctx, replica.Name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Watch did not see the TLS node stop")
	}
	if admin.TLS(replica.Endpoint) {
		t.Error("Stop left the endpoint registered as TLS")
	}
	plain := rspec
	plain.TLS, plain.ReplicaOf = nil, nil
	n := s.start(t, s.rt, plain)
	if n.Labels[engine.LabelTLS] != "" || admin.TLS(n.Endpoint) {
		t.Errorf("a plaintext node on a former TLS endpoint: labels %v, TLS %v", n.Labels, admin.TLS(n.Endpoint))
	}
	if err := client(t, n.Endpoint, nil).Ping(ctx).Err(); err != nil {
		t.Errorf("plaintext PING of the plaintext node: %v", err)
	}
}

// testTLSCluster: two TLS cluster nodes form a cluster (bus over TLS),
// the second a replica, and a cluster client trusting the CA writes and
// reads through it; a standalone TLS node's keys are loaded into it
// (MIGRATE over TLS).
func (s *tlsSuite) testTLSCluster(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	admin := s.rt.Admin()
	var members []engine.ClusterMember
	for i, name := range []string{"et-tls-cluster-0", "et-tls-cluster-1"} {
		spec := s.tlsSpec(t, name)
		spec.Cluster = true
		spec.Config = map[string]string{"cluster-node-timeout": "2000"}
		n := s.start(t, s.rt, spec)
		peer, err := engine.ClusterAddrOf(ctx, s.rt, n.Name, n.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		m := engine.ClusterMember{Endpoint: n.Endpoint, Peer: peer, Slots: []engine.SlotRange{{Start: 0, End: engine.ClusterSlots - 1}}}
		if i == 1 {
			m = engine.ClusterMember{Endpoint: n.Endpoint, Peer: peer, Replica: true, Primary: 0}
		}
		members = append(members, m)
	}
	if got, err := admin.ConfigGet(ctx, members[0].Endpoint, "tls-cluster"); err != nil || got != "yes" {
		t.Errorf("CONFIG GET tls-cluster = %q, %v; want yes", got, err)
	}
	if _, err := admin.FormCluster(ctx, members); err != nil {
		t.Fatalf("FormCluster of TLS nodes: %v", err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{members[0].Endpoint.Addr()}, TLSConfig: s.tlsConfig(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })
	for i := range 20 {
		if err := cc.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatalf("SET through the TLS cluster client: %v", err)
		}
	}
	replica := client(t, members[1].Endpoint, s.tlsConfig())
	waitReady(t, members[1].Endpoint, func(ctx context.Context, _ engine.Endpoint) error {
		if err := replica.Do(ctx, "READONLY").Err(); err != nil {
			return err
		}
		return gets(replica, "k7", "7")(ctx, members[1].Endpoint)
	})

	// A standalone TLS node seeds the cluster: its MIGRATEs go over TLS.
	seed := s.start(t, s.rt, s.tlsSpec(t, "et-tls-cluster-seed"))
	if err := client(t, seed.Endpoint, s.tlsConfig()).Set(ctx, "seeded", "over tls", 0).Err(); err != nil {
		t.Fatal(err)
	}
	owner := func(int) (engine.Endpoint, error) { return members[0].Peer, nil }
	if n, err := admin.LoadKeysInto(ctx, seed.Endpoint, owner, 0); err != nil || n != 1 {
		t.Fatalf("LoadKeysInto from a TLS node into a TLS cluster = %d, %v; want 1 key", n, err)
	}
	if v, err := cc.Get(ctx, "seeded").Result(); err != nil || v != "over tls" {
		t.Errorf("GET of the seeded key through the cluster client = %q, %v", v, err)
	}
}

// testUsers: NodeSpec.Users replace the default user at start: without
// AUTH nothing but AUTH works, the password's hash admits, other users
// exist as given, and the admin user is untouched; a user taking the
// admin's name is refused.
func (s *tlsSuite) testUsers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const password = "pw-0123456789abcdef"
	spec := s.spec(t, "et-users")
	spec.Users = []engine.ACLUser{
		{Name: "default", Enabled: true, PasswordHashes: []string{engine.PasswordHash(password)}, Rules: "~* &* +@all"},
		{Name: "reader", Enabled: true, PasswordHashes: []string{engine.PasswordHash("r-0123456789abcdef"), engine.PasswordHash("r2-0123456789abcdef")}, Rules: "~app:* -@all +get"},
		{Name: "disabled", NoPassword: true, Rules: "+@all"},
	}
	n := s.start(t, s.rt, spec)
	_, err := do(ctx, n.Endpoint, "SET", "k", "v")
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SET without AUTH = %v; want NOAUTH", err)
	}
	c := client(t, n.Endpoint, nil)
	if err := c.Do(ctx, "AUTH", "wrong-password-0123").Err(); err == nil {
		t.Error("AUTH with a wrong password succeeded")
	}
	if err := c.Do(ctx, "AUTH", password).Err(); err != nil {
		t.Fatalf("AUTH %s: %v", password, err)
	}
	if err := c.Set(ctx, "app:k", "v", 0).Err(); err != nil {
		t.Errorf("SET after AUTH: %v", err)
	}
	for _, pw := range []string{"r-0123456789abcdef", "r2-0123456789abcdef"} {
		if err := c.Do(ctx, "AUTH", "reader", pw).Err(); err != nil {
			t.Errorf("AUTH reader with either password: %v", err)
		}
	}
	if v, err := c.Get(ctx, "app:k").Result(); err != nil || v != "v" {
		t.Errorf("GET as reader = %q, %v", v, err)
	}
	if err := c.Set(ctx, "app:k", "w", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET as reader = %v; want NOPERM", err)
	}
	if err := c.Do(ctx, "AUTH", "disabled", "anything").Err(); err == nil {
		t.Error("AUTH as a disabled user succeeded")
	}
	if err := s.rt.Admin().Ping(ctx, n.Endpoint); err != nil {
		t.Errorf("admin PING of a node with users: %v", err)
	}
	bad := s.spec(t, "et-users-admin")
	bad.Users = []engine.ACLUser{{Name: engine.AdminUser, Enabled: true, NoPassword: true, Rules: "+@all"}}
	t.Cleanup(func() { stopQuietly(t, s.rt, bad.Name) })
	if _, err := s.rt.Start(ctx, bad); err == nil {
		t.Error("Start with a user named like the admin user succeeded")
	}
}

// testTLSAdopt: a runtime dropped with a TLS node running and one
// suspended; a new runtime, its admin loaded anew (nothing registered),
// reaches neither until it adopts them; then its admin (the Admin value it
// was built with) PINGs the running one over TLS and resumes the other as
// a TLS node.
func (s *tlsSuite) testTLSAdopt(t *testing.T) {
	id := time.Now().UnixNano()
	sweeperAdmin := s.loadAdmin(t)
	sweeper := s.newRuntime(t, fmt.Sprintf("enginetest-tls-sweeper-%d", id), sweeperAdmin)
	first := s.newRuntime(t, fmt.Sprintf("enginetest-tls-first-%d", id), s.loadAdmin(t))
	if _, ok := first.(engine.Keeper); !ok {
		t.Skipf("%s runtime does not implement engine.Keeper", first.Name())
	}
	ctx := testContext(t)
	specs := map[string]engine.NodeSpec{}
	for _, name := range []string{"et-tls-adopt-running", "et-tls-adopt-suspended"} {
		spec := s.tlsSpec(t, name)
		specs[name] = spec
		t.Cleanup(func() {
			sweeperAdmin.UseTLS(spec.Endpoint, true) // Stop's SHUTDOWN reaches it
			stopQuietly(t, sweeper, name)
		})
		if _, err := first.Start(ctx, spec); err != nil {
			t.Fatalf("Start %s: %v", name, err)
		}
	}
	running, suspended := specs["et-tls-adopt-running"], specs["et-tls-adopt-suspended"]
	if err := client(t, suspended.Endpoint, s.tlsConfig()).Set(ctx, "kept", "over tls", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := first.(engine.Keeper).Suspend(ctx, suspended.Name); err != nil {
		t.Fatalf("Suspend of a TLS node: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	admin := s.loadAdmin(t)
	second := s.newRuntime(t, fmt.Sprintf("enginetest-tls-second-%d", id), admin)
	if err := admin.Ping(ctx, running.Endpoint); err == nil || admin.TLS(running.Endpoint) {
		t.Fatalf("a fresh admin reached the TLS node before Adopt (PING: %v)", err)
	}
	a, err := second.(engine.Keeper).Adopt(ctx, func(n engine.Node) bool { _, ok := specs[n.Name]; return ok })
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if len(a.Running) != 1 || len(a.Stopped) != 1 {
		t.Fatalf("Adopt: %+v; want the running and the suspended TLS node", a)
	}
	if l := a.Running[0].Labels[engine.LabelTLS]; l != engine.LabelTLSRequired {
		t.Errorf("adopted TLS node's %s label = %q", engine.LabelTLS, l)
	}
	if err := admin.Ping(ctx, running.Endpoint); err != nil {
		t.Errorf("admin PING of the adopted TLS node: %v", err)
	}
	if !admin.TLS(suspended.Endpoint) {
		t.Error("Adopt did not register the suspended TLS node")
	}
	spec := suspended
	spec.Resume = true
	if _, err := second.Start(ctx, spec); err != nil {
		t.Fatalf("Start of the suspended TLS node with Resume: %v", err)
	}
	if v, err := client(t, suspended.Endpoint, s.tlsConfig()).Get(ctx, "kept").Result(); err != nil || v != "over tls" {
		t.Errorf("GET kept on the resumed TLS node = %q, %v", v, err)
	}
	refusesPlaintext(t, suspended.Endpoint)
	for _, name := range []string{running.Name, suspended.Name} {
		if err := second.Stop(ctx, name); err != nil {
			t.Errorf("Stop of adopted %s: %v", name, err)
		}
		if ep := specs[name].Endpoint; admin.TLS(ep) {
			t.Errorf("Stop left %s registered", ep.Addr())
		} else if err := admin.Ping(ctx, ep); err == nil {
			t.Errorf("PING of stopped %s succeeded", ep.Addr())
		}
	}
}
