package engine

// What a runtime writes into a node for NodeSpec.TLS and NodeSpec.Users:
// one rendering of the directives for both runtimes (the process runtime's
// redis.conf, the docker runtime's command line).

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"unicode"
)

// Files of a TLS node in its data directory (TLSFiles), read by the server
// through TLSDirectives.
const (
	TLSCertFile = "tls-cert.pem"
	TLSKeyFile  = "tls-key.pem"
	TLSCAFile   = "tls-ca.pem"
)

// Values of LabelTLS: a TLS node, and one that serves plaintext too
// (TLSSpec.Preferred).
const (
	LabelTLSRequired  = "required"
	LabelTLSPreferred = "preferred"
)

// NodeFile is a file a runtime puts in a node's data directory before the
// server starts.
type NodeFile struct {
	Name string
	Data []byte
}

// TLSFiles returns the files of a TLS node (TLSCertFile, TLSKeyFile,
// TLSCAFile), nil without spec.TLS. Runtimes write them readable by the
// server's user only (0600): one holds the node's private key.
func TLSFiles(spec NodeSpec) []NodeFile {
	if spec.TLS == nil {
		return nil
	}
	return []NodeFile{
		{Name: TLSCertFile, Data: spec.TLS.CertPEM},
		{Name: TLSKeyFile, Data: spec.TLS.KeyPEM},
		{Name: TLSCAFile, Data: spec.TLS.CAPEM},
	}
}

// PortDirectives returns where the node listens: port <Endpoint.Port>, or
// for a TLS node port 0 (no plaintext listener: ElastiCache's "required"
// in-transit encryption) and tls-port <Endpoint.Port>, or for a preferred
// one the ports of PreferredEndpoints. A TLS cluster node's bus is then on
// the TLS port+10000, over TLS.
func PortDirectives(spec NodeSpec) [][]string {
	p := strconv.Itoa(spec.Endpoint.Port)
	switch {
	case spec.TLS == nil:
		return [][]string{{"port", p}}
	case spec.TLS.Preferred:
		plain, tls := PreferredEndpoints(spec.Endpoint)
		return [][]string{{"port", strconv.Itoa(plain.Port)}, {"tls-port", strconv.Itoa(tls.Port)}}
	}
	return [][]string{{"port", "0"}, {"tls-port", p}}
}

// CheckTLSSpec refuses a TLS layout a runtime cannot start: a preferred
// node in cluster mode (its bus would follow the TLS port) or whose
// PreferredEndpoints do not fit in the port range.
func CheckTLSSpec(spec NodeSpec) error {
	if spec.TLS == nil || !spec.TLS.Preferred {
		return nil
	}
	if spec.Cluster {
		return fmt.Errorf("engine: node %s: TLSSpec.Preferred is not supported in cluster mode", spec.Name)
	}
	if _, tls := PreferredEndpoints(spec.Endpoint); tls.Port > 65535 {
		return fmt.Errorf("engine: node %s: TLSSpec.Preferred needs ports %d and %d", spec.Name, spec.Endpoint.Port+1, tls.Port)
	}
	return nil
}

// TLSDirectives returns the TLS directives of a node, nil without
// spec.TLS, for its TLSFiles at the paths given (as the server sees them).
// Clients need no certificate (tls-auth-clients no); a replica connects to
// its primary over TLS (tls-replication) unless TLSSpec.PlainReplication,
// and cluster nodes talk TLS on the
// bus and every node MIGRATEs over TLS (tls-cluster), each presenting the
// node's certificate and verifying the peer's against the CA.
func TLSDirectives(spec NodeSpec, certPath, keyPath, caPath string) [][]string {
	if spec.TLS == nil {
		return nil
	}
	d := [][]string{
		{"tls-cert-file", certPath},
		{"tls-key-file", keyPath},
		{"tls-ca-cert-file", caPath},
		{"tls-auth-clients", "no"},
		{"tls-replication", TLSReplication(spec.TLS)},
		// Also without Cluster: a node's MIGRATE connections go over TLS
		// only with tls-cluster, and a standalone node seeding a TLS
		// cluster (LoadKeysInto) MIGRATEs its keys to TLS nodes.
		{"tls-cluster", "yes"},
	}
	return d
}

// TLSReplication is the tls-replication value of a node with tls.
func TLSReplication(tls *TLSSpec) string {
	if tls == nil || tls.PlainReplication {
		return "no"
	}
	return "yes"
}

// ReservedTLSDirective reports whether a redis.conf directive is one of
// TLS's (tls-*), which the runtime manages and NodeSpec.Config may not set.
func ReservedTLSDirective(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "tls-")
}

// UserDirectives returns the user directives of spec.Users, in order,
// which the runtime writes after the admin user's (Admin.ServerDirectives):
// user <name> <ACLUser.Args()...>. A user named like the admin user, or
// whose name is empty or holds spaces or control characters, is an error:
// the first would lock the control plane out, the others do not parse.
func UserDirectives(users []ACLUser) ([][]string, error) {
	d := make([][]string, 0, len(users))
	for _, u := range users {
		if u.Name == "" || strings.IndexFunc(u.Name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return nil, fmt.Errorf("engine: invalid user name %q", u.Name)
		}
		if u.Name == AdminUser {
			return nil, fmt.Errorf("engine: user %q is the emulator's own", u.Name)
		}
		d = append(d, append([]string{"user", u.Name}, u.Args()...))
	}
	return d, nil
}

// NodeLabels returns the labels a runtime records for a node: spec.Labels
// with LabelTLS (LabelTLSRequired, or LabelTLSPreferred) for a TLS node and
// without it for any other, by which Adopt knows whether the node serves
// TLS, and LabelEngine for a Memcached node, by which it knows the
// protocol.
func NodeLabels(spec NodeSpec) map[string]string {
	l := maps.Clone(spec.Labels)
	if l == nil {
		l = make(map[string]string, 1)
	}
	delete(l, LabelTLS)
	switch {
	case spec.TLS != nil && spec.TLS.Preferred:
		l[LabelTLS] = LabelTLSPreferred
	case spec.TLS != nil:
		l[LabelTLS] = LabelTLSRequired
	}
	delete(l, LabelEngine)
	if IsMemcached(spec.Engine) {
		l[LabelEngine] = EngineMemcached
	}
	return l
}
