package enginetest

// Memcached nodes (NodeSpec.Engine "memcached"): the contract of
// RunMemcached.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/elasticache-local/elasticache-local/engine"
)

// RunMemcached runs the contract of Memcached nodes against runtimes
// newRuntime builds, taking endpoints from pool: a node serves a memcached
// client with its Config applied (stats settings), is labelled, answers the
// admin's Ping and Probe, is seen dead after Kill and stopped by Stop; a
// suspended node resumes empty (memcached keeps no data); another runtime
// adopts a running one unchanged; a TLS node serves clients trusting the
// CA and refuses plaintext.
func RunMemcached(t *testing.T, pool *engine.AddressPool, newRuntime Factory) {
	s := newTLSSuite(t, pool, newRuntime, "enginetest-mc")
	t.Run("memcached", func(t *testing.T) {
		t.Run("ServeConfigKill", s.testMemcachedServe)
		t.Run("TLS", s.testMemcachedTLS)
	})
	t.Run("MemcachedKeep", s.testMemcachedKeep)
}

// memcachedSpec is a Memcached node's spec on a fresh endpoint.
func (s *tlsSuite) memcachedSpec(t *testing.T, name string) engine.NodeSpec {
	spec := s.spec(t, name)
	spec.Engine, spec.EngineVersion = engine.EngineMemcached, "1.6.17"
	return spec
}

// memcachedClient returns a gomemcache client of the node at ep, over TLS
// when cfg is set.
func memcachedClient(t *testing.T, ep engine.Endpoint, cfg *tls.Config) *memcache.Client {
	c := memcache.New(ep.Addr())
	c.Timeout = 2 * time.Second
	if cfg != nil {
		c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := tls.Dialer{Config: cfg.Clone()}
			d.Config.ServerName = ep.Host
			return d.DialContext(ctx, network, addr)
		}
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// MemcachedSettings returns the node's "stats settings" (name → value).
// gomemcache has no stats command; this test-only reader speaks the few
// lines of the text protocol it needs.
func MemcachedSettings(ctx context.Context, ep engine.Endpoint) (map[string]string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("stats settings\r\n")); err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("stats settings: unexpected line %q", line)
		}
		out[f[1]] = f[2]
	}
	return nil, fmt.Errorf("stats settings: no END: %v", sc.Err())
}

func setGet(t *testing.T, c *memcache.Client, key, value string) {
	t.Helper()
	if err := c.Set(&memcache.Item{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
	it, err := c.Get(key)
	if err != nil || string(it.Value) != value {
		t.Fatalf("get %s = %v, %v; want %q", key, it, err, value)
	}
}

// testMemcachedServe: a node with options serves, shows them in stats
// settings, is labelled, answers Ping and a Probe; Kill ends it, Stop
// removes it; an option the runtime manages is refused.
func (s *tlsSuite) testMemcachedServe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	spec := s.memcachedSpec(t, "mc-serve")
	spec.Config = map[string]string{"memory-limit": "32", "max-item-size": "2m", "disable-cas": "", "o:idle_timeout": "600"}
	n := s.start(t, s.rt, spec)
	if !n.Running || n.Labels[engine.LabelEngine] != engine.EngineMemcached {
		t.Fatalf("Start = %+v; want running, labelled %s", n, engine.EngineMemcached)
	}
	setGet(t, memcachedClient(t, spec.Endpoint, nil), "k", "v")
	st, err := MemcachedSettings(ctx, spec.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"maxbytes": "33554432", "item_size_max": "2097152", "cas_enabled": "no", "idle_timeout": "600", "tcpport": fmt.Sprint(spec.Endpoint.Port)} {
		if st[k] != want {
			t.Errorf("stats settings %s = %q, want %q", k, st[k], want)
		}
	}
	admin := s.rt.Admin()
	if err := admin.Ping(ctx, spec.Endpoint); err != nil {
		t.Errorf("admin Ping: %v", err)
	}
	p := admin.NewProbe(spec.Endpoint, time.Second)
	defer p.Close()
	if err := p.Ping(ctx); err != nil {
		t.Errorf("probe Ping: %v", err)
	}
	bad := s.memcachedSpec(t, "mc-bad")
	bad.Config = map[string]string{"listen": "0.0.0.0"}
	if _, err := s.rt.Start(ctx, bad); err == nil {
		stopQuietly(t, s.rt, bad.Name)
		t.Error("Start with the listen option succeeded; want it refused")
	}
	fi, ok := s.rt.(engine.FaultInjector)
	if !ok {
		t.Fatal("runtime is not a FaultInjector")
	}
	if err := fi.Kill(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if got, err := s.rt.Inspect(ctx, spec.Name); err != nil || got.Running {
		t.Errorf("Inspect after Kill = %+v, %v; want not running", got, err)
	}
	if err := p.Ping(ctx); err == nil {
		t.Error("probe Ping of a killed node succeeded")
	}
	if err := s.rt.Stop(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rt.Inspect(ctx, spec.Name); err == nil {
		t.Error("Inspect after Stop found the node")
	}
}

// testMemcachedTLS: a TLS node serves a client trusting the CA, its admin
// reaches it, a plaintext client gets nothing.
func (s *tlsSuite) testMemcachedTLS(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	spec := s.tlsSpec(t, "mc-tls")
	spec.Engine, spec.EngineVersion = engine.EngineMemcached, "1.6.22"
	s.start(t, s.rt, spec)
	setGet(t, memcachedClient(t, spec.Endpoint, s.tlsConfig()), "secure", "yes")
	if err := s.rt.Admin().Ping(ctx, spec.Endpoint); err != nil {
		t.Errorf("admin Ping over TLS: %v", err)
	}
	if _, err := memcachedClient(t, spec.Endpoint, nil).Get("secure"); err == nil {
		t.Error("plaintext get of a TLS node succeeded")
	}
}

// testMemcachedKeep: another runtime adopts a running node (same ID, data
// still there) and reaches it; a suspended node resumes empty.
func (s *tlsSuite) testMemcachedKeep(t *testing.T) {
	ctx := testContext(t)
	run := s.memcachedSpec(t, "mc-adopt")
	sus := s.memcachedSpec(t, "mc-suspend")
	first := s.start(t, s.rt, run)
	s.start(t, s.rt, sus)
	setGet(t, memcachedClient(t, run.Endpoint, nil), "kept", "1")
	setGet(t, memcachedClient(t, sus.Endpoint, nil), "lost", "1")
	k, ok := s.rt.(engine.Keeper)
	if !ok {
		t.Fatal("runtime is not a Keeper")
	}
	if err := k.Suspend(ctx, sus.Name); err != nil {
		t.Fatal(err)
	}
	rt2 := s.newRuntime(t, fmt.Sprintf("enginetest-mc-adopt-%d", time.Now().UnixNano()), s.loadAdmin(t))
	ad, err := rt2.(engine.Keeper).Adopt(ctx, func(n engine.Node) bool { return n.Name == run.Name || n.Name == sus.Name })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopQuietly(t, rt2, run.Name); stopQuietly(t, rt2, sus.Name) })
	var adopted bool
	for _, n := range ad.Running {
		adopted = adopted || n.Name == run.Name && n.ID == first.ID
	}
	if !adopted {
		t.Fatalf("Adopt = %+v; want %s running with ID %s", ad, run.Name, first.ID)
	}
	if err := rt2.Admin().Ping(ctx, run.Endpoint); err != nil {
		t.Errorf("the adopting runtime's admin Ping: %v", err)
	}
	if it, err := memcachedClient(t, run.Endpoint, nil).Get("kept"); err != nil || string(it.Value) != "1" {
		t.Errorf("get kept on the adopted node = %v, %v", it, err)
	}
	resumed := sus
	resumed.Resume = true
	if _, err := rt2.Start(ctx, resumed); err != nil {
		t.Fatal(err)
	}
	if _, err := memcachedClient(t, sus.Endpoint, nil).Get("lost"); err != memcache.ErrCacheMiss {
		t.Errorf("get on a resumed memcached node = %v; want a miss (memcached keeps no data)", err)
	}
}
