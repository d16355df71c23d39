package emulator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Parameter groups applied to the nodes: at start (redis.conf), and with
// CONFIG SET when a group or a cluster's group changes.

// familyEngine is the engine of a parameter group family.
func familyEngine(family string) string {
	if strings.HasPrefix(family, "valkey") {
		return "valkey"
	}
	return "redis"
}

// paramValue is one parameter's value in group pgName ("" when the group
// or its family lacks it); the caller holds r.mu.
func (r *region) paramValue(pgName, name string) string {
	if pg := r.paramGroups[pgName]; pg != nil {
		return pg.values()[name]
	}
	return ""
}

// nodeConfig is the configuration a node of cluster cl runs with under
// parameter group pgName: the group's engine parameters, and the maxmemory
// of the cluster's node type less the group's reserved memory. live leaves
// out the requires-reboot parameters, for CONFIG SET on a running node
// (databases cannot change there at all). The caller holds r.mu.
func (r *region) nodeConfig(cl *cacheCluster, pgName string, live bool) map[string]string {
	if cl.mc != nil {
		return r.memcachedConfig(cl, pgName)
	}
	out := map[string]string{}
	pg := r.paramGroups[pgName]
	if pg != nil {
		out = engineConfig(pg.family, pg.values())
		if live {
			for _, p := range familyParams(pg.family) {
				if p.ChangeType == types.ChangeTypeRequiresReboot {
					delete(out, p.Name)
				}
			}
		}
	}
	// A record from before the node-type catalog may name a type it lacks:
	// such a node keeps running without a limit, as it did.
	if max, ok := r.maxmemoryOf(cl.nodeType, pgName); ok {
		out["maxmemory"] = strconv.FormatInt(max, 10)
	}
	return out
}

// maxmemoryOf is the maxmemory of a node of type nodeTypeName under
// parameter group pgName (its reserved memory); ok is false for a node type
// the catalog lacks. The caller holds r.mu.
func (r *region) maxmemoryOf(nodeTypeName, pgName string) (int64, bool) {
	nt, ok := lookupNodeType(nodeTypeName)
	if !ok {
		return 0, false
	}
	bytes, percent := int64(0), defaultReservedMemoryPercent
	if pg := r.paramGroups[pgName]; pg != nil {
		bytes, percent = pg.reservedMemory()
	}
	if bytes > 0 {
		return max((nt.MemoryBytes-bytes)/nodeMemoryScale, minNodeMaxmemory), true
	}
	return nt.maxmemory(percent), true
}

// applyParams pushes the group's values to every running node of every
// cluster using it (CONFIG SET), in the background; the caller holds r.mu.
func (e *Emulator) applyParams(r *region, pg *paramGroup) {
	var using []*cacheCluster
	for _, cl := range r.clusters {
		if cl.paramGroup == pg.name {
			using = append(using, cl)
		}
	}
	e.configSet(r, pg.name, using)
}

// configSet applies parameter group pg to every node of clusters in the
// background (each node's own configuration: maxmemory follows its node
// type), logging failures; a cluster moving to pg from another group is
// left pending-reboot when a requires-reboot value differs. The caller
// holds r.mu. An apply cut off by a restart is made again then
// (restore.go).
func (e *Emulator) configSet(r *region, pg string, clusters []*cacheCluster) {
	for _, cl := range clusters {
		if cl.paramGroup != pg && r.rebootNeeded(cl.paramGroup, pg) {
			cl.pendingReboot = true
		}
	}
	type nodeValues struct {
		ep     engine.Endpoint
		values map[string]string
	}
	var targets []nodeValues
	for _, cl := range clusters {
		values := r.nodeConfig(cl, pg, true)
		for _, n := range cl.nodes {
			targets = append(targets, nodeValues{n.endpoint, values})
		}
	}
	if len(targets) == 0 {
		return
	}
	defrag := r.paramValue(pg, "activedefrag")
	e.runOperation(r, opApplyParameters, pg, nil, func(ctx context.Context) {
		for _, t := range targets {
			if err := e.admin.ConfigSet(ctx, t.ep, t.values); err != nil {
				e.log.Warn("applying parameters", "node", t.ep.Addr(), "err", fmt.Sprint(err))
				continue
			}
			e.setDefrag(ctx, t.ep, defrag)
		}
	})
}

// setDefrag sets activedefrag on a running node, by itself: a redis-server
// built without active defragmentation refuses yes (and would refuse to
// start with it in its redis.conf), which is logged and leaves the node
// running without it; the group still holds the value.
func (e *Emulator) setDefrag(ctx context.Context, ep engine.Endpoint, value string) {
	if value == "" {
		return
	}
	if err := e.admin.ConfigSet(ctx, ep, map[string]string{"activedefrag": value}); err != nil && value == "yes" {
		e.log.Warn("activedefrag not applied: the engine binary has no active defragmentation", "node", ep.Addr(), "err", fmt.Sprint(err))
	}
}

// parameterStatus is the cluster's ParameterApplyStatus (and each node's
// ParameterGroupStatus).
func (cl *cacheCluster) parameterStatus() string {
	if cl.pendingReboot {
		return "pending-reboot"
	}
	return "in-sync"
}

// nodesToReboot are the nodes a reboot would bring in sync with the group.
func (cl *cacheCluster) nodesToReboot() []string {
	ids := []string{}
	if cl.pendingReboot {
		for _, n := range cl.nodes {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// rebootNeeded reports whether a cluster moving from parameter group from
// to group to needs a reboot to run it: a requires-reboot engine parameter
// differs. The caller holds r.mu.
func (r *region) rebootNeeded(from, to string) bool {
	a, b := r.paramGroups[from], r.paramGroups[to]
	if a == nil || b == nil {
		return false
	}
	av, bv := a.values(), b.values()
	for _, p := range familyParams(b.family) {
		if p.ChangeType == types.ChangeTypeRequiresReboot && p.Apply == applyEngine && av[p.Name] != bv[p.Name] {
			return true
		}
	}
	return false
}
