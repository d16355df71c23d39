package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// This file puts RBAC on the nodes. The users of a replication group are
// those of the user groups attached to it (accessUsers); a node gets them
// when it starts (NodeSpec.Users) and again, all at once, whenever they
// change (applyAccessUsers, engine.Admin.ApplyUsers: the node's users
// become exactly those, a removed user is deleted and its connections
// closed). A change of users or user groups is a named operation
// (opApplyAccess) that pushes the users to every node of every replication
// group it reaches, then settles the statuses: the user or user group is
// creating, modifying or deleting until then, as on AWS. Statuses are the
// record of what is unfinished, so a restart resumes the pushes
// (resumeAccessChanges) whatever the operation records say.

// opApplyAccess is the operation that applies a change of a user or a
// user group to the nodes; its target is "user:<id>" or "usergroup:<id>".
const opApplyAccess = "apply-access"

// accessKind says whether an access change is about a user or a user
// group.
type accessKind string

const (
	accessOfUser      accessKind = "user"
	accessOfUserGroup accessKind = "usergroup"
)

// applyAttempts bounds how often one replication group's users are pushed
// when a node refuses them, applyRetryDelay apart, and applyNodeTimeout
// how long one node may take.
const (
	applyAttempts    = 3
	applyRetryDelay  = time.Second
	applyNodeTimeout = 10 * time.Second
)

// accessUsers returns the ACL users the nodes of g have: the members of
// the user groups attached to g (the first one of a name wins), sorted by
// name; nil when g has no user group (the node keeps Redis's own default
// user). The caller holds r.mu.
func (r *region) accessUsers(g *replicationGroup) []engine.ACLUser {
	var out []engine.ACLUser
	seen := map[string]bool{}
	for _, id := range g.userGroupIDs {
		ug := r.userGroups[id]
		if ug == nil {
			continue
		}
		for _, u := range ug.members(r) {
			if !seen[u.name] {
				seen[u.name] = true
				out = append(out, u.aclUser())
			}
		}
	}
	slices.SortFunc(out, func(a, b engine.ACLUser) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// checkUserGroupsAttachable refuses user groups a replication group of
// engine ev, with or without transit encryption, cannot be given
// (CreateReplicationGroup UserGroupIds, ModifyReplicationGroup
// UserGroupIdsToAdd): AWS requires encryption in transit and an engine
// with ACLs (Redis OSS 6.0 or later, Valkey), user groups that exist and
// are active, and a redis replication group takes redis user groups only.
// The caller holds r.mu.
func (r *region) checkUserGroupsAttachable(ids []string, ev engineVersion, transitEncryption bool) error {
	if len(ids) == 0 {
		return nil
	}
	if !transitEncryption {
		return invalidParameterCombination("User group based access control requires encryption-in-transit to be enabled on the replication group.")
	}
	if !versionAtLeast(ev.Version, rbacMinimumEngineVersion) {
		return invalidParameterCombination("User group based access control requires engine version %s or later; the replication group runs %s %s.", rbacMinimumEngineVersion, ev.Engine, ev.Version)
	}
	seen := map[string]bool{}
	for _, raw := range ids {
		id := strings.ToLower(raw)
		if seen[id] {
			return invalidParameterValue("User group %s is listed more than once.", id)
		}
		seen[id] = true
		ug, err := userGroupsTable().active(r, id)
		if err != nil {
			return err
		}
		if ev.Engine == "redis" && ug.engine != "redis" {
			return invalidParameterCombination("User group %s has engine %s; a redis replication group takes user groups of engine redis only.", id, ug.engine)
		}
	}
	return nil
}

// versionAtLeast compares dotted engine versions ("6.2" >= "6.0").
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			fmt.Sscanf(a[i], "%d", &x)
		}
		if i < len(b) {
			fmt.Sscanf(b[i], "%d", &y)
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// attachUserGroup records that replication group groupID uses user group
// userGroupID (DescribeUserGroups ReplicationGroups); the caller holds
// r.mu and sets the replication group's own userGroupIDs.
func (r *region) attachUserGroup(groupID, userGroupID string) {
	if ug := r.userGroups[userGroupID]; ug != nil && !slices.Contains(ug.replicationGroups, groupID) {
		ug.replicationGroups = append(ug.replicationGroups, groupID)
		slices.Sort(ug.replicationGroups)
	}
}

// detachUserGroup undoes attachUserGroup (a group that loses the user
// group or is deleted); the caller holds r.mu.
func (r *region) detachUserGroup(groupID, userGroupID string) {
	if ug := r.userGroups[userGroupID]; ug != nil {
		ug.replicationGroups = slices.DeleteFunc(ug.replicationGroups, func(id string) bool { return id == groupID })
	}
}

// replicationGroupsOf lists the replication groups that use ug, sorted:
// those attached to it that still exist, and any whose UserGroupIds name
// it. The caller holds r.mu.
func (r *region) replicationGroupsOf(ug *userGroup) []string {
	out := []string{}
	for _, id := range ug.replicationGroups {
		if r.groups[id] != nil {
			out = append(out, id)
		}
	}
	for id, g := range r.groups {
		if slices.Contains(g.userGroupIDs, ug.id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// applyAccessUsers makes the users of every serving node of replication
// group groupID exactly accessUsers (engine.Admin.ApplyUsers), or, when
// it has no user group, the default user its AUTH token makes (nodeUsers),
// all nodes in parallel; nodes that do not serve (being created, restarted or
// repaired) get them when they start. It takes r.mu only to read, and
// serializes with the other pushes of the region, so the last push to
// finish is of the latest users. A group that no longer exists is no
// error.
func (e *Emulator) applyAccessUsers(ctx context.Context, r *region, groupID string) error {
	r.aclMu.Lock()
	defer r.aclMu.Unlock()
	r.mu.Lock()
	g := r.groups[groupID]
	if g == nil {
		r.mu.Unlock()
		return nil
	}
	users := r.accessUsers(g)
	var eps []engine.Endpoint
	for _, m := range g.memberClusters() {
		if cl := r.clusters[m]; cl != nil {
			if users == nil {
				// No user group: the default user its AUTH token
				// makes, if any (security.go).
				users = r.nodeUsers(cl)
			}
			for _, n := range cl.nodes {
				if n.healthy() {
					eps = append(eps, n.endpoint)
				}
			}
		}
	}
	r.mu.Unlock()
	errs := make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nctx, cancel := context.WithTimeout(ctx, applyNodeTimeout)
			defer cancel()
			if err := e.admin.ApplyUsers(nctx, ep, users); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", ep.Addr(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startAccessChange starts the operation that applies a change of user
// or user group id (whose status the caller has set: creating, modifying
// or deleting) to the nodes and then settles it. The caller holds r.mu.
func (e *Emulator) startAccessChange(r *region, kind accessKind, id string) {
	e.runOperation(r, opApplyAccess, string(kind)+":"+id, nil, func(ctx context.Context) {
		e.applyAccessChange(ctx, r, kind, id)
	})
}

// applyAccessChange pushes the users to every replication group the
// change reaches, retrying a group whose nodes refuse them a few times,
// then settles the change; failures are logged and recorded as an event.
func (e *Emulator) applyAccessChange(ctx context.Context, r *region, kind accessKind, id string) {
	r.mu.Lock()
	groups := r.groupsReachedBy(kind, id)
	r.mu.Unlock()
	var failed []string
	for _, gid := range groups {
		var err error
		for attempt := 1; attempt <= applyAttempts; attempt++ {
			if err = e.applyAccessUsers(ctx, r, gid); err == nil || stopping(ctx) {
				break
			}
			if attempt < applyAttempts {
				select {
				case <-ctx.Done():
				case <-time.After(applyRetryDelay):
				}
			}
		}
		if err == nil {
			err = e.applyToStartingNodes(ctx, r, gid)
		}
		if stopping(ctx) {
			return // resumed at the next start (resumeAccessChanges)
		}
		if err != nil {
			e.log.Warn("applying users to a replication group", "account", r.account, "region", r.region,
				"change", string(kind)+":"+id, "replicationGroup", gid, "err", err.Error())
			failed = append(failed, gid)
		}
	}
	r.mu.Lock()
	defer e.unlock(r)
	e.finishAccessChange(r, kind, id, failed)
}

// applyToStartingNodes waits for the nodes of replication group gid that
// are starting (created, rebooted, repaired: they were given the users of
// before the change when their start began) to serve, up to
// NodeReadyTimeout, then pushes the users to the group again; nothing to
// do (the usual case) when every node serves.
func (e *Emulator) applyToStartingNodes(ctx context.Context, r *region, gid string) error {
	deadline := time.Now().Add(e.opts.NodeReadyTimeout)
	waited := false
	for {
		r.mu.Lock()
		starting := r.startingNodes(gid)
		r.mu.Unlock()
		if starting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d node(s) of %s did not serve within %v", starting, gid, e.opts.NodeReadyTimeout)
		}
		waited = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !waited {
		return nil
	}
	return e.applyAccessUsers(ctx, r, gid)
}

// startingNodes counts the nodes of replication group gid that do not
// serve yet, unless the group is being deleted. The caller holds r.mu.
func (r *region) startingNodes(gid string) int {
	g := r.groups[gid]
	if g == nil || g.status == statusDeleting {
		return 0
	}
	n := 0
	for _, m := range g.memberClusters() {
		if cl := r.clusters[m]; cl != nil && cl.status != statusDeleting {
			for _, node := range cl.nodes {
				if !node.healthy() {
					n++
				}
			}
		}
	}
	return n
}

// groupsReachedBy lists the replication groups whose users a change of
// user or user group id changes. The caller holds r.mu.
func (r *region) groupsReachedBy(kind accessKind, id string) []string {
	var ugs []*userGroup
	if kind == accessOfUserGroup {
		if ug := r.userGroups[id]; ug != nil {
			ugs = append(ugs, ug)
		}
	} else {
		for _, gid := range r.userGroupsOf(id) {
			ugs = append(ugs, r.userGroups[gid])
		}
	}
	var out []string
	for _, ug := range ugs {
		for _, g := range r.replicationGroupsOf(ug) {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// finishAccessChange settles a change whose users are on the nodes (or
// failed there, failed naming the replication groups): a user or user
// group goes active, a modification is committed, a deletion completes.
// The caller holds r.mu.
func (e *Emulator) finishAccessChange(r *region, kind accessKind, id string, failed []string) {
	st, noun := types.SourceTypeUser, "User"
	if kind == accessOfUserGroup {
		st, noun = types.SourceTypeUserGroup, "User group"
	}
	if len(failed) > 0 {
		e.record(r, st, id, "Failed to apply the users to replication group(s) %s; their nodes get them when they restart", strings.Join(failed, ", "))
	}
	status := r.accessStatus(kind, id)
	if status == nil {
		return
	}
	switch *status {
	case statusCreating: // user groups only: a user is active at once
		*status = statusActive
		e.record(r, st, id, "%s %s created", noun, id)
	case statusModifying:
		var change string
		if kind == accessOfUserGroup {
			ug := r.userGroups[id]
			change = userListChange(ug.pendingAdd, ug.pendingRemove)
			ug.userIDs, ug.pendingAdd, ug.pendingRemove = ug.memberIDs(), nil, nil
		}
		*status = statusActive
		e.record(r, st, id, "Finished modifying %s %s%s", strings.ToLower(noun), id, change)
	case statusDeleting:
		if kind == accessOfUserGroup {
			delete(r.userGroups, id)
		} else {
			r.dropUserFromGroups(id)
			delete(r.users, id)
		}
		delete(r.tags, r.arn(string(kind), id))
		e.record(r, st, id, "%s %s deleted", noun, id)
	}
}

// accessStatus points at the status of user or user group id; nil when
// there is none. The caller holds r.mu.
func (r *region) accessStatus(kind accessKind, id string) *string {
	if kind == accessOfUserGroup {
		if ug := r.userGroups[id]; ug != nil {
			return &ug.status
		}
	} else if u := r.users[id]; u != nil {
		return &u.status
	}
	return nil
}

// dropUserFromGroups takes user id, being deleted, out of every user
// group, pending changes included. The caller holds r.mu.
func (r *region) dropUserFromGroups(id string) {
	drop := func(s string) bool { return s == id }
	for _, ug := range r.userGroups {
		ug.userIDs = slices.DeleteFunc(ug.userIDs, drop)
		ug.pendingAdd = slices.DeleteFunc(ug.pendingAdd, drop)
		ug.pendingRemove = slices.DeleteFunc(ug.pendingRemove, drop)
	}
}

// userListChange describes the users a modification added and removed.
func userListChange(added, removed []string) string {
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "added users "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed users "+strings.Join(removed, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// resumeAccessChanges restarts, after a restart of the emulator, the
// changes of users and user groups the earlier run left unfinished (their
// status says so): the pushes are made again (they are idempotent) and
// the changes settled. The caller holds r.mu.
func (e *Emulator) resumeAccessChanges(r *region) {
	for _, id := range sortedKeys(r.userGroups) {
		switch r.userGroups[id].status {
		case statusCreating, statusModifying, statusDeleting:
			if !r.ops.running(opApplyAccess, string(accessOfUserGroup)+":"+id) {
				e.startAccessChange(r, accessOfUserGroup, id)
			}
		}
	}
	for _, id := range sortedKeys(r.users) {
		switch r.users[id].status {
		case statusModifying, statusDeleting:
			if !r.ops.running(opApplyAccess, string(accessOfUser)+":"+id) {
				e.startAccessChange(r, accessOfUser, id)
			}
		}
	}
}
