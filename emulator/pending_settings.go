package emulator

// Group-level changes a ModifyReplicationGroup without ApplyImmediately
// leaves for the maintenance window. AWS lists two of them in
// ReplicationGroupPendingModifiedValues besides the node changes
// (rolling_modify.go): AutomaticFailoverStatus and PrimaryClusterId ("the
// primary cluster ID that is applied immediately (if --apply-immediately
// was specified), or during the next maintenance window"). A Multi-AZ
// setting asked while automatic failover waits waits with it: Multi-AZ
// needs automatic failover, and AWS has no pending Multi-AZ to show, so it
// changes when failover does. Everything else a Modify asks applies at
// once, ApplyImmediately or not, as AWS's guide says of every change but
// node type, engine version and number of nodes (the AUTH token, user
// groups and in-transit encryption show AuthTokenStatus, UserGroups and
// TransitEncryption* while they are applied).

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// pendingSettings are a group's settings waiting for the window; nil
// members (and "") change nothing.
type pendingSettings struct {
	autoFailover, multiAZ *bool
	primary               string
}

// empty reports whether nothing waits.
func (p *pendingSettings) empty() bool {
	return p == nil || (p.autoFailover == nil && p.multiAZ == nil && p.primary == "")
}

// merge returns p with later's values over it (a later modification wins),
// nil when nothing is left.
func (p *pendingSettings) merge(later *pendingSettings) *pendingSettings {
	out := pendingSettings{}
	for _, x := range []*pendingSettings{p, later} {
		if x == nil {
			continue
		}
		if x.autoFailover != nil {
			out.autoFailover = x.autoFailover
		}
		if x.multiAZ != nil {
			out.multiAZ = x.multiAZ
		}
		if x.primary != "" {
			out.primary = x.primary
		}
	}
	if out.empty() {
		return nil
	}
	return &out
}

// failoverAfter and multiAZAfter are what g's automatic failover and
// Multi-AZ settings will be once what waits is applied.
func (g *replicationGroup) failoverAfter() bool {
	if p := g.pendingSettings; p != nil && p.autoFailover != nil {
		return *p.autoFailover
	}
	return g.autoFailover
}

func (g *replicationGroup) multiAZAfter() bool {
	if p := g.pendingSettings; p != nil && p.multiAZ != nil {
		return *p.multiAZ
	}
	return g.multiAZ
}

// describePendingSettings shows what waits in out; the caller holds r.mu.
func (g *replicationGroup) describePendingSettings(out *types.ReplicationGroupPendingModifiedValues) {
	p := g.pendingSettings
	if p == nil {
		return
	}
	if p.autoFailover != nil {
		out.AutomaticFailoverStatus = enabledStatus(*p.autoFailover, types.PendingAutomaticFailoverStatusEnabled, types.PendingAutomaticFailoverStatusDisabled)
	}
	if p.primary != "" {
		out.PrimaryClusterId = aws.String(p.primary)
	}
}

// applySettings makes the failover and Multi-AZ settings of p g's own and
// returns the member to promote ("" for none); the caller holds r.mu.
func (e *Emulator) applySettings(r *region, g *replicationGroup, p *pendingSettings) string {
	if p == nil {
		return ""
	}
	if p.autoFailover != nil && *p.autoFailover != g.autoFailover {
		g.autoFailover = *p.autoFailover
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Automatic failover of replication group %s is now %s", g.id,
			enabledStatus(g.autoFailover, types.AutomaticFailoverStatusEnabled, types.AutomaticFailoverStatusDisabled))
	}
	if p.multiAZ != nil {
		g.multiAZ = *p.multiAZ
	}
	if p.primary == "" {
		return ""
	}
	ng := g.nodeGroupOf(p.primary)
	switch {
	case ng == nil:
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Pending promotion of cache cluster %s dropped: it is no longer a member of replication group %s", p.primary, g.id)
	case ng.primary == p.primary:
		// Already the primary: nothing to do.
	case !slices.ContainsFunc(ng.healthyReplicas(r), func(cl *cacheCluster) bool { return cl.id == p.primary }):
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Pending promotion of cache cluster %s dropped: it is not available to be promoted", p.primary)
	default:
		return p.primary
	}
	return ""
}

// startPromote runs the planned failover of g to target (a member of its
// only node group); the caller holds r.mu.
func (e *Emulator) startPromote(r *region, g *replicationGroup, target, why string) {
	ng := g.nodeGroupOf(target)
	g.status = statusModifying
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Promoting cache cluster %s to primary", target)
	e.runOperation(r, opFailover, g.id, map[string]string{"target": target}, func(ctx context.Context) {
		e.promote(ctx, r, g, ng, target, why)
	})
}

// record and pendingSettingsFromRecord convert to and from the persisted
// form.
func (p *pendingSettings) record() *state.PendingSettings {
	if p.empty() {
		return nil
	}
	return &state.PendingSettings{AutoFailover: p.autoFailover, MultiAZ: p.multiAZ, Primary: p.primary}
}

func pendingSettingsFromRecord(rec *state.PendingSettings) *pendingSettings {
	if rec == nil {
		return nil
	}
	return (&pendingSettings{autoFailover: rec.AutoFailover, multiAZ: rec.MultiAZ, primary: rec.Primary}).merge(nil)
}
