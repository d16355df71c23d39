package engine

// The users of a node: the default user's AUTH token and RBAC users, set
// on every node of a group (redis.conf user directives at start, then
// Admin.ApplyUsers on changes).

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ACLUser is one engine user as the control plane sets it on a node. It
// holds password hashes only (SHA-256, hex, as Redis ACL's #<hash> rule
// takes them), never a password, so it can be persisted and logged.
type ACLUser struct {
	// Name is the Redis user name (AWS's UserName; "default" is the user
	// a client gets without AUTH, and the one AUTH <token> checks).
	Name string
	// Enabled is "on" (false: "off", the user cannot authenticate).
	Enabled bool
	// NoPassword accepts any password (nopass); PasswordHashes is then
	// empty.
	NoPassword bool
	// PasswordHashes are the accepted passwords' SHA-256 hashes in hex
	// (PasswordHash), at most a few (AUTH token rotation keeps two).
	PasswordHashes []string
	// Rules are the permission rules of the user (an AWS access string
	// without on/off and passwords, e.g. "~* &* +@all"), space-separated.
	Rules string
}

// PasswordHash returns the hash Redis ACLs accept for password (#<hex
// SHA-256>).
func PasswordHash(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// Args returns the ACL rules that make a user exactly u, starting with
// reset: for ACL SETUSER <name> <args…> and the redis.conf directive user
// <name> <args…>.
func (u ACLUser) Args() []string {
	args := []string{"reset"}
	if u.Enabled {
		args = append(args, "on")
	} else {
		args = append(args, "off")
	}
	if u.NoPassword {
		args = append(args, "nopass")
	}
	for _, h := range u.PasswordHashes {
		args = append(args, "#"+h)
	}
	return append(args, strings.Fields(u.Rules)...)
}
