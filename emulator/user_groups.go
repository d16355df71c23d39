package emulator

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// RBAC user groups (CreateUserGroup, ModifyUserGroup, DeleteUserGroup,
// DescribeUserGroups). A user group is what a replication group is given
// (UserGroupIds): its users become the ACL users of every node. AWS
// requires one of them to be named "default" (the user a client is
// before AUTH) and no two of them to share a name.

// userGroup is an RBAC user group. userIDs are its users; while a
// modification is applied (status modifying), pendingAdd and pendingRemove
// are the users it adds and removes, which the nodes already get (members).
type userGroup struct {
	id, engine, status string
	userIDs            []string
	// replicationGroups are the groups it is attached to, sorted.
	replicationGroups         []string
	pendingAdd, pendingRemove []string
}

// userGroupsTable is how the code user groups share with users
// (rbac_common.go) finds and refuses user groups.
func userGroupsTable() rbacTable[*userGroup, types.UserGroup] {
	return rbacTable[*userGroup, types.UserGroup]{
		kind: accessOfUserGroup, idParam: "UserGroupId", noun: "User group",
		items:    func(r *region) map[string]*userGroup { return r.userGroups },
		status:   func(ug *userGroup) string { return ug.status },
		describe: (*userGroup).describe,
		quota:    maxUserGroupsPerRegion,
		full: func() error {
			return userGroupQuotaExceeded("The request cannot be processed because it would exceed the allowed number of user groups per region (%d).", maxUserGroupsPerRegion)
		},
		notFound: userGroupNotFound, exists: userGroupAlreadyExists, badState: invalidUserGroupState,
		created: func(e *Emulator, r *region, id string) { e.startAccessChange(r, accessOfUserGroup, id) },
	}
}

// members are the users the group gives its nodes: its users with the
// pending changes applied, without users being deleted, sorted by id. The
// caller holds r.mu.
func (ug *userGroup) members(r *region) []*user {
	var out []*user
	for _, id := range ug.memberIDs() {
		if u := r.users[id]; u != nil && u.status != statusDeleting {
			out = append(out, u)
		}
	}
	return out
}

// memberIDs are userIDs with the pending changes applied, sorted.
func (ug *userGroup) memberIDs() []string {
	ids := slices.DeleteFunc(slices.Clone(ug.userIDs), func(id string) bool { return slices.Contains(ug.pendingRemove, id) })
	for _, id := range ug.pendingAdd {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// describe renders the user group as the API returns it; the caller
// holds r.mu.
func (ug *userGroup) describe(r *region) types.UserGroup {
	out := types.UserGroup{
		ARN:                  aws.String(r.arn("usergroup", ug.id)),
		Engine:               aws.String(ug.engine),
		MinimumEngineVersion: aws.String(rbacMinimumEngineVersion),
		ReplicationGroups:    r.replicationGroupsOf(ug),
		ServerlessCaches:     []string{},
		Status:               aws.String(ug.status),
		UserGroupId:          aws.String(ug.id),
		UserIds:              append([]string{}, ug.userIDs...),
	}
	if len(ug.pendingAdd) > 0 || len(ug.pendingRemove) > 0 {
		out.PendingChanges = &types.UserGroupPendingChanges{
			UserIdsToAdd:    append([]string{}, ug.pendingAdd...),
			UserIdsToRemove: append([]string{}, ug.pendingRemove...),
		}
	}
	return out
}

// admits checks that user u may be a member of the group: a redis group
// holds redis users only; a valkey group holds users that authenticate
// with a password (valkey users, or redis users with passwords).
func (ug *userGroup) admits(u *user) error {
	switch {
	case ug.engine == "redis" && u.engine != "redis":
		return invalidParameterCombination("User %s has engine %s; a user group of engine redis holds redis users only.", u.id, u.engine)
	case ug.engine == "valkey" && u.noPassword:
		return invalidParameterCombination("User %s authenticates without a password; a user group of engine valkey holds only users with passwords.", u.id)
	}
	return nil
}

// checkMembers validates the users a group would hold: they exist and
// are not being deleted, the group admits them, their names are unique,
// one is named default, and there are at most maxUsersPerUserGroup. The
// caller holds r.mu.
func (r *region) checkMembers(ug *userGroup, ids []string) error {
	names := map[string]bool{}
	for _, id := range ids {
		u, ok := r.users[id]
		if !ok {
			return userNotFound(id)
		}
		if u.status == statusDeleting {
			return invalidUserState("User %s is being deleted.", id)
		}
		if err := ug.admits(u); err != nil {
			return err
		}
		if names[u.name] {
			return duplicateUserName(u.name)
		}
		names[u.name] = true
	}
	if !names[defaultUserName] {
		return defaultUserRequired()
	}
	if len(ids) > maxUsersPerUserGroup {
		return userGroupQuotaExceeded("A user group can hold at most %d users.", maxUsersPerUserGroup)
	}
	return nil
}

// userIDList lower-cases and de-duplicates the user ids of a request.
func userIDList(param string, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		if id == "" {
			return nil, mustNotBeBlank(param)
		}
		if id = strings.ToLower(id); !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// CreateUserGroup creates a user group; it is creating, then active.
func (e *Emulator) CreateUserGroup(ctx context.Context, in *elasticache.CreateUserGroupInput) (*elasticache.CreateUserGroupOutput, error) {
	id, err := normalizeID("UserGroupId", in.UserGroupId, maxUserIDLen)
	if err != nil {
		return nil, err
	}
	eng, err := userEngine(in.Engine)
	if err != nil {
		return nil, err
	}
	ids, err := userIDList("UserIds", in.UserIds)
	if err != nil {
		return nil, err
	}
	return createRBAC(ctx, e, userGroupsTable(), id, in.Tags, userGroupResult[elasticache.CreateUserGroupOutput], func(r *region) (*userGroup, error) {
		ug := &userGroup{id: id, engine: eng, status: statusCreating}
		if err := r.checkMembers(ug, ids); err != nil {
			return nil, err
		}
		slices.Sort(ids)
		ug.userIDs = ids
		return ug, nil
	})
}

// ModifyUserGroup adds and removes users (and may move the group from
// engine redis to valkey). The group is modifying, with the changes in
// PendingChanges, until every node of its replication groups has them;
// a removed user is locked out (and its connections closed) by then.
func (e *Emulator) ModifyUserGroup(ctx context.Context, in *elasticache.ModifyUserGroupInput) (*elasticache.ModifyUserGroupOutput, error) {
	id, err := lookupID("UserGroupId", in.UserGroupId)
	if err != nil {
		return nil, err
	}
	add, err := userIDList("UserIdsToAdd", in.UserIdsToAdd)
	if err != nil {
		return nil, err
	}
	remove, err := userIDList("UserIdsToRemove", in.UserIdsToRemove)
	if err != nil {
		return nil, err
	}
	eng, err := optionalUserEngine(in.Engine)
	if err != nil {
		return nil, err
	}
	if len(add) == 0 && len(remove) == 0 && eng == "" {
		return nil, invalidParameterCombination("No modifications were requested.")
	}
	for _, a := range add {
		if slices.Contains(remove, a) {
			return nil, invalidParameterCombination("User %s cannot be both added to and removed from the user group.", a)
		}
	}
	return changeRBAC(ctx, e, userGroupsTable(), id, userGroupResult[elasticache.ModifyUserGroupOutput], func(r *region, ug *userGroup) error {
		next := &userGroup{id: ug.id, engine: ug.engine}
		if eng != "" && eng != ug.engine {
			if ug.engine == "valkey" {
				return invalidParameterCombination("User group %s cannot be changed from engine valkey to %s.", id, eng)
			}
			for _, gid := range r.replicationGroupsOf(ug) {
				if g := r.groups[gid]; g != nil && g.engine.Engine != eng {
					return invalidParameterCombination("User group %s is attached to replication group %s of engine %s; it cannot become a %s user group.", id, gid, g.engine.Engine, eng)
				}
			}
			next.engine = eng
		}
		for _, a := range add {
			if slices.Contains(ug.userIDs, a) {
				return invalidParameterValue("User %s is already a member of user group %s.", a, id)
			}
		}
		for _, rm := range remove {
			if !slices.Contains(ug.userIDs, rm) {
				return invalidParameterValue("User %s is not a member of user group %s.", rm, id)
			}
		}
		next.userIDs, next.pendingAdd, next.pendingRemove = ug.userIDs, add, remove
		if err := r.checkMembers(next, next.memberIDs()); err != nil {
			return err
		}
		ug.engine, ug.pendingAdd, ug.pendingRemove = next.engine, add, remove
		ug.status = statusModifying
		return nil
	})
}

// DeleteUserGroup deletes a user group no replication group uses.
func (e *Emulator) DeleteUserGroup(ctx context.Context, in *elasticache.DeleteUserGroupInput) (*elasticache.DeleteUserGroupOutput, error) {
	id, err := lookupID("UserGroupId", in.UserGroupId)
	if err != nil {
		return nil, err
	}
	return changeRBAC(ctx, e, userGroupsTable(), id, userGroupResult[elasticache.DeleteUserGroupOutput], func(r *region, ug *userGroup) error {
		if rgs := r.replicationGroupsOf(ug); len(rgs) > 0 {
			return invalidUserGroupState("User group %s is associated with replication group %s; remove it from the replication group first.", id, strings.Join(rgs, ", "))
		}
		ug.status = statusDeleting
		return nil
	})
}

// DescribeUserGroups lists user groups, paged by MaxRecords/Marker.
func (e *Emulator) DescribeUserGroups(ctx context.Context, in *elasticache.DescribeUserGroupsInput) (*elasticache.DescribeUserGroupsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	groups, next, err := userGroupsTable().list(ctx, e, in.UserGroupId, nil, in.Marker, max)
	if err != nil {
		return nil, err
	}
	return &elasticache.DescribeUserGroupsOutput{UserGroups: groups, Marker: next}, nil
}
