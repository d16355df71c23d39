package emulator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// The user and user group APIs against the fake runtime: no replication
// group is involved, so every change settles without nodes (the pushes to
// real nodes are in the integration suite).

const (
	testPassA = "first-password-0123"
	testPassB = "second-password-0123"
)

func (h *harness) user(ctx context.Context, id string) (types.User, bool) {
	h.t.Helper()
	return describeOne[*types.UserNotFoundFault](ctx, h.t, "DescribeUsers "+id, h.e.DescribeUsers,
		&elasticache.DescribeUsersInput{UserId: aws.String(id)}, func(o *elasticache.DescribeUsersOutput) []types.User { return o.Users })
}

func (h *harness) userGroup(ctx context.Context, id string) (types.UserGroup, bool) {
	h.t.Helper()
	return describeOne[*types.UserGroupNotFoundFault](ctx, h.t, "DescribeUserGroups "+id, h.e.DescribeUserGroups,
		&elasticache.DescribeUserGroupsInput{UserGroupId: aws.String(id)}, func(o *elasticache.DescribeUserGroupsOutput) []types.UserGroup { return o.UserGroups })
}

// describeOne is the item a Describe by id (call with in) answers, or
// false when it answers the not-found fault F; any other error is fatal.
func describeOne[F error, I, O, T any](ctx context.Context, t *testing.T, what string, call func(context.Context, *I) (*O, error), in *I, items func(*O) []T) (T, bool) {
	t.Helper()
	out, err := call(ctx, in)
	if is[F](err) {
		var none T
		return none, false
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return items(out)[0], true
}

// waitUserGroup polls until the user group has status want ("gone": it
// no longer exists).
func (h *harness) waitUserGroup(ctx context.Context, id, want string) types.UserGroup {
	h.t.Helper()
	return waitStatus(h.t, "user group "+id, want, func() (types.UserGroup, bool) { return h.userGroup(ctx, id) },
		func(ug types.UserGroup) *string { return ug.Status })
}

func (h *harness) waitUser(ctx context.Context, id, want string) types.User {
	h.t.Helper()
	return waitStatus(h.t, "user "+id, want, func() (types.User, bool) { return h.user(ctx, id) },
		func(u types.User) *string { return u.Status })
}

// waitStatus polls describe until the item it describes has status want
// ("gone": describe no longer finds it), and returns the item.
func waitStatus[T any](t *testing.T, what, want string, describe func() (T, bool), status func(T) *string) T {
	t.Helper()
	var v T
	waitFor(t, what+" "+want, func() (bool, string) {
		var ok bool
		v, ok = describe()
		if !ok {
			return want == "gone", "gone"
		}
		return aws.ToString(status(v)) == want, aws.ToString(status(v))
	})
	return v
}

func (h *harness) mustCreateUser(ctx context.Context, id, name, access string, passwords ...string) {
	h.t.Helper()
	in := &elasticache.CreateUserInput{UserId: aws.String(id), UserName: aws.String(name), Engine: aws.String("redis"),
		AccessString: aws.String(access), Passwords: passwords}
	if len(passwords) == 0 {
		in.NoPasswordRequired = aws.Bool(true)
	}
	if _, err := h.e.CreateUser(ctx, in); err != nil {
		h.t.Fatalf("CreateUser %s: %v", id, err)
	}
}

// wantFault fails unless err is the fault *T.
func wantFault[T error](t *testing.T, what string, err error) {
	t.Helper()
	var f T
	if !errors.As(err, &f) {
		t.Errorf("%s: %v, want %T", what, err, f)
	}
}

// TestDefaultUser: every region has the built-in default user, as AWS
// describes it; it can be neither modified nor deleted.
func TestDefaultUser(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	u, ok := h.user(ctx, "default")
	if !ok {
		t.Fatal("no default user")
	}
	if aws.ToString(u.UserName) != "default" || aws.ToString(u.AccessString) != "on ~* +@all" || aws.ToString(u.Status) != "active" ||
		aws.ToString(u.Engine) != "redis" || aws.ToString(u.MinimumEngineVersion) != "6.0" ||
		u.Authentication == nil || u.Authentication.Type != types.AuthenticationTypeNoPassword || u.Authentication.PasswordCount != nil ||
		u.UserGroupIds == nil || len(u.UserGroupIds) != 0 ||
		aws.ToString(u.ARN) != "arn:aws:elasticache:"+testRegion+":"+testAccount+":user:default" {
		t.Errorf("default user = %+v", u)
	}
	_, err := h.e.ModifyUser(ctx, &elasticache.ModifyUserInput{UserId: aws.String("default"), AccessString: aws.String("off")})
	wantFault[*types.InvalidParameterValueException](t, "ModifyUser default", err)
	_, err = h.e.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("default")})
	wantFault[*types.InvalidParameterValueException](t, "DeleteUser default", err)
}

// TestUserLifecycle: create (active at once, PasswordCount only), the
// refusals of bad input (nothing created), modify (modifying, then
// active), tags on the ARN, delete (deleting, then gone) and the events.
func TestUserLifecycle(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	out, err := h.e.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("Alice-1"), UserName: aws.String("alice"),
		Engine: aws.String("REDIS"), AccessString: aws.String("on ~app:* +@all"), Passwords: []string{testPassA, testPassB},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.UserId) != "alice-1" || aws.ToString(out.Status) != "active" || aws.ToString(out.Engine) != "redis" ||
		out.Authentication.Type != types.AuthenticationTypePassword || aws.ToInt32(out.Authentication.PasswordCount) != 2 {
		t.Errorf("CreateUser = %+v", out)
	}
	if s := fmt.Sprintf("%+v", out); strings.Contains(s, testPassA) || strings.Contains(s, engine.PasswordHash(testPassA)) {
		t.Errorf("the CreateUser answer holds a password or its hash: %s", s)
	}

	bad := []struct {
		name string
		in   elasticache.CreateUserInput
		want func(error) bool
	}{
		{"an existing id", elasticache.CreateUserInput{UserId: aws.String("alice-1"), UserName: aws.String("x"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.UserAlreadyExistsFault]},
		{"an id with a digit first", elasticache.CreateUserInput{UserId: aws.String("1x"), UserName: aws.String("x"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"an id with --", elasticache.CreateUserInput{UserId: aws.String("a--b"), UserName: aws.String("x"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"no password", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all")}, is[*types.InvalidParameterValueException]},
		{"a short password", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), Passwords: []string{"fifteen-chars-x"}}, is[*types.InvalidParameterValueException]},
		{"a password in the access string", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
			AccessString: aws.String("on >" + testPassA + " ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"no access string", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
			NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"engine memcached", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("memcached"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"a user name with a space", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob smith"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"the admin user's name", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String(engine.AdminUser), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterValueException]},
		{"passwords and no password", elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), Passwords: []string{testPassA}, NoPasswordRequired: aws.Bool(true)}, is[*types.InvalidParameterCombinationException]},
	}
	for _, tc := range bad {
		if _, err := h.e.CreateUser(ctx, &tc.in); !tc.want(err) {
			t.Errorf("CreateUser with %s: %v", tc.name, err)
		}
	}
	all, err := h.e.DescribeUsers(ctx, &elasticache.DescribeUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Users) != 2 {
		t.Errorf("users after the refused creates: %d, want 2 (default and alice-1)", len(all.Users))
	}

	mod, err := h.e.ModifyUser(ctx, &elasticache.ModifyUserInput{UserId: aws.String("alice-1"), AppendAccessString: aws.String("-flushall"),
		Passwords: []string{testPassB}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(mod.Status) != "modifying" || aws.ToString(mod.AccessString) != "on ~app:* +@all -flushall" ||
		aws.ToInt32(mod.Authentication.PasswordCount) != 1 {
		t.Errorf("ModifyUser = %+v", mod)
	}
	h.waitUser(ctx, "alice-1", "active")
	for _, in := range []*elasticache.ModifyUserInput{
		{UserId: aws.String("alice-1")},
		{UserId: aws.String("alice-1"), AccessString: aws.String("on"), AppendAccessString: aws.String("+get")},
		{UserId: aws.String("alice-1"), AccessString: aws.String("on +nosuchcommand")},
		{UserId: aws.String("nobody"), AccessString: aws.String("on")},
		{UserId: aws.String("alice-1"), Engine: aws.String("memcached")},
	} {
		if _, err := h.e.ModifyUser(ctx, in); err == nil {
			t.Errorf("ModifyUser %+v succeeded", in)
		}
	}
	if u, _ := h.user(ctx, "alice-1"); aws.ToString(u.AccessString) != "on ~app:* +@all -flushall" {
		t.Errorf("a refused ModifyUser changed the access string to %q", aws.ToString(u.AccessString))
	}

	tags, err := h.e.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: aws.String(r(h).arn("user", "alice-1"))})
	if err != nil || len(tags.TagList) != 1 {
		t.Errorf("tags of the user: %+v, %v", tags, err)
	}

	del, err := h.e.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("alice-1")})
	if err != nil || aws.ToString(del.Status) != "deleting" {
		t.Fatalf("DeleteUser = %+v, %v", del, err)
	}
	h.waitUser(ctx, "alice-1", "gone")
	_, err = h.e.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("alice-1")})
	wantFault[*types.UserNotFoundFault](t, "DeleteUser of a deleted user", err)
	for _, msg := range []string{"User alice-1 created", "Finished modifying user alice-1", "User alice-1 deleted"} {
		h.wantEvent(ctx, "alice-1", msg)
	}
}

func is[T error](err error) bool {
	var f T
	return errors.As(err, &f)
}

// r is the harness's test region.
func r(h *harness) *region { return h.e.regionFor(queryapiContext(testAccount, testRegion)) }

// TestUserGroupLifecycle: a user group needs a user named default and
// unique names; it is creating, then active; a modification shows its
// pending changes while modifying; the default user can be swapped for
// another named default; a default-named member cannot be deleted;
// deleting a member drops it from the group.
func TestUserGroupLifecycle(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	h.mustCreateUser(ctx, "alice", "alice", "on ~* +@all", testPassA)
	h.mustCreateUser(ctx, "bob", "bob", "on ~* +@read", testPassB)
	h.mustCreateUser(ctx, "new-default", "default", "off ~* +@all", testPassA)
	h.mustCreateUser(ctx, "other-default", "default", "on ~* +@all")

	for _, tc := range []struct {
		name string
		ids  []string
		want func(error) bool
	}{
		{"no users", nil, is[*types.DefaultUserRequired]},
		{"no default", []string{"alice"}, is[*types.DefaultUserRequired]},
		{"an unknown user", []string{"default", "nobody"}, is[*types.UserNotFoundFault]},
		{"two users named default", []string{"default", "new-default"}, is[*types.DuplicateUserNameFault]},
	} {
		_, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("team"), Engine: aws.String("redis"), UserIds: tc.ids})
		if !tc.want(err) {
			t.Errorf("CreateUserGroup with %s: %v", tc.name, err)
		}
	}
	if _, ok := h.userGroup(ctx, "team"); ok {
		t.Fatal("a refused CreateUserGroup created the group")
	}
	out, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("Team"), Engine: aws.String("redis"),
		UserIds: []string{"default", "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.UserGroupId) != "team" || aws.ToString(out.Status) != "creating" || !slices.Equal(out.UserIds, []string{"alice", "default"}) ||
		out.ReplicationGroups == nil || aws.ToString(out.MinimumEngineVersion) != "6.0" ||
		aws.ToString(out.ARN) != "arn:aws:elasticache:"+testRegion+":"+testAccount+":usergroup:team" {
		t.Errorf("CreateUserGroup = %+v", out)
	}
	_, err = h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("team"), Engine: aws.String("redis"), UserIds: []string{"default"}})
	wantFault[*types.UserGroupAlreadyExistsFault](t, "CreateUserGroup of an existing id", err)
	h.waitUserGroup(ctx, "team", "active")
	if u, _ := h.user(ctx, "alice"); !slices.Equal(u.UserGroupIds, []string{"team"}) {
		t.Errorf("alice's UserGroupIds = %q", u.UserGroupIds)
	}

	for _, tc := range []struct {
		name        string
		add, remove []string
		want        func(error) bool
	}{
		{"nothing", nil, nil, is[*types.InvalidParameterCombinationException]},
		{"removing the default user", nil, []string{"default"}, is[*types.DefaultUserRequired]},
		{"a second default", []string{"new-default"}, nil, is[*types.DuplicateUserNameFault]},
		{"an unknown user", []string{"nobody"}, nil, is[*types.UserNotFoundFault]},
		{"a member again", []string{"alice"}, nil, is[*types.InvalidParameterValueException]},
		{"removing a non-member", nil, []string{"bob"}, is[*types.InvalidParameterValueException]},
		{"adding and removing one user", []string{"bob"}, []string{"bob"}, is[*types.InvalidParameterCombinationException]},
	} {
		_, err := h.e.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("team"), UserIdsToAdd: tc.add, UserIdsToRemove: tc.remove})
		if !tc.want(err) {
			t.Errorf("ModifyUserGroup %s: %v", tc.name, err)
		}
	}
	if ug, _ := h.userGroup(ctx, "team"); aws.ToString(ug.Status) != "active" || ug.PendingChanges != nil || !slices.Equal(ug.UserIds, []string{"alice", "default"}) {
		t.Errorf("user group after refused modifications = %+v", ug)
	}

	// Swap the built-in default user for another one named default, and add bob.
	mod, err := h.e.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("team"),
		UserIdsToAdd: []string{"new-default", "bob"}, UserIdsToRemove: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(mod.Status) != "modifying" || mod.PendingChanges == nil ||
		!slices.Equal(mod.PendingChanges.UserIdsToAdd, []string{"new-default", "bob"}) || !slices.Equal(mod.PendingChanges.UserIdsToRemove, []string{"default"}) {
		t.Errorf("ModifyUserGroup = %+v", mod)
	}
	// A second modification while the first runs is refused; the first can
	// finish before the call arrives (nothing holds it), and then the call
	// is a modification of its own, undone below so the rest holds.
	_, err = h.e.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("team"), UserIdsToRemove: []string{"bob"}})
	if err != nil {
		wantFault[*types.InvalidUserGroupStateFault](t, "ModifyUserGroup while modifying", err)
	} else {
		h.waitUserGroup(ctx, "team", "active")
		if _, err := h.e.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("team"), UserIdsToAdd: []string{"bob"}}); err != nil {
			t.Fatal(err)
		}
	}
	ug := h.waitUserGroup(ctx, "team", "active")
	if ug.PendingChanges != nil || !slices.Equal(ug.UserIds, []string{"alice", "bob", "new-default"}) {
		t.Errorf("user group after the swap = %+v", ug)
	}
	h.wantEvent(ctx, "team", "Finished modifying user group team: added users new-default, bob; removed users default")

	_, err = h.e.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("new-default")})
	wantFault[*types.DefaultUserAssociatedToUserGroupFault](t, "DeleteUser of the group's default user", err)
	if _, err := h.e.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	h.waitUser(ctx, "bob", "gone")
	if ug, _ := h.userGroup(ctx, "team"); !slices.Equal(ug.UserIds, []string{"alice", "new-default"}) {
		t.Errorf("user group after deleting bob: %q", ug.UserIds)
	}

	del, err := h.e.DeleteUserGroup(ctx, &elasticache.DeleteUserGroupInput{UserGroupId: aws.String("team")})
	if err != nil || aws.ToString(del.Status) != "deleting" {
		t.Fatalf("DeleteUserGroup = %+v, %v", del, err)
	}
	h.waitUserGroup(ctx, "team", "gone")
	if u, _ := h.user(ctx, "alice"); len(u.UserGroupIds) != 0 {
		t.Errorf("alice's UserGroupIds after the group went: %q", u.UserGroupIds)
	}
	_, err = h.e.DeleteUserGroup(ctx, &elasticache.DeleteUserGroupInput{UserGroupId: aws.String("team")})
	wantFault[*types.UserGroupNotFoundFault](t, "DeleteUserGroup of a deleted group", err)
}

// TestValkeyUserGroup: a valkey user group holds only users with
// passwords (so not the built-in default user); a redis one holds redis
// users only.
func TestValkeyUserGroup(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	if _, err := h.e.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("vk-default"), UserName: aws.String("default"),
		Engine: aws.String("valkey"), AccessString: aws.String("on ~* +@all"), Passwords: []string{testPassA}}); err != nil {
		t.Fatal(err)
	}
	_, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("vk"), Engine: aws.String("valkey"), UserIds: []string{"default"}})
	wantFault[*types.InvalidParameterCombinationException](t, "a valkey group with the passwordless default user", err)
	_, err = h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("rd"), Engine: aws.String("redis"), UserIds: []string{"vk-default"}})
	wantFault[*types.InvalidParameterCombinationException](t, "a redis group with a valkey user", err)
	if _, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("vk"), Engine: aws.String("valkey"), UserIds: []string{"vk-default"}}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckUserGroupsAttachable: what a replication group may be given.
func TestCheckUserGroupsAttachable(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	if _, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("rd"), Engine: aws.String("redis"), UserIds: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	reg := r(h)
	check := func(ids []string, ev engineVersion, tls bool) error {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		return reg.checkUserGroupsAttachable(ids, ev, tls)
	}
	redis7, _ := resolveEngine(aws.String("redis"), aws.String("7.1"))
	redis5, _ := resolveEngine(aws.String("redis"), aws.String("5.0.6"))
	valkey8, _ := resolveEngine(aws.String("valkey"), aws.String("8.0"))
	h.waitUserGroup(ctx, "rd", "active")
	reg.mu.Lock()
	reg.userGroups["rd"].status = statusModifying
	reg.mu.Unlock()
	wantFault[*types.InvalidUserGroupStateFault](t, "a modifying user group", check([]string{"rd"}, redis7, true))
	reg.mu.Lock()
	reg.userGroups["rd"].status = statusActive
	reg.mu.Unlock()
	if err := check(nil, redis5, false); err != nil {
		t.Errorf("no user group: %v", err)
	}
	for _, ev := range []engineVersion{redis7, valkey8} {
		if err := check([]string{"RD"}, ev, true); err != nil {
			t.Errorf("an active redis user group on %s %s: %v", ev.Engine, ev.Version, err)
		}
	}
	wantFault[*types.InvalidParameterCombinationException](t, "without transit encryption", check([]string{"rd"}, redis7, false))
	wantFault[*types.InvalidParameterCombinationException](t, "Redis OSS 5", check([]string{"rd"}, redis5, true))
	wantFault[*types.UserGroupNotFoundFault](t, "an unknown user group", check([]string{"nope"}, redis7, true))
}

// TestAccessUsers: the users a replication group's nodes get are the
// members of its user groups, by name, with the hashes of their passwords,
// the rules of their access strings, pending changes applied and users
// being deleted left out; attach and detach keep the user group's
// ReplicationGroups.
func TestAccessUsers(t *testing.T) {
	h := newHarness(t, newFakeWorld(t), nil)
	ctx := queryapiContext(testAccount, testRegion)
	h.mustCreateUser(ctx, "app-default", "default", "off ~* +@all", testPassA)
	h.mustCreateUser(ctx, "reader", "reader", "on ~* -@all +@read", testPassA, testPassB)
	if _, err := h.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"),
		UserIds: []string{"app-default", "reader"}}); err != nil {
		t.Fatal(err)
	}
	h.waitUserGroup(ctx, "app", "active")
	reg := r(h)
	reg.mu.Lock()
	g := &replicationGroup{id: "orders", engine: engineCatalog[5], userGroupIDs: []string{"app"}}
	reg.groups["orders"] = g
	reg.attachUserGroup("orders", "app")
	got := reg.accessUsers(g)
	none := reg.accessUsers(&replicationGroup{id: "plain"})
	reg.mu.Unlock()
	want := []engine.ACLUser{
		{Name: "default", Enabled: false, PasswordHashes: []string{engine.PasswordHash(testPassA)}, Rules: "allchannels ~* +@all"},
		{Name: "reader", Enabled: true, PasswordHashes: []string{engine.PasswordHash(testPassA), engine.PasswordHash(testPassB)}, Rules: "allchannels ~* -@all +@read"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("accessUsers = %+v, want %+v", got, want)
	}
	if none != nil {
		t.Errorf("accessUsers of a group without user group = %+v, want nil", none)
	}
	if ug, _ := h.userGroup(ctx, "app"); !slices.Equal(ug.ReplicationGroups, []string{"orders"}) {
		t.Errorf("ReplicationGroups = %q", ug.ReplicationGroups)
	}
	_, err := h.e.DeleteUserGroup(ctx, &elasticache.DeleteUserGroupInput{UserGroupId: aws.String("app")})
	wantFault[*types.InvalidUserGroupStateFault](t, "DeleteUserGroup of an attached group", err)
	reg.mu.Lock()
	reg.detachUserGroup("orders", "app")
	delete(reg.groups, "orders")
	reg.mu.Unlock()
	if ug, _ := h.userGroup(ctx, "app"); len(ug.ReplicationGroups) != 0 {
		t.Errorf("ReplicationGroups after detach = %q", ug.ReplicationGroups)
	}
}

// TestUsersPersistedAsHashes: users and user groups outlive a restart;
// the state file holds password hashes, never a password; a modification
// the earlier run left is finished by the next.
func TestUsersPersistedAsHashes(t *testing.T) {
	w := newFakeWorld(t)
	store := openStore(t)
	h1 := newHarness(t, w, store)
	ctx := queryapiContext(testAccount, testRegion)
	h1.mustCreateUser(ctx, "alice", "alice", "on ~* +@all", testPassA)
	if _, err := h1.e.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("team"), Engine: aws.String("redis"),
		UserIds: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	h1.waitUserGroup(ctx, "team", "active")
	h1.waitNoOps(testAccount, testRegion)
	h1.close()

	path, err := store.Path(state.Scope{Account: testAccount, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), testPassA) {
		t.Fatalf("%s holds a password", filepath.Base(path))
	}
	if !strings.Contains(string(body), engine.PasswordHash(testPassA)) {
		t.Fatalf("%s does not hold the password's hash", filepath.Base(path))
	}

	// The earlier run stopped in the middle of adding alice to the group.
	recs, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs[0].UserGroups {
		if recs[0].UserGroups[i].ID == "team" {
			recs[0].UserGroups[i].Status = statusModifying
			recs[0].UserGroups[i].PendingAdd = []string{"alice"}
		}
	}
	h2 := restart(t, w, store, recs, RestoreReport{Regions: 1})
	ug := h2.waitUserGroup(ctx, "team", "active")
	if !slices.Equal(ug.UserIds, []string{"alice", "default"}) || ug.PendingChanges != nil {
		t.Errorf("user group after the resumed modification = %+v", ug)
	}
	u, ok := h2.user(ctx, "alice")
	if !ok || aws.ToInt32(u.Authentication.PasswordCount) != 1 {
		t.Errorf("alice after the restart = %+v", u)
	}
	reg := r(h2)
	reg.mu.Lock()
	hashes := reg.users["alice"].passwordHashes
	reg.mu.Unlock()
	if !slices.Equal(hashes, []string{engine.PasswordHash(testPassA)}) {
		t.Errorf("alice's hashes after the restart = %q", hashes)
	}
}
