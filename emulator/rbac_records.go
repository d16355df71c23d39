package emulator

import (
	"slices"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// The records of users and user groups (records.go converts the rest of a
// region). A user's passwords are recorded as the hashes it holds.

// recordAccess returns r's users and user groups as records, sorted by id;
// the caller holds r.mu.
func (r *region) recordAccess() ([]state.User, []state.UserGroup) {
	var users []state.User
	for _, id := range sortedKeys(r.users) {
		u := r.users[id]
		auth := authPassword
		if u.noPassword {
			auth = authNoPassword
		}
		users = append(users, state.User{ID: u.id, Name: u.name, Engine: u.engine, AccessString: u.accessString,
			Status: u.status, Authentication: auth, PasswordHashes: slices.Clone(u.passwordHashes)})
	}
	var groups []state.UserGroup
	for _, id := range sortedKeys(r.userGroups) {
		ug := r.userGroups[id]
		groups = append(groups, state.UserGroup{ID: ug.id, Engine: ug.engine, Status: ug.status,
			UserIDs: slices.Clone(ug.userIDs), ReplicationGroups: slices.Clone(ug.replicationGroups),
			PendingAdd: slices.Clone(ug.pendingAdd), PendingRemove: slices.Clone(ug.pendingRemove)})
	}
	return users, groups
}

// restoreAccess installs the users and user groups of rec in r (a region
// from newRegion: the built-in default user is there already, and a
// recorded one replaces it).
func (r *region) restoreAccess(rec *state.Region) {
	for _, ur := range rec.Users {
		r.users[ur.ID] = &user{id: ur.ID, name: ur.Name, engine: ur.Engine, accessString: ur.AccessString,
			status: ur.Status, noPassword: ur.Authentication == authNoPassword, passwordHashes: slices.Clone(ur.PasswordHashes)}
	}
	for _, gr := range rec.UserGroups {
		r.userGroups[gr.ID] = &userGroup{id: gr.ID, engine: gr.Engine, status: gr.Status,
			userIDs: slices.Clone(gr.UserIDs), replicationGroups: slices.Clone(gr.ReplicationGroups),
			pendingAdd: slices.Clone(gr.PendingAdd), pendingRemove: slices.Clone(gr.PendingRemove)}
	}
}
