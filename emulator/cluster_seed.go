package emulator

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/s3store"
)

// Restoring a cluster-mode group from snapshots: resolveClusterSeeds checks
// SnapshotName / SnapshotArns of a create, loadClusterSeeds puts their keys
// into the formed cluster.
//
// The seed RDBs need not match the new group's layout (a snapshot of
// another shard count, a cluster-mode-disabled backup, RDB files of one's
// own), so no RDB is handed to a cluster node as is: each is loaded by a
// temporary standalone node, which MIGRATEs every key to the primary
// serving its slot (engine.Admin.LoadKeysInto), and is then stopped. The
// replicas get the keys by replication. A temporary node is no member of
// any record, so one left by a crash is reaped at the next start.

const (
	// seedParallelism bounds how many seed RDBs are loaded at once (one
	// temporary node each).
	seedParallelism = 4
	// seedBatch is the number of keys per MIGRATE of a seed load.
	seedBatch = 1000
)

// resolveClusterSeeds validates SnapshotName / SnapshotArns of a
// cluster-mode create and returns the RDBs to load (nil when neither is
// given) and the snapshot, if any, whose settings are defaults. A snapshot
// of a cluster-mode group restored without NumNodeGroups or
// NodeGroupConfiguration gives the new group its layout: its node groups,
// their slots and replica counts (ReplicasPerNodeGroup still applies), as
// a restore of it on AWS does; *shards is replaced then, within the node
// quotas. The caller holds r.mu.
func (e *Emulator) resolveClusterSeeds(r *region, in *elasticache.CreateReplicationGroupInput, shards *[]shardPlan) ([]rdbSeed, *snapshot, error) {
	name, arns := aws.ToString(in.SnapshotName), in.SnapshotArns
	switch {
	case name != "" && len(arns) > 0:
		return nil, nil, invalidParameterCombination("Specify either SnapshotName or SnapshotArns, not both.")
	case name != "":
		s, ok := r.snapshots[name]
		if !ok {
			return nil, nil, snapshotNotFound(name)
		}
		if s.Status != snapAvailable {
			return nil, nil, invalidSnapshotState("Snapshot %s is not in available state (it is %s).", name, s.Status)
		}
		if s.ClusterMode && in.NumNodeGroups == nil && len(in.NodeGroupConfiguration) == 0 {
			layout := s.layout(in.ReplicasPerNodeGroup)
			if err := e.checkLayoutQuota(r, layout); err != nil {
				return nil, nil, err
			}
			*shards = layout
		}
		store := e.rdbStore(s.Encrypted)
		seeds := make([]rdbSeed, len(s.Nodes))
		for i, n := range s.Nodes {
			seeds[i] = func(ctx context.Context) (io.ReadCloser, error) {
				rc, _, err := store.Get(ctx, n.Key)
				return rc, err
			}
		}
		return seeds, s, nil
	case len(arns) > 0:
		if e.opts.Buckets == nil {
			return nil, nil, invalidParameterValue("SnapshotArns needs an S3 endpoint: start elasticache-local with --s3-endpoint.")
		}
		seeds := make([]rdbSeed, len(arns))
		for i, arn := range arns {
			bucket, key, err := s3store.ParseS3ARN(arn)
			if err != nil {
				return nil, nil, invalidParameterValue("Invalid SnapshotArns value %s: %v", arn, err)
			}
			seeds[i] = func(ctx context.Context) (io.ReadCloser, error) {
				st, err := e.opts.Buckets(bucket)
				if err != nil {
					return nil, err
				}
				rc, _, err := st.Get(ctx, key)
				return rc, err
			}
		}
		return seeds, nil, nil
	}
	return nil, nil, nil
}

// layout is the shard plan a restore of a cluster-mode snapshot takes by
// default: the snapshot's node groups with their slots, and their replica
// counts unless replicasPerNodeGroup is given.
func (s *snapshot) layout(replicasPerNodeGroup *int32) []shardPlan {
	out := make([]shardPlan, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		slots, err := engine.ParseSlotRanges(n.Slots)
		if err != nil || len(slots) == 0 {
			// A record without a layout (it cannot be written so): spread.
			return nil
		}
		sp := shardPlan{id: n.NodeGroupID, slots: slots, replicas: n.ReplicaCount}
		if replicasPerNodeGroup != nil {
			sp.replicas = int(*replicasPerNodeGroup)
		}
		out = append(out, sp)
	}
	return out
}

// checkLayoutQuota refuses a default layout past the node quotas (the
// request's own layout was checked by planShards); nil layout is refused
// as unreadable. The caller holds r.mu.
func (e *Emulator) checkLayoutQuota(r *region, layout []shardPlan) error {
	if len(layout) == 0 {
		return invalidParameterValue("The snapshot does not record its node groups' slots: give NumNodeGroups or NodeGroupConfiguration.")
	}
	total := 0
	for _, sp := range layout {
		if sp.replicas < 0 || sp.replicas > maxNodesPerShard-1 {
			return invalidParameterValue("The parameter ReplicasPerNodeGroup must be between 0 and %d.", maxNodesPerShard-1)
		}
		total += sp.replicas + 1
	}
	if total > e.opts.ClusterNodeQuota {
		return &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf(
			"The request would create %d nodes in one replication group; the quota is %d nodes per cluster.", total, e.opts.ClusterNodeQuota))}
	}
	return e.checkNodeQuota(r, total)
}

// loadClusterSeeds loads the seed RDBs into the formed cluster of g, a few
// at a time, each through a temporary node; the first failure is returned
// once the loads under way end. No lock is held.
func (e *Emulator) loadClusterSeeds(ctx context.Context, r *region, g *replicationGroup, seeds []rdbSeed) error {
	owners, err := e.slotOwners(ctx, r, g)
	if err != nil {
		return err
	}
	began := time.Now()
	e.log.Info("loading snapshot data into the cluster", "group", g.id, "rdbs", len(seeds), "shards", len(g.nodeGroups))
	r.mu.Lock()
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Restoring replication group %s from %d RDB file(s)", g.id, len(seeds))
	e.unlock(r)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, seedParallelism)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for i, seed := range seeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			n, err := e.loadSeed(ctx, r, g, i+1, seed, owners)
			if err != nil {
				cancel(fmt.Errorf("RDB %d of %d: %w", i+1, len(seeds), err))
				return
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("loading the snapshot data: %w", err)
	}
	took := time.Since(began)
	e.log.Info("snapshot data loaded into the cluster", "group", g.id, "keys", total, "took", took,
		"keysPerSecond", int(float64(total)/max(took.Seconds(), 1e-3)))
	r.mu.Lock()
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Restored %d keys into replication group %s", total, g.id)
	e.unlock(r)
	return nil
}

// slotOwners maps every slot of g to where its node group's primary is
// reached from another node (engine.ClusterAddrOf): where a temporary
// node MIGRATEs the slot's keys. No lock is held.
func (e *Emulator) slotOwners(ctx context.Context, r *region, g *replicationGroup) ([]engine.Endpoint, error) {
	type primary struct {
		name  string
		ep    engine.Endpoint
		slots []engine.SlotRange
	}
	var ps []primary
	r.mu.Lock()
	for _, ng := range g.nodeGroups {
		if cl := r.clusters[ng.primary]; cl != nil {
			ps = append(ps, primary{cl.nodes[0].name, cl.nodes[0].endpoint, append([]engine.SlotRange(nil), ng.slots...)})
		}
	}
	r.mu.Unlock()
	owners := make([]engine.Endpoint, engine.ClusterSlots)
	for _, p := range ps {
		peer, err := engine.ClusterAddrOf(ctx, e.opts.Runtime, p.name, p.ep)
		if err != nil {
			return nil, err
		}
		for _, rg := range p.slots {
			for s := rg.Start; s <= rg.End; s++ {
				owners[s] = peer
			}
		}
	}
	return owners, nil
}

// loadSeed starts a temporary standalone node from one seed RDB, copies
// its keys to their slots' primaries and stops it. The node is named
// <group>--seed-<n>, which no cache cluster can be named (ids have no
// double hyphen).
func (e *Emulator) loadSeed(ctx context.Context, r *region, g *replicationGroup, n int, seed rdbSeed, owners []engine.Endpoint) (int, error) {
	ep, err := e.opts.Addresses.Allocate(int(g.port))
	if err != nil {
		return 0, fmt.Errorf("no address for a temporary node: %w", err)
	}
	id := g.id + "--seed-" + strconv.Itoa(n)
	r.mu.Lock()
	l := nodeLaunch{
		spec: engine.NodeSpec{
			Name: nodeName(r.scope, id, nodeID(1)), Labels: nodeLabels(r.scope, g.id, id, nodeID(1)),
			Engine: g.engine.Engine, EngineVersion: g.engine.Actual, Endpoint: ep,
		},
		seed: seed,
	}
	if g.sec.transit {
		// The seed node MIGRATEs its keys to TLS nodes: it talks TLS too.
		l.tlsHosts = []string{ep.Host}
	}
	r.mu.Unlock()
	defer func() {
		// Also when the operation is cut off: the node is no member of
		// anything to bring back.
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := e.opts.Runtime.Stop(stopCtx, l.spec.Name); err != nil && !isNotFound(err) {
			e.log.Warn("stopping a temporary seed node", "node", l.spec.Name, "err", err)
			return // its address stays taken while the node may hold it
		}
		e.opts.Addresses.Release(ep)
	}()
	began := time.Now()
	if err := e.startNode(ctx, l); err != nil {
		return 0, fmt.Errorf("starting a node from it: %w", err)
	}
	loaded := time.Now()
	keys, err := e.admin.LoadKeysInto(ctx, ep, func(slot int) (engine.Endpoint, error) {
		if owners[slot] == (engine.Endpoint{}) {
			return engine.Endpoint{}, fmt.Errorf("no node group serves slot %d", slot)
		}
		return owners[slot], nil
	}, seedBatch)
	e.log.Debug("seed RDB copied into the cluster", "group", g.id, "node", l.spec.Name, "keys", keys,
		"start", loaded.Sub(began), "copy", time.Since(loaded), "err", err)
	return keys, err
}
