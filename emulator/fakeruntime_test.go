package emulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"

	"github.com/elasticache-local/elasticache-local/engine"
)

// The fake runtime runs each node as an in-process miniredis server
// listening at the node's endpoint, so the control plane's operations can be
// tested in milliseconds without starting a process; the real-node suites
// (integration, enginetest) cover the engines themselves. miniredis speaks
// RESP and knows PING and AUTH with a user, which is all a standalone cache
// cluster's lifecycle sends to its node; it has no replication (REPLICAOF,
// INFO replication), CONFIG, SHUTDOWN or BGSAVE, so Start refuses replicas
// and RDB seeds instead of pretending to serve them.

// errFakeCrashed is what every call of a crashed fake runtime returns.
var errFakeCrashed = errors.New("fake runtime: its emulator was killed")

// fakeWorld is what the fake runtimes of one test share, as the runtimes of
// successive runs share a data dir: the nodes (running or not) and the
// admin credentials. A node belongs to the runtime instance that started,
// adopted or suspended it; the next instance takes over the others through
// Adopt or removes them through Reap.
type fakeWorld struct {
	admin engine.Admin

	mu     sync.Mutex
	nodes  map[string]*fakeNode
	gates  map[string]*fakeGate // by "op name"
	nextID int
}

// fakeNode is one node of the world.
type fakeNode struct {
	spec  engine.NodeSpec
	owner *fakeRuntime
	// srv is the node's server; it runs when running is set, and when not
	// it holds the data Suspend kept (nil if nothing is kept).
	srv     *miniredis.Miniredis
	running bool
	id      string
	// frozen, while the node is paused, is closed by Resume, Kill or Stop
	// to let the commands held since Pause through.
	frozen chan struct{}
}

// fakeGate holds calls of one operation on one node until released.
type fakeGate struct {
	entered chan struct{} // closed when a call reaches the gate
	release chan struct{} // closed to let the calls through
	once    sync.Once
}

// newFakeWorld returns an empty world whose nodes require fresh admin
// credentials, as real nodes do (engine.Admin.ServerDirectives). Every
// server still running when the test ends is closed.
func newFakeWorld(t *testing.T) *fakeWorld {
	admin, err := engine.NewAdmin()
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWorld{admin: admin, nodes: map[string]*fakeNode{}, gates: map[string]*fakeGate{}}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, g := range w.gates {
			g.open()
		}
		for name, n := range w.nodes {
			n.shutdown()
			delete(w.nodes, name)
		}
	})
	return w
}

// runtime returns a new runtime instance over the world (one per run of the
// emulator).
func (w *fakeWorld) runtime() *fakeRuntime { return &fakeRuntime{w: w} }

// hold makes calls of op ("start", "stop") on the node called name wait
// until the gate is released or their context ends.
func (w *fakeWorld) hold(op, name string) *fakeGate {
	g := &fakeGate{entered: make(chan struct{}), release: make(chan struct{})}
	w.mu.Lock()
	w.gates[op+" "+name] = g
	w.mu.Unlock()
	return g
}

// open lets every held call through, now and later.
func (g *fakeGate) open() {
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// pass waits at the gate of op on name, if there is one.
func (w *fakeWorld) pass(ctx context.Context, op, name string) error {
	w.mu.Lock()
	g := w.gates[op+" "+name]
	w.mu.Unlock()
	if g == nil {
		return nil
	}
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fake runtime: %s %s held: %w", op, name, ctx.Err())
	}
}

// startsOf returns the Start calls this instance got for the node called
// name.
func (rt *fakeRuntime) startsOf(name string) []engine.NodeSpec {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	var out []engine.NodeSpec
	for _, s := range rt.starts {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// server returns the running server of the node called name, or nil.
func (w *fakeWorld) server(name string) *miniredis.Miniredis {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.nodes[name]; n != nil && n.running {
		return n.srv
	}
	return nil
}

// kill ends the node called name whoever owns it, losing its data, as a
// node that dies while no emulator runs.
func (w *fakeWorld) kill(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.nodes[name]; n != nil {
		n.shutdown()
		n.srv = nil
	}
}

// exists reports whether the world has a record of the node called name.
func (w *fakeWorld) exists(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodes[name] != nil
}

// view is the runtime's report of n; the caller holds w.mu.
func (n *fakeNode) view() engine.Node {
	return engine.Node{
		Name: n.spec.Name, Endpoint: n.spec.Endpoint, Labels: maps.Clone(n.spec.Labels),
		Running: n.running, ID: n.id, Paused: n.frozen != nil,
		HasData: !n.running && n.srv != nil,
	}
}

// thaw releases the commands a Pause holds; the caller holds w.mu.
func (n *fakeNode) thaw() {
	if n.frozen != nil {
		close(n.frozen)
		n.frozen = nil
		if n.srv != nil && n.running {
			n.srv.Server().SetPreHook(nil)
		}
	}
}

// shutdown stops n's server, keeping its data in srv; the caller holds w.mu.
func (n *fakeNode) shutdown() {
	n.thaw()
	if n.running {
		n.srv.Close()
		n.running = false
	}
}

// fakeRuntime is one runtime instance over a fakeWorld. It implements
// engine.Runtime, engine.Keeper, engine.Reaper and engine.FaultInjector.
type fakeRuntime struct {
	w *fakeWorld
	// Guarded by w.mu: crashed (see crash) and every Start call, in order.
	crashed bool
	starts  []engine.NodeSpec
}

var (
	_ engine.Runtime       = (*fakeRuntime)(nil)
	_ engine.Keeper        = (*fakeRuntime)(nil)
	_ engine.Reaper        = (*fakeRuntime)(nil)
	_ engine.FaultInjector = (*fakeRuntime)(nil)
)

// crash makes the instance act as the runtime of an emulator that was
// killed (kill -9): from now on it touches no node, so what runs keeps
// running for the next instance to adopt.
func (rt *fakeRuntime) crash() {
	rt.w.mu.Lock()
	rt.crashed = true
	rt.w.mu.Unlock()
}

func (rt *fakeRuntime) isCrashed() bool {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	return rt.crashed
}

// mine returns the node called name if this instance owns it; the caller
// holds w.mu.
func (rt *fakeRuntime) mine(name string) (*fakeNode, error) {
	if rt.crashed {
		return nil, errFakeCrashed
	}
	n := rt.w.nodes[name]
	if n == nil || n.owner != rt {
		return nil, fmt.Errorf("%w: %s", engine.ErrNodeNotFound, name)
	}
	return n, nil
}

func (rt *fakeRuntime) Name() string { return "fake" }

func (rt *fakeRuntime) Admin() engine.Admin { return rt.w.admin }

func (rt *fakeRuntime) PeerEndpoint(ep engine.Endpoint) engine.Endpoint { return ep }

func (rt *fakeRuntime) Close() error { return nil }

// Start starts a miniredis server at spec.Endpoint with the admin user, or
// starts the kept one again for Resume (its data is still in memory).
func (rt *fakeRuntime) Start(ctx context.Context, spec engine.NodeSpec) (engine.Node, error) {
	w := rt.w
	w.mu.Lock()
	crashed := rt.crashed
	if !crashed {
		rt.starts = append(rt.starts, spec)
	}
	w.mu.Unlock()
	if crashed {
		return engine.Node{}, errFakeCrashed
	}
	switch {
	case spec.ReplicaOf != nil:
		return engine.Node{}, errors.New("fake runtime: miniredis cannot replicate")
	case spec.InitialRDB != nil:
		return engine.Node{}, errors.New("fake runtime: miniredis cannot load an RDB")
	}
	if err := w.pass(ctx, "start", spec.Name); err != nil {
		return engine.Node{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if rt.crashed {
		return engine.Node{}, errFakeCrashed
	}
	old := w.nodes[spec.Name]
	if old != nil && old.running {
		return engine.Node{}, fmt.Errorf("%w: %s", engine.ErrNodeExists, spec.Name)
	}
	var srv *miniredis.Miniredis
	if old != nil && spec.Resume {
		srv = old.srv // nil when nothing was kept: start empty
	}
	if srv == nil {
		srv = miniredis.NewMiniRedis()
		if err := requireAdmin(srv, w.admin); err != nil {
			return engine.Node{}, err
		}
	}
	if err := srv.StartAddr(spec.Endpoint.Addr()); err != nil {
		return engine.Node{}, fmt.Errorf("fake runtime: starting %s: %w", spec.Name, err)
	}
	w.nextID++
	spec.Labels, spec.Config = maps.Clone(spec.Labels), maps.Clone(spec.Config)
	n := &fakeNode{spec: spec, owner: rt, srv: srv, running: true, id: strconv.Itoa(w.nextID)}
	w.nodes[spec.Name] = n
	return n.view(), nil
}

// requireAdmin gives srv the admin user of a, read from the directives a
// real node is configured with ("user NAME on >PASSWORD ...").
func requireAdmin(srv *miniredis.Miniredis, a engine.Admin) error {
	for _, d := range a.ServerDirectives() {
		if len(d) >= 4 && d[0] == "user" && len(d[3]) > 1 && d[3][0] == '>' {
			srv.RequireUserAuth(d[1], d[3][1:])
			return nil
		}
	}
	return errors.New("fake runtime: the admin credentials name no user")
}

func (rt *fakeRuntime) Stop(ctx context.Context, name string) error {
	if err := rt.w.pass(ctx, "stop", name); err != nil {
		return err
	}
	w := rt.w
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return err
	}
	n.shutdown()
	delete(w.nodes, name)
	return nil
}

func (rt *fakeRuntime) Inspect(ctx context.Context, name string) (engine.Node, error) {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return engine.Node{}, err
	}
	return n.view(), nil
}

func (rt *fakeRuntime) List(ctx context.Context) ([]engine.Node, error) {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	if rt.crashed {
		return nil, errFakeCrashed
	}
	var out []engine.Node
	for _, n := range rt.w.nodes {
		out = append(out, n.view())
	}
	return out, nil
}

// Suspend stops the node keeping its data (the closed server).
func (rt *fakeRuntime) Suspend(ctx context.Context, name string) error {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return err
	}
	n.shutdown() // a killed node has no srv: it keeps no data
	return nil
}

// Adopt takes over the nodes of other instances that keep owns and removes
// the rest (engine.Keeper).
func (rt *fakeRuntime) Adopt(ctx context.Context, keep func(engine.Node) bool) (engine.Adoption, error) {
	w := rt.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if rt.crashed {
		return engine.Adoption{}, errFakeCrashed
	}
	var ad engine.Adoption
	for name, n := range w.nodes {
		if n.owner == rt {
			continue
		}
		v := n.view()
		switch {
		case !keep(v):
			n.shutdown()
			delete(w.nodes, name)
			ad.Reaped++
		case n.running:
			n.owner = rt
			ad.Running = append(ad.Running, v)
		default:
			n.owner = rt
			ad.Stopped = append(ad.Stopped, v)
		}
	}
	return ad, nil
}

func (rt *fakeRuntime) Reap(ctx context.Context) (int, error) {
	ad, err := rt.Adopt(ctx, func(engine.Node) bool { return false })
	return ad.Reaped, err
}

// Kill ends the node losing its data; its record stays until Stop.
func (rt *fakeRuntime) Kill(ctx context.Context, name string) error {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return err
	}
	n.shutdown()
	n.srv = nil
	return nil
}

// Pause holds every command the node receives until Resume: connections
// are accepted, nothing is answered (a hung server).
func (rt *fakeRuntime) Pause(ctx context.Context, name string) error {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return err
	}
	if !n.running {
		return fmt.Errorf("fake runtime: %s is not running", name)
	}
	if n.frozen == nil {
		frozen := make(chan struct{})
		n.frozen = frozen
		n.srv.Server().SetPreHook(func(*server.Peer, string, ...string) bool {
			<-frozen
			return false
		})
	}
	return nil
}

func (rt *fakeRuntime) Resume(ctx context.Context, name string) error {
	rt.w.mu.Lock()
	defer rt.w.mu.Unlock()
	n, err := rt.mine(name)
	if err != nil {
		return err
	}
	n.thaw()
	return nil
}
