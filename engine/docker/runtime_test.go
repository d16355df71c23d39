package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/enginetest"
)

// addressBase keeps this package's nodes on addresses of their own
// (127.0.60.x is the process runtime's), so test binaries running in
// parallel never collide.
const addressBase = "127.0.61.2"

var (
	poolOnce sync.Once
	pool     *engine.AddressPool
	poolErr  error
)

func testPool(t testing.TB) *engine.AddressPool {
	t.Helper()
	poolOnce.Do(func() { pool, poolErr = engine.NewAddressPool(addressBase) })
	if poolErr != nil {
		t.Fatal(poolErr)
	}
	return pool
}

// skipOrFail skips the test on a developer machine without Docker (or
// without a way to build the images) and fails it in CI, where the
// environment is expected to provide both.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var (
	imagesOnce sync.Once
	imagesErr  error
)

// requireDocker returns a client for assertions once the daemon answers and
// the default redis image exists; a missing image is built offline with
// scripts/build-offline-images (once per test binary).
func requireDocker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		skipOrFail(t, "docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), pingTimeout)
	defer cancel()
	ping, err := cli.Ping(ctx)
	if err != nil {
		skipOrFail(t, "Docker daemon unreachable: %v", err)
	}
	cli.NegotiateAPIVersionPing(ping)
	imagesOnce.Do(func() {
		for _, img := range []string{DefaultRedisImage, DefaultValkeyImage} {
			if _, err := cli.ImageInspect(t.Context(), img); err == nil {
				continue
			} else if !cerrdefs.IsNotFound(err) {
				imagesErr = err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, "../../scripts/build-offline-images").CombinedOutput()
			if err != nil {
				imagesErr = fmt.Errorf("image %s is missing and scripts/build-offline-images failed: %v\n%s", img, err, out)
			}
			return
		}
	})
	if imagesErr != nil {
		skipOrFail(t, "%v", imagesErr)
	}
	return cli
}

// newTestRuntime returns a Runtime closed when the test ends.
func newTestRuntime(t testing.TB, opts Options) *Runtime {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rt, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

// assertNoLeftovers registers a cleanup, to run after every later-registered
// one, that fails the test if containers or networks of scope remain.
func assertNoLeftovers(t testing.TB, cli *client.Client, scope string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		f := filters.NewArgs(filters.Arg("label", LabelScope+"="+scope))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Error(err)
		}
		for _, c := range cs {
			t.Errorf("container left behind: %s %v (%s)", c.ID[:12], c.Names, c.State)
		}
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Error(err)
		}
		for _, n := range nets {
			t.Errorf("network left behind: %s", n.Name)
		}
	})
}

func TestContract(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir() // absolute: the default scope
	// Registered before the runtimes' Close, so it runs after them.
	assertNoLeftovers(t, cli, dataDir)
	rt := newTestRuntime(t, Options{EmulatorID: fmt.Sprintf("docker-contract-%d", os.Getpid()), DataDir: dataDir})
	if rt.Scope() != dataDir {
		t.Fatalf("default scope %q, want the data dir %q", rt.Scope(), dataDir)
	}
	enginetest.Run(t, rt, testPool(t), func(t *testing.T, id string) engine.Runtime {
		return newTestRuntime(t, Options{EmulatorID: id, DataDir: dataDir, Admin: rt.Admin()})
	})
}

// TestContractBridge runs the contract with the nodes on the scope's bridge
// network and their ports published (NetworkBridge), as wherever the host's
// network is not the emulator's; TestContract runs it in the mode New
// picks (the host's network on a local Linux daemon).
func TestContractBridge(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir()
	assertNoLeftovers(t, cli, dataDir)
	rt := newTestRuntime(t, Options{EmulatorID: fmt.Sprintf("docker-bridge-%d", os.Getpid()), DataDir: dataDir, NetworkMode: NetworkBridge})
	if rt.HostNetwork() {
		t.Fatal("NetworkBridge runtime reports the host's network")
	}
	enginetest.Run(t, rt, testPool(t), func(t *testing.T, id string) engine.Runtime {
		return newTestRuntime(t, Options{EmulatorID: id, DataDir: dataDir, Admin: rt.Admin(), NetworkMode: NetworkBridge})
	})
}

// TestContractTLS runs the TLS and users contract, the TLS files copied
// into the containers through the API (TestTLSBindMounts covers writing
// them on the host).
func TestContractTLS(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir() // the scope
	assertNoLeftovers(t, cli, dataDir)
	enginetest.RunTLS(t, testPool(t), func(t *testing.T, id string, admin engine.Admin) engine.Runtime {
		return newTestRuntime(t, Options{EmulatorID: id, DataDir: dataDir, Admin: admin})
	})
}

// TestWithoutDataDir covers /data inside the container: SAVE, CopyFrom and
// seeding a node with InitialRDB through the archive API.
func TestWithoutDataDir(t *testing.T) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-nodatadir-%d", os.Getpid())
	assertNoLeftovers(t, cli, scope)
	rt := newTestRuntime(t, Options{EmulatorID: scope, Scope: scope})
	ctx := t.Context()
	start := func(name string, rdb []byte) engine.NodeSpec {
		t.Helper()
		ep, err := testPool(t).Allocate(6379)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testPool(t).Release(ep) })
		spec := engine.NodeSpec{Name: name, Engine: "valkey", EngineVersion: "8.1", Endpoint: ep}
		if rdb != nil {
			spec.InitialRDB = bytes.NewReader(rdb)
		}
		t.Cleanup(func() {
			if err := rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
				t.Error(err)
			}
		})
		if _, err := rt.Start(ctx, spec); err != nil {
			t.Fatal(err)
		}
		return spec
	}
	src := start("nodatadir-src", nil)
	for _, args := range [][]any{{"SET", "k", "v"}, {"SAVE"}} {
		if err := rt.Admin().WithClient(ctx, src.Endpoint, func(ctx context.Context, c *redis.Client) error {
			return c.Do(ctx, args...).Err()
		}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := rt.CopyFrom(ctx, src.Name, "dump.rdb")
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.HasPrefix(rdb, []byte("REDIS")) {
		t.Fatalf("dump.rdb: %q, %v", rdb[:min(len(rdb), 16)], err)
	}
	dst := start("nodatadir-dst", rdb)
	var got string
	err = rt.Admin().WithClient(ctx, dst.Endpoint, func(ctx context.Context, c *redis.Client) error {
		got, err = c.Get(ctx, "k").Result()
		return err
	})
	if err != nil || got != "v" {
		t.Fatalf("GET k on the seeded node = %q, %v; want v", got, err)
	}
	if err := rt.Suspend(ctx, dst.Name); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Errorf("Suspend without a data dir = %v, want an error naming Options.DataDir", err)
	}
}

// TestBindMounts covers /data bind-mounted from the data dir: the server
// writes its files there as the calling user, and Suspend/Resume keep the
// data across containers, the mounted files going with the container.
func TestBindMounts(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir()
	assertNoLeftovers(t, cli, dataDir)
	rt := newTestRuntime(t, Options{EmulatorID: fmt.Sprintf("docker-test-bind-%d", os.Getpid()), DataDir: dataDir, BindMounts: true})
	ctx := t.Context()
	ep, err := testPool(t).Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testPool(t).Release(ep) })
	spec := engine.NodeSpec{Name: "bind", Endpoint: ep}
	t.Cleanup(func() {
		if err := rt.Stop(context.Background(), spec.Name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
			t.Error(err)
		}
	})
	do := func(args ...any) any {
		t.Helper()
		var v any
		if err := rt.Admin().WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
			v, err = c.Do(ctx, args...).Result()
			return err
		}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v
	}
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	do("SET", "k", "bound")
	do("SAVE")
	mounted := filepath.Join(dataDir, "containers", spec.Name, "dump.rdb")
	fi, err := os.Stat(mounted)
	if err != nil {
		t.Fatalf("SAVE wrote nothing into the bind-mounted directory: %v", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Getuid() > 0 && int(st.Uid) != os.Getuid() {
		t.Errorf("%s belongs to uid %d, want the caller's %d", mounted, st.Uid, os.Getuid())
	}
	if err := rt.Suspend(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(mounted)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bind-mounted directory after Suspend: %v, want it removed", err)
	}
	spec.Resume = true
	if _, err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if got := do("GET", "k"); got != "bound" {
		t.Fatalf("GET k after Suspend and Resume = %v", got)
	}
	if _, err := os.Stat(filepath.Join(dataDir, keptDirName, spec.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("kept data after Resume: %v, want it removed", err)
	}
}

func TestMissingImage(t *testing.T) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-missing-%d", os.Getpid())
	assertNoLeftovers(t, cli, scope)
	const img = "elasticache-local-test/no-such-image:0"
	rt := newTestRuntime(t, Options{EmulatorID: scope, Scope: scope, Images: map[string]string{"redis:7.1": img}})
	ep, err := testPool(t).Allocate(6379)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testPool(t).Release(ep) })
	_, err = rt.Start(t.Context(), engine.NodeSpec{Name: "missing", Engine: "redis", EngineVersion: "7.1.0", Endpoint: ep})
	if !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), img) || !strings.Contains(err.Error(), "scripts/build-offline-images") {
		t.Fatalf("Start with a missing image = %v; want ErrImageNotFound naming the image and the build script", err)
	}
	if _, err := rt.Inspect(t.Context(), "missing"); !errors.Is(err, engine.ErrNodeNotFound) {
		t.Fatalf("Inspect after a failed Start = %v, want ErrNodeNotFound", err)
	}
}

func TestServerArgs(t *testing.T) {
	spec := engine.NodeSpec{
		Name:     "n",
		Endpoint: engine.Endpoint{Host: "127.0.0.3", Port: 6380},
		Config:   map[string]string{"maxmemory-policy": "allkeys-lru", "notify-keyspace-events": ""},
	}
	peer := engine.Endpoint{Host: "node-127-0-0-2-6380", Port: 6380}
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	args, err := serverArgs(spec, &peer, admin, false)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"--port 6380 ", "--bind 0.0.0.0 ", "--protected-mode no ", "--save  --appendonly no ",
		"--repl-diskless-sync no --repl-diskless-sync-delay 0 ",
		"--replica-announce-ip 127.0.0.3 --replica-announce-port 6380 ",
		"--replicaof node-127-0-0-2-6380 6380 ",
		"--maxmemory-policy allkeys-lru --notify-keyspace-events ",
		"--user " + admin.User() + " on >", "--masteruser " + admin.User() + " --masterauth ",
	} {
		if !strings.Contains(joined+" ", want) {
			t.Errorf("args %q lack %q", joined, want)
		}
	}
	if i := slices.Index(args, "--save"); i < 0 || args[i+1] != "" {
		t.Errorf("--save must be followed by an empty argument: %q", args)
	}
	// The admin user's directives are the runtime's too.
	for _, bad := range []string{"port", "BIND", "replica-announce-ip", "dir", "bad key", "user", "masterauth", "MasterUser", "aclfile"} {
		spec.Config = map[string]string{bad: "x"}
		if _, err := serverArgs(spec, nil, engine.Admin{}, false); err == nil {
			t.Errorf("Config[%q] accepted", bad)
		}
	}
}

func TestImageFor(t *testing.T) {
	r := &Runtime{images: map[string]string{
		"redis": DefaultRedisImage, "valkey": DefaultValkeyImage,
		"redis:6": "redis:6.2", "redis:7.0": "my/redis:7.0",
	}}
	for _, tc := range []struct{ eng, version, image, entry string }{
		{"redis", "7.0.7", "my/redis:7.0", "redis-server"},
		{"Redis", "6.0", "redis:6.2", "redis-server"},
		{"", "", DefaultRedisImage, "redis-server"},
		{"redis", "7.1", DefaultRedisImage, "redis-server"},
		{"valkey", "8.0", DefaultValkeyImage, "valkey-server"},
	} {
		img, entry, err := r.imageFor(tc.eng, tc.version)
		if err != nil || img != tc.image || entry != tc.entry {
			t.Errorf("imageFor(%q, %q) = %q, %q, %v; want %q, %q", tc.eng, tc.version, img, entry, err, tc.image, tc.entry)
		}
	}
	if _, _, err := r.imageFor("memcached", "1.6"); err == nil {
		t.Error("imageFor(memcached) succeeded")
	}
}

func TestPeerEndpoint(t *testing.T) {
	r := &Runtime{}
	ep := engine.Endpoint{Host: "127.0.0.2", Port: 6379}
	peer := r.PeerEndpoint(ep)
	if peer != (engine.Endpoint{Host: "node-127-0-0-2-6379", Port: 6379}) {
		t.Fatalf("PeerEndpoint(%s) = %s", ep.Addr(), peer.Addr())
	}
	if again := r.PeerEndpoint(peer); again != peer {
		t.Errorf("PeerEndpoint is not idempotent: %s", again.Addr())
	}
	if got := alias(engine.Endpoint{Host: "::1", Port: 7000}); got != "node---1-7000" {
		t.Errorf("alias(::1) = %q", got)
	}
	if a, b := containerName("id-1", "n"), containerName("id-2", "n"); a == b || !strings.HasPrefix(a, "elasticache-local-n-") {
		t.Errorf("container names %q, %q; want distinct per emulator id", a, b)
	}
}

// TestDuplicateNetworks: concurrent creations can leave several networks
// with the scope's name (the daemon's duplicate check is not atomic), which
// makes the name ambiguous to the API. Runtimes of the scope agree on one
// of them, by id, so their nodes still start and reach each other, and the
// empty duplicates go.
func TestDuplicateNetworks(t *testing.T) {
	cli := requireDocker(t)
	scope := fmt.Sprintf("docker-test-dupnet-%d", os.Getpid())
	assertNoLeftovers(t, cli, scope)
	rt := newTestRuntime(t, Options{EmulatorID: scope + "-a", Scope: scope, NetworkMode: NetworkBridge})
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = cli.NetworkCreate(ctx, rt.Network(), network.CreateOptions{Driver: "bridge",
				Labels: map[string]string{LabelScope: scope, engine.LabelEmulator: "racing"}})
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		// Whatever the test leaves, before assertNoLeftovers looks.
		nets, _ := cli.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelScope+"="+scope))})
		for _, n := range nets {
			_ = cli.NetworkRemove(context.Background(), n.ID)
		}
	})
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", rt.Network()))})
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) < 2 {
		t.Skipf("the daemon made %d network of 8 concurrent creations: no duplicates to agree on", len(nets))
	}
	if _, err := cli.NetworkInspect(ctx, rt.Network(), network.InspectOptions{}); err == nil {
		t.Fatalf("%d networks named %s, yet the name is not ambiguous: the test shows nothing", len(nets), rt.Network())
	}
	// A container in the newest duplicate keeps it from being removed, so
	// the name stays ambiguous (as with nodes a run started in it).
	newest := slices.MaxFunc(nets, func(a, b network.Summary) int { return a.Created.Compare(b.Created) })
	squatter, err := cli.ContainerCreate(ctx, &container.Config{Image: DefaultRedisImage}, nil,
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{newest.ID: {}}}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), squatter.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, squatter.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	other := newTestRuntime(t, Options{EmulatorID: scope + "-b", Scope: scope, Admin: rt.Admin(), NetworkMode: NetworkBridge})
	start := func(rt *Runtime, name string, replicaOf *engine.Endpoint) engine.Endpoint {
		t.Helper()
		ep, err := testPool(t).Allocate(6379)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testPool(t).Release(ep) })
		t.Cleanup(func() {
			if err := rt.Stop(context.Background(), name); err != nil && !errors.Is(err, engine.ErrNodeNotFound) {
				t.Error(err)
			}
		})
		if _, err := rt.Start(ctx, engine.NodeSpec{Name: name, Endpoint: ep, ReplicaOf: replicaOf}); err != nil {
			t.Fatalf("Start %s with %d networks named %s: %v", name, len(nets), rt.Network(), err)
		}
		return ep
	}
	primary := start(rt, "dupnet-primary", nil)
	replica := start(other, "dupnet-replica", &primary)
	if err := engine.WaitReady(ctx, replica, rt.Admin().ReplicatingFrom(rt.PeerEndpoint(primary))); err != nil {
		t.Fatal(err)
	}
	left, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", rt.Network()))})
	if err != nil || len(left) != 2 {
		t.Errorf("networks named %s once nodes run: %d, %v; want the one in use and the duplicate the squatter uses", rt.Network(), len(left), err)
	}
}

// TestContractMemcached runs the Memcached nodes' contract, on addresses
// of its own.
func TestContractMemcached(t *testing.T) {
	cli := requireDocker(t)
	dataDir := t.TempDir() // the scope
	assertNoLeftovers(t, cli, dataDir)
	pool, err := engine.NewAddressPool("127.0.21.2")
	if err != nil {
		t.Fatal(err)
	}
	enginetest.RunMemcached(t, pool, func(t *testing.T, id string, admin engine.Admin) engine.Runtime {
		return newTestRuntime(t, Options{EmulatorID: id, DataDir: dataDir, Admin: admin})
	})
}
