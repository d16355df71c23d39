package emulator

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// ModifyReplicationGroup changes a group's settings. Description, windows
// and retention are control-plane metadata, and a new parameter group's
// values reach the nodes through CONFIG SET, so they apply at once
// (ApplyImmediately or not); the group passes through "modifying" like on
// AWS. A new node type or engine version replaces the nodes one by one
// (rolling.go); PrimaryClusterId runs a planned failover; automatic
// failover (and Multi-AZ with it) changes the group's failover policy:
// these four at once with ApplyImmediately, else in the maintenance window
// (pending_settings.go), shown in PendingModifiedValues until then.
func (e *Emulator) ModifyReplicationGroup(ctx context.Context, in *elasticache.ModifyReplicationGroupInput) (*elasticache.ModifyReplicationGroupOutput, error) {
	id, err := lookupID("ReplicationGroupId", in.ReplicationGroupId)
	if err != nil {
		return nil, err
	}
	if err := checkLength("ReplicationGroupDescription", in.ReplicationGroupDescription, maxDescriptionLen); err != nil {
		return nil, err
	}
	// Cluster mode is refused by the member audit (input_rules.go) before
	// this runs. A scale-down is checked against the memory the data
	// takes, read before the lock (no network under it).
	ask := nodeChangeAsk{nodeType: in.CacheNodeType, engine: in.Engine, version: in.EngineVersion,
		paramGroup: in.CacheParameterGroupName, used: -1}
	if aws.ToString(in.CacheNodeType) != "" {
		ask.used = e.usedMemory(ctx, id, "")
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.group(id)
	if err != nil {
		return nil, err
	}
	var change *nodeChange
	if asksNodeChange(in.CacheNodeType, in.Engine, in.EngineVersion) {
		if change, err = r.planNodeChange(r.clusters[g.nodeGroups[0].primary], ask); err != nil {
			return nil, err
		}
	}
	immediately := aws.ToBool(in.ApplyImmediately)
	// The failover settings are checked as they will be once everything
	// asked, now and before, is applied.
	autoFailover, multiAZ := g.failoverAfter(), g.multiAZAfter()
	if in.AutomaticFailoverEnabled != nil {
		autoFailover = *in.AutomaticFailoverEnabled
	}
	if in.MultiAZEnabled != nil {
		multiAZ = *in.MultiAZEnabled
	}
	if g.clusterMode && !autoFailover {
		return nil, invalidParameterCombination("AutomaticFailoverEnabled must be enabled for Redis OSS and Valkey (cluster mode enabled) replication groups.")
	}
	if autoFailover && !g.clusterMode && len(g.nodeGroups[0].members) < 2 {
		return nil, invalidParameterCombination("When using automatic failover, there must be at least 2 cache clusters in the replication group.")
	}
	if multiAZ && !autoFailover {
		return nil, invalidParameterCombination("Multi-AZ requires automatic failover to be enabled.")
	}
	pg := g.paramGroup
	if aws.ToString(in.CacheParameterGroupName) != "" && (change == nil || change.engine == nil) {
		if pg, err = r.resolveParamGroup(in.CacheParameterGroupName, g.engine); err != nil {
			return nil, err
		}
	}
	settings, err := g.settings.modify(in.PreferredMaintenanceWindow, in.SnapshotWindow, in.SnapshotRetentionLimit, in.AutoMinorVersionUpgrade, in.NotificationTopicArn, in.NotificationTopicStatus)
	if err != nil {
		return nil, err
	}
	snapshotting := strings.ToLower(aws.ToString(in.SnapshottingClusterId))
	if snapshotting != "" && g.nodeGroupOf(snapshotting) == nil {
		return nil, invalidParameterValue("Cache cluster %s is not a member of replication group %s.", snapshotting, id)
	}
	promote := strings.ToLower(aws.ToString(in.PrimaryClusterId))
	if promote != "" && g.clusterMode {
		return nil, invalidParameterCombination("PrimaryClusterId is not valid for a replication group with cluster mode enabled; use TestFailover with a NodeGroupId.")
	}
	promoteAsked := promote != ""
	if promote != "" {
		ng := g.nodeGroupOf(promote)
		switch {
		case ng == nil:
			return nil, invalidParameterValue("Cache cluster %s is not a member of replication group %s.", promote, id)
		case ng.primary == promote:
			promote = "" // already the primary: nothing to do
		case !slices.ContainsFunc(ng.healthyReplicas(r), func(cl *cacheCluster) bool { return cl.id == promote }):
			return nil, invalidClusterState("Cache cluster %s is not available to be promoted.", promote)
		}
	}
	sec, authChanged, transitTo, err := e.groupSecurityModify(g, securityMembers{transit: in.TransitEncryptionEnabled,
		mode: in.TransitEncryptionMode, token: in.AuthToken, strategy: in.AuthTokenUpdateStrategy})
	if err != nil {
		return nil, err
	}
	userGroups, usersChanged, err := r.modifiedUserGroups(g, &sec, authChanged, in.UserGroupIdsToAdd, in.UserGroupIdsToRemove, in.RemoveUserGroups, e.opts.Now().UTC())
	if err != nil {
		return nil, err
	}
	if (authChanged || usersChanged) && promote != "" {
		return nil, invalidParameterCombination("AuthToken or user groups and PrimaryClusterId cannot be modified in one request.")
	}
	if transitTo != nil && (usersChanged || promote != "") {
		return nil, invalidParameterCombination("TransitEncryptionEnabled or TransitEncryptionMode cannot be modified in one request with user groups or PrimaryClusterId.")
	}
	if change != nil && (authChanged || usersChanged || promote != "") {
		return nil, invalidParameterCombination("CacheNodeType or EngineVersion cannot be modified in one request with AuthToken, user groups or PrimaryClusterId.")
	}
	// Validation is over: apply.
	g.sec = sec
	r.setUserGroups(g, userGroups)
	if d := aws.ToString(in.ReplicationGroupDescription); d != "" {
		g.description = d
	}
	if pg != g.paramGroup {
		var members []*cacheCluster
		for _, m := range g.memberClusters() {
			members = append(members, r.clusters[m])
		}
		e.configSet(r, pg, members)
	}
	g.paramGroup, g.settings = pg, settings
	now, wait := splitSettings(g, in, promote, promoteAsked, immediately)
	target := e.applySettings(r, g, now) // the member to promote now, if any
	g.pendingSettings = wait
	if snapshotting != "" {
		g.snapshotting = snapshotting
	}
	for _, m := range g.memberClusters() {
		if cl := r.clusters[m]; cl != nil {
			cl.paramGroup = pg
			cl.settings.maintenanceWindow = settings.maintenanceWindow
			cl.settings.snapshotWindow = settings.snapshotWindow
			cl.settings.snapshotRetention = settings.snapshotRetention
			cl.settings.autoMinorUpgrade = settings.autoMinorUpgrade
			// The topic is reported by the member clusters, as on AWS.
			cl.settings.notificationTopic = settings.notificationTopic
			cl.settings.notificationStatus = settings.notificationStatus
		}
	}
	if in.SecurityGroupIds != nil {
		for _, m := range g.memberClusters() {
			r.clusters[m].securityIDs = append([]string{}, in.SecurityGroupIds...)
		}
	}
	g.status = statusModifying
	run := takeNodeChange(&g.pending, change, immediately)
	if transitTo != nil {
		// Applied at once, as AWS applies it, with whatever node change
		// runs now: one replacement of every node.
		run = run.merge(&nodeChange{transit: transitTo})
	}
	if run != nil {
		if target != "" {
			run.primary = target // a pending promotion, once the nodes are replaced
		}
		e.startGroupChange(r, g, run)
		return &elasticache.ModifyReplicationGroupOutput{ReplicationGroup: ptr(g.describe(r))}, nil
	}
	out := &elasticache.ModifyReplicationGroupOutput{ReplicationGroup: ptr(g.describe(r))}
	switch {
	case authChanged:
		e.rotateGroupAuth(r, g)
		return out, nil
	case usersChanged:
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Changing the user groups of replication group %s to %v", g.id, userGroups)
		e.pushGroupAccess(r, g)
		return out, nil
	}
	if target != "" {
		e.startPromote(r, g, target, "requested by ModifyReplicationGroup (PrimaryClusterId)")
		return out, nil
	}
	e.settle(r, &g.status, types.SourceTypeReplicationGroup, g.id, "Replication group %s modified", g.id)
	return out, nil
}

// splitSettings parts what a ModifyReplicationGroup asks of g's failover
// settings and primary (promote: the member to promote, "" when none or
// already the primary, promoteAsked when PrimaryClusterId was given) into
// what applies now and what waits for the window, with what already
// waits: with ApplyImmediately everything applies now; without it a
// change of automatic failover waits, with the Multi-AZ setting asked
// with it, and so does the promotion. The caller holds r.mu.
func splitSettings(g *replicationGroup, in *elasticache.ModifyReplicationGroupInput, promote string, promoteAsked, immediately bool) (now, wait *pendingSettings) {
	asked := &pendingSettings{autoFailover: in.AutomaticFailoverEnabled, multiAZ: in.MultiAZEnabled, primary: promote}
	if immediately {
		now = g.pendingSettings.merge(asked)
		if promoteAsked && now != nil {
			now.primary = promote // the newer PrimaryClusterId wins, even the current primary
		}
		return now.merge(nil), nil
	}
	now, wait = &pendingSettings{}, g.pendingSettings.merge(&pendingSettings{})
	if wait == nil {
		wait = &pendingSettings{}
	}
	if in.AutomaticFailoverEnabled != nil {
		wait.autoFailover = nil
		if *in.AutomaticFailoverEnabled != g.autoFailover {
			wait.autoFailover = in.AutomaticFailoverEnabled
		}
	}
	if in.MultiAZEnabled != nil {
		wait.multiAZ = in.MultiAZEnabled
	}
	if wait.autoFailover == nil {
		// No failover change waits: Multi-AZ has nothing to wait for.
		now.multiAZ, wait.multiAZ = wait.multiAZ, nil
	}
	if promoteAsked {
		wait.primary = promote // a later PrimaryClusterId replaces a pending one
	}
	return now.merge(nil), wait.merge(nil)
}
