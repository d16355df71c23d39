package emulator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/s3store"
)

// Snapshot statuses and sources as the API spells them.
const (
	snapCreating  = "creating"
	snapAvailable = "available"
	snapCopying   = "copying"
	snapDeleting  = "deleting"
	snapFailed    = "failed"
	snapManual    = "manual"
	snapAutomated = "automated"
	statusSnap    = "snapshotting"
	restoreFailed = "restore-failed"
)

// snapshot is a backup: one RDB object per node group in the snapshot
// store, plus a snapshot.json record beside them so snapshots survive an
// emulator restart, like they survive on AWS.
type snapshot struct {
	Name         string          `json:"name"`
	Status       string          `json:"status"`
	Source       string          `json:"source"`
	GroupID      string          `json:"replicationGroupId,omitempty"`
	GroupDesc    string          `json:"replicationGroupDescription,omitempty"`
	ClusterID    string          `json:"cacheClusterId,omitempty"`
	Engine       engineVersion   `json:"engine"`
	NodeType     string          `json:"cacheNodeType"`
	ParamGroup   string          `json:"cacheParameterGroupName"`
	SubnetGroup  string          `json:"cacheSubnetGroupName"`
	Port         int32           `json:"port"`
	AutoFailover bool            `json:"automaticFailover"`
	NumNodes     int             `json:"numCacheClusters"`
	Encrypted    bool            `json:"encrypted"`
	KmsKeyID     string          `json:"kmsKeyId,omitempty"`
	Settings     snapshotWindow  `json:"settings"`
	Created      time.Time       `json:"created"`
	SourceCreate time.Time       `json:"sourceCreated"`
	Nodes        []snapshotShard `json:"nodeSnapshots"`

	// ClusterMode marks a snapshot of a cluster-mode-enabled group: one
	// RDB per node group, each shard's layout in its snapshotShard.
	ClusterMode bool `json:"clusterMode,omitempty"`
	// dir is the one key segment under which the snapshot's objects live
	// (snapshotDir of the name, or where a record of an older version was
	// found), and recordKey the key of its record; neither is part of the
	// record.
	dir, recordKey string
	// Tags are kept in the record only: r.tags holds the live ones.
	Tags []types.Tag `json:"tags,omitempty"`
	// recordMu serializes the writes of the record (see snapshot_records.go);
	// persisted is the status the stored record has, guarded by recordMu.
	recordMu  *sync.Mutex
	persisted string
}

// snapshotWindow is the part of the source's settings a snapshot records.
type snapshotWindow struct {
	Maintenance string `json:"maintenanceWindow"`
	Window      string `json:"snapshotWindow"`
	Retention   int32  `json:"snapshotRetentionLimit"`
}

// snapshotShard is the RDB of one node group.
type snapshotShard struct {
	ClusterID   string    `json:"cacheClusterId"`
	NodeGroupID string    `json:"nodeGroupId"`
	NodeID      string    `json:"cacheNodeId"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created"`
	Key         string    `json:"key"`
	// The node group's layout when the snapshot was taken (cluster mode):
	// what NodeGroupConfiguration shows and a restore defaults to.
	Slots        string   `json:"slots,omitempty"`
	ReplicaCount int      `json:"replicaCount,omitempty"`
	PrimaryAZ    string   `json:"primaryAvailabilityZone,omitempty"`
	ReplicaAZs   []string `json:"replicaAvailabilityZones,omitempty"`
}

// rdbStore is the store for a snapshot's RDB objects: encrypted at rest
// when the snapshot is.
func (e *Emulator) rdbStore(encrypted bool) s3store.Store {
	if encrypted && e.opts.SnapshotKeys != nil {
		return s3store.NewEncrypted(e.opts.Snapshots, e.opts.SnapshotKeys)
	}
	return e.opts.Snapshots
}

// describe renders a snapshot; the caller holds r.mu.
func (s *snapshot) describe(r *region, showConfig bool) types.Snapshot {
	out := types.Snapshot{
		ARN:                        aws.String(r.arn("snapshot", s.Name)),
		SnapshotName:               aws.String(s.Name),
		SnapshotStatus:             aws.String(s.Status),
		SnapshotSource:             aws.String(s.Source),
		Engine:                     aws.String(s.Engine.Engine),
		EngineVersion:              aws.String(s.Engine.Actual),
		CacheNodeType:              aws.String(s.NodeType),
		CacheParameterGroupName:    aws.String(s.ParamGroup),
		CacheSubnetGroupName:       aws.String(s.SubnetGroup),
		Port:                       aws.Int32(s.Port),
		AutomaticFailover:          enabledStatus(s.AutoFailover, types.AutomaticFailoverStatusEnabled, types.AutomaticFailoverStatusDisabled),
		NumNodeGroups:              aws.Int32(int32(max(1, len(s.Nodes)))),
		PreferredMaintenanceWindow: aws.String(s.Settings.Maintenance),
		SnapshotWindow:             aws.String(s.Settings.Window),
		SnapshotRetentionLimit:     aws.Int32(s.Settings.Retention),
		CacheClusterCreateTime:     aws.Time(s.SourceCreate),
		AutoMinorVersionUpgrade:    aws.Bool(true),
		DataTiering:                dataTieringStatus(s.NodeType),
		VpcId:                      aws.String("vpc-0e1a5c0c0c0c0c0c0"),
		NodeSnapshots:              []types.NodeSnapshot{},
	}
	if s.GroupID != "" {
		out.ReplicationGroupId = aws.String(s.GroupID)
		out.ReplicationGroupDescription = aws.String(s.GroupDesc)
	} else {
		out.CacheClusterId = aws.String(s.ClusterID)
		out.NumCacheNodes = aws.Int32(1)
	}
	if s.KmsKeyID != "" {
		out.KmsKeyId = aws.String(s.KmsKeyID)
	}
	for _, n := range s.Nodes {
		ns := types.NodeSnapshot{
			CacheClusterId:      aws.String(n.ClusterID),
			NodeGroupId:         aws.String(n.NodeGroupID),
			CacheNodeId:         aws.String(n.NodeID),
			CacheNodeCreateTime: aws.Time(s.SourceCreate),
			CacheSize:           aws.String(fmt.Sprintf("%d MB", (n.Size+(1<<20)-1)>>20)),
		}
		if !n.Created.IsZero() {
			ns.SnapshotCreateTime = aws.Time(n.Created)
		}
		if showConfig {
			ns.NodeGroupConfiguration = s.nodeGroupConfiguration(n)
		}
		out.NodeSnapshots = append(out.NodeSnapshots, ns)
	}
	return out
}

// snapshotSourceOf validates a CreateSnapshot / final snapshot source and
// returns the new snapshot record and the clusters whose nodes to back up,
// one per node group in the order of s.Nodes; the caller holds r.mu. A
// group must be available: AWS refuses a snapshot while the group is being
// modified (a resharding among others) or is snapshotting already.
func (e *Emulator) snapshotSourceOf(r *region, name, groupID, clusterID string, preferReplica bool) (*snapshot, []*cacheCluster, error) {
	now := e.opts.Now().UTC()
	s := &snapshot{Name: name, Status: snapCreating, Source: snapManual, Created: now}
	var cl *cacheCluster
	switch {
	case groupID != "":
		g, err := r.group(groupID)
		if err != nil {
			return nil, nil, err
		}
		if g.clusterMode {
			srcs := r.clusterSnapshotSource(s, g, preferReplica)
			if err := r.placeSnapshot(s, snapshotDir(name)); err != nil {
				return nil, nil, err
			}
			return s, srcs, nil
		}
		ng := g.nodeGroups[0]
		cl = r.clusters[ng.primary]
		if preferReplica {
			// AWS backs up from the member named by SnapshottingClusterId,
			// else from a replica when there is one, to spare the primary.
			if chosen := r.clusters[g.snapshotSource(r)]; chosen != nil && chosen.nodes[0].healthy() {
				cl = chosen
			} else if reps := ng.healthyReplicas(r); len(reps) > 0 {
				cl = reps[len(reps)-1]
			}
		}
		s.GroupID, s.GroupDesc = g.id, g.description
		s.Engine, s.NodeType, s.ParamGroup, s.Port, s.AutoFailover = g.engine, g.nodeType, g.paramGroup, g.port, g.autoFailover
		s.NumNodes = len(ng.members)
		s.Encrypted, s.KmsKeyID = g.settings.atRestEncryption, g.kmsKeyID
		s.Settings = snapshotWindow{g.settings.maintenanceWindow, g.settings.snapshotWindow, g.settings.snapshotRetention}
		s.SourceCreate = g.created
		s.SubnetGroup = r.clusters[ng.primary].subnetGroup
		s.Nodes = []snapshotShard{{ClusterID: cl.id, NodeGroupID: ng.id, NodeID: cl.nodes[0].id}}
	default:
		var err error
		if cl, err = r.cluster(clusterID); err != nil {
			return nil, nil, err
		}
		s.ClusterID = cl.id
		s.Engine, s.NodeType, s.ParamGroup, s.Port, s.SubnetGroup = cl.engine, cl.nodeType, cl.paramGroup, cl.port, cl.subnetGroup
		s.NumNodes = 1
		s.Encrypted = cl.settings.atRestEncryption
		s.Settings = snapshotWindow{cl.settings.maintenanceWindow, cl.settings.snapshotWindow, cl.settings.snapshotRetention}
		s.SourceCreate = cl.created
		s.Nodes = []snapshotShard{{ClusterID: cl.id, NodeGroupID: nodeID(1), NodeID: cl.nodes[0].id}}
	}
	if err := r.placeSnapshot(s, snapshotDir(name)); err != nil {
		return nil, nil, err
	}
	return s, []*cacheCluster{cl}, nil
}

// checkSnapshotName validates a new snapshot name; the caller holds r.mu.
func (e *Emulator) checkSnapshotName(r *region, param string, name *string) (string, error) {
	if e.opts.Snapshots == nil {
		return "", notImplemented("snapshots without a snapshot store")
	}
	n := aws.ToString(name)
	if n == "" {
		return "", mustNotBeBlank(param)
	}
	if err := checkSnapshotNameRules(param, n); err != nil {
		return "", err
	}
	// The name never reaches a key as such: snapshotDir maps it to one safe
	// segment. What remains to refuse is a request scope (account, region)
	// that cannot be a key segment.
	if _, err := r.snapshotKey(snapshotDir(n), snapshotRecordFile); err != nil {
		return "", invalidParameterValue("Snapshots cannot be stored for account %q in region %q.", r.account, r.region)
	}
	if _, ok := r.snapshots[n]; ok {
		return "", snapshotAlreadyExists(n)
	}
	return n, nil
}

// CreateSnapshot backs up a replication group (from a replica when there is
// one; a cluster-mode group shard by shard, one RDB each) or a cluster:
// BGSAVE on the node, then its RDB streamed to the store.
// The snapshot's record is stored as "creating" before the answer, so a
// crash from then on leaves a truthful record (LoadSnapshots settles it).
func (e *Emulator) CreateSnapshot(ctx context.Context, in *elasticache.CreateSnapshotInput) (*elasticache.CreateSnapshotOutput, error) {
	gid, cid := strings.ToLower(aws.ToString(in.ReplicationGroupId)), strings.ToLower(aws.ToString(in.CacheClusterId))
	if (gid == "") == (cid == "") {
		return nil, invalidParameterCombination("Exactly one of ReplicationGroupId and CacheClusterId must be specified.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	if cl := r.clusters[cid]; cl != nil && cl.mc != nil {
		e.unlock(r)
		return nil, snapshotFeatureNotSupportedForEngine()
	}
	s, srcs, err := e.newSnapshot(r, in, gid, cid)
	if err != nil {
		e.unlock(r)
		return nil, err
	}
	r.snapshots[s.Name] = s
	if len(in.Tags) > 0 {
		r.tags[r.arn("snapshot", s.Name)] = mergeTags(nil, in.Tags)
	}
	e.markSnapshotting(r, s, true)
	out := &elasticache.CreateSnapshotOutput{Snapshot: ptr(s.describe(r, false))}
	job := r.snapshotJob(s, srcs)
	e.unlock(r)

	if err := e.storeRecord(ctx, r, s, snapCreating, nil); err != nil {
		r.mu.Lock()
		defer e.unlock(r)
		if r.snapshots[s.Name] == s {
			delete(r.snapshots, s.Name)
			delete(r.tags, r.arn("snapshot", s.Name))
		}
		e.markSnapshotting(r, s, false)
		return nil, fmt.Errorf("storing the record of snapshot %s: %w", s.Name, err)
	}
	job.recorded = true
	e.runOperation(r, opSnapshot, job.s.Name, nil, func(ctx context.Context) { e.takeSnapshot(ctx, r, job) })
	return out, nil
}

// newSnapshot validates a CreateSnapshot request for the group gid or the
// cluster cid and returns the snapshot and the clusters to back up; the
// caller holds r.mu.
func (e *Emulator) newSnapshot(r *region, in *elasticache.CreateSnapshotInput, gid, cid string) (*snapshot, []*cacheCluster, error) {
	name, err := e.checkSnapshotName(r, "SnapshotName", in.SnapshotName)
	if err != nil {
		return nil, nil, err
	}
	s, srcs, err := e.snapshotSourceOf(r, name, gid, cid, true)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(s.NodeType, "cache.t1.") {
		return nil, nil, snapshotFeatureNotSupported(s.NodeType)
	}
	if k := aws.ToString(in.KmsKeyId); k != "" {
		s.Encrypted, s.KmsKeyID = true, k
	}
	return s, srcs, nil
}

// snapshotJob is one backup to run in the background.
type snapshotJob struct {
	s *snapshot
	// shards are the nodes to back up, one per entry of s.Nodes.
	shards []shardBackup
	// recorded: the "creating" record is already in the store.
	recorded bool
}

// shardBackup is the node one node group's RDB is taken from.
type shardBackup struct {
	node *cacheNode
	// primary is set when node is a replica: the backup waits until the
	// replica has everything the primary acknowledged before the request.
	primary *engine.Endpoint
}

// snapshotJob builds the job backing up srcs (one cluster per node group)
// for s; the caller holds r.mu.
func (r *region) snapshotJob(s *snapshot, srcs []*cacheCluster) snapshotJob {
	job := snapshotJob{s: s}
	for _, cl := range srcs {
		job.shards = append(job.shards, shardBackup{node: cl.nodes[0], primary: r.replicaSource(cl)})
	}
	return job
}

// markSnapshotting flips the source (the group and every cluster backed
// up) to/from "snapshotting"; it stays usable. The caller holds r.mu.
func (e *Emulator) markSnapshotting(r *region, s *snapshot, on bool) {
	from, to := statusAvailable, statusSnap
	if !on {
		from, to = statusSnap, statusAvailable
	}
	if g := r.groups[s.GroupID]; g != nil && g.status == from {
		g.status = to
	}
	for _, n := range s.Nodes {
		if cl := r.clusters[n.ClusterID]; cl != nil && cl.status == from {
			cl.status = to
		}
	}
}

// takeSnapshot runs BGSAVE on the node of every node group, all at once,
// and streams each RDB to the store. The record says "creating" before any
// data is written and "available" only once all of it is; the snapshot is
// listed available after that.
func (e *Emulator) takeSnapshot(ctx context.Context, r *region, job snapshotJob) {
	s := job.s
	sizes := make([]int64, len(job.shards))
	created := make([]time.Time, len(job.shards))
	var err error
	if !job.recorded {
		err = e.storeRecord(ctx, r, s, snapCreating, nil)
	}
	if err == nil {
		err = e.backupShards(ctx, job, sizes, created)
	}
	fill := func(rec *snapshot) {
		for i := range rec.Nodes {
			rec.Nodes[i].Size, rec.Nodes[i].Created = sizes[i], created[i]
		}
	}
	err = e.recordOutcome(ctx, r, s, err, fill)
	r.mu.Lock()
	defer e.unlock(r)
	e.markSnapshotting(r, s, false)
	srcType, src, kind := s.eventSource()
	if err != nil {
		s.Status = snapFailed
		e.log.Error("snapshot failed", "snapshot", s.Name, "err", err)
		e.record(r, srcType, src, "Snapshot failed for snapshot with ID '%s' of %s with ID '%s': %v", s.Name, kind, src, err)
		return
	}
	fill(s)
	s.Status = snapAvailable
	e.record(r, srcType, src, "Snapshot succeeded for snapshot with ID '%s' of %s with ID '%s'", s.Name, kind, src)
}

// saveRDB makes the node write a fresh RDB and streams it to key.
func (e *Emulator) saveRDB(ctx context.Context, n *cacheNode, key string, s *snapshot) (int64, error) {
	fr, ok := e.opts.Runtime.(engine.FileReader)
	if !ok {
		return 0, fmt.Errorf("the %s runtime cannot read node files", e.opts.Runtime.Name())
	}
	start := time.Now()
	if err := e.admin.BGSave(ctx, n.endpoint); err != nil {
		return 0, err
	}
	saved := time.Now()
	rc, err := fr.CopyFrom(ctx, n.name, "dump.rdb")
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// The key segment, not the name: metadata travels as HTTP headers
	// (printable ASCII), which a name need not be.
	meta := map[string]string{"snapshot": s.dir}
	if s.Encrypted {
		meta[s3store.MetaKMSKeyID] = s.KmsKeyID
	}
	progress := &progressReader{r: rc, report: func(stored int64) {
		e.log.Info("snapshot in progress", "snapshot", s.Name, "node", n.name, "bytesStored", stored, "for", time.Since(saved).Round(time.Second))
	}}
	info, err := e.rdbStore(s.Encrypted).Put(ctx, key, progress, -1, meta)
	e.log.Debug("snapshot stored", "snapshot", s.Name, "bytes", info.Size, "bgsave", saved.Sub(start), "store", time.Since(saved), "err", err)
	return info.Size, err
}

// DescribeSnapshots lists snapshots, filtered by source, name and kind.
func (e *Emulator) DescribeSnapshots(ctx context.Context, in *elasticache.DescribeSnapshotsInput) (*elasticache.DescribeSnapshotsOutput, error) {
	max := 50
	if in.MaxRecords != nil {
		if *in.MaxRecords < 20 || *in.MaxRecords > 50 {
			return nil, invalidParameterValue("The parameter MaxRecords must be between 20 and 50.")
		}
		max = int(*in.MaxRecords)
	}
	source := aws.ToString(in.SnapshotSource)
	if source != "" && source != "system" && source != "user" {
		return nil, invalidParameterValue("The parameter SnapshotSource must be system or user.")
	}
	r := e.rlockRegion(ctx)
	defer r.mu.RUnlock() // read only: nothing to persist
	name := aws.ToString(in.SnapshotName)
	if name != "" {
		if _, ok := r.snapshots[name]; !ok {
			return nil, snapshotNotFound(name)
		}
	}
	gid, cid := strings.ToLower(aws.ToString(in.ReplicationGroupId)), strings.ToLower(aws.ToString(in.CacheClusterId))
	if gid != "" {
		if _, ok := r.groups[gid]; !ok && !r.hasSnapshotOf(gid, "") {
			return nil, replicationGroupNotFound(gid)
		}
	}
	if cid != "" {
		if _, ok := r.clusters[cid]; !ok && !r.hasSnapshotOf("", cid) {
			return nil, cacheClusterNotFound(cid)
		}
	}
	var keys []string
	for n, s := range r.snapshots {
		switch {
		case name != "" && n != name,
			gid != "" && s.GroupID != gid,
			cid != "" && s.ClusterID != cid && !s.hasNode(cid),
			source == "system" && s.Source != snapAutomated,
			source == "user" && s.Source != snapManual:
			continue
		}
		keys = append(keys, n)
	}
	sort.Strings(keys)
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeSnapshotsOutput{Snapshots: []types.Snapshot{}, Marker: next}
	for _, n := range sel {
		out.Snapshots = append(out.Snapshots, r.snapshots[n].describe(r, aws.ToBool(in.ShowNodeGroupConfig)))
	}
	return out, nil
}

func (s *snapshot) hasNode(clusterID string) bool {
	for _, n := range s.Nodes {
		if n.ClusterID == clusterID {
			return true
		}
	}
	return false
}

func (r *region) hasSnapshotOf(groupID, clusterID string) bool {
	for _, s := range r.snapshots {
		if groupID != "" && s.GroupID == groupID || clusterID != "" && (s.ClusterID == clusterID || s.hasNode(clusterID)) {
			return true
		}
	}
	return false
}

// DeleteSnapshot deletes a snapshot and its objects (removeSnapshot).
func (e *Emulator) DeleteSnapshot(ctx context.Context, in *elasticache.DeleteSnapshotInput) (*elasticache.DeleteSnapshotOutput, error) {
	name := aws.ToString(in.SnapshotName)
	if name == "" {
		return nil, mustNotBeBlank("SnapshotName")
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	s, ok := r.snapshots[name]
	if !ok {
		return nil, snapshotNotFound(name)
	}
	if s.Status != snapAvailable && s.Status != snapFailed {
		return nil, invalidSnapshotState("Snapshot %s is not in available state (it is %s).", name, s.Status)
	}
	previous := s.Status
	s.Status = snapDeleting
	out := &elasticache.DeleteSnapshotOutput{Snapshot: ptr(s.describe(r, false))}
	e.runOperation(r, opDeleteSnapshot, s.Name, nil, func(ctx context.Context) { e.removeSnapshot(ctx, r, s, previous) })
	return out, nil
}
