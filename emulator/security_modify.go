package emulator

// Changing the TLS and AUTH token of an existing group or standalone
// cluster (ModifyReplicationGroup, ModifyCacheCluster): the token is
// rotated on every node in an apply-users operation while the group shows
// modifying and PendingModifiedValues.AuthTokenStatus. A group's transit
// encryption changes by a node change (transit.go, rolling.go).

import (
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// groupSecurityModify validates a ModifyReplicationGroup's TLS and AUTH
// members and returns g's security after it, whether the AUTH token
// changes and the in-transit encryption its nodes are to move to (nil:
// no change); the caller holds r.mu and has changed nothing yet.
func (e *Emulator) groupSecurityModify(g *replicationGroup, in securityMembers) (security, bool, *transitLayout, error) {
	to, err := checkTransitModify(g, in.transit, in.mode)
	if err != nil {
		return g.sec, false, nil, err
	}
	if to != nil && (in.token != nil || in.strategy != "") {
		return g.sec, false, nil, invalidParameterCombination("TransitEncryptionEnabled or TransitEncryptionMode and the AUTH token cannot be modified in one request.")
	}
	sec, changed, err := e.securityModify(g.sec, in)
	if err == nil && changed && g.status != statusAvailable {
		err = invalidGroupState("Replication group %s must be available to modify its AUTH token; it is %s.", g.id, g.status)
	}
	return sec, changed, to, err
}

// clusterSecurityModify is groupSecurityModify for ModifyCacheCluster: a
// member's TLS and token are its group's.
func (e *Emulator) clusterSecurityModify(cl *cacheCluster, in securityMembers) (security, bool, error) {
	if cl.groupID != "" && (in.token != nil || in.strategy != "") {
		return cl.sec, false, invalidParameterCombination("Cache cluster %s is a member of replication group %s: modify the AUTH token of the replication group.", cl.id, cl.groupID)
	}
	sec, changed, err := e.securityModify(cl.sec, in)
	if err == nil && changed && cl.status != statusAvailable {
		err = invalidClusterState("Cache cluster %s must be available to modify its AUTH token; it is %s.", cl.id, cl.status)
	}
	return sec, changed, err
}

// securityModify applies a modify's members to a copy of cur.
func (e *Emulator) securityModify(cur security, in securityMembers) (security, bool, error) {
	changed, err := modifyAuth(&cur, in.token, in.strategy, e.opts.Now().UTC())
	return cur, changed, err
}

// securityMembers are the TLS and AUTH members of a modify.
type securityMembers struct {
	transit  *bool
	mode     types.TransitEncryptionMode
	token    *string
	strategy types.AuthTokenUpdateStrategyType
}

// rotateGroupAuth sets g's new token on every member's node, then settles
// the group to available; the caller holds r.mu and has set g.sec.
func (e *Emulator) rotateGroupAuth(r *region, g *replicationGroup) {
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Updating the AUTH token of replication group %s (%s)", g.id, authVerb(g.sec.authPending))
	e.pushGroupAccess(r, g)
}

// rotateClusterAuth is rotateGroupAuth for a standalone cluster.
func (e *Emulator) rotateClusterAuth(r *region, cl *cacheCluster) {
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Updating the AUTH token of cache cluster %s (%s)", cl.id, authVerb(cl.sec.authPending))
	e.pushUsers(r, cl.id, []*cacheCluster{cl}, func() {
		cl.sec.authPending = ""
		if cl.status == statusModifying {
			cl.status = statusAvailable
		}
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster %s modified: AUTH token updated", cl.id)
	})
}

// authVerb names a pending token change for the events.
func authVerb(s types.AuthTokenUpdateStatus) string {
	if s == types.AuthTokenUpdateStatusRotating {
		return "rotating: the old and the new token are accepted"
	}
	return "setting: only the new token is accepted"
}
