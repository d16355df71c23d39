package emulator

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// RBAC users (CreateUser, ModifyUser, DeleteUser, DescribeUsers). A user
// is metadata until a user group holding it is attached to a replication
// group: then it is an ACL user on every node of that group
// (rbac_apply.go). Passwords are hashed (engine.PasswordHash) as the
// request is read and only the hashes are kept, so no password reaches a
// response, an event, a log line or the state file; AWS itself reports only
// how many a user has (Authentication.PasswordCount).

// User statuses, as the API spells them (user groups also have creating).
const (
	statusActive = "active"
	// defaultUserID is the built-in user every region has, as on AWS:
	// UserId and UserName "default", no password, every permission. It
	// can be neither modified nor deleted; a user group replaces it with
	// another user named "default".
	defaultUserID = "default"
	// defaultUserName is the Redis user a client is without AUTH; every
	// user group needs one user of that name.
	defaultUserName = "default"
	// rbacMinimumEngineVersion is the oldest engine with ACL users.
	rbacMinimumEngineVersion = "6.0"
	// maxUsersPerRegion and maxUserGroupsPerRegion are AWS's default
	// quotas ("Users per Region", "User groups per Region"), and
	// maxUsersPerUserGroup the users one group may hold.
	maxUsersPerRegion      = 2000
	maxUserGroupsPerRegion = 200
	maxUsersPerUserGroup   = 100
	// maxUserIDLen bounds user and user group ids.
	maxUserIDLen = 128
)

// Authentication types as DescribeUsers reports them.
const (
	authPassword   = string(types.AuthenticationTypePassword)
	authNoPassword = string(types.AuthenticationTypeNoPassword)
)

// user is an RBAC user; passwordHashes are engine.PasswordHash values.
type user struct {
	id, name, engine string
	accessString     string
	status           string
	// noPassword is the "no-password" authentication: any password (or
	// none) is accepted.
	noPassword     bool
	passwordHashes []string
}

// defaultUsers are the users of a new region: the built-in default user.
func defaultUsers() map[string]*user {
	return map[string]*user{defaultUserID: {
		id: defaultUserID, name: defaultUserName, engine: "redis",
		accessString: "on ~* +@all", status: statusActive, noPassword: true,
	}}
}

// usersTable is how the code users share with user groups
// (rbac_common.go) finds and refuses users.
func usersTable() rbacTable[*user, types.User] {
	return rbacTable[*user, types.User]{
		kind: accessOfUser, idParam: "UserId", noun: "User",
		items:    func(r *region) map[string]*user { return r.users },
		status:   func(u *user) string { return u.status },
		describe: (*user).describe,
		quota:    maxUsersPerRegion,
		full:     func() error { return userQuotaExceeded(maxUsersPerRegion) },
		notFound: userNotFound, exists: userAlreadyExists, badState: invalidUserState,
		created: func(e *Emulator, r *region, id string) {
			e.record(r, types.SourceTypeUser, id, "User %s created", id)
		},
	}
}

// describe renders the user as the API returns it; the caller holds r.mu.
func (u *user) describe(r *region) types.User {
	auth := &types.Authentication{Type: types.AuthenticationTypeNoPassword}
	if !u.noPassword {
		auth = &types.Authentication{Type: types.AuthenticationTypePassword, PasswordCount: aws.Int32(int32(len(u.passwordHashes)))}
	}
	return types.User{
		ARN:                  aws.String(r.arn("user", u.id)),
		AccessString:         aws.String(u.accessString),
		Authentication:       auth,
		Engine:               aws.String(u.engine),
		MinimumEngineVersion: aws.String(rbacMinimumEngineVersion),
		Status:               aws.String(u.status),
		UserGroupIds:         r.userGroupsOf(u.id),
		UserId:               aws.String(u.id),
		UserName:             aws.String(u.name),
	}
}

// aclUser is the engine user u is on a node. The access string was
// validated when it was set.
func (u *user) aclUser() engine.ACLUser {
	acl, _ := parseAccessString(u.accessString)
	return engine.ACLUser{
		Name: u.name, Enabled: acl.enabled, NoPassword: u.noPassword,
		PasswordHashes: slices.Clone(u.passwordHashes), Rules: acl.rules,
	}
}

// userGroupsOf lists the user groups holding user id, sorted; never nil.
// The caller holds r.mu.
func (r *region) userGroupsOf(id string) []string {
	out := []string{}
	for _, gid := range sortedKeys(r.userGroups) {
		if slices.Contains(r.userGroups[gid].userIDs, id) || slices.Contains(r.userGroups[gid].pendingAdd, id) {
			out = append(out, gid)
		}
	}
	return out
}

// userEngine validates an Engine member of the user APIs and returns it as
// AWS stores it (lower case).
func userEngine(v *string) (string, error) {
	eng := strings.ToLower(aws.ToString(v))
	switch eng {
	case "":
		return "", mustNotBeBlank("Engine")
	case "redis", "valkey":
		return eng, nil
	}
	return "", invalidParameterValue("Invalid value for parameter Engine: %s. Valid values are redis and valkey.", aws.ToString(v))
}

// optionalUserEngine is userEngine for the Engine member of a Modify,
// which may be left out ("" then).
func optionalUserEngine(v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	return userEngine(v)
}

// checkUserName refuses a user name no Redis user can have (ACL user names
// are one word) and the name of the emulator's own admin user.
func checkUserName(v *string) (string, error) {
	name := aws.ToString(v)
	if name == "" {
		return "", mustNotBeBlank("UserName")
	}
	if strings.IndexFunc(name, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0 {
		return "", invalidParameterValue("The parameter UserName must not contain spaces or control characters.")
	}
	if name == engine.AdminUser {
		return "", invalidParameterValue("The user name %s is reserved by elasticache-local.", name)
	}
	return name, nil
}

// CreateUser creates a user; it is active at once, as on AWS.
func (e *Emulator) CreateUser(ctx context.Context, in *elasticache.CreateUserInput) (*elasticache.CreateUserOutput, error) {
	id, err := normalizeID("UserId", in.UserId, maxUserIDLen)
	if err != nil {
		return nil, err
	}
	name, err := checkUserName(in.UserName)
	if err != nil {
		return nil, err
	}
	eng, err := userEngine(in.Engine)
	if err != nil {
		return nil, err
	}
	if aws.ToString(in.AccessString) == "" {
		return nil, mustNotBeBlank("AccessString")
	}
	if _, err := parseAccessString(*in.AccessString); err != nil {
		return nil, err
	}
	auth, err := readAuthentication(in.AuthenticationMode, in.Passwords, in.NoPasswordRequired, true)
	if err != nil {
		return nil, err
	}
	return createRBAC(ctx, e, usersTable(), id, in.Tags, userResult[elasticache.CreateUserOutput], func(*region) (*user, error) {
		return &user{id: id, name: name, engine: eng, accessString: *in.AccessString, status: statusActive,
			noPassword: auth.noPassword, passwordHashes: auth.hashes}, nil
	})
}

// ModifyUser changes a user's passwords, access string, authentication or
// engine. The user is modifying until every node of every replication
// group it reaches has the change (rbac_apply.go).
func (e *Emulator) ModifyUser(ctx context.Context, in *elasticache.ModifyUserInput) (*elasticache.ModifyUserOutput, error) {
	id, err := lookupID("UserId", in.UserId)
	if err != nil {
		return nil, err
	}
	if in.AccessString == nil && in.AppendAccessString == nil && in.AuthenticationMode == nil && in.Engine == nil &&
		in.NoPasswordRequired == nil && len(in.Passwords) == 0 {
		return nil, invalidParameterCombination("No modifications were requested.")
	}
	if in.AccessString != nil && in.AppendAccessString != nil {
		return nil, invalidParameterCombination("AccessString and AppendAccessString cannot be used together.")
	}
	eng, err := optionalUserEngine(in.Engine)
	if err != nil {
		return nil, err
	}
	var auth *authentication
	if in.AuthenticationMode != nil || in.NoPasswordRequired != nil || len(in.Passwords) > 0 {
		a, err := readAuthentication(in.AuthenticationMode, in.Passwords, in.NoPasswordRequired, false)
		if err != nil {
			return nil, err
		}
		auth = &a
	}
	return changeRBAC(ctx, e, usersTable(), id, userResult[elasticache.ModifyUserOutput], func(r *region, u *user) error {
		if id == defaultUserID {
			return invalidParameterValue("The default user cannot be modified; create another user named default and swap it in the user group instead.")
		}
		next := *u
		switch {
		case in.AccessString != nil:
			next.accessString = *in.AccessString
		case in.AppendAccessString != nil:
			next.accessString = strings.TrimSpace(u.accessString + " " + *in.AppendAccessString)
		}
		if next.accessString == "" {
			return mustNotBeBlank("AccessString")
		}
		if _, err := parseAccessString(next.accessString); err != nil {
			return err
		}
		if eng != "" && eng != u.engine {
			if u.engine == "valkey" {
				return invalidParameterCombination("User %s cannot be changed from engine valkey to %s.", id, eng)
			}
			next.engine = eng
		}
		if auth != nil {
			switch {
			case auth.noPassword:
				next.noPassword, next.passwordHashes = true, nil
			case len(auth.hashes) > 0:
				next.noPassword, next.passwordHashes = false, auth.hashes
			case u.noPassword:
				// NoPasswordRequired false alone on a user without passwords.
				return noPasswordProvided()
			}
		}
		for _, gid := range r.userGroupsOf(id) {
			if err := r.userGroups[gid].admits(&next); err != nil {
				return err
			}
		}
		next.status = statusModifying
		*u = next
		return nil
	})
}

// DeleteUser deletes a user: it leaves every user group, and with them
// the nodes of their replication groups (its connections are closed),
// then it is gone.
func (e *Emulator) DeleteUser(ctx context.Context, in *elasticache.DeleteUserInput) (*elasticache.DeleteUserOutput, error) {
	id, err := lookupID("UserId", in.UserId)
	if err != nil {
		return nil, err
	}
	return changeRBAC(ctx, e, usersTable(), id, userResult[elasticache.DeleteUserOutput], func(r *region, u *user) error {
		if id == defaultUserID {
			return invalidParameterValue("The default user cannot be deleted.")
		}
		if groups := r.userGroupsOf(id); u.name == defaultUserName && len(groups) > 0 {
			return defaultUserAssociatedToUserGroup(id, groups[0])
		}
		u.status = statusDeleting
		return nil
	})
}

// DescribeUsers lists users (the built-in default user included), by id,
// engine and filters, paged by MaxRecords/Marker.
func (e *Emulator) DescribeUsers(ctx context.Context, in *elasticache.DescribeUsersInput) (*elasticache.DescribeUsersOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	keep, err := userFilter(in.Engine, in.Filters)
	if err != nil {
		return nil, err
	}
	users, next, err := usersTable().list(ctx, e, in.UserId, keep, in.Marker, max)
	if err != nil {
		return nil, err
	}
	return &elasticache.DescribeUsersOutput{Users: users, Marker: next}, nil
}

// userFilter is DescribeUsers' selection: Engine and Filters (UserId,
// UserName, Engine or Status, any of the values).
func userFilter(eng *string, filters []types.Filter) (func(*user) bool, error) {
	var checks []func(*user) bool
	if e := strings.ToLower(aws.ToString(eng)); e != "" {
		checks = append(checks, func(u *user) bool { return u.engine == e })
	}
	for _, f := range filters {
		values := f.Values
		if len(values) == 0 {
			return nil, invalidParameterCombination("The filter %s must have at least one value.", aws.ToString(f.Name))
		}
		var field func(*user) string
		switch strings.ToLower(strings.ReplaceAll(aws.ToString(f.Name), "-", "")) {
		case "userid":
			field = func(u *user) string { return u.id }
		case "username":
			field = func(u *user) string { return u.name }
		case "engine":
			field = func(u *user) string { return u.engine }
		case "status":
			field = func(u *user) string { return u.status }
		default:
			return nil, invalidParameterCombination("Unknown filter name %q; valid names are UserId, UserName, Engine and Status.", aws.ToString(f.Name))
		}
		checks = append(checks, func(u *user) bool { return slices.Contains(values, field(u)) })
	}
	return func(u *user) bool {
		for _, c := range checks {
			if !c(u) {
				return false
			}
		}
		return true
	}, nil
}
