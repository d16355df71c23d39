package engine

// Memcached nodes: what a runtime runs for NodeSpec.Engine "memcached" (the
// command line), and how it is told apart from a Redis node (LabelEngine).

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// EngineMemcached is NodeSpec.Engine of a Memcached node.
const EngineMemcached = "memcached"

// LabelEngine marks a node of an engine other than Redis OSS/Valkey (value
// EngineMemcached), so that Adopt knows which protocol the node speaks.
const LabelEngine = "elasticache-local.engine"

// IsMemcached reports whether engine names Memcached.
func IsMemcached(engine string) bool { return strings.EqualFold(engine, EngineMemcached) }

// MemcachedPIDFile is the file a Memcached node's command line ends with
// (-P, written by memcached only with -d, which nodes never use): runtimes
// name the node's directory in the command line this way, as a Redis node's
// does with its redis.conf, so a server is matched to its node.
const MemcachedPIDFile = "memcached.pid"

// memcachedReserved are the options a runtime sets (where the node listens,
// as whom, its files, TLS) and NodeSpec.Config may not.
var memcachedReserved = []string{
	"port", "udp-port", "unix-socket", "unix-mask", "listen", "daemon", "user",
	"pidfile", "enable-ssl", "enable-shutdown", "memory-file", "auth-file", "extended",
}

var memcachedOptionRE = regexp.MustCompile(`^(o:)?[a-z0-9][a-z0-9_-]*$`)

// MemcachedArgs is the command line (after the binary) of a Memcached node
// listening on listen:Endpoint.Port, its TLS files (with spec.TLS) at the
// paths given, its pid file at pidFile (the last argument, see
// MemcachedPIDFile). asRoot adds -u root: memcached refuses to run as root
// otherwise, and the node's files are its owner's alone anyway.
//
// spec.Config holds memcached options: a long option name ("memory-limit",
// "max-item-size", "protocol") with its value, "" for a switch
// ("disable-cas"), or "o:<name>" for an extended option (-o name=value, or
// the bare name for ""). Options the runtime sets are refused.
func MemcachedArgs(spec NodeSpec, listen string, asRoot bool, certPath, keyPath, caPath, pidFile string) ([]string, error) {
	args := []string{"--port=" + strconv.Itoa(spec.Endpoint.Port), "--listen=" + listen, "--udp-port=0"}
	if asRoot {
		args = append(args, "--user=root")
	}
	var ext []string
	if spec.TLS != nil {
		// Clients need no certificate (ssl_verify_mode 0), as on the Redis
		// side (tls-auth-clients no).
		args = append(args, "--enable-ssl")
		ext = append(ext, "ssl_chain_cert="+certPath, "ssl_key="+keyPath, "ssl_ca_cert="+caPath)
	}
	keys := make([]string, 0, len(spec.Config))
	for k := range spec.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := spec.Config[k]
		name, extended := strings.CutPrefix(k, "o:")
		switch {
		case !memcachedOptionRE.MatchString(k) || strings.ContainsAny(v, ", \t\r\n"):
			return nil, fmt.Errorf("engine: node %s: invalid memcached option %q=%q", spec.Name, k, v)
		case extended && strings.HasPrefix(name, "ssl_"), !extended && slices.Contains(memcachedReserved, name):
			return nil, fmt.Errorf("engine: node %s: memcached option %q is managed by the runtime", spec.Name, k)
		case extended && v == "":
			ext = append(ext, name)
		case extended:
			ext = append(ext, name+"="+v)
		case v == "":
			args = append(args, "--"+name)
		default:
			args = append(args, "--"+name+"="+v)
		}
	}
	if len(ext) > 0 {
		args = append(args, "--extended="+strings.Join(ext, ","))
	}
	return append(args, "-P", pidFile), nil
}

// memcachedVersionRE finds the version in "memcached 1.6.18".
var memcachedVersionRE = regexp.MustCompile(`memcached (\d+\.\d+\.\d+)`)

// MemcachedVersion returns the version in the output of memcached -V, ""
// when there is none.
func MemcachedVersion(out string) string {
	if m := memcachedVersionRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}
