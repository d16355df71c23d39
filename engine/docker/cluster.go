package docker

// Cluster mode: where the nodes reach each other.

import (
	"context"
	"fmt"
	"sync"

	"github.com/elasticache-local/elasticache-local/engine"
)

var _ engine.ClusterAddresser = (*Runtime)(nil)

// ClusterAddr implements engine.ClusterAddresser: the container's IP on the
// scope network and the node's port (the same inside as on the host). The
// nodes of a cluster meet and gossip there, and MIGRATE goes there, since a
// host endpoint (127.0.0.x) is a container's own loopback; CLUSTER MEET
// takes an IP, not the network alias PeerEndpoint gives. The address is
// cached per running container: Start, Stop, Kill and Suspend forget it.
func (r *Runtime) ClusterAddr(ctx context.Context, name string) (engine.Endpoint, error) {
	if ep, ok := r.peers.get(name); ok {
		return ep, nil
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	c, err := r.runningContainer(ctx, name)
	if err != nil {
		return engine.Endpoint{}, err
	}
	ep, ok := endpointOf(c)
	if !ok {
		return engine.Endpoint{}, fmt.Errorf("engine/docker: node %s: container %.12s has no endpoint label", name, c.ID)
	}
	if r.hostNet {
		r.peers.put(name, ep) // every node listens on its host endpoint
		return ep, nil
	}
	ip := ""
	if c.NetworkSettings != nil {
		if s := c.NetworkSettings.Networks[r.network]; s != nil {
			ip = s.IPAddress
		}
	}
	if ip == "" {
		return engine.Endpoint{}, fmt.Errorf("engine/docker: node %s: container %.12s has no address on network %s", name, c.ID, r.network)
	}
	peer := engine.Endpoint{Host: ip, Port: ep.Port}
	r.peers.put(name, peer)
	return peer, nil
}

// peerCache holds the ClusterAddr of running nodes, by node name.
type peerCache struct {
	mu sync.Mutex
	m  map[string]engine.Endpoint
}

func (p *peerCache) get(name string) (engine.Endpoint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ep, ok := p.m[name]
	return ep, ok
}

func (p *peerCache) put(name string, ep engine.Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]engine.Endpoint)
	}
	p.m[name] = ep
}

// forget drops the node's address: its container is about to change.
func (p *peerCache) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, name)
}
