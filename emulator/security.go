package emulator

// In-transit encryption (TLS) and the AUTH token of a replication group or
// a standalone cache cluster: what its nodes serve and whom they let in.
// Members of a group take both from the group (securityOf).
//
// A TLS node serves TLS only, on its own port (TransitEncryptionMode
// required), with a certificate of the emulator's CA (Options.CA) naming
// every address a client may use for it: its own, and its group's primary,
// reader and configuration endpoints. Replication and the cluster bus run
// over TLS too.
//
// The token itself is never kept: only its SHA-256 hash (engine.ACLUser),
// which is what the nodes' ACL takes, is stored, persisted and set.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// opApplyUsers sets the users of every node of a group or cluster (an AUTH
// token rotation, a user group change); ACL SETUSER is idempotent, so a
// restart applies it again.
const opApplyUsers = "apply-users"

// Transit encryption modes as the API names them.
const (
	transitRequired  = "required"
	transitPreferred = "preferred"
)

// AUTH token update strategies.
const (
	authRotate = "ROTATE"
	authSet    = "SET"
	authDelete = "DELETE"
)

// certValidity is how long a node's certificate is valid; every start of a
// node issues a fresh one, so nothing needs renewing by hand.
const certValidity = 365 * 24 * time.Hour

// CertIssuer issues TLS nodes' certificates (engine/tlsca.CA).
type CertIssuer interface {
	// Issue returns a certificate and key (PEM) naming hosts.
	Issue(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error)
	// CertPEM is the CA certificate nodes and clients verify peers with.
	CertPEM() []byte
}

// security is the TLS and AUTH state of a group or standalone cluster.
type security struct {
	// transit: every node serves TLS; only TLS unless preferred.
	transit bool
	// preferred: TransitEncryptionMode preferred, every node serves TLS
	// and plaintext on its port (transit.go).
	preferred bool
	// authHashes are the SHA-256 hashes of the AUTH tokens the default
	// user accepts (two while a ROTATE is in force).
	authHashes []string
	// authOpen: the default user still accepts any password or none,
	// after a ROTATE that added the first token to a group without one
	// (AWS: both the new token and passwordless connections work until
	// a SET).
	authOpen bool
	// authModified is when the token last changed (AuthTokenLastModifiedDate).
	authModified time.Time
	// authPending is the PendingModifiedValues.AuthTokenStatus while an
	// apply-users operation runs ("SETTING" or "ROTATING"), else "".
	authPending types.AuthTokenUpdateStatus
}

// authEnabled reports whether a token is set (AuthTokenEnabled).
func (s *security) authEnabled() bool { return len(s.authHashes) > 0 }

// defaultUser is the node user an AUTH token makes of Redis's default
// user, or nil when the group has no token (Redis's own default user).
func (s *security) defaultUser() []engine.ACLUser {
	if !s.authEnabled() {
		return nil
	}
	u := engine.ACLUser{Name: "default", Enabled: true, Rules: "~* &* +@all"}
	if s.authOpen {
		u.NoPassword = true
	} else {
		u.PasswordHashes = slices.Clone(s.authHashes)
	}
	return []engine.ACLUser{u}
}

// record and securityFromRecord convert to and from the persisted form.
func (s *security) record() *state.Security {
	if !s.transit && !s.authEnabled() {
		return nil
	}
	rec := &state.Security{Transit: s.transit, AuthHashes: slices.Clone(s.authHashes), AuthOpen: s.authOpen,
		AuthPending: string(s.authPending), Preferred: s.preferred}
	if !s.authModified.IsZero() {
		rec.AuthModified = s.authModified
	}
	return rec
}

func securityFromRecord(rec *state.Security) security {
	if rec == nil {
		return security{}
	}
	s := security{transit: rec.Transit, preferred: rec.Preferred, authHashes: slices.Clone(rec.AuthHashes), authOpen: rec.AuthOpen,
		authModified: rec.AuthModified, authPending: types.AuthTokenUpdateStatus(rec.AuthPending)}
	return s
}

// securityOf is the security of cl: its group's for a member; the caller
// holds r.mu.
func (r *region) securityOf(cl *cacheCluster) *security {
	if g := r.groups[cl.groupID]; g != nil {
		return &g.sec
	}
	return &cl.sec
}

// newSecurity validates the TLS and AUTH members of a create (cluster or
// group) and returns what they ask for. mode is empty for CreateCacheCluster,
// which has no TransitEncryptionMode.
func newSecurity(transit *bool, mode types.TransitEncryptionMode, token *string, now time.Time) (security, error) {
	var s security
	s.transit = aws.ToBool(transit)
	if err := checkTransitMode(s.transit, mode); err != nil {
		return s, err
	}
	s.preferred = string(mode) == transitPreferred
	if token != nil {
		if !s.transit {
			return s, invalidParameterValue("The AUTH token is only supported when encryption-in-transit is enabled")
		}
		if err := checkAuthToken(*token); err != nil {
			return s, err
		}
		s.authHashes, s.authModified = []string{engine.PasswordHash(*token)}, now
	}
	return s, nil
}

// checkTransitMode checks a TransitEncryptionMode for a group or cluster
// whose transit encryption is (or becomes) transit.
func checkTransitMode(transit bool, mode types.TransitEncryptionMode) error {
	switch m := string(mode); {
	case m == "":
	case !transit:
		return invalidParameterCombination("TransitEncryptionMode requires TransitEncryptionEnabled to be true.")
	case m != transitRequired && m != transitPreferred:
		return invalidParameterValue("Invalid TransitEncryptionMode %q: valid values are preferred and required.", m)
	}
	return nil
}

// checkAuthToken applies AWS's rules: 16–128 characters, letters, digits
// and ! & # $ ^ < > - only.
func checkAuthToken(token string) error {
	if len(token) < 16 || len(token) > 128 {
		return invalidParameterValue("Invalid AuthToken provided.")
	}
	for _, c := range token {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!&#$^<>-", c)
		if !ok {
			return invalidParameterValue("Invalid AuthToken provided.")
		}
	}
	return nil
}

// modifyAuth applies an AuthToken / AuthTokenUpdateStrategy of a modify to
// s (not yet to the nodes) and reports whether anything changed; the
// caller holds r.mu and applies the users to the nodes (pushUsers).
func modifyAuth(s *security, token *string, strategy types.AuthTokenUpdateStrategyType, now time.Time) (bool, error) {
	strat := strings.ToUpper(string(strategy))
	if token == nil && strat == "" {
		return false, nil
	}
	if strat == "" {
		strat = authRotate
	}
	switch strat {
	case authRotate, authSet:
		if token == nil {
			return false, invalidParameterValue("The AuthToken parameter is required for the %s update strategy.", strat)
		}
		if !s.transit {
			return false, invalidParameterValue("The AUTH token is only supported when encryption-in-transit is enabled")
		}
		if err := checkAuthToken(*token); err != nil {
			return false, err
		}
	case authDelete:
		if token != nil {
			return false, invalidParameterCombination("AuthToken cannot be specified with the DELETE update strategy.")
		}
		if !s.authEnabled() {
			return false, invalidParameterCombination("The AUTH token cannot be deleted: none is set.")
		}
		if !s.transit || !s.preferred {
			return false, invalidParameterCombination("The AUTH token can be deleted only when TransitEncryptionMode is preferred.")
		}
	default:
		return false, invalidParameterValue("Invalid AuthTokenUpdateStrategy %q: valid values are ROTATE, SET and DELETE.", strat)
	}
	if strat == authDelete {
		// Redis's own default user again: any password or none.
		s.authHashes, s.authOpen = nil, false
		s.authPending, s.authModified = types.AuthTokenUpdateStatusSetting, now
		return true, nil
	}
	h := engine.PasswordHash(*token)
	switch strat {
	case authRotate:
		if !s.authEnabled() {
			// The first token of a group: passwordless connections keep
			// working until a SET, as on AWS.
			s.authHashes, s.authOpen = []string{h}, true
		} else {
			// The newest token and the one before it.
			s.authHashes = append([]string{s.authHashes[len(s.authHashes)-1]}, h)
			if s.authHashes[0] == h {
				s.authHashes = s.authHashes[1:]
			}
		}
		s.authPending = types.AuthTokenUpdateStatusRotating
	case authSet:
		if !s.authEnabled() {
			return false, invalidParameterCombination("The SET update strategy is allowed only after ROTATE.")
		}
		s.authHashes, s.authOpen = []string{h}, false
		s.authPending = types.AuthTokenUpdateStatusSetting
	}
	s.authModified = now
	return true, nil
}

// tlsHosts are the addresses a TLS node's certificate names: its own and
// its group's endpoints; the caller holds r.mu.
func (r *region) tlsHosts(cl *cacheCluster, n *cacheNode) []string {
	hosts := []string{n.endpoint.Host}
	g := r.groups[cl.groupID]
	if g == nil {
		return hosts
	}
	for _, ng := range g.nodeGroups {
		if a, ok := ng.addresses(); ok {
			hosts = append(hosts, a.primary.Host, a.reader.Host)
		}
	}
	if g.cfg != nil {
		if a, ok := g.cfg.address(); ok {
			hosts = append(hosts, a.Host)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// secureLaunch adds what node n of cl needs for its group's security to l:
// TLS (the certificate is issued by startNode, outside the lock) and the
// node's users; the caller holds r.mu.
func (e *Emulator) secureLaunch(r *region, cl *cacheCluster, n *cacheNode, l *nodeLaunch) {
	if lay := r.layoutOf(cl); lay.transit {
		l.tlsHosts = r.tlsHosts(cl, n)
		l.preferred = lay.preferred
		l.plainReplication = r.primaryServesPlaintext(cl)
	}
	l.spec.Users = r.nodeUsers(cl)
}

// issueTLS gives l.spec its certificate; called by startNode without the lock.
func (e *Emulator) issueTLS(l *nodeLaunch) error {
	if l.tlsHosts == nil {
		return nil
	}
	if e.opts.CA == nil {
		return fmt.Errorf("node %s needs TLS but the emulator has no CA", l.spec.Name)
	}
	cert, key, err := e.opts.CA.Issue(l.tlsHosts, certValidity)
	if err != nil {
		return fmt.Errorf("issuing the TLS certificate of node %s: %w", l.spec.Name, err)
	}
	l.spec.TLS = &engine.TLSSpec{CertPEM: cert, KeyPEM: key, CAPEM: e.opts.CA.CertPEM(),
		Preferred: l.preferred, PlainReplication: l.plainReplication}
	return nil
}

// pushUsers sets the users of every node of the clusters (a group's members
// or one standalone cluster) in an apply-users operation, then clears the
// pending AUTH status and, when done() is given, lets it settle the status;
// the caller holds r.mu.
func (e *Emulator) pushUsers(r *region, target string, clusters []*cacheCluster, done func()) {
	type push struct {
		ep    engine.Endpoint
		users []engine.ACLUser
	}
	var pushes []push
	for _, cl := range clusters {
		users := r.nodeUsers(cl)
		for _, n := range cl.nodes {
			pushes = append(pushes, push{ep: n.endpoint, users: users})
		}
	}
	e.runOperation(r, opApplyUsers, target, nil, func(ctx context.Context) {
		for _, p := range pushes {
			if err := e.admin.ApplyUsers(ctx, p.ep, p.users); err != nil && ctx.Err() == nil {
				// A node that does not answer gets its users when it is
				// rebuilt (launchFor), from the same records.
				e.log.Warn("setting a node's users", "node", p.ep.Addr(), "target", target, "err", fmt.Sprint(err))
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		defer e.unlock(r)
		if done != nil {
			done()
		}
	})
}

// described is s as the API shows it, on groups and clusters alike.
type described struct {
	transit, auth *bool
	mode          types.TransitEncryptionMode
	modified      *time.Time
	pending       types.AuthTokenUpdateStatus
}

func (s *security) described() described {
	d := described{transit: aws.Bool(s.transit), auth: aws.Bool(s.authEnabled()), pending: s.authPending}
	switch {
	case s.transit && s.preferred:
		d.mode = types.TransitEncryptionModePreferred
	case s.transit:
		d.mode = types.TransitEncryptionModeRequired
	}
	if !s.authModified.IsZero() {
		d.modified = aws.Time(s.authModified)
	}
	return d
}

// describeGroup and describeCluster report s as the API shows it, and
// the in-transit encryption a group's node change (rolling) moves to.
func (s *security) describeGroup(out *types.ReplicationGroup, rolling *nodeChange) {
	d := s.described()
	out.TransitEncryptionEnabled, out.AuthTokenEnabled, out.TransitEncryptionMode, out.AuthTokenLastModifiedDate = d.transit, d.auth, d.mode, d.modified
	if out.PendingModifiedValues != nil {
		out.PendingModifiedValues.AuthTokenStatus = d.pending
		if rolling != nil && rolling.transit != nil {
			out.PendingModifiedValues.TransitEncryptionEnabled = aws.Bool(rolling.transit.transit)
			out.PendingModifiedValues.TransitEncryptionMode = rolling.transit.mode()
		}
	}
}

func (s *security) describeCluster(out *types.CacheCluster) {
	d := s.described()
	out.TransitEncryptionEnabled, out.AuthTokenEnabled, out.TransitEncryptionMode, out.AuthTokenLastModifiedDate = d.transit, d.auth, d.mode, d.modified
	if out.PendingModifiedValues != nil {
		out.PendingModifiedValues.AuthTokenStatus = d.pending
	}
}

// listedEndpoints are the endpoints g's Describe lists (listedEndpoints of
// the group), each registered with the admin as TLS or plaintext as g
// serves it, so the control plane's PINGs through the primary, reader and
// configuration endpoints speak what they serve; the caller holds r.mu.
// Registering both ways keeps an address a deleted TLS group gave back
// right for its next owner.
func (e *Emulator) listedEndpoints(r *region, g *replicationGroup) []engine.Endpoint {
	eps := g.listedEndpoints(r)
	for _, ep := range eps {
		e.admin.UseTLS(ep, g.sec.transit)
	}
	return eps
}
