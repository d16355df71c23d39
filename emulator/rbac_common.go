package emulator

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// The user and user group APIs (users.go, user_groups.go) have the same
// lifecycle: a create refused when the id is taken or the region is full,
// changes and deletes allowed only to an active item, a Describe by id
// and paged, tags kept under the item's ARN. rbacTable holds what differs
// between the two so that this code is written once.

// rbacTable describes users (usersTable) or user groups (userGroupsTable)
// for the code they share: T is the item, D its API form.
type rbacTable[T, D any] struct {
	// kind is also the ARN resource type ("user", "usergroup").
	kind accessKind
	// idParam is the request member naming one ("UserId").
	idParam string
	// noun names one in messages ("User", "User group").
	noun     string
	items    func(*region) map[string]T
	status   func(T) string
	describe func(T, *region) D
	// quota is how many one region may hold; full is the fault beyond it.
	quota    int
	full     func() error
	notFound func(id string) error
	exists   func(id string) error
	badState func(format string, args ...any) error
	// created follows the creation of item id, under r.mu: a user is
	// active at once (an event says so), a user group is creating until
	// its users are on the nodes (startAccessChange).
	created func(e *Emulator, r *region, id string)
}

// checkNew refuses a new item id when the region has one of that id or
// holds its quota. The caller holds r.mu.
func (t rbacTable[T, D]) checkNew(r *region, id string) error {
	m := t.items(r)
	if _, ok := m[id]; ok {
		return t.exists(id)
	}
	if len(m) >= t.quota {
		return t.full()
	}
	return nil
}

// active returns item id for a change or a delete: notFound when there is
// none, the invalid-state fault unless it is active (a change is being
// applied to it). The caller holds r.mu.
func (t rbacTable[T, D]) active(r *region, id string) (T, error) {
	v, ok := t.items(r)[id]
	if !ok {
		return v, t.notFound(id)
	}
	if s := t.status(v); s != statusActive {
		return v, t.badState("%s %s is not in active state (it is %s).", t.noun, id, s)
	}
	return v, nil
}

// list is a Describe: the item named by idIn (a member t.idParam, notFound
// when missing) or every item keep accepts (nil keeps all), the page after
// marker of at most max, as the API returns them; never nil. It takes r.mu
// only to read.
func (t rbacTable[T, D]) list(ctx context.Context, e *Emulator, idIn *string, keep func(T) bool, marker *string, max int) ([]D, *string, error) {
	var id string
	if idIn != nil {
		var err error
		if id, err = lookupID(t.idParam, idIn); err != nil {
			return nil, nil, err
		}
	}
	r := e.lockRegion(ctx)
	defer r.mu.Unlock() // read only: nothing to persist
	m := t.items(r)
	keys, err := describeKeys(m, id, t.notFound, keep)
	if err != nil {
		return nil, nil, err
	}
	sel, next := page(keys, marker, max)
	out := make([]D, 0, len(sel))
	for _, k := range sel {
		out = append(out, t.describe(m[k], r))
	}
	return out, next, nil
}

// userOutput is the output of CreateUser, ModifyUser or DeleteUser: each
// is the user as DescribeUsers returns it, member for member.
type userOutput interface {
	elasticache.CreateUserOutput | elasticache.ModifyUserOutput | elasticache.DeleteUserOutput
}

// userResult renders u as output O; the caller holds r.mu.
func userResult[O userOutput](r *region, u *user) *O {
	d := u.describe(r)
	out := O(elasticache.CreateUserOutput{ARN: d.ARN, AccessString: d.AccessString, Authentication: d.Authentication,
		Engine: d.Engine, MinimumEngineVersion: d.MinimumEngineVersion, Status: d.Status,
		UserGroupIds: d.UserGroupIds, UserId: d.UserId, UserName: d.UserName})
	return &out
}

// userGroupOutput is the output of CreateUserGroup, ModifyUserGroup or
// DeleteUserGroup: each is the user group as DescribeUserGroups returns
// it, member for member.
type userGroupOutput interface {
	elasticache.CreateUserGroupOutput | elasticache.ModifyUserGroupOutput | elasticache.DeleteUserGroupOutput
}

// userGroupResult renders ug as output O; the caller holds r.mu.
func userGroupResult[O userGroupOutput](r *region, ug *userGroup) *O {
	d := ug.describe(r)
	out := O(elasticache.CreateUserGroupOutput{ARN: d.ARN, Engine: d.Engine, MinimumEngineVersion: d.MinimumEngineVersion,
		PendingChanges: d.PendingChanges, ReplicationGroups: d.ReplicationGroups, ServerlessCaches: d.ServerlessCaches,
		Status: d.Status, UserGroupId: d.UserGroupId, UserIds: d.UserIds})
	return &out
}

// createRBAC is the frame of a Create of item id with tags: the tags
// checked, then under r.mu (persisted when it is released) the id must be
// free (checkNew) and build makes the item, which it may refuse; the item
// is stored with its tags, t.created follows, and the item is answered as
// render makes it.
func createRBAC[T, D, O any](ctx context.Context, e *Emulator, t rbacTable[T, D], id string, tags []types.Tag, render func(*region, T) *O, build func(*region) (T, error)) (*O, error) {
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if err := t.checkNew(r, id); err != nil {
		return nil, err
	}
	v, err := build(r)
	if err != nil {
		return nil, err
	}
	t.items(r)[id] = v
	if len(tags) > 0 {
		r.tags[r.arn(string(t.kind), id)] = mergeTags(nil, tags)
	}
	t.created(e, r, id)
	return render(r, v), nil
}

// changeRBAC is the frame of a Modify or a Delete of item id: under r.mu
// (persisted when it is released) the item, which must be active (see
// active), is given to apply, which checks the request against it and
// changes it, its status included; then the change goes to the nodes
// (startAccessChange) and the item is answered as render makes it.
func changeRBAC[T, D, O any](ctx context.Context, e *Emulator, t rbacTable[T, D], id string, render func(*region, T) *O, apply func(*region, T) error) (*O, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	v, err := t.active(r, id)
	if err != nil {
		return nil, err
	}
	if err := apply(r, v); err != nil {
		return nil, err
	}
	e.startAccessChange(r, t.kind, id)
	return render(r, v), nil
}
