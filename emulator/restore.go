package emulator

import (
	"context"
	"fmt"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// This file brings back, at start, what an earlier run left: its records
// (package state) and its nodes. A node the records own is adopted as it
// runs when the earlier run was killed (engine.Keeper.Adopt: same process
// or container, client connections undisturbed), started again from the
// data it saved when the earlier run stopped gracefully (NodeSpec.Resume),
// or, if it died meanwhile, recovered as the health monitor recovers a
// dead node. Everything else of the data dir is reaped. Then every
// resource is reconciled with its records: work an operation left half
// done (a create, a delete, a replica change, a failover) is finished, so
// nothing stays in a transitional status, and the operations' records go.

// endpointAddresses are the addresses of a node group's primary and reader
// endpoints.
type endpointAddresses struct {
	primary, reader engine.Endpoint
}

// addresses returns the node group's endpoint addresses: those of its open
// endpoints, or the recorded ones it is restored at.
func (ng *nodeGroup) addresses() (endpointAddresses, bool) {
	switch {
	case ng.primaryEP != nil && ng.readerEP != nil:
		return endpointAddresses{primary: ng.primaryEP.Addr(), reader: ng.readerEP.Addr()}, true
	case ng.addrs != nil:
		return *ng.addrs, true
	}
	return endpointAddresses{}, false
}

// RestoreReport says what Restore found.
type RestoreReport struct {
	Regions    int // account+region scopes loaded
	Adopted    int // nodes taken over while running
	Restarted  int // nodes to start again (from their saved data when they have some)
	Reaped     int // nodes and kept data no record owns, removed
	Operations int // operations the earlier run left unfinished
}

// nodeFate is how a recorded node comes back.
type nodeFate struct {
	running bool // adopted as it runs
	kept    bool // not running, its saved data is kept
}

// Restore installs the regions of an earlier run and takes over their
// nodes; Start calls it before the API serves. Nodes that must start again
// and half-done work are handled in the background (reconcileRegion), so
// the API serves at once; until then their resources show a transitional
// status.
func (e *Emulator) Restore(ctx context.Context, recs []state.Region) (RestoreReport, error) {
	var rep RestoreReport
	var regions []*region
	owned := map[string]*cacheNode{}
	for i := range recs {
		r := regionFromRecord(&recs[i])
		regions = append(regions, r)
		rep.Regions++
		rep.Operations += len(r.ops.live)
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if err := e.opts.Addresses.Reserve(n.endpoint); err != nil {
					return rep, fmt.Errorf("emulator: the state of %s/%s gives node %s the address of another: %w", r.account, r.region, n.name, err)
				}
				if !r.doomed(cl) {
					owned[n.name] = n
				}
			}
		}
		if err := e.reserveMemcached(r); err != nil {
			return rep, fmt.Errorf("emulator: the state of %s/%s gives a configuration endpoint the address of another: %w", r.account, r.region, err)
		}
		for _, g := range r.groups {
			if g.cfg != nil && g.cfg.addr != nil {
				if err := e.opts.Addresses.Reserve(*g.cfg.addr); err != nil {
					return rep, fmt.Errorf("emulator: the state of %s/%s gives the configuration endpoint of %s the address of another: %w", r.account, r.region, g.id, err)
				}
			}
			for _, ng := range g.nodeGroups {
				if a := ng.addrs; a != nil {
					for _, ep := range []engine.Endpoint{a.primary, a.reader} {
						if err := e.opts.Addresses.Reserve(ep); err != nil {
							return rep, fmt.Errorf("emulator: the state of %s/%s gives an endpoint of %s the address of another: %w", r.account, r.region, g.id, err)
						}
					}
				}
			}
		}
	}

	fates := map[string]nodeFate{}
	switch rt := e.opts.Runtime.(type) {
	case engine.Keeper:
		ad, err := rt.Adopt(ctx, func(n engine.Node) bool {
			o := owned[n.Name]
			return o != nil && o.endpoint == n.Endpoint
		})
		if err != nil {
			return rep, fmt.Errorf("emulator: taking over the nodes of the earlier run: %w", err)
		}
		for _, n := range ad.Running {
			fates[n.Name] = nodeFate{running: true}
			if n.Labels[engine.LabelTLS] == engine.LabelTLSPreferred {
				// It serves its endpoint through a demultiplexer,
				// which went with the earlier run.
				if err := e.demux.serve(n.Name, n.Endpoint); err != nil {
					return rep, fmt.Errorf("emulator: node %s: %w", n.Name, err)
				}
			}
		}
		for _, n := range ad.Stopped {
			fates[n.Name] = nodeFate{kept: n.HasData}
		}
		rep.Adopted, rep.Reaped = len(ad.Running), ad.Reaped
	case engine.Reaper:
		n, err := rt.Reap(ctx)
		if err != nil {
			return rep, fmt.Errorf("emulator: reaping nodes of an earlier run: %w", err)
		}
		rep.Reaped = n
	}

	for _, r := range regions {
		for _, cl := range r.clusters {
			if r.doomed(cl) || cl.status == statusCreateFailed || cl.status == restoreFailed {
				continue
			}
			for _, n := range cl.nodes {
				if !fates[n.name].running {
					// Not serving until restarted: the health monitor
					// leaves it alone, the endpoints skip it, and
					// Describe says so from the first request on.
					n.recovering = true
					// A Memcached node being added or removed keeps
					// saying so: reconcileMemcached finishes the change.
					if cl.status != statusCreating && (cl.mc == nil || n.status == statusAvailable) {
						cl.status, n.status = statusRebooting, nodeRebooting
					}
					rep.Restarted++
				}
			}
		}
		for _, g := range r.groups {
			if g.status == statusDeleting {
				continue
			}
			if g.status == statusAvailable && g.recovering(r) {
				g.status = statusModifying
			}
			if g.clusterMode && g.cfg.addr == nil && g.cfg.ep == nil {
				// Recorded before its address was: a new one.
				a, err := e.opts.Addresses.Allocate(int(g.port))
				if err != nil {
					return rep, err
				}
				g.cfg.addr = &a
			}
			for _, ng := range g.nodeGroups {
				if !g.clusterMode && ng.addrs == nil && ng.primaryEP == nil {
					// Recorded before its addresses were: new ones.
					if err := e.allocateEndpoints(g, ng); err != nil {
						return rep, err
					}
				}
			}
			if err := e.openEndpoints(r, g, true); err != nil {
				return rep, fmt.Errorf("emulator: reopening the endpoints of %s at their recorded addresses: %w", g.id, err)
			}
		}
		if err := e.reopenDiscovery(r); err != nil {
			return rep, err
		}
		e.mu.Lock()
		e.regions[r.scope] = r
		e.mu.Unlock()
	}
	for _, r := range regions {
		e.goBackground(func(ctx context.Context) { e.reconcileRegion(ctx, r, fates) })
	}
	return rep, nil
}

// doomed reports whether cl was being deleted (alone or with its group).
func (r *region) doomed(cl *cacheCluster) bool {
	if cl.status == statusDeleting {
		return true
	}
	g := r.groups[cl.groupID]
	return g != nil && g.status == statusDeleting
}

// ownsNode reports whether a record owns the runtime node called name.
func (e *Emulator) ownsNode(name string) bool {
	for _, r := range e.allRegions() {
		r.mu.Lock()
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if n.name == name {
					r.mu.Unlock()
					return true
				}
			}
		}
		r.mu.Unlock()
	}
	return false
}
