package emulator

// User groups on replication groups: UserGroupIds of CreateReplicationGroup
// and UserGroupIdsToAdd / UserGroupIdsToRemove / RemoveUserGroups of
// ModifyReplicationGroup, and the switch between an AUTH token and RBAC
// that AWS allows through them. The users themselves and their push to the
// nodes are rbac_apply.go's; a node started later gets them from launchFor
// (nodeUsers).

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// maxUserGroupsPerGroup: a replication group uses one user group.
const maxUserGroupsPerGroup = 1

// createUserGroups validates the UserGroupIds of a create; the caller
// holds r.mu.
func (r *region) createUserGroups(ids []string, ev engineVersion, sec security) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if sec.authEnabled() {
		return nil, invalidParameterCombination("AuthToken and UserGroupIds cannot be used together: use one or the other.")
	}
	if len(ids) > maxUserGroupsPerGroup {
		return nil, invalidParameterValue("A replication group can be associated with at most %d user group.", maxUserGroupsPerGroup)
	}
	if err := r.checkUserGroupsAttachable(ids, ev, sec.transit); err != nil {
		return nil, err
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToLower(id)
	}
	return out, nil
}

// modifiedUserGroups validates a modify's user group members against g
// and sec (the group's security after the modify's AUTH members) and
// returns the user groups g has after it and whether they change. Adding a
// user group to a group with an AUTH token moves it to RBAC (the token is
// dropped from sec); changing the token of a group that keeps a user group
// is refused. The caller holds r.mu.
func (r *region) modifiedUserGroups(g *replicationGroup, sec *security, authChanged bool, add, remove []string, removeAll *bool, now time.Time) ([]string, bool, error) {
	if len(add) == 0 && len(remove) == 0 && !aws.ToBool(removeAll) {
		if authChanged && len(g.userGroupIDs) > 0 {
			return nil, false, invalidParameterCombination("Replication group %s uses user groups: remove them (RemoveUserGroups) in the same request to use an AUTH token.", g.id)
		}
		return g.userGroupIDs, false, nil
	}
	if g.status != statusAvailable {
		return nil, false, invalidGroupState("Replication group %s must be available to change its user groups; it is %s.", g.id, g.status)
	}
	if aws.ToBool(removeAll) && len(add) > 0 {
		return nil, false, invalidParameterCombination("RemoveUserGroups cannot be combined with UserGroupIdsToAdd.")
	}
	next := slices.Clone(g.userGroupIDs)
	if aws.ToBool(removeAll) {
		next = nil
	}
	for _, raw := range remove {
		id := strings.ToLower(raw)
		if !slices.Contains(next, id) {
			return nil, false, invalidParameterValue("User group %s is not associated with replication group %s.", id, g.id)
		}
		next = slices.DeleteFunc(next, func(s string) bool { return s == id })
	}
	var added []string
	for _, raw := range add {
		id := strings.ToLower(raw)
		if slices.Contains(next, id) {
			return nil, false, invalidParameterValue("User group %s is already associated with replication group %s.", id, g.id)
		}
		added = append(added, id)
	}
	if err := r.checkUserGroupsAttachable(added, g.engine, sec.transit); err != nil {
		return nil, false, err
	}
	next = append(next, added...)
	if len(next) > maxUserGroupsPerGroup {
		return nil, false, invalidParameterValue("A replication group can be associated with at most %d user group.", maxUserGroupsPerGroup)
	}
	if len(next) > 0 && authChanged {
		return nil, false, invalidParameterCombination("AuthToken cannot be set on a replication group that keeps user groups.")
	}
	if len(next) > 0 && sec.authEnabled() {
		// AUTH → RBAC: the user group's default user replaces the token.
		sec.authHashes, sec.authOpen, sec.authPending = nil, false, ""
		sec.authModified = now
	}
	return next, true, nil
}

// setUserGroups gives g the user groups ids, keeping the user groups'
// ReplicationGroups in step; the caller holds r.mu.
func (r *region) setUserGroups(g *replicationGroup, ids []string) {
	for _, old := range g.userGroupIDs {
		if !slices.Contains(ids, old) {
			r.detachUserGroup(g.id, old)
		}
	}
	for _, id := range ids {
		r.attachUserGroup(g.id, id)
	}
	g.userGroupIDs = ids
}

// nodeUsers are the users every node of cl has besides the admin user: the
// members of its group's user group, else the default user an AUTH token
// makes, else nil (Redis's own default user); the caller holds r.mu.
func (r *region) nodeUsers(cl *cacheCluster) []engine.ACLUser {
	if g := r.groups[cl.groupID]; g != nil && len(g.userGroupIDs) > 0 {
		return r.accessUsers(g)
	}
	return r.securityOf(cl).defaultUser()
}

// pushGroupAccess sets g's users (user groups or AUTH token) on every
// node in an apply-users operation, then settles g to available; the
// caller holds r.mu and has set g's status to modifying.
func (e *Emulator) pushGroupAccess(r *region, g *replicationGroup) {
	e.runOperation(r, opApplyUsers, g.id, nil, func(ctx context.Context) {
		if err := e.applyAccessUsers(ctx, r, g.id); err != nil && !stopping(ctx) {
			// A node that refused or did not answer gets its users when
			// it is rebuilt (launchFor), from the same records.
			e.log.Warn("setting the users of a replication group's nodes", "group", g.id, "err", err.Error())
		}
		if stopping(ctx) {
			return // the next start pushes them again (resumeApplyUsers)
		}
		r.mu.Lock()
		defer e.unlock(r)
		if r.groups[g.id] != g {
			return
		}
		g.sec.authPending = ""
		if g.status == statusModifying {
			g.status = statusAvailable
		}
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s modified: users updated on every node", g.id)
	})
}

// resumeApplyUsers pushes users again for an apply-users operation an
// earlier run left unfinished (target: a group or a standalone cluster);
// the caller holds r.mu.
func (e *Emulator) resumeApplyUsers(r *region, target string) {
	if g := r.groups[target]; g != nil {
		e.pushGroupAccess(r, g)
		return
	}
	if cl := r.clusters[target]; cl != nil && cl.groupID == "" {
		e.pushUsers(r, cl.id, []*cacheCluster{cl}, func() {
			cl.sec.authPending = ""
			if cl.status == statusModifying {
				cl.status = statusAvailable
			}
		})
	}
}
