package integration

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// Passwords of the RBAC tests: valid by AWS's rules, distinct enough to
// grep for.
const (
	rbacPassAlice   = "alice-secret-0123456789"
	rbacPassAlice2  = "alice-second-0123456789"
	rbacPassReader  = "reader-secret-0123456789"
	rbacPassDefault = "default-secret-0123456789"
)

func describeUser(t *testing.T, c *elasticache.Client, id string) types.User {
	t.Helper()
	return describeOne(t, "DescribeUsers "+id, c.DescribeUsers, &elasticache.DescribeUsersInput{UserId: aws.String(id)},
		func(o *elasticache.DescribeUsersOutput) []types.User { return o.Users })
}

func describeUserGroup(t *testing.T, c *elasticache.Client, id string) types.UserGroup {
	t.Helper()
	return describeOne(t, "DescribeUserGroups "+id, c.DescribeUserGroups, &elasticache.DescribeUserGroupsInput{UserGroupId: aws.String(id)},
		func(o *elasticache.DescribeUserGroupsOutput) []types.UserGroup { return o.UserGroups })
}

// describeCall is an SDK Describe operation, such as c.DescribeUsers.
type describeCall[I, O any] func(context.Context, *I, ...func(*elasticache.Options)) (*O, error)

// describeOne is the first item the Describe call with in answers (one
// by id); what names the call when it fails the test.
func describeOne[I, O, T any](t *testing.T, what string, call describeCall[I, O], in *I, items func(*O) []T) T {
	t.Helper()
	out, err := call(ctxT(t, 5*time.Second), in)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return items(out)[0]
}

// waitUserGroupStatus polls until the user group has status want ("gone":
// UserGroupNotFound).
func waitUserGroupStatus(t *testing.T, c *elasticache.Client, id, want string) {
	t.Helper()
	waitStatus(t, "user group "+id, want, "UserGroupNotFound", c.DescribeUserGroups,
		&elasticache.DescribeUserGroupsInput{UserGroupId: aws.String(id)},
		func(o *elasticache.DescribeUserGroupsOutput) *string { return o.UserGroups[0].Status })
}

// waitUserStatus is waitUserGroupStatus for users.
func waitUserStatus(t *testing.T, c *elasticache.Client, id, want string) {
	t.Helper()
	waitStatus(t, "user "+id, want, "UserNotFound", c.DescribeUsers, &elasticache.DescribeUsersInput{UserId: aws.String(id)},
		func(o *elasticache.DescribeUsersOutput) *string { return o.Users[0].Status })
}

// waitStatus polls the Describe call with in (of one item, what) until
// the status it answers is want ("gone": it answers the fault notFound).
func waitStatus[I, O any](t *testing.T, what, want, notFound string, call describeCall[I, O], in *I, status func(*O) *string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		out, err := call(ctxT(t, 5*time.Second), in)
		if want == "gone" && err != nil && strings.Contains(err.Error(), notFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if got := aws.ToString(status(out)); got != want {
			return fmt.Errorf("%s is %s, want %s", what, got, want)
		}
		return nil
	})
}

// userIDs lists the ids of every user, through every page.
func userIDs(t *testing.T, c *elasticache.Client) []string {
	t.Helper()
	var ids []string
	p := elasticache.NewDescribeUsersPaginator(c, &elasticache.DescribeUsersInput{MaxRecords: aws.Int32(20)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Users {
			ids = append(ids, aws.ToString(u.UserId))
		}
	}
	return ids
}

// TestRBACAPI: the user and user group APIs through the real SDK: the
// built-in default user, creates with AWS's faults for bad input (nothing
// created), modifications with their transitional statuses and pending
// changes, paging, tags, events and deletes; no password appears in any
// response, log line or file of the data dir.
func TestRBACAPI(t *testing.T) {
	e, logs, responses, dataDir := startCapturedEmulator(t)
	c := e.client
	ctx := ctxT(t, 2*time.Minute)

	def := describeUser(t, c, "default")
	if aws.ToString(def.UserName) != "default" || aws.ToString(def.AccessString) != "on ~* +@all" ||
		def.Authentication.Type != types.AuthenticationTypeNoPassword || aws.ToString(def.Status) != "active" {
		t.Fatalf("default user = %+v", def)
	}

	alice, err := c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("alice"), UserName: aws.String("alice"),
		Engine: aws.String("redis"), AccessString: aws.String("on ~alice:* +@all"), Passwords: []string{rbacPassAlice},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("app")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(alice.Status) != "active" || aws.ToInt32(alice.Authentication.PasswordCount) != 1 ||
		!strings.HasPrefix(aws.ToString(alice.ARN), "arn:aws:elasticache:us-east-1:") || !strings.HasSuffix(aws.ToString(alice.ARN), ":user:alice") {
		t.Errorf("CreateUser = %+v", alice)
	}
	for _, in := range []*elasticache.CreateUserInput{
		{UserId: aws.String("reader"), UserName: aws.String("reader"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* -@all +@read +@connection"), Passwords: []string{rbacPassReader}},
		{UserId: aws.String("app-default"), UserName: aws.String("default"), Engine: aws.String("redis"),
			AccessString: aws.String("on ~* +@all"), AuthenticationMode: &types.AuthenticationMode{
				Type: types.InputAuthenticationTypePassword, Passwords: []string{rbacPassDefault}}},
	} {
		if _, err := c.CreateUser(ctx, in); err != nil {
			t.Fatalf("CreateUser %s: %v", aws.ToString(in.UserId), err)
		}
	}

	// Bad input: AWS's faults, and nothing created.
	before := userIDs(t, c)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("alice"), UserName: aws.String("x"), Engine: aws.String("redis"),
		AccessString: aws.String("on"), NoPasswordRequired: aws.Bool(true)})
	expectError(t, err, "UserAlreadyExists", 400)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
		AccessString: aws.String("on ~* +@all"), Passwords: []string{"only-15-chars-x"}})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
		AccessString: aws.String("on >" + rbacPassAlice2 + " ~* +@all"), NoPasswordRequired: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
		AccessString: aws.String("on ~* +@all"), Passwords: []string{rbacPassAlice2}, NoPasswordRequired: aws.Bool(true)})
	expectError(t, err, "InvalidParameterCombination", 400)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
		AccessString: aws.String("on ~* +nosuchcommand"), NoPasswordRequired: aws.Bool(true)})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String("bob"), UserName: aws.String("bob"), Engine: aws.String("redis"),
		AccessString: aws.String("on ~* +@all"), AuthenticationMode: &types.AuthenticationMode{Type: types.InputAuthenticationTypeIam}})
	expectError(t, err, "NotImplemented", 501)
	_, err = c.DescribeUsers(ctx, &elasticache.DescribeUsersInput{UserId: aws.String("nobody")})
	expectError(t, err, "UserNotFound", 404)
	if after := userIDs(t, c); !slices.Equal(after, before) {
		t.Fatalf("users after refused creates = %q, want %q", after, before)
	}

	// User groups.
	_, err = c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"), UserIds: []string{"alice"}})
	expectError(t, err, "DefaultUserRequired", 400)
	_, err = c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"), UserIds: []string{"default", "nobody"}})
	expectError(t, err, "UserNotFound", 404)
	_, err = c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"), UserIds: []string{"default", "app-default"}})
	expectError(t, err, "DuplicateUserName", 400)
	_, err = c.DescribeUserGroups(ctx, &elasticache.DescribeUserGroupsInput{UserGroupId: aws.String("app")})
	expectError(t, err, "UserGroupNotFound", 404)

	ug, err := c.CreateUserGroup(ctx, &elasticache.CreateUserGroupInput{UserGroupId: aws.String("app"), Engine: aws.String("redis"),
		UserIds: []string{"app-default", "alice"}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("app")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ug.Status) != "creating" || !slices.Equal(ug.UserIds, []string{"alice", "app-default"}) {
		t.Errorf("CreateUserGroup = %+v", ug)
	}
	waitUserGroupStatus(t, c, "app", "active")
	if u := describeUser(t, c, "alice"); !slices.Equal(u.UserGroupIds, []string{"app"}) {
		t.Errorf("alice's UserGroupIds = %q", u.UserGroupIds)
	}
	_, err = c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"), UserIdsToRemove: []string{"app-default"}})
	expectError(t, err, "DefaultUserRequired", 400)
	_, err = c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"), UserIdsToAdd: []string{"default"}})
	expectError(t, err, "DuplicateUserName", 400)
	_, err = c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"), UserIdsToAdd: []string{"nobody"}})
	expectError(t, err, "UserNotFound", 404)
	if got := describeUserGroup(t, c, "app"); aws.ToString(got.Status) != "active" || got.PendingChanges != nil ||
		!slices.Equal(got.UserIds, []string{"alice", "app-default"}) {
		t.Fatalf("user group after refused modifications = %+v", got)
	}
	mod, err := c.ModifyUserGroup(ctx, &elasticache.ModifyUserGroupInput{UserGroupId: aws.String("app"), UserIdsToAdd: []string{"reader"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(mod.Status) != "modifying" || mod.PendingChanges == nil || !slices.Equal(mod.PendingChanges.UserIdsToAdd, []string{"reader"}) {
		t.Errorf("ModifyUserGroup = %+v", mod)
	}
	waitUserGroupStatus(t, c, "app", "active")
	if got := describeUserGroup(t, c, "app"); !slices.Equal(got.UserIds, []string{"alice", "app-default", "reader"}) || got.PendingChanges != nil {
		t.Errorf("user group after adding reader = %+v", got)
	}

	// Users: modify (passwords rotate), the default user stays as it is,
	// a default-named member cannot go.
	mu, err := c.ModifyUser(ctx, &elasticache.ModifyUserInput{UserId: aws.String("alice"), Passwords: []string{rbacPassAlice, rbacPassAlice2}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(mu.Status) != "modifying" || aws.ToInt32(mu.Authentication.PasswordCount) != 2 {
		t.Errorf("ModifyUser = %+v", mu)
	}
	waitUserStatus(t, c, "alice", "active")
	_, err = c.ModifyUser(ctx, &elasticache.ModifyUserInput{UserId: aws.String("default"), AccessString: aws.String("off")})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.ModifyUser(ctx, &elasticache.ModifyUserInput{UserId: aws.String("nobody"), AccessString: aws.String("off")})
	expectError(t, err, "UserNotFound", 404)
	_, err = c.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("app-default")})
	expectError(t, err, "DefaultUserAssociatedToUserGroup", 400)

	// Paging over more users than a page.
	for i := range 25 {
		id := "bulk-" + string(rune('a'+i))
		if _, err := c.CreateUser(ctx, &elasticache.CreateUserInput{UserId: aws.String(id), UserName: aws.String(id), Engine: aws.String("redis"),
			AccessString: aws.String("off"), NoPasswordRequired: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	if ids := userIDs(t, c); len(ids) != 4+25 || !slices.IsSorted(ids) {
		t.Errorf("paged users = %d %q", len(ids), ids)
	}

	tags, err := c.ListTagsForResource(ctx, &elasticache.ListTagsForResourceInput{ResourceName: ug.ARN})
	if err != nil || len(tags.TagList) != 1 {
		t.Errorf("tags of the user group = %+v, %v", tags, err)
	}
	events, err := c.DescribeEvents(ctx, &elasticache.DescribeEventsInput{SourceType: types.SourceTypeUserGroup})
	if err != nil || len(events.Events) == 0 {
		t.Errorf("user group events = %+v, %v", events, err)
	}

	// Deletes: a user leaves its groups; a group goes.
	if _, err := c.DeleteUser(ctx, &elasticache.DeleteUserInput{UserId: aws.String("reader")}); err != nil {
		t.Fatal(err)
	}
	waitUserStatus(t, c, "reader", "gone")
	if got := describeUserGroup(t, c, "app"); !slices.Equal(got.UserIds, []string{"alice", "app-default"}) {
		t.Errorf("user group after deleting reader: %q", got.UserIds)
	}
	if _, err := c.DeleteUserGroup(ctx, &elasticache.DeleteUserGroupInput{UserGroupId: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, "app", "gone")

	// No password anywhere: responses, log (debug), data dir.
	assertNoRBACSecret(t, "API responses", responses.String())
	assertNoRBACSecret(t, "the log", logs.String())
	if !strings.Contains(responses.String(), "<PasswordCount>2</PasswordCount>") {
		t.Error("no response reported a PasswordCount of 2: the capture missed the answers")
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // a node's socket or a file that went meanwhile
		}
		assertNoRBACSecret(t, path, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assertNoRBACSecret fails if text holds one of the test's passwords.
func assertNoRBACSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, p := range []string{rbacPassAlice, rbacPassAlice2, rbacPassReader, rbacPassDefault} {
		if strings.Contains(text, p) {
			t.Errorf("%s holds a password (%s...)", where, p[:6])
		}
	}
}
