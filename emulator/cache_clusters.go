package emulator

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// maxClusterIDLen is the longest cache cluster id AWS accepts.
const maxClusterIDLen = 50

// cacheCluster is a cache cluster: a standalone single-node cluster, or a
// member (primary or replica) of a replication group.
type cacheCluster struct {
	id          string
	groupID     string // "" when standalone
	status      string
	created     time.Time
	engine      engineVersion
	nodeType    string
	paramGroup  string
	subnetGroup string
	securityIDs []string
	port        int32
	az          string
	nodes       []*cacheNode
	settings    clusterSettings
	// sec is a standalone cluster's TLS and AUTH token; a member's is
	// its group's (region.securityOf).
	sec security
	// pending and rolling are a standalone cluster's node changes, as a
	// group's (rolling.go); a member's are its group's.
	pending, rolling *nodeChange
	// mc is set for a Memcached cluster (memcached.go).
	mc *memcachedCluster
	// pendingReboot: a requires-reboot parameter of its group changed since
	// its nodes started (ParameterApplyStatus pending-reboot).
	pendingReboot bool
}

// clusterSettings are the metadata-only settings shared by clusters and
// replication groups.
type clusterSettings struct {
	maintenanceWindow  string
	snapshotWindow     string
	snapshotRetention  int32
	autoMinorUpgrade   bool
	atRestEncryption   bool
	notificationTopic  string
	notificationStatus string
}

// defaultMaintenanceWindow is what AWS assigns when none is requested.
const defaultMaintenanceWindow = "sun:05:00-sun:06:00"

// describe renders the cluster as the API returns it; the caller holds r.mu.
func (cl *cacheCluster) describe(r *region, showNodes bool) types.CacheCluster {
	out := types.CacheCluster{
		ARN:                                aws.String(r.arn("cluster", cl.id)),
		CacheClusterId:                     aws.String(cl.id),
		CacheClusterStatus:                 aws.String(cl.status),
		CacheClusterCreateTime:             aws.Time(cl.created),
		CacheNodeType:                      aws.String(cl.nodeType),
		Engine:                             aws.String(cl.engine.Engine),
		EngineVersion:                      aws.String(cl.engine.Actual),
		NumCacheNodes:                      aws.Int32(int32(len(cl.nodes))),
		PreferredAvailabilityZone:          aws.String(cl.az),
		PreferredMaintenanceWindow:         aws.String(cl.settings.maintenanceWindow),
		CacheSubnetGroupName:               aws.String(cl.subnetGroup),
		CacheSecurityGroups:                []types.CacheSecurityGroupMembership{},
		SecurityGroups:                     []types.SecurityGroupMembership{},
		AutoMinorVersionUpgrade:            aws.Bool(cl.settings.autoMinorUpgrade),
		SnapshotRetentionLimit:             aws.Int32(cl.settings.snapshotRetention),
		SnapshotWindow:                     aws.String(cl.settings.snapshotWindow),
		AtRestEncryptionEnabled:            aws.Bool(cl.settings.atRestEncryption),
		ReplicationGroupLogDeliveryEnabled: aws.Bool(false),
		LogDeliveryConfigurations:          []types.LogDeliveryConfiguration{},
		NetworkType:                        types.NetworkTypeIpv4,
		IpDiscovery:                        types.IpDiscoveryIpv4,
		ClientDownloadLandingPage:          aws.String("https://console.aws.amazon.com/elasticache/home#client-download:"),
		PendingModifiedValues:              &types.PendingModifiedValues{},
		CacheParameterGroup: &types.CacheParameterGroupStatus{
			CacheParameterGroupName: aws.String(cl.paramGroup),
			ParameterApplyStatus:    aws.String(cl.parameterStatus()),
			CacheNodeIdsToReboot:    cl.nodesToReboot(),
		},
	}
	r.securityOf(cl).describeCluster(&out)
	r.describePending(cl, out.PendingModifiedValues)
	if cl.mc != nil {
		cl.mc.describe(cl, &out)
	}
	if cl.groupID != "" {
		out.ReplicationGroupId = aws.String(cl.groupID)
	}
	if cl.settings.notificationTopic != "" {
		out.NotificationConfiguration = &types.NotificationConfiguration{
			TopicArn: aws.String(cl.settings.notificationTopic), TopicStatus: aws.String(cl.settings.notificationStatus)}
	}
	for _, id := range cl.securityIDs {
		out.SecurityGroups = append(out.SecurityGroups, types.SecurityGroupMembership{SecurityGroupId: aws.String(id), Status: aws.String("active")})
	}
	if showNodes {
		out.CacheNodes = []types.CacheNode{}
		for _, n := range cl.nodes {
			out.CacheNodes = append(out.CacheNodes, types.CacheNode{
				CacheNodeId:              aws.String(n.id),
				CacheNodeStatus:          aws.String(n.status),
				CacheNodeCreateTime:      aws.Time(n.created),
				CustomerAvailabilityZone: aws.String(n.az),
				ParameterGroupStatus:     aws.String(cl.parameterStatus()),
				Endpoint:                 apiEndpoint(n.endpoint),
			})
		}
	}
	return out
}

func apiEndpoint(ep engine.Endpoint) *types.Endpoint {
	return &types.Endpoint{Address: aws.String(ep.Host), Port: aws.Int32(int32(ep.Port))}
}

// newCluster builds a cluster with one node whose endpoint is allocated from
// the pool; the caller holds r.mu and inserts it into r.
func (e *Emulator) newCluster(r *region, id, groupID string, ev engineVersion, port int32, az string) (*cacheCluster, error) {
	ep, err := e.opts.Addresses.Allocate(int(port))
	if err != nil {
		return nil, insufficientCapacityNoAddress("port "+itoa(int(port)), err)
	}
	now := e.opts.Now().UTC()
	cl := &cacheCluster{
		id: id, groupID: groupID, status: statusCreating, created: now,
		engine: ev, port: port, az: az,
		nodes: []*cacheNode{{id: nodeID(1), name: nodeName(r.scope, id, nodeID(1)), endpoint: ep, status: statusCreating, created: now, az: az}},
	}
	return cl, nil
}

// CreateCacheCluster creates a standalone single-node Redis OSS/Valkey
// cluster, or adds a replica cluster to a replication group.
func (e *Emulator) CreateCacheCluster(ctx context.Context, in *elasticache.CreateCacheClusterInput) (*elasticache.CreateCacheClusterOutput, error) {
	id, err := normalizeID("CacheClusterId", in.CacheClusterId, maxClusterIDLen)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(aws.ToString(in.Engine), engine.EngineMemcached) {
		return e.createMemcachedCluster(ctx, id, in)
	}
	if in.AZMode != "" && in.AZMode != azSingle {
		return nil, invalidParameterValue("AZMode is only supported for Memcached clusters.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if in.NumCacheNodes != nil && *in.NumCacheNodes != 1 {
		return nil, invalidParameterValue("Cannot create a Redis OSS or Valkey cluster with a NumCacheNodes parameter other than 1.")
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if _, ok := r.clusters[id]; ok {
		return nil, cacheClusterAlreadyExists(id)
	}
	if err := e.checkNodeQuota(r, 1); err != nil {
		return nil, err
	}
	if gid := aws.ToString(in.ReplicationGroupId); gid != "" {
		if in.AuthToken != nil || in.TransitEncryptionEnabled != nil {
			return nil, invalidParameterCombination("A cluster added to a replication group takes the group's TransitEncryptionEnabled and AuthToken; they are not allowed.")
		}
		if len(in.SnapshotArns) > 0 || aws.ToString(in.SnapshotName) != "" {
			return nil, invalidParameterCombination("A replica added to a replication group syncs from its primary; SnapshotName and SnapshotArns are not allowed.")
		}
		return e.addReplicaCluster(r, id, strings.ToLower(gid), in)
	}
	seed, snap, err := e.resolveSeed(r, in.SnapshotName, in.SnapshotArns)
	if err != nil {
		return nil, err
	}
	engineName, engineVer, nodeType := snap.restoreDefaults(in.Engine, in.EngineVersion, aws.ToString(in.CacheNodeType))
	if nodeType == "" {
		return nil, missingNodeType()
	}
	ev, err := resolveEngine(engineName, engineVer)
	if err != nil {
		return nil, err
	}
	if nt, err := checkNodeType(nodeType, ev); err != nil {
		return nil, err
	} else if nt.dataTiering() {
		return nil, invalidParameterCombination("The %s node type uses data tiering, which is only supported for replication groups.", nodeType)
	}
	pg, err := r.resolveParamGroup(in.CacheParameterGroupName, ev)
	if err != nil {
		return nil, err
	}
	sg, err := r.resolveSubnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	port, err := checkPort(in.Port)
	if err != nil {
		return nil, err
	}
	sec, err := newSecurity(in.TransitEncryptionEnabled, "", in.AuthToken, e.opts.Now().UTC())
	if err != nil {
		return nil, err
	}
	settings, err := newSettings(in.PreferredMaintenanceWindow, in.SnapshotWindow, in.SnapshotRetentionLimit, in.AutoMinorVersionUpgrade, in.NotificationTopicArn)
	if err != nil {
		return nil, err
	}
	az, err := preferredAZ(in.PreferredAvailabilityZone, in.PreferredAvailabilityZones)
	if err != nil {
		return nil, err
	}
	if az == "" {
		az = availabilityZones(r.region)[0]
	}
	cl, err := e.newCluster(r, id, "", ev, port, az)
	if err != nil {
		return nil, err
	}
	cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.sec = nodeType, pg, sg, sec
	cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
	cl.settings = settings
	r.clusters[id] = cl
	if len(in.Tags) > 0 {
		r.tags[r.arn("cluster", id)] = mergeTags(nil, in.Tags)
	}
	launch := e.launchFor(r, cl, cl.nodes[0], nil)
	launch.seed = seed
	e.runOperation(r, opCreateCluster, id, nil, func(ctx context.Context) { e.provisionCluster(ctx, r, cl, launch) })
	return &elasticache.CreateCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}, nil
}

// provisionCluster starts a standalone cluster's node in the background.
func (e *Emulator) provisionCluster(ctx context.Context, r *region, cl *cacheCluster, launch nodeLaunch) {
	err := e.startNode(ctx, launch)
	if stopping(ctx) {
		return // the next start finishes the create (restore.go)
	}
	if err != nil {
		e.log.Error("cache cluster create failed", "cluster", cl.id, "err", err)
	}
	e.markNode(r, launch, err)
}

// DescribeCacheClusters lists clusters (or one), sorted by id.
func (e *Emulator) DescribeCacheClusters(ctx context.Context, in *elasticache.DescribeCacheClustersInput) (*elasticache.DescribeCacheClustersOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	r := e.rlockRegion(ctx)
	defer r.mu.RUnlock() // read only: nothing to persist
	standaloneOnly := aws.ToBool(in.ShowCacheClustersNotInReplicationGroups)
	keys, err := describeKeys(r.clusters, strings.ToLower(aws.ToString(in.CacheClusterId)), cacheClusterNotFound,
		func(cl *cacheCluster) bool { return !standaloneOnly || cl.groupID == "" })
	if err != nil {
		return nil, err
	}
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeCacheClustersOutput{CacheClusters: []types.CacheCluster{}, Marker: next}
	for _, id := range sel {
		out.CacheClusters = append(out.CacheClusters, r.clusters[id].describe(r, aws.ToBool(in.ShowCacheNodeInfo)))
	}
	return out, nil
}

// ModifyCacheCluster changes a cluster's settings. They apply at once (a new
// parameter group's values through CONFIG SET, the rest is metadata); the
// cluster still passes through "modifying" like on AWS. A new node type or
// engine version replaces the node (rolling.go), at once with
// ApplyImmediately, else in the maintenance window.
func (e *Emulator) ModifyCacheCluster(ctx context.Context, in *elasticache.ModifyCacheClusterInput) (*elasticache.ModifyCacheClusterOutput, error) {
	id, err := lookupID("CacheClusterId", in.CacheClusterId)
	if err != nil {
		return nil, err
	}
	ask := nodeChangeAsk{nodeType: in.CacheNodeType, engine: in.Engine, version: in.EngineVersion,
		paramGroup: in.CacheParameterGroupName, used: -1}
	if aws.ToString(in.CacheNodeType) != "" {
		ask.used = e.usedMemory(ctx, "", id) // read before the lock: no network under it
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	cl, err := r.cluster(id)
	if err != nil {
		return nil, err
	}
	if cl.mc != nil {
		return e.modifyMemcachedCluster(r, cl, in)
	}
	if (in.AZMode != "" && in.AZMode != azSingle) || len(in.NewAvailabilityZones) > 0 {
		return nil, invalidParameterValue("AZMode and NewAvailabilityZones are only supported for Memcached clusters.")
	}
	var change *nodeChange
	if asksNodeChange(in.CacheNodeType, in.Engine, in.EngineVersion) {
		if change, err = r.planNodeChange(cl, ask); err != nil {
			return nil, err
		}
	}
	if change != nil && cl.groupID != "" {
		return nil, invalidParameterCombination("Cache cluster %s is a member of replication group %s: change its node type or engine version with ModifyReplicationGroup.", id, cl.groupID)
	}
	if in.NumCacheNodes != nil && *in.NumCacheNodes != 1 {
		return nil, invalidParameterValue("Redis OSS and Valkey clusters have exactly one cache node; NumCacheNodes must be 1.")
	}
	if len(in.CacheNodeIdsToRemove) > 0 {
		return nil, invalidParameterValue("CacheNodeIdsToRemove is only valid for Memcached clusters.")
	}
	pg := cl.paramGroup
	if aws.ToString(in.CacheParameterGroupName) != "" && (change == nil || change.engine == nil) {
		if pg, err = r.resolveParamGroup(in.CacheParameterGroupName, cl.engine); err != nil {
			return nil, err
		}
	}
	settings, err := cl.settings.modify(in.PreferredMaintenanceWindow, in.SnapshotWindow, in.SnapshotRetentionLimit, in.AutoMinorVersionUpgrade, in.NotificationTopicArn, in.NotificationTopicStatus)
	if err != nil {
		return nil, err
	}
	sec, authChanged, err := e.clusterSecurityModify(cl, securityMembers{token: in.AuthToken,
		strategy: in.AuthTokenUpdateStrategy})
	if err != nil {
		return nil, err
	}
	if authChanged && change != nil {
		return nil, invalidParameterCombination("CacheNodeType or EngineVersion cannot be modified in one request with AuthToken.")
	}
	if pg != cl.paramGroup {
		e.configSet(r, pg, []*cacheCluster{cl})
	}
	cl.paramGroup, cl.settings, cl.sec = pg, settings, sec
	if in.SecurityGroupIds != nil {
		cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
	}
	cl.status = statusModifying
	if run := takeNodeChange(&cl.pending, change, aws.ToBool(in.ApplyImmediately)); run != nil {
		e.startClusterChange(r, cl, run)
		return &elasticache.ModifyCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}, nil
	}
	out := &elasticache.ModifyCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
	if authChanged {
		e.rotateClusterAuth(r, cl)
		return out, nil
	}
	e.settle(r, &cl.status, types.SourceTypeCacheCluster, cl.id, "Cache cluster %s modified", cl.id)
	return out, nil
}

// DeleteCacheCluster deletes a standalone cluster or a replica of a group.
func (e *Emulator) DeleteCacheCluster(ctx context.Context, in *elasticache.DeleteCacheClusterInput) (*elasticache.DeleteCacheClusterOutput, error) {
	id, err := lookupID("CacheClusterId", in.CacheClusterId)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	cl, err := r.cluster(id, statusAvailable, statusCreateFailed, restoreFailed)
	if err != nil {
		return nil, err
	}
	if cl.mc != nil {
		return e.deleteMemcachedCluster(r, cl, in)
	}
	var g *replicationGroup
	if cl.groupID != "" {
		if g, err = r.group(cl.groupID); err != nil {
			return nil, err
		}
		ng := g.nodeGroups[0]
		if ng.primary == id {
			return nil, invalidClusterState("Cannot delete cache cluster %s: it is the primary of replication group %s.", id, g.id)
		}
		if g.autoFailover && len(ng.members) <= 2 {
			return nil, invalidGroupState("Cannot delete cache cluster %s: replication group %s has automatic failover enabled and needs at least one replica.", id, g.id)
		}
		if aws.ToString(in.FinalSnapshotIdentifier) != "" {
			return nil, invalidParameterCombination("A final snapshot of a replication group member is not supported; snapshot the replication group.")
		}
	}
	// Validation ends with registering the final snapshot, if any.
	final, err := e.finalSnapshot(r, in.FinalSnapshotIdentifier, "", id)
	if err != nil {
		return nil, err
	}
	if g != nil {
		g.status = statusModifying
	}
	cl.status = statusDeleting
	for _, n := range cl.nodes {
		n.status = statusDeleting
	}
	if g != nil {
		g.nodeGroupOf(id).syncEndpoints(r)
	}
	out := &elasticache.DeleteCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
	nodes := append([]*cacheNode{}, cl.nodes...)
	e.runOperation(r, opDeleteCluster, id, nil, func(ctx context.Context) {
		if final != nil {
			e.takeSnapshot(ctx, r, *final)
		}
		for _, n := range nodes {
			if err := e.stopNode(ctx, n); err != nil {
				e.log.Error("stopping node", "node", n.name, "err", err)
			}
		}
		r.mu.Lock()
		defer e.unlock(r)
		delete(r.clusters, id)
		delete(r.tags, r.arn("cluster", id))
		if g != nil {
			ng := g.nodeGroupOf(id)
			ng.removeMember(id)
			ng.syncEndpoints(r)
			g.status = statusAvailable
			e.record(r, types.SourceTypeReplicationGroup, g.id, "Removed cache cluster %s from replication group %s", id, g.id)
		}
		e.record(r, types.SourceTypeCacheCluster, id, "Cache cluster deleted")
		if g == nil {
			e.deleteAutomatedSnapshots(r, id)
		}
	})
	return out, nil
}

// RebootCacheCluster restarts the cluster's node processes for real. A
// replica resyncs from its primary; a primary comes back empty (there is no
// persistence), as on AWS.
func (e *Emulator) RebootCacheCluster(ctx context.Context, in *elasticache.RebootCacheClusterInput) (*elasticache.RebootCacheClusterOutput, error) {
	id, err := lookupID("CacheClusterId", in.CacheClusterId)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	cl, err := r.cluster(id)
	if err != nil {
		return nil, err
	}
	if cl.mc != nil {
		return e.rebootMemcached(r, cl, in.CacheNodeIdsToReboot)
	}
	if g := r.groups[cl.groupID]; g != nil && g.clusterMode {
		return nil, invalidParameterCombination("RebootCacheCluster is not supported for a member of a Redis OSS or Valkey (cluster mode enabled) replication group; use TestFailover to rehearse a failure.")
	}
	if len(in.CacheNodeIdsToReboot) == 0 {
		return nil, mustNotBeBlank("CacheNodeIdsToReboot")
	}
	var targets []*cacheNode
	for _, nid := range in.CacheNodeIdsToReboot {
		var found *cacheNode
		for _, n := range cl.nodes {
			if n.id == nid {
				found = n
			}
		}
		if found == nil {
			return nil, invalidParameterValue("Cache node %s does not exist in cache cluster %s.", nid, id)
		}
		targets = append(targets, found)
	}
	replicaOf := r.replicaSource(cl)
	var launches []nodeLaunch
	for _, n := range targets {
		n.status = nodeRebooting
		launches = append(launches, e.launchFor(r, cl, n, replicaOf))
	}
	cl.status = statusRebooting
	r.syncClusterEndpoints(cl)
	out := &elasticache.RebootCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}
	e.runOperation(r, opReboot, id, nil, func(ctx context.Context) {
		var failed error
		for i, l := range launches {
			if err := e.opts.Runtime.Stop(ctx, l.spec.Name); err != nil && !isNotFound(err) {
				failed = err
			} else if err := e.startNode(ctx, l); err != nil {
				failed = err
			}
			r.mu.Lock()
			if failed == nil {
				targets[i].status = statusAvailable
				r.syncClusterEndpoints(cl)
				e.record(r, types.SourceTypeCacheCluster, id, "Cache node %s restarted", targets[i].id)
			}
			e.unlock(r)
		}
		r.mu.Lock()
		defer e.unlock(r)
		if failed != nil {
			e.log.Error("reboot failed", "cluster", id, "err", failed)
			e.record(r, types.SourceTypeCacheCluster, id, "Failed to reboot cache cluster %s: %v", id, failed)
		}
		cl.status = statusAvailable
	})
	return out, nil
}

// syncClusterEndpoints refreshes the endpoints of cl's node group, if any;
// the caller holds r.mu.
func (r *region) syncClusterEndpoints(cl *cacheCluster) {
	if g := r.groups[cl.groupID]; g != nil {
		if ng := g.nodeGroupOf(cl.id); ng != nil {
			ng.syncEndpoints(r)
		}
	}
}

// replicaSource returns the endpoint cl must replicate from: its group's
// primary when cl is a replica, nil otherwise. The caller holds r.mu.
func (r *region) replicaSource(cl *cacheCluster) *engine.Endpoint {
	if cl.groupID == "" {
		return nil
	}
	g := r.groups[cl.groupID]
	ng := g.nodeGroupOf(cl.id)
	if ng == nil || ng.primary == cl.id {
		return nil
	}
	ep := r.clusters[ng.primary].nodes[0].endpoint
	return &ep
}

// preferredAZ is the availability zone a new single-node cluster asks for:
// PreferredAvailabilityZone, or the one entry of PreferredAvailabilityZones
// (a list, since Memcached clusters have many nodes); "" when neither is set.
func preferredAZ(one *string, list []string) (string, error) {
	switch {
	case len(list) > 1:
		return "", invalidParameterValue("PreferredAvailabilityZones must have exactly one entry for a Redis OSS or Valkey cluster, which has one node.")
	case len(list) == 1 && aws.ToString(one) != "" && list[0] != *one:
		return "", invalidParameterCombination("PreferredAvailabilityZone and PreferredAvailabilityZones disagree.")
	case len(list) == 1:
		return list[0], nil
	}
	return aws.ToString(one), nil
}

func checkPort(p *int32) (int32, error) {
	if p == nil {
		return 6379, nil
	}
	if *p < 1 || *p > 65535 {
		return 0, invalidParameterValue("The parameter Port must be between 1 and 65535.")
	}
	return *p, nil
}

func ptr[T any](v T) *T { return &v }
