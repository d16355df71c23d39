package emulator

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// This file checks a requested node change (ModifyReplicationGroup and
// ModifyCacheCluster with CacheNodeType, Engine, EngineVersion) the way
// AWS does, keeps one asked without ApplyImmediately pending until the
// maintenance window (TickMaintenance), and reports it in
// PendingModifiedValues; rolling.go applies it.

// nodeChangeAsk is what a Modify request asks of the nodes.
type nodeChangeAsk struct {
	nodeType, engine, version, paramGroup *string
	// used is the memory the data takes on the primary, -1 when unknown
	// (a scale-down is then not checked against it).
	used int64
}

// asksNodeChange reports whether a Modify names a node type or an engine
// at all, before anything is looked up.
func asksNodeChange(nodeType, engineName, version *string) bool {
	return aws.ToString(nodeType) != "" || aws.ToString(engineName) != "" || aws.ToString(version) != ""
}

// usedMemory reads the memory the data of a group's primary (clusterID
// "": of group id) or of a standalone cluster takes, or -1 when it cannot
// be read. It takes the region's lock only to find the node.
func (e *Emulator) usedMemory(ctx context.Context, groupID, clusterID string) int64 {
	r := e.lockRegion(ctx)
	var ep *engine.Endpoint
	if g := r.groups[groupID]; g != nil && len(g.nodeGroups) > 0 {
		if p := r.clusters[g.nodeGroups[0].primary]; p != nil {
			ep = &p.nodes[0].endpoint
		}
	} else if cl := r.clusters[clusterID]; cl != nil && groupID == "" {
		ep = &cl.nodes[0].endpoint
	}
	r.mu.Unlock() // read only: nothing to persist
	if ep == nil {
		return -1
	}
	used, _, err := e.admin.MemoryUse(ctx, *ep)
	if err != nil {
		return -1
	}
	return used
}

// planNodeChange checks ask against cur (a standalone cluster, or a
// group's primary) and returns the change, nil when nothing changes. The
// caller holds r.mu.
func (r *region) planNodeChange(cur *cacheCluster, ask nodeChangeAsk) (*nodeChange, error) {
	ch := &nodeChange{}
	engineName := strings.ToLower(aws.ToString(ask.engine))
	if engineName == "" {
		engineName = cur.engine.Engine
	}
	switch {
	case engineName == cur.engine.Engine && aws.ToString(ask.version) == "":
		// No engine change.
	case engineName != cur.engine.Engine && !(cur.engine.Engine == "redis" && engineName == "valkey"):
		return nil, invalidParameterCombination("Cannot change the engine of %s from %s to %s: the only engine change offered is the upgrade from redis to valkey.", cur.id, cur.engine.Engine, engineName)
	default:
		ev, err := resolveEngine(aws.String(engineName), ask.version)
		if err != nil {
			return nil, err
		}
		if ev.Engine == cur.engine.Engine && !versionAtLeast(ev.Actual, cur.engine.Actual) {
			return nil, invalidParameterCombination("Cannot downgrade the engine version of %s from %s to %s: create a new cluster with the earlier version instead.", cur.id, cur.engine.Actual, ev.Actual)
		}
		if ev != cur.engine {
			ch.engine = &ev
			if ch.paramGroup, err = r.upgradeParamGroup(cur, ev, ask.paramGroup); err != nil {
				return nil, err
			}
		}
	}
	after := ch.applyTo(cur) // what the nodes run once the change is done
	if nt := aws.ToString(ask.nodeType); nt != "" && nt != cur.nodeType {
		next, err := checkNodeType(nt, after.engine)
		if err != nil {
			return nil, err
		}
		if now, ok := lookupNodeType(cur.nodeType); ok && now.dataTiering() != next.dataTiering() {
			// ListAllowedNodeTypeModifications lists the same side only.
			return nil, invalidParameterCombination("Cannot modify the node type from %s to %s: a data tiering node type moves only to another data tiering node type, and others never to one.", cur.nodeType, nt)
		}
		if err := checkNodeTypeFits(r, nt, after.paramGroup, ask.used); err != nil {
			return nil, err
		}
		ch.nodeType = nt
	} else if ch.engine != nil {
		// The node type must run the new version too.
		if _, err := checkNodeType(cur.nodeType, after.engine); err != nil {
			if _, known := lookupNodeType(cur.nodeType); known {
				return nil, err
			}
		}
	}
	if ch.nodeType == "" && ch.engine == nil {
		return nil, nil
	}
	return ch, nil
}

// upgradeParamGroup is the parameter group the nodes take with engine
// version ev: the one given (of ev's family), the same one while the
// family stays, or the new family's default in place of the old family's;
// a custom group of another family must be replaced in the same call, as
// AWS requires. The caller holds r.mu.
func (r *region) upgradeParamGroup(cur *cacheCluster, ev engineVersion, given *string) (string, error) {
	g := r.groups[cur.groupID]
	clusterMode := g != nil && g.clusterMode
	suffix := ""
	if clusterMode {
		suffix = ".cluster.on"
	}
	switch {
	case aws.ToString(given) != "" && clusterMode:
		return r.resolveClusterParamGroup(given, ev)
	case aws.ToString(given) != "":
		return r.resolveParamGroup(given, ev)
	case ev.Family == cur.engine.Family:
		return cur.paramGroup, nil
	case cur.paramGroup == "default."+cur.engine.Family+suffix:
		return "default." + ev.Family + suffix, nil
	}
	return "", invalidParameterCombination("The parameter group %s is of family %s, which engine %s %s (family %s) cannot use: specify a parameter group of family %s with CacheParameterGroupName.", cur.paramGroup, cur.engine.Family, ev.Engine, ev.Version, ev.Family, ev.Family)
}

// checkNodeTypeFits refuses a node type whose maxmemory (with the
// parameter group's reserved-memory-percent) is below the memory the data
// takes, used (-1: unknown). The caller holds r.mu.
func checkNodeTypeFits(r *region, nodeType, paramGroup string, used int64) error {
	limit, ok := r.maxmemoryOf(nodeType, paramGroup)
	if !ok || used < 0 || used <= limit {
		return nil
	}
	return invalidParameterCombination("Cannot scale to %s: the data takes %d bytes, more than the %d bytes of maxmemory a node of that type has.", nodeType, used, limit)
}

// describePending shows in out what a cluster's PendingModifiedValues shows: the change
// waiting for the window, or the one under way, as AWS lists a change in
// progress there until it is done. The caller holds r.mu.
func (r *region) describePending(cl *cacheCluster, out *types.PendingModifiedValues) {
	ch := cl.pending.merge(cl.rolling)
	if g := r.groups[cl.groupID]; g != nil {
		ch = g.pending.merge(g.rolling)
	}
	if ch == nil {
		return
	}
	if ch.nodeType != "" && ch.nodeType != cl.nodeType {
		out.CacheNodeType = aws.String(ch.nodeType)
	}
	if ch.engine != nil && ch.engine.Actual != cl.engine.Actual {
		out.EngineVersion = aws.String(ch.engine.Actual)
	}
}

// takeNodeChange decides what happens to a requested change ch (nil: none)
// and the pending one: with ApplyImmediately both start now and it
// returns the change to start, else ch joins the pending change and it
// returns nil. pending is the owner's pending change, updated in place.
func takeNodeChange(pending **nodeChange, ch *nodeChange, immediately bool) *nodeChange {
	if !immediately {
		*pending = (*pending).merge(ch)
		return nil
	}
	run := (*pending).merge(ch)
	*pending = nil
	return run
}

// TickMaintenance applies the pending changes (node changes, and a group's
// failover settings and primary: pending_settings.go) whose maintenance
// window has come, on the emulator's clock. A background loop calls it
// every 30 s; tests with an injected clock call it directly.
func (e *Emulator) TickMaintenance(ctx context.Context) {
	now := e.opts.Now().UTC()
	for _, r := range e.allRegions() {
		r.mu.Lock()
		for _, id := range sortedKeys(r.groups) {
			g := r.groups[id]
			if (g.pending != nil || !g.pendingSettings.empty()) && g.status == statusAvailable && inMaintenanceWindow(now, g.settings.maintenanceWindow) {
				ch, settings := g.pending, g.pendingSettings
				g.pending, g.pendingSettings = nil, nil
				e.record(r, types.SourceTypeReplicationGroup, g.id, "Applying pending modifications of replication group %s in its maintenance window", g.id)
				target := e.applySettings(r, g, settings)
				switch {
				case ch != nil:
					if target != "" {
						ch.primary = target // promoted once the nodes are replaced
					}
					e.startGroupChange(r, g, ch)
				case target != "":
					e.startPromote(r, g, target, "pending PrimaryClusterId applied in the maintenance window")
				}
			}
		}
		for _, id := range sortedKeys(r.clusters) {
			cl := r.clusters[id]
			if cl.mc != nil && cl.mc.pendingNodes > 0 && cl.status == statusAvailable && inMaintenanceWindow(now, cl.settings.maintenanceWindow) {
				e.applyPendingMemcached(r, cl)
			}
			if cl.groupID == "" && cl.pending != nil && cl.status == statusAvailable && inMaintenanceWindow(now, cl.settings.maintenanceWindow) {
				ch := cl.pending
				cl.pending = nil
				e.record(r, types.SourceTypeCacheCluster, cl.id, "Applying pending modifications of cache cluster %s in its maintenance window", cl.id)
				e.startClusterChange(r, cl, ch)
			}
		}
		e.unlock(r)
	}
}

// inMaintenanceWindow reports whether now (UTC) falls in a weekly
// "ddd:hh:mm-ddd:hh:mm" window, which may wrap past the end of the week.
func inMaintenanceWindow(now time.Time, window string) bool {
	start, end, ok := strings.Cut(window, "-")
	if !ok {
		return false
	}
	s, e := minuteOfWeek(start), minuteOfWeek(end)
	if s < 0 || e < 0 {
		return false
	}
	m := int(now.Weekday())*24*60 + now.Hour()*60 + now.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e
}

// minuteOfWeek reads "ddd:hh:mm" as minutes since Sunday 00:00, -1 when
// it is not one.
func minuteOfWeek(v string) int {
	day, hhmm, ok := strings.Cut(v, ":")
	if !ok {
		return -1
	}
	d := strings.Index("sunmontuewedthufrisat", strings.ToLower(day))
	m := minuteOfDay(hhmm)
	if len(day) != 3 || d < 0 || d%3 != 0 || m < 0 {
		return -1
	}
	return d/3*24*60 + m
}
