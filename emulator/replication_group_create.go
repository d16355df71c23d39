package emulator

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Creating a replication group: validation, the new members, and the
// background start of their nodes until every endpoint answers.

// groupRequest is a validated CreateReplicationGroup request.
type groupRequest struct {
	id       string
	numNodes int
	ev       engineVersion
	azs      []string
}

// validateCreateGroup checks everything that needs no state.
func validateCreateGroup(in *elasticache.CreateReplicationGroupInput) (groupRequest, error) {
	var req groupRequest
	id, err := checkGroupIdentity(in)
	if err != nil {
		return req, err
	}
	req.id = id
	// Cluster mode enabled is created by createClusterGroup; AUTH, global
	// datastores and serverless snapshots are refused by the member audit
	// (input_rules.go) before this runs.
	if in.NumNodeGroups != nil && *in.NumNodeGroups < 1 {
		return req, invalidParameterValue("The parameter NumNodeGroups must be at least 1.")
	}
	if err := checkTags(in.Tags); err != nil {
		return req, err
	}
	replicas := in.ReplicasPerNodeGroup
	var shardAZs []string
	if len(in.NodeGroupConfiguration) == 1 {
		ngc := in.NodeGroupConfiguration[0]
		if err := checkNodeGroupConfiguration(ngc); err != nil {
			return req, err
		}
		if ngc.ReplicaCount != nil {
			if replicas != nil && *replicas != *ngc.ReplicaCount {
				return req, invalidParameterCombination("ReplicasPerNodeGroup and NodeGroupConfiguration.ReplicaCount disagree.")
			}
			replicas = ngc.ReplicaCount
		}
		if az := aws.ToString(ngc.PrimaryAvailabilityZone); az != "" || len(ngc.ReplicaAvailabilityZones) > 0 {
			shardAZs = append([]string{az}, ngc.ReplicaAvailabilityZones...)
		}
	}
	switch {
	case in.NumCacheClusters != nil && replicas != nil && *in.NumCacheClusters != *replicas+1:
		return req, invalidParameterCombination("NumCacheClusters (%d) and ReplicasPerNodeGroup (%d) disagree: a replication group with cluster mode disabled has 1 primary and ReplicasPerNodeGroup replicas.", *in.NumCacheClusters, *replicas)
	case in.NumCacheClusters != nil:
		if *in.NumCacheClusters < 1 || *in.NumCacheClusters > maxNodesPerShard {
			return req, invalidParameterValue("The parameter NumCacheClusters must be between 1 and %d.", maxNodesPerShard)
		}
		req.numNodes = int(*in.NumCacheClusters)
	case replicas != nil:
		if *replicas < 0 || *replicas > maxNodesPerShard-1 {
			return req, invalidParameterValue("The parameter ReplicasPerNodeGroup must be between 0 and %d.", maxNodesPerShard-1)
		}
		req.numNodes = int(*replicas) + 1
	default:
		req.numNodes = 1
	}
	if aws.ToBool(in.AutomaticFailoverEnabled) && req.numNodes < 2 {
		return req, invalidParameterCombination("When using automatic failover, there must be at least 2 cache clusters in the replication group.")
	}
	if aws.ToBool(in.MultiAZEnabled) && !aws.ToBool(in.AutomaticFailoverEnabled) {
		return req, invalidParameterCombination("Multi-AZ requires automatic failover to be enabled.")
	}
	if n := len(in.PreferredCacheClusterAZs); n > 0 && n != req.numNodes {
		return req, invalidParameterValue("The number of PreferredCacheClusterAZs (%d) must equal the number of cache clusters (%d).", n, req.numNodes)
	}
	req.azs = in.PreferredCacheClusterAZs
	if shardAZs != nil {
		if req.azs != nil {
			return req, invalidParameterCombination("PreferredCacheClusterAZs and NodeGroupConfiguration availability zones cannot both be specified.")
		}
		if shardAZs[0] == "" || len(shardAZs) != req.numNodes {
			return req, invalidParameterValue("NodeGroupConfiguration must give the primary's availability zone and one for each of the %d replicas.", req.numNodes-1)
		}
		req.azs = shardAZs
	}
	return req, nil
}

// checkGroupIdentity checks the id and description of a create, either
// mode, and returns the id as stored (lower case).
func checkGroupIdentity(in *elasticache.CreateReplicationGroupInput) (string, error) {
	id, err := normalizeID("ReplicationGroupId", in.ReplicationGroupId, maxGroupIDLen)
	if err != nil {
		return "", err
	}
	if aws.ToString(in.ReplicationGroupDescription) == "" {
		return "", mustNotBeBlank("ReplicationGroupDescription")
	}
	return id, checkLength("ReplicationGroupDescription", in.ReplicationGroupDescription, maxDescriptionLen)
}

// groupPortAndSettings checks the port and the settings of a create,
// either mode.
func groupPortAndSettings(in *elasticache.CreateReplicationGroupInput) (int32, clusterSettings, error) {
	port, err := checkPort(in.Port)
	if err != nil {
		return 0, clusterSettings{}, err
	}
	settings, err := newSettings(in.PreferredMaintenanceWindow, in.SnapshotWindow, in.SnapshotRetentionLimit, in.AutoMinorVersionUpgrade, in.NotificationTopicArn)
	if err != nil {
		return 0, clusterSettings{}, err
	}
	settings.atRestEncryption = aws.ToBool(in.AtRestEncryptionEnabled)
	return port, settings, nil
}

// checkNodeGroupConfiguration refuses the members of a node group
// configuration that only mean something with cluster mode or outposts.
func checkNodeGroupConfiguration(ngc types.NodeGroupConfiguration) error {
	switch {
	case aws.ToString(ngc.Slots) != "":
		return notImplemented("NodeGroupConfiguration.Slots (cluster mode enabled replication groups)")
	case aws.ToString(ngc.PrimaryOutpostArn) != "" || len(ngc.ReplicaOutpostArns) > 0:
		return notImplemented("NodeGroupConfiguration outposts")
	case aws.ToString(ngc.NodeGroupId) != "" && aws.ToString(ngc.NodeGroupId) != nodeID(1):
		return notImplemented("NodeGroupConfiguration.NodeGroupId other than " + nodeID(1))
	}
	return nil
}

// CreateReplicationGroup creates a cluster-mode-disabled group: a primary and
// up to five replicas, each a real node. It answers "creating" at once; the
// group becomes "available" when every node answers and every replica's link
// to the primary is up.
func (e *Emulator) CreateReplicationGroup(ctx context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
	if clusterModeRequested(in) {
		return e.createClusterGroup(ctx, in)
	}
	req, err := validateCreateGroup(in)
	if err != nil {
		return nil, err
	}
	port, settings, err := groupPortAndSettings(in)
	if err != nil {
		return nil, err
	}
	sec, err := newSecurity(in.TransitEncryptionEnabled, in.TransitEncryptionMode, in.AuthToken, e.opts.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := checkPreferredPort(sec.layout(), port); err != nil {
		return nil, err
	}

	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if _, ok := r.groups[req.id]; ok {
		return nil, replicationGroupAlreadyExists(req.id)
	}
	newNodes := req.numNodes
	if aws.ToString(in.PrimaryClusterId) != "" {
		newNodes-- // the adopted primary exists already
	}
	if err := e.checkNodeQuota(r, newNodes); err != nil {
		return nil, err
	}
	seed, snap, err := e.resolveSeed(r, in.SnapshotName, in.SnapshotArns)
	if err != nil {
		return nil, err
	}
	engineName, engineVer, nodeType := snap.restoreDefaults(in.Engine, in.EngineVersion, aws.ToString(in.CacheNodeType))
	if req.ev, err = resolveEngine(engineName, engineVer); err != nil {
		return nil, err
	}
	var adopted *cacheCluster
	if pid := strings.ToLower(aws.ToString(in.PrimaryClusterId)); pid != "" {
		if seed != nil {
			return nil, invalidParameterCombination("PrimaryClusterId cannot be combined with SnapshotName or SnapshotArns.")
		}
		if adopted, err = r.adoptablePrimary(pid); err != nil {
			return nil, err
		}
		if adopted.sec.transit != sec.transit || adopted.sec.authEnabled() || sec.authEnabled() {
			// The running primary keeps serving as it does: a group
			// around it cannot change its TLS or AUTH token.
			return nil, invalidParameterCombination("TransitEncryptionEnabled and AuthToken of a group created from PrimaryClusterId must match the primary cluster, which has none.")
		}
		// The group takes the adopted cluster's engine and settings.
		req.ev, port = adopted.engine, adopted.port
	} else if nodeType == "" {
		return nil, missingNodeType()
	} else if _, err := checkNodeType(nodeType, req.ev); err != nil {
		return nil, err
	} else if err := checkDataTiering(nodeType, aws.ToBool(in.DataTieringEnabled)); err != nil {
		return nil, err
	}
	pg, err := r.resolveParamGroup(in.CacheParameterGroupName, req.ev)
	if err != nil {
		return nil, err
	}
	userGroups, err := r.createUserGroups(in.UserGroupIds, req.ev, sec)
	if err != nil {
		return nil, err
	}
	sg, err := r.resolveSubnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	// Member ids: the adopted primary keeps its id; new members are
	// <group>-001, -002, ... skipping ids already taken.
	var ids []string
	if adopted != nil {
		ids = append(ids, adopted.id)
	}
	for n := 1; len(ids) < req.numNodes; n++ {
		id := memberID(req.id, n)
		if _, taken := r.clusters[id]; taken {
			if adopted != nil {
				continue
			}
			return nil, cacheClusterAlreadyExists(id)
		}
		ids = append(ids, id)
	}

	now := e.opts.Now().UTC()
	g := &replicationGroup{
		id: req.id, description: aws.ToString(in.ReplicationGroupDescription), status: statusCreating, created: now,
		engine: req.ev, nodeType: nodeType, paramGroup: pg, port: port,
		autoFailover: aws.ToBool(in.AutomaticFailoverEnabled), multiAZ: aws.ToBool(in.MultiAZEnabled),
		kmsKeyID: aws.ToString(in.KmsKeyId), settings: settings, sec: sec,
		nodeGroups: []*nodeGroup{{id: nodeID(1), primary: ids[0], members: ids}},
	}
	if adopted != nil {
		g.nodeType = adopted.nodeType
	}
	if err := e.allocateEndpoints(g, g.nodeGroups[0]); err != nil {
		return nil, err
	}
	var created []*cacheCluster
	for i, id := range ids {
		if i == 0 && adopted != nil {
			continue
		}
		az := availabilityZones(r.region)[i%3]
		if len(req.azs) > 0 {
			az = req.azs[i]
		}
		cl, err := e.newCluster(r, id, g.id, g.engine, port, az)
		if err != nil {
			for _, c := range created {
				e.opts.Addresses.Release(c.nodes[0].endpoint)
			}
			e.opts.Addresses.Release(g.nodeGroups[0].addrs.primary)
			e.opts.Addresses.Release(g.nodeGroups[0].addrs.reader)
			return nil, err
		}
		cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.settings = g.nodeType, pg, sg, settings
		cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
		created = append(created, cl)
	}
	// Validation is over: from here on the request changes state.
	if adopted != nil {
		adopted.groupID = g.id
		adopted.status = statusModifying
	}
	for _, cl := range created {
		r.clusters[cl.id] = cl
	}
	r.groups[g.id] = g
	r.setUserGroups(g, userGroups)
	if len(in.Tags) > 0 {
		r.tags[r.arn("replicationgroup", g.id)] = mergeTags(nil, in.Tags)
	}
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s is being created", g.id)

	primary := r.clusters[ids[0]]
	var primaryLaunch *nodeLaunch
	if adopted == nil {
		l := e.launchFor(r, primary, primary.nodes[0], nil)
		l.seed = seed
		primaryLaunch = &l
	}
	var replicaLaunches []nodeLaunch
	for _, cl := range created {
		if cl != primary {
			replicaLaunches = append(replicaLaunches, e.launchFor(r, cl, cl.nodes[0], &primary.nodes[0].endpoint))
		}
	}
	e.runOperation(r, opCreateGroup, g.id, nil, func(ctx context.Context) { e.provisionGroup(ctx, r, g, primaryLaunch, replicaLaunches) })
	return &elasticache.CreateReplicationGroupOutput{ReplicationGroup: ptr(g.describe(r))}, nil
}

// adoptablePrimary checks that cluster id can become the primary of a new
// group; the caller holds r.mu.
func (r *region) adoptablePrimary(id string) (*cacheCluster, error) {
	cl, err := r.cluster(id)
	if err != nil {
		return nil, err
	}
	if cl.groupID != "" {
		return nil, invalidParameterValue("Cache cluster %s is already a member of replication group %s.", id, cl.groupID)
	}
	if cl.mc != nil {
		return nil, invalidParameterCombination("Cache cluster %s runs memcached; replication groups need redis or valkey.", id)
	}
	return cl, nil
}

// provisionGroup starts the primary and every replica in parallel (a
// container start costs far more than a sync; a replica is pointed at the
// primary once it answers) and marks the group available once all replicas
// are in sync.
func (e *Emulator) provisionGroup(ctx context.Context, r *region, g *replicationGroup, primary *nodeLaunch, replicas []nodeLaunch) {
	started := time.Now()
	err := e.openEndpoints(r, g, false)
	if err == nil && primary != nil {
		err = e.startWithReplicas(ctx, r, *primary, replicas)
	} else if err == nil {
		err = e.startNodes(ctx, r, replicas)
	}
	if err == nil {
		// The endpoints take their nodes now, but a primary endpoint bound
		// on the node itself switches asynchronously: the group is
		// available only once every endpoint it lists answers, so a client
		// connecting right after the waiter returns is served.
		r.mu.Lock()
		for _, ng := range g.nodeGroups {
			ng.syncEndpoints(r)
		}
		listed := e.listedEndpoints(r, g)
		e.unlockProgress(r)
		err = e.waitServing(ctx, listed)
	}
	if stopping(ctx) {
		return // the next start finishes the create (restore.go)
	}
	r.mu.Lock()
	defer e.unlockProgress(r) // the operation's end writes it
	for _, id := range g.memberClusters() {
		if cl := r.clusters[id]; cl != nil && cl.status == statusModifying {
			cl.status = statusAvailable // the adopted primary
		}
	}
	if err != nil {
		g.status = statusCreateFailed
		e.log.Error("replication group create failed", "group", g.id, "err", err)
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to create replication group %s: %v", g.id, err)
		return
	}
	g.status = statusAvailable
	e.log.Info("replication group available", "group", g.id, "nodes", len(g.memberClusters()), "took", time.Since(started))
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s created", g.id)
}

// startWithReplicas starts primary and its replicas at once: each replica
// waits for the primary's start only to be told REPLICAOF (startNode). The
// primary's error comes first.
func (e *Emulator) startWithReplicas(ctx context.Context, r *region, primary nodeLaunch, replicas []nodeLaunch) error {
	var primaryErr error
	primaryDone := make(chan struct{})
	ready := func(ctx context.Context) error {
		select {
		case <-primaryDone:
			return primaryErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	replicas = slices.Clone(replicas)
	for i := range replicas {
		replicas[i].primaryReady = ready
	}
	if len(replicas) > 0 {
		defer e.boostFromStart(&primary)() // after the replicas' syncs
	}
	replicasDone := make(chan error, 1)
	go e.startReplicas(ctx, r, replicas, replicasDone)
	primaryErr = e.startNode(ctx, primary)
	close(primaryDone)
	e.markNode(r, primary, primaryErr)
	if err := <-replicasDone; primaryErr == nil {
		return err
	}
	return primaryErr
}

// startReplicas is startNodes reporting on done, for startWithReplicas.
func (e *Emulator) startReplicas(ctx context.Context, r *region, launches []nodeLaunch, done chan<- error) {
	done <- e.startNodes(ctx, r, launches)
}

// markNode records the outcome of starting one member's node: a node that
// could not load its snapshot is "restore-failed", as on AWS.
func (e *Emulator) markNode(r *region, l nodeLaunch, err error) {
	if stopping(e.ctx) {
		return // cut off by a shutdown, not failed: the next start finishes it
	}
	r.mu.Lock()
	defer e.unlockProgress(r) // the operation's end writes it
	cl := r.clusters[l.spec.Labels[engine.LabelCluster]]
	if cl == nil {
		return
	}
	if err != nil && l.seed != nil {
		cl.status, cl.nodes[0].status = restoreFailed, restoreFailed
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Restore from snapshot failed for cache cluster %s: %v", cl.id, err)
		return
	}
	if err != nil {
		cl.status, cl.nodes[0].status = statusCreateFailed, statusCreateFailed
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to create cache cluster %s: %v", cl.id, err)
		return
	}
	cl.status, cl.nodes[0].status = statusAvailable, statusAvailable
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Added cache node %s in availability zone %s", cl.nodes[0].id, cl.az)
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster created")
}
