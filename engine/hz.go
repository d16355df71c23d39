package engine

import "strconv"

// Cron rates (redis.conf hz) of a node. Nodes idle at Redis's default rate:
// at 100 Hz an idle node costs several times the CPU of a default one. A
// primary runs at SyncHz only while replicas fully sync from it: it notices
// that the RDB it saves for them is done in its cron, so at IdleHz every
// replica sync would wait up to 100 ms more. The control plane raises and
// lowers it with CONFIG SET around each replica start.
const (
	IdleHz = 10
	SyncHz = 100
)

// HzValue renders a cron rate as a configuration value.
func HzValue(hz int) string { return strconv.Itoa(hz) }
