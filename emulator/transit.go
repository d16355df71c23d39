package emulator

// Changing the in-transit encryption of an existing replication group
// online, in AWS's steps (ModifyReplicationGroup): TransitEncryptionEnabled
// with TransitEncryptionMode preferred (TLS and plaintext), then required
// (TLS only); and back, required → preferred → disabled.
//
// A preferred node serves both on its one endpoint. Redis serves them on
// two ports, so the node listens at engine.PreferredEndpoints and a
// demultiplexer (proxy.ListenDemux) at its endpoint sends each connection
// on by its first byte; required and plaintext nodes keep their endpoint
// to themselves. Only the listeners change, and a Redis node cannot move
// them without a restart on both runtimes (the docker runtime publishes
// them), so a modify-transit operation restarts the members one by one in
// the new layout, as a rolling replacement: the replicas first (each syncs
// from the primary again), then a planned failover to one of them (writes
// are paused until it has every acknowledged one), then the old primary.
// A group of one node is saved and restarted from its data. The members
// already restarted are recorded (transitChange.done), so a restart of the
// emulator goes on from there; what serves which layout is read back from
// the runtime's labels first.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

// opModifyTransit changes a group's transit encryption (changeTransit).
const opModifyTransit = "modify-transit"

// transitRetry is how long a step of a transit change that failed waits
// before it is tried again.
const transitRetry = time.Second

// transitLayout is what a node serves: plaintext, TLS and plaintext
// (preferred), or TLS only.
type transitLayout struct{ transit, preferred bool }

// mode is the TransitEncryptionMode of l ("" without transit).
func (l transitLayout) mode() types.TransitEncryptionMode {
	switch {
	case l.transit && l.preferred:
		return types.TransitEncryptionModePreferred
	case l.transit:
		return types.TransitEncryptionModeRequired
	}
	return ""
}

// String names l in events.
func (l transitLayout) String() string {
	if !l.transit {
		return "disabled"
	}
	return "enabled (" + string(l.mode()) + ")"
}

// label is the engine.LabelTLS a node started in l carries.
func (l transitLayout) label() string {
	switch {
	case l.transit && l.preferred:
		return engine.LabelTLSPreferred
	case l.transit:
		return engine.LabelTLSRequired
	}
	return ""
}

// plaintext reports whether a node in l accepts plaintext.
func (l transitLayout) plaintext() bool { return !l.transit || l.preferred }

// transitChange is a change of a group's transit encryption in progress.
type transitChange struct {
	to transitLayout
	// done are the members restarted in the new layout.
	done []string
}

// layout is what s's nodes serve, a change aside.
func (s *security) layout() transitLayout {
	return transitLayout{transit: s.transit, preferred: s.transit && s.preferred}
}

// layoutOf is what cl's node serves, or is to serve when it starts: its
// group's new layout once a change restarted it, else the current one;
// the caller holds r.mu.
func (r *region) layoutOf(cl *cacheCluster) transitLayout {
	sec := r.securityOf(cl)
	if c := sec.change; c != nil && slices.Contains(c.done, cl.id) {
		return c.to
	}
	return sec.layout()
}

// primaryServesPlaintext reports whether cl's node replicates without TLS:
// its primary (or, for a primary, the node itself) accepts plaintext.
// Replicas reach a preferred primary in plaintext (the docker runtime's
// peers reach its plaintext port); the caller holds r.mu.
func (r *region) primaryServesPlaintext(cl *cacheCluster) bool {
	src := cl
	if g := r.groups[cl.groupID]; g != nil {
		if ng := g.nodeGroupOf(cl.id); ng != nil && r.clusters[ng.primary] != nil {
			src = r.clusters[ng.primary]
		}
	}
	return r.layoutOf(src).plaintext()
}

// checkTransitModify validates a ModifyReplicationGroup's
// TransitEncryptionEnabled and TransitEncryptionMode and returns the layout
// they change g to, nil when they change nothing; the caller holds r.mu.
func checkTransitModify(g *replicationGroup, enabled *bool, mode types.TransitEncryptionMode) (*transitLayout, error) {
	cur := g.sec.layout()
	to := cur
	if enabled != nil {
		to.transit = *enabled
	}
	m := string(mode)
	if err := checkTransitMode(to.transit, mode); err != nil {
		return nil, err
	}
	switch {
	case !to.transit:
		to.preferred = false
	case m != "":
		to.preferred = m == transitPreferred
	case !cur.transit:
		to.preferred = false // refused below: enabling needs preferred
	}
	if to == cur {
		return nil, nil
	}
	switch {
	case !cur.transit && !to.preferred:
		return nil, invalidParameterCombination("When enabling in-transit encryption on an existing replication group, TransitEncryptionMode must be set to preferred.")
	case cur.transit && !to.transit && !cur.preferred:
		return nil, invalidParameterCombination("In-transit encryption can be disabled only when TransitEncryptionMode is preferred; modify TransitEncryptionMode to preferred first.")
	case !to.transit && g.sec.authEnabled():
		return nil, invalidParameterCombination("In-transit encryption cannot be disabled while an AUTH token is set; delete it first (AuthTokenUpdateStrategy DELETE).")
	case !to.transit && len(g.userGroupIDs) > 0:
		return nil, invalidParameterCombination("In-transit encryption cannot be disabled while user groups are associated with the replication group.")
	case g.sec.change != nil:
		return nil, invalidGroupState("Replication group %s is already changing its in-transit encryption.", g.id)
	case g.clusterMode:
		return nil, notImplemented("changing the in-transit encryption of a cluster-mode-enabled replication group")
	case majorVersion(g.engine.Version) < 7:
		return nil, invalidParameterCombination("In-transit encryption can be modified on an existing replication group only with engine version 7.0 or later.")
	}
	if err := checkPreferredPort(to, g.port); err != nil {
		return nil, err
	}
	return &to, nil
}

// checkPreferredPort refuses a preferred layout on a port whose
// engine.PreferredEndpoints do not exist.
func checkPreferredPort(l transitLayout, port int32) error {
	if l.transit && l.preferred && port > 65533 {
		return invalidParameterValue("TransitEncryptionMode preferred needs the two ports after Port %d, which do not exist.", port)
	}
	return nil
}

// majorVersion is the major number of an engine version ("7.1" → 7).
func majorVersion(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}

// startTransitChange runs g's transit change (g.sec.change, set by the
// caller with g's status modifying); the caller holds r.mu.
func (e *Emulator) startTransitChange(r *region, g *replicationGroup) {
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Modifying in-transit encryption of replication group %s from %s to %s",
		g.id, g.sec.layout(), g.sec.change.to)
	e.runOperation(r, opModifyTransit, g.id, nil, func(ctx context.Context) { e.changeTransit(ctx, r, g) })
}

// changeTransit restarts g's members in the new layout one by one (see
// the file's comment), then makes it g's; no lock is held by the caller.
func (e *Emulator) changeTransit(ctx context.Context, r *region, g *replicationGroup) {
	e.verifyDone(ctx, r, g)
	for ctx.Err() == nil {
		r.mu.Lock()
		c := g.sec.change
		if r.groups[g.id] != g || c == nil {
			r.mu.Unlock()
			return
		}
		ng := g.nodeGroups[0]
		next := ""
		for _, id := range ng.members {
			if id != ng.primary && !slices.Contains(c.done, id) {
				next = id
				break
			}
		}
		primaryLeft := next == "" && !slices.Contains(c.done, ng.primary)
		if primaryLeft && len(ng.members) == 1 {
			next = ng.primary
		}
		r.mu.Unlock()
		var err error
		switch {
		case next != "":
			err = e.restartInLayout(ctx, r, g, next)
		case primaryLeft:
			err = e.failoverForTransit(ctx, r, g, ng, c.to)
		default:
			e.finishTransit(ctx, r, g)
			return
		}
		if err != nil && ctx.Err() == nil {
			e.log.Warn("a step of an in-transit encryption change failed; trying again", "group", g.id, "err", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(transitRetry):
			}
		}
	}
}

// verifyDone drops from g's change the members whose node does not serve
// the new layout after all (a restart of the emulator cut its restart
// short), so they are restarted again.
func (e *Emulator) verifyDone(ctx context.Context, r *region, g *replicationGroup) {
	r.mu.Lock()
	c := g.sec.change
	if c == nil {
		r.mu.Unlock()
		return
	}
	names := map[string]string{}
	for _, id := range c.done {
		if cl := r.clusters[id]; cl != nil {
			names[id] = cl.nodes[0].name
		}
	}
	want := c.to.label()
	r.mu.Unlock()
	var stale []string
	for id, name := range names {
		n, err := e.opts.Runtime.Inspect(ctx, name)
		if err != nil || n.Labels[engine.LabelTLS] != want {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	c.done = slices.DeleteFunc(c.done, func(id string) bool { return slices.Contains(stale, id) })
}

// restartInLayout restarts member id of g in the new layout: as a replica
// of the primary, or (the only member) from its own saved data.
func (e *Emulator) restartInLayout(ctx context.Context, r *region, g *replicationGroup, id string) error {
	r.mu.Lock()
	cl := r.clusters[id]
	c := g.sec.change
	if cl == nil || c == nil {
		r.mu.Unlock()
		return fmt.Errorf("cache cluster %s is gone", id)
	}
	n := cl.nodes[0]
	// Recorded first: the node starts in the new layout (layoutOf), and
	// verifyDone undoes it if a restart of the emulator cuts this short.
	c.done = append(c.done, id)
	n.recovering = true // the health monitor and the endpoints leave it alone
	ng := g.nodeGroupOf(id)
	ng.syncEndpoints(r)
	launch := e.launchFor(r, cl, n, r.replicaSource(cl))
	alone := len(ng.members) == 1
	e.record(r, types.SourceTypeCacheCluster, id, "Restarting cache node %s with in-transit encryption %s", n.id, c.to)
	e.unlock(r)

	var err error
	keeper, canKeep := e.opts.Runtime.(engine.Keeper)
	switch {
	case alone && canKeep:
		// The only copy of the data: saved, and loaded by the new node.
		err = keeper.Suspend(ctx, n.name)
		launch.spec.Resume = true
	default:
		err = e.opts.Runtime.Stop(ctx, n.name)
	}
	if err == nil || isNotFound(err) {
		err = e.startNode(ctx, launch)
	}

	r.mu.Lock()
	defer e.unlock(r)
	n.recovering = false
	if err != nil {
		// Left to the health monitor, which restarts it from the same
		// records (in the new layout), as it repairs any failed node.
		n.down, n.misses = true, e.opts.HealthMisses-1
		e.record(r, types.SourceTypeCacheCluster, id, "Restarting cache node %s with in-transit encryption %s failed: %v", n.id, c.to, err)
		return err
	}
	n.down, n.misses = false, 0
	ng.syncEndpoints(r)
	return nil
}

// failoverForTransit makes a member already in the new layout g's primary,
// with a planned failover, so the old primary can be restarted as a
// replica. Every member replicates as the new primary needs from then on.
func (e *Emulator) failoverForTransit(ctx context.Context, r *region, g *replicationGroup, ng *nodeGroup, to transitLayout) error {
	r.mu.Lock()
	eps := memberEndpoints(r, ng)
	e.unlock(r)
	e.setTLSReplication(ctx, eps, to)
	_, err := e.failover(ctx, r, g, ng, "", true, time.Time{}, "handing the primary role to a node restarted with the new in-transit encryption")
	return err
}

// setTLSReplication sets tls-replication on the nodes at eps for a primary
// in layout to: a replica connects to it in plaintext unless it serves TLS
// only. CONFIG SET applies to the next connection; a link that is up
// stays as it is.
func (e *Emulator) setTLSReplication(ctx context.Context, eps []engine.Endpoint, to transitLayout) {
	if !to.transit {
		return // the nodes have no TLS
	}
	v := engine.TLSReplication(&engine.TLSSpec{PlainReplication: to.plaintext()})
	for _, ep := range eps {
		if err := e.admin.ConfigSet(ctx, ep, map[string]string{"tls-replication": v}); err != nil && ctx.Err() == nil {
			e.log.Warn("setting tls-replication", "node", ep.Addr(), "err", err.Error())
		}
	}
}

// memberEndpoints are the node endpoints of ng's members; the caller holds
// r.mu.
func memberEndpoints(r *region, ng *nodeGroup) []engine.Endpoint {
	var eps []engine.Endpoint
	for _, id := range ng.members {
		if cl := r.clusters[id]; cl != nil {
			eps = append(eps, cl.nodes[0].endpoint)
		}
	}
	return eps
}

// finishTransit makes the new layout g's, once every member serves it,
// and settles g.
func (e *Emulator) finishTransit(ctx context.Context, r *region, g *replicationGroup) {
	r.mu.Lock()
	to := g.sec.change.to
	eps := memberEndpoints(r, g.nodeGroups[0])
	e.unlock(r)
	e.setTLSReplication(ctx, eps, to)
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	g.sec.transit, g.sec.preferred, g.sec.change = to.transit, to.preferred, nil
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s modified: in-transit encryption is %s", g.id, to)
	e.unlock(r)
	e.availableWhenServing(ctx, r, g)
}

// resumeTransitChange goes on with the transit change of the group
// target that the earlier run left; the caller holds r.mu.
func (e *Emulator) resumeTransitChange(r *region, target string) {
	if g := r.groups[target]; g != nil && g.sec.change != nil {
		g.status = statusModifying
		e.runOperation(r, opModifyTransit, g.id, nil, func(ctx context.Context) { e.changeTransit(ctx, r, g) })
	}
}

// demuxes are the demultiplexers in front of preferred nodes, by node
// name; the emulator opens one before such a node starts (the runtime's
// readiness check goes through it) and closes it when the node stops or
// restarts in another layout.
type demuxes struct {
	log *slog.Logger
	mu  sync.Mutex
	m   map[string]*proxy.Proxy
}

func newDemuxes(log *slog.Logger) *demuxes {
	return &demuxes{log: log, m: map[string]*proxy.Proxy{}}
}

// serve makes sure a demultiplexer for node name listens at ep.
func (d *demuxes) serve(name string, ep engine.Endpoint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.m[name]; p != nil {
		if p.Addr() == ep {
			return nil
		}
		_ = p.Close()
		delete(d.m, name)
	}
	plain, tls := engine.PreferredEndpoints(ep)
	p, err := proxy.ListenDemux(ep.Addr(), plain, tls, proxy.Options{Name: name + " (TLS or plaintext)", Logger: d.log})
	if err != nil {
		return fmt.Errorf("serving TLS and plaintext at %s: %w", ep.Addr(), err)
	}
	d.m[name] = p
	return nil
}

// servesAt reports whether a demultiplexer serves the node endpoint ep.
func (d *demuxes) servesAt(ep engine.Endpoint) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.m {
		if p.Addr() == ep {
			return true
		}
	}
	return false
}

// stop closes node name's demultiplexer, if it has one.
func (d *demuxes) stop(name string) {
	d.mu.Lock()
	p := d.m[name]
	delete(d.m, name)
	d.mu.Unlock()
	if p != nil {
		_ = p.Close()
	}
}

// closeAll closes every demultiplexer (the emulator stops).
func (d *demuxes) closeAll() {
	d.mu.Lock()
	ps := d.m
	d.m = map[string]*proxy.Proxy{}
	d.mu.Unlock()
	for _, p := range ps {
		_ = p.Close()
	}
}
