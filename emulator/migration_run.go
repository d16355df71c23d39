package emulator

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// runMigration brings a group's migration to what its record asks: the
// primary replicating from the source (reporting when the first sync is
// done), or, while completing, the primary promoted again. It runs after
// StartMigration and CompleteMigration and again after a restart; every
// step is idempotent. No lock is held by the caller.
func (e *Emulator) runMigration(ctx context.Context, r *region, g *replicationGroup) {
	r.mu.Lock()
	m := g.migration
	if m == nil || r.groups[g.id] != g {
		r.mu.Unlock()
		return
	}
	primary := g.nodeGroups[0].primary
	ep := r.clusters[primary].nodes[0].endpoint
	source, completing, force := m.source, m.completing, m.force
	r.mu.Unlock()
	if completing {
		e.completeMigration(ctx, r, g, m, primary, ep, force)
		return
	}
	if err := e.followSource(ctx, ep, source); err != nil {
		if stopping(ctx) {
			return
		}
		// A primary that cannot be reached is being recovered by the
		// health monitor; its replacement follows the source (failover,
		// or repair for one rebuilt in place): the migration goes on.
		r.mu.Lock()
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Migration of %s: primary node %s could not be pointed at %s: %v", g.id, primary, source.Addr(), err)
		e.unlock(r)
		return
	}
	e.awaitMigrationSync(ctx, r, g, m, primary, ep)
}

// followSource makes the node at ep replicate from source unless it does.
func (e *Emulator) followSource(ctx context.Context, ep, source engine.Endpoint) error {
	if err := e.awaitAdopted(ctx, ep); err != nil {
		return err
	}
	info, err := e.admin.InspectReplication(ctx, ep)
	if err != nil {
		return err
	}
	if info.IsReplica() && info.Master() == source {
		return nil
	}
	e.log.Info("migration: pointing the primary at the source", "node", ep.Addr(), "source", source.Addr())
	return e.admin.FollowSource(ctx, ep, source)
}

// awaitMigrationSync waits until the primary has finished its first sync
// from the source and says so with an event, or says it has not after
// migrationSyncWait. It stops when the migration is completed meanwhile.
func (e *Emulator) awaitMigrationSync(ctx context.Context, r *region, g *replicationGroup, m *migration, primary string, ep engine.Endpoint) {
	deadline := time.Now().Add(migrationSyncWait)
	lastReport := time.Now()
	for {
		r.mu.RLock()
		done := g.migration != m || m.completing
		r.mu.RUnlock()
		if done || stopping(ctx) {
			return
		}
		info, err := e.admin.InspectReplication(ctx, ep)
		if err == nil && info.IsReplica() && info.Master() == m.source && info.LinkUp && !info.SyncInProgress {
			r.mu.Lock()
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Migration of %s: primary node %s is in sync with %s (replication offset %d); writes go to the source until CompleteMigration", g.id, primary, m.source.Addr(), info.ReplicaOffset)
			e.unlock(r)
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Migration of %s: primary node %s has not synced from %s after %s: %s", g.id, primary, m.source.Addr(), migrationSyncWait, syncState(info, err))
			e.unlock(r)
			return
		}
		if time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			e.log.Info("migration: waiting for the primary's sync from the source", "group", g.id, "source", m.source.Addr(), "state", syncState(info, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// syncState says where a replica's sync from its primary stands.
func syncState(info engine.ReplicationInfo, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case !info.IsReplica():
		return "it is not a replica"
	case info.SyncInProgress:
		return "a full sync is running"
	case !info.LinkUp:
		return fmt.Sprintf("its link to %s is down", info.Master().Addr())
	}
	return "in sync"
}

// completeMigration promotes the primary once it is in sync with the
// source (unless forced) and ends the migration; when the data is not in
// sync the migration goes on, with an event saying why, as on AWS.
func (e *Emulator) completeMigration(ctx context.Context, r *region, g *replicationGroup, m *migration, primary string, ep engine.Endpoint, force bool) {
	fail := func(why string) {
		r.mu.Lock()
		defer e.unlock(r)
		if g.migration == m {
			m.completing, m.force = false, false
		}
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Complete Migration failed for %s: %s. Primary node %s keeps replicating from %s", g.id, why, primary, m.source.Addr())
		e.runOperation(r, opMigration, g.id, nil, func(ctx context.Context) { e.runMigration(ctx, r, g) })
	}
	// A primary found promoted already was promoted by an earlier run
	// killed before it could record it: only the record is left to do.
	info, err := e.admin.InspectReplication(ctx, ep)
	promoted := err == nil && info.IsPrimary()
	if !force && !promoted {
		if why := e.migrationInSync(ctx, ep, m.source); why != "" {
			if !stopping(ctx) {
				fail("data is not in sync: " + why + " (use Force to stop the migration anyway)")
			}
			return
		}
	}
	if err := e.admin.PromoteFromSource(ctx, ep); err != nil {
		if !stopping(ctx) {
			fail(fmt.Sprintf("promoting primary node %s: %v", primary, err))
		}
		return
	}
	r.mu.Lock()
	defer e.unlock(r)
	if g.migration != m {
		return
	}
	g.migration = nil
	if g.status == statusMigrating {
		g.status = statusAvailable
	}
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Complete Migration successful for %s", g.id)
}

// migrationInSync says why the primary at ep is not in sync with the
// source, or "": it must replicate from it with its link up, no full sync
// running, and reach the source's replication offset within
// migrationCatchUpWait.
func (e *Emulator) migrationInSync(ctx context.Context, ep, source engine.Endpoint) string {
	src, err := e.admin.InspectSource(ctx, source)
	if err != nil {
		return fmt.Sprintf("cannot read the replication offset of %s: %v", source.Addr(), err)
	}
	target := src.Replication.MasterOffset
	deadline := time.Now().Add(migrationCatchUpWait)
	for {
		info, err := e.admin.InspectReplication(ctx, ep)
		switch {
		case err != nil:
			return err.Error()
		case !info.IsReplica() || info.Master() != source:
			return fmt.Sprintf("the primary does not replicate from %s", source.Addr())
		case !info.LinkUp || info.SyncInProgress:
			return syncState(info, nil)
		case info.ReplicaOffset >= target:
			return ""
		case time.Now().After(deadline):
			return fmt.Sprintf("the primary is at replication offset %d of the source's %d", info.ReplicaOffset, target)
		}
		select {
		case <-ctx.Done():
			return ctx.Err().Error()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
