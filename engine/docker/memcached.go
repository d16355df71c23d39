package docker

// Memcached nodes (NodeSpec.Engine "memcached"): a container of the
// memcached image (scripts/build-offline-images builds it FROM scratch from
// the host's memcached binary and the libraries it links), its options on
// the command line. The node keeps no data: Suspend removes its container
// without a save and a resumed node starts empty, as a Memcached node
// restarts on AWS.

import (
	"strings"

	"github.com/elasticache-local/elasticache-local/engine"
)

// DefaultMemcachedImage is the image of Memcached nodes; one memcached
// binary serves every 1.4.x–1.6.x version the API offers (the protocol is
// the same).
const DefaultMemcachedImage = "memcached:1.6"

// argsFor is the server's command line of node spec: serverArgs for Redis
// OSS and Valkey, engine.MemcachedArgs for Memcached, listening on every
// address of the container (its port is published on the node's host
// endpoint). memcached refuses to run as root without -u root, so it gets
// one unless the container runs as another user.
func (r *Runtime) argsFor(spec engine.NodeSpec, replicaOf *engine.Endpoint) ([]string, error) {
	if !engine.IsMemcached(spec.Engine) {
		return serverArgs(spec, replicaOf, r.admin, r.hostNet)
	}
	listen := "0.0.0.0"
	if r.hostNet {
		listen = spec.Endpoint.Host
	}
	asRoot := r.nodeDir(spec.Name) == "" || r.user == "" || strings.HasPrefix(r.user, "0:")
	return engine.MemcachedArgs(spec, listen, asRoot, tlsPath(engine.TLSCertFile), tlsPath(engine.TLSKeyFile),
		tlsPath(engine.TLSCAFile), dataPath+"/"+engine.MemcachedPIDFile)
}
