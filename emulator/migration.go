package emulator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// Online migration (StartMigration, TestMigration, CompleteMigration), as
// AWS runs it for a cluster-mode-disabled group: the group's primary
// becomes a replica of the customer's self-managed Redis OSS or Valkey
// server, its replicas keep following it, so every node fills with the
// source's data by real replication; writes through the group are refused
// (READONLY) until CompleteMigration promotes the primary again. The group
// is "migrating" meanwhile. The source is recorded with the group
// (state.Migration): a replica promoted by a failover during the migration
// follows the source at once (failover), a primary rebuilt in place once it
// runs (repair), and a restart resumes what was under way (reconcileRegion).

const (
	statusMigrating = "migrating"
	// migrationSyncWait bounds how long a started migration waits for the
	// primary's first sync from the source before saying it has not synced
	// (the migration goes on: CompleteMigration checks the sync again).
	migrationSyncWait = 5 * time.Minute
	// migrationCatchUpWait bounds how long CompleteMigration waits for the
	// primary to reach the source's replication offset.
	migrationCatchUpWait = 5 * time.Second
	// minMigrationSourceVersion is the oldest source AWS migrates from.
	minMigrationSourceVersion = "2.8.21"
)

// migration is a group's online migration (see state.Migration).
type migration struct {
	source            engine.Endpoint
	completing, force bool
}

func (m *migration) record() *state.Migration {
	if m == nil {
		return nil
	}
	return &state.Migration{Address: m.source.Host, Port: m.source.Port, Completing: m.completing, Force: m.force}
}

func migrationFromRecord(rec *state.Migration) *migration {
	if rec == nil {
		return nil
	}
	return &migration{source: engine.Endpoint{Host: rec.Address, Port: rec.Port}, completing: rec.Completing, force: rec.Force}
}

// migrationRequest validates the members StartMigration and TestMigration
// share: the group id and the one source endpoint.
func migrationRequest(groupID *string, list []types.CustomerNodeEndpoint) (string, engine.Endpoint, error) {
	id, err := lookupID("ReplicationGroupId", groupID)
	if err != nil {
		return "", engine.Endpoint{}, err
	}
	source, err := migrationSource(list)
	return id, source, err
}

// migrationTarget returns group id if it can take data from source; the
// caller holds r.mu.
func (r *region) migrationTarget(id string, source engine.Endpoint) (*replicationGroup, error) {
	g, ok := r.groups[id]
	if !ok {
		return nil, replicationGroupNotFound(id)
	}
	return g, r.migratable(g, source)
}

// migrationSource returns the one endpoint of a CustomerNodeEndpointList.
func migrationSource(list []types.CustomerNodeEndpoint) (engine.Endpoint, error) {
	if len(list) != 1 {
		return engine.Endpoint{}, invalidParameterValue("CustomerNodeEndpointList must contain exactly one endpoint for a replication group with cluster mode disabled.")
	}
	addr := strings.TrimSpace(aws.ToString(list[0].Address))
	if addr == "" || len(addr) > 255 || strings.ContainsAny(addr, " /\\@") {
		return engine.Endpoint{}, invalidParameterValue("Invalid address %q in CustomerNodeEndpointList.", aws.ToString(list[0].Address))
	}
	port := int32(6379)
	if list[0].Port != nil {
		port = *list[0].Port
	}
	if port < 1 || port > 65535 {
		return engine.Endpoint{}, invalidParameterValue("Invalid port %d in CustomerNodeEndpointList.", port)
	}
	return engine.Endpoint{Host: addr, Port: int(port)}, nil
}

// migratable checks that g can take data from source the way AWS lists
// the target's requirements; the caller holds r.mu.
func (r *region) migratable(g *replicationGroup, source engine.Endpoint) error {
	switch {
	case g.migration != nil:
		return &types.ReplicationGroupAlreadyUnderMigrationFault{Message: aws.String("Replication group " + g.id + " is already under migration.")}
	case g.status != statusAvailable:
		return invalidGroupState("Replication group %s is not in available state (it is %s).", g.id, g.status)
	case g.clusterMode:
		return notImplemented("online migration into a cluster-mode-enabled replication group")
	case g.engine.Engine == "redis" && !versionAtLeast(g.engine.Actual, "5.0.6"):
		return invalidParameterCombination("Online migration requires Redis OSS engine version 5.0.6 or later; replication group %s runs %s.", g.id, g.engine.Actual)
	case g.sec.transit:
		return invalidParameterCombination("Online migration is not supported for replication group %s: in-transit encryption is enabled.", g.id)
	case len(g.sec.authHashes) > 0 || len(g.userGroupIDs) > 0:
		return invalidParameterCombination("Online migration is not supported for replication group %s: AUTH or user groups are enabled.", g.id)
	case !g.multiAZ:
		return invalidParameterCombination("Online migration requires Multi-AZ to be enabled on replication group %s.", g.id)
	}
	for _, cl := range r.clusters {
		for _, n := range cl.nodes {
			if n.endpoint == source {
				return notFromElastiCache(source, "cache cluster "+cl.id)
			}
		}
	}
	for _, other := range r.groups {
		for _, ng := range other.nodeGroups {
			if a, ok := ng.addresses(); ok && (a.primary == source || a.reader == source) {
				return notFromElastiCache(source, "replication group "+other.id)
			}
		}
		if other.cfg != nil {
			if a, ok := other.cfg.address(); ok && a == source {
				return notFromElastiCache(source, "replication group "+other.id)
			}
		}
	}
	return nil
}

// notFromElastiCache refuses a migration source that is an endpoint of the
// emulator's own: AWS migrates from self-managed servers only.
func notFromElastiCache(source engine.Endpoint, owner string) error {
	return invalidParameterValue("%s is an endpoint of %s: online migration is from a self-managed server, not between ElastiCache clusters.", source.Addr(), owner)
}

// StartMigration makes the group's primary a replica of the source.
func (e *Emulator) StartMigration(ctx context.Context, in *elasticache.StartMigrationInput) (*elasticache.StartMigrationOutput, error) {
	id, source, err := migrationRequest(in.ReplicationGroupId, in.CustomerNodeEndpointList)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.migrationTarget(id, source)
	if err != nil {
		return nil, err
	}
	g.status, g.migration = statusMigrating, &migration{source: source}
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Migration started for replication group %s: primary node %s replicates from %s", g.id, g.nodeGroups[0].primary, source.Addr())
	e.runOperation(r, opMigration, g.id, map[string]string{"source": source.Addr()}, func(ctx context.Context) { e.runMigration(ctx, r, g) })
	return &elasticache.StartMigrationOutput{ReplicationGroup: ptr(g.describe(r))}, nil
}

// TestMigration tests, in the background, whether the group could migrate
// from the source: the answer is an event.
func (e *Emulator) TestMigration(ctx context.Context, in *elasticache.TestMigrationInput) (*elasticache.TestMigrationOutput, error) {
	id, source, err := migrationRequest(in.ReplicationGroupId, in.CustomerNodeEndpointList)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.migrationTarget(id, source)
	if err != nil {
		return nil, err
	}
	e.runOperation(r, opTestMigration, g.id, map[string]string{"source": source.Addr()}, func(ctx context.Context) {
		why := e.testMigrationSource(ctx, source)
		r.mu.Lock()
		defer e.unlock(r)
		if why != "" {
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Test Migration failed for %s: %s", g.id, why)
			return
		}
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Test Migration successful for %s: %s can be replicated from", g.id, source.Addr())
	})
	return &elasticache.TestMigrationOutput{ReplicationGroup: ptr(g.describe(r))}, nil
}

// testMigrationSource says why the source cannot be migrated from, or "".
func (e *Emulator) testMigrationSource(ctx context.Context, source engine.Endpoint) string {
	info, err := e.admin.InspectSource(ctx, source)
	switch {
	case err != nil && strings.Contains(err.Error(), "NOAUTH"):
		return fmt.Sprintf("%s requires a password (AUTH): a source must not have AUTH enabled", source.Addr())
	case err != nil:
		return fmt.Sprintf("cannot connect to %s: %v", source.Addr(), err)
	case !versionAtLeast(info.Version, minMigrationSourceVersion):
		return fmt.Sprintf("%s runs %s %s: the source must run %s or later", source.Addr(), info.Server, info.Version, minMigrationSourceVersion)
	case info.Databases != 0 && info.Databases != 16:
		return fmt.Sprintf("%s has %d databases and the group's nodes 16: the number of logical databases must be the same", source.Addr(), info.Databases)
	}
	return ""
}

// CompleteMigration promotes the group's primary again, once it is in sync
// with the source (or at once with Force); the promotion runs in the
// background and reports with an event, as on AWS.
func (e *Emulator) CompleteMigration(ctx context.Context, in *elasticache.CompleteMigrationInput) (*elasticache.CompleteMigrationOutput, error) {
	id, err := lookupID("ReplicationGroupId", in.ReplicationGroupId)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, ok := r.groups[id]
	if !ok {
		return nil, replicationGroupNotFound(id)
	}
	switch {
	case g.migration == nil:
		return nil, &types.ReplicationGroupNotUnderMigrationFault{Message: aws.String("Replication group " + id + " is not under migration.")}
	case g.migration.completing:
		return nil, invalidGroupState("Replication group %s is already completing its migration.", id)
	}
	g.migration.completing, g.migration.force = true, aws.ToBool(in.Force)
	e.runOperation(r, opMigration, g.id, map[string]string{"complete": "true"}, func(ctx context.Context) { e.runMigration(ctx, r, g) })
	return &elasticache.CompleteMigrationOutput{ReplicationGroup: ptr(g.describe(r))}, nil
}

// migrationSourceOf is the endpoint a primary of g follows instead of
// serving as a primary: the source while a migration runs and is not
// completing, else nil. The caller holds r.mu.
func (g *replicationGroup) migrationSourceOf() *engine.Endpoint {
	if g == nil || g.migration == nil || g.migration.completing {
		return nil
	}
	s := g.migration.source
	return &s
}
