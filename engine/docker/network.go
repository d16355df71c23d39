package docker

// Where the nodes' servers listen: on the host's network, or on a bridge
// network of the scope with published ports.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Network modes (Options.NetworkMode).
const (
	// NetworkAuto is NetworkHost where the host's network is the
	// emulator's (a local Linux daemon, not rootless, not Docker Desktop's
	// virtual machine), else NetworkBridge.
	NetworkAuto = "auto"
	// NetworkHost runs every container on the host's network: the server
	// binds its endpoint itself, as a process would. Nothing is published
	// or created: a container starts without a network namespace, a veth
	// pair, NAT rules or a docker-proxy per port, so it starts about twice
	// as fast, the host reaches it without the daemon's port forwarding
	// in between, and its death closes its connections at once (the host
	// kernel answers for the dead socket) instead of when the daemon's
	// forwarding notices.
	NetworkHost = "host"
	// NetworkBridge attaches every container to the scope's bridge network
	// and publishes its port on its endpoint: works wherever the daemon
	// runs (a virtual machine, a remote host with the ports forwarded).
	NetworkBridge = "bridge"
)

// hostNetworkUsable reports whether containers on the daemon's host network
// share the emulator's network: a daemon on this Linux machine (a unix
// socket), not rootless (its host network is rootlesskit's namespace), not
// Docker Desktop (a virtual machine's).
func hostNetworkUsable(cli *client.Client, info system.Info) (bool, string) {
	switch {
	case runtime.GOOS != "linux":
		return false, "not on Linux"
	case !strings.HasPrefix(cli.DaemonHost(), "unix://"):
		return false, "the daemon is not local (" + cli.DaemonHost() + ")"
	case info.OSType != "" && info.OSType != "linux":
		return false, "the daemon runs " + info.OSType + " containers"
	case strings.Contains(info.OperatingSystem, "Docker Desktop"):
		return false, "Docker Desktop runs containers in a virtual machine"
	case slices.ContainsFunc(info.SecurityOptions, func(s string) bool { return strings.Contains(s, "rootless") }):
		return false, "rootless Docker has a network namespace of its own"
	}
	return true, ""
}

// ensureNetwork creates the scope's bridge network unless it exists, and
// records its id.
func (r *Runtime) ensureNetwork(ctx context.Context) error {
	r.netMu.Lock()
	defer r.netMu.Unlock()
	if r.netID != "" {
		return nil
	}
	id, err := r.canonicalNetwork(ctx)
	if err == nil && id == "" {
		_, err = r.cli.NetworkCreate(ctx, r.network, network.CreateOptions{
			Driver: "bridge",
			Labels: map[string]string{engine.LabelEmulator: r.id, LabelScope: r.scope},
		})
		if cerrdefs.IsConflict(err) {
			err = nil // created concurrently by another runtime of the scope
		}
		if err == nil {
			id, err = r.canonicalNetwork(ctx)
		}
		if err == nil && id == "" {
			err = errors.New("removed right after its creation")
		}
	}
	if err != nil {
		return fmt.Errorf("engine/docker: network %s: %w", r.network, err)
	}
	r.netID = id
	return nil
}

// canonicalNetwork returns the id of the network named r.network ("" when
// there is none). The daemon's check for a duplicate name is not atomic:
// runtimes of one scope creating the network at once (an emulator started
// while its killed predecessor's create was still being served) can make
// several, and a name matching several networks is ambiguous to the API.
// So runtimes refer to the network by id, all pick the oldest, and remove
// the other ones unless containers use them.
func (r *Runtime) canonicalNetwork(ctx context.Context) (string, error) {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", r.network))})
	if err != nil {
		return "", err
	}
	nets = slices.DeleteFunc(nets, func(n network.Summary) bool { return n.Name != r.network }) // the filter matches substrings
	if len(nets) == 0 {
		return "", nil
	}
	slices.SortFunc(nets, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, n := range nets[1:] {
		if err := r.cli.NetworkRemove(ctx, n.ID); err == nil {
			r.log.Info("removed a duplicate of the scope's network", "network", r.network, "id", n.ID[:12])
		}
	}
	return nets[0].ID, nil
}
