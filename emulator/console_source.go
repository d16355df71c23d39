package emulator

import (
	"context"

	"github.com/elasticache-local/elasticache-local/emulator/console"
)

// consoleSource is what the web console reads and acts through: the
// emulator's own typed API handlers (embedded), its scopes, and the admin
// API's live node inspection.
type consoleSource struct{ *Emulator }

// Scopes lists the accounts and regions the emulator holds state for.
func (s consoleSource) Scopes() []console.Scope {
	var out []console.Scope
	for _, r := range s.allRegions() {
		out = append(out, console.Scope{Account: r.account, Region: r.region})
	}
	return out
}

// NodeStats is the admin API's live view of a scope's nodes, without the
// runtime's process ids (a docker inspect per node would make every
// refresh of a large console cost one per node).
func (s consoleSource) NodeStats(ctx context.Context, sc console.Scope) []console.Node {
	views := s.nodes(ctx, func(r scope) bool { return r == scope{sc.Account, sc.Region} }, false)
	out := make([]console.Node, len(views))
	for i, v := range views {
		out[i] = console.Node{CacheClusterID: v.CacheClusterID, Endpoint: v.Endpoint, Status: v.Status, Role: v.Role,
			ReplicationOffset: v.ReplicationOffset, LagBytes: v.LagBytes, LagSeconds: v.LagSeconds,
			UsedMemory: v.UsedMemory, MaxMemory: v.MaxMemory, Keys: v.Keys}
	}
	return out
}
