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
// them), so a change of a group's transit encryption is a node change
// (rolling.go, nodeChange.transit): its members are replaced one by one in
// the new layout, the replicas first, then a planned failover, then the
// old primary, resumed after a restart of the emulator like any node
// change. A replica replicates in plaintext from a primary that accepts it
// (primaryServesPlaintext), since the docker runtime's peers reach a
// preferred node's plaintext port; settleTLSReplication sets every member
// for the new primary before the failover and at the end.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

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

// plaintext reports whether a node in l accepts plaintext.
func (l transitLayout) plaintext() bool { return !l.transit || l.preferred }

// layout is what s's nodes serve, a change aside.
func (s *security) layout() transitLayout {
	return transitLayout{transit: s.transit, preferred: s.transit && s.preferred}
}

// layoutOf is what cl's node serves, or is to serve when it starts: the
// new layout of its group's node change once the change replaces it or
// replaced it (as runningAs), else the current one; the caller holds r.mu.
func (r *region) layoutOf(cl *cacheCluster) transitLayout {
	if ch := r.changeOf(cl); ch != nil && ch.transit != nil && (ch.current == cl.id || slices.Contains(ch.done, cl.id)) {
		return *ch.transit
	}
	return r.securityOf(cl).layout()
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
	case g.rolling != nil:
		return nil, invalidGroupState("Replication group %s is already replacing its nodes.", g.id)
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

// settleTLSReplication sets tls-replication on every member of g for the
// primary its node change makes: before the failover to a replaced member
// and when every member is replaced. No lock is held by the caller.
func (e *Emulator) settleTLSReplication(ctx context.Context, r *region, g *replicationGroup) {
	r.mu.Lock()
	var to *transitLayout
	if g.rolling != nil {
		to = g.rolling.transit
	}
	eps := memberEndpoints(r, g.nodeGroups[0])
	r.mu.Unlock()
	if to != nil {
		e.setTLSReplication(ctx, eps, *to)
	}
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
