package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/schemas"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

const (
	maxGroupIDLen    = 40
	maxNodesPerShard = 6 // one primary and up to five replicas
)

// replicationGroup is a Redis OSS/Valkey replication group. Node groups are a
// list from the start so cluster mode (many shards) fits the same model.
type replicationGroup struct {
	id           string
	description  string
	status       string
	created      time.Time
	engine       engineVersion
	nodeType     string
	paramGroup   string
	port         int32
	autoFailover bool
	multiAZ      bool
	kmsKeyID     string
	userGroupIDs []string
	settings     clusterSettings
	nodeGroups   []*nodeGroup
	// snapshotting is the member chosen with SnapshottingClusterId; ""
	// lets snapshotSource pick.
	snapshotting string
	// clusterMode groups are Redis Clusters (cluster_mode.go): their node
	// groups own hash slots and cfg is their configuration endpoint.
	clusterMode bool
	cfg         *configEndpoint
	// resharding is the online resharding in progress (resharding.go).
	resharding *resharding
	// sec is the TLS and AUTH token of every member (security.go).
	sec security
	// pending waits for the maintenance window, rolling is under way: a
	// change of node type or engine version (rolling.go).
	pending, rolling *nodeChange
	// pendingSettings wait for the maintenance window too: automatic
	// failover, Multi-AZ, the primary (pending_settings.go).
	pendingSettings *pendingSettings
	// migration is the online migration into the group (migration.go).
	migration *migration
	// rendered is the group as Describe last answered it (describeCached).
	rendered atomic.Pointer[renderedGroup]
}

// renderedGroup is a group as DescribeReplicationGroups answers it, typed
// and encoded, while its region's lock stays at generation gen.
type renderedGroup struct {
	gen  uint64
	item types.ReplicationGroup
	xml  []byte // nil if it could not be encoded: the answer encodes item
}

// describeCached is describe, kept while the region does not change: the
// rendering made at the region lock's current generation, or a new one.
// Polling clients then cost a copy of the encoded bytes per group instead
// of a rendering and an encoding. The caller holds r.mu for reading (a
// writer could change the group after the rendering, at the same
// generation); item is shared with other answers and must not be changed.
func (g *replicationGroup) describeCached(r *region) *renderedGroup {
	gen := r.mu.generation()
	if c := g.rendered.Load(); c != nil && c.gen == gen {
		return c
	}
	c := &renderedGroup{gen: gen, item: g.describe(r)}
	if xml, err := queryapi.EncodeListItem(schemas.ReplicationGroupMessage_ReplicationGroups, &c.item); err == nil {
		c.xml = xml
	}
	g.rendered.Store(c)
	return c
}

// nodeGroup is a shard: one primary cluster and its replicas. Its primary
// and reader endpoints have addresses that never change, held by the
// current primary / one healthy replica at a time (bindEndpoint), or
// forwarders to them; the emulator switches them as AWS flips its DNS
// records.
type nodeGroup struct {
	id      string // "0001"
	primary string // cluster id of the current primary
	members []string
	// primaryEP and readerEP are nil until the group is created.
	primaryEP endpoint
	readerEP  endpoint
	// addrs are the endpoint addresses while the endpoints are not open:
	// reserved by a create until its operation opens them there, or
	// recorded by an earlier run until Restore reopens them.
	addrs *endpointAddresses
	// In a cluster-mode group: the hash slots the node group owns, and
	// the group's configuration endpoint (shared by its node groups), which
	// replaces the primary and reader endpoints.
	slots []engine.SlotRange
	cfg   *configEndpoint
}

func (g *replicationGroup) nodeGroupOf(clusterID string) *nodeGroup {
	for _, ng := range g.nodeGroups {
		if slices.Contains(ng.members, clusterID) {
			return ng
		}
	}
	return nil
}

func (ng *nodeGroup) removeMember(id string) {
	ng.members = slices.DeleteFunc(ng.members, func(m string) bool { return m == id })
}

// memberClusters lists every member cluster id, sorted as AWS lists them.
func (g *replicationGroup) memberClusters() []string {
	var out []string
	for _, ng := range g.nodeGroups {
		out = append(out, ng.members...)
	}
	sort.Strings(out)
	return out
}

func enabledStatus[T ~string](on bool, enabled, disabled T) T {
	if on {
		return enabled
	}
	return disabled
}

// describe renders the group as the API returns it; the caller holds r.mu.
func (g *replicationGroup) describe(r *region) types.ReplicationGroup {
	out := types.ReplicationGroup{
		ARN:                        aws.String(r.arn("replicationgroup", g.id)),
		ReplicationGroupId:         aws.String(g.id),
		Description:                aws.String(g.description),
		Status:                     aws.String(g.status),
		ReplicationGroupCreateTime: aws.Time(g.created),
		Engine:                     aws.String(g.engine.Engine),
		CacheNodeType:              aws.String(g.nodeType),
		MemberClusters:             g.memberClusters(),
		MemberClustersOutpostArns:  []string{},
		AutomaticFailover:          enabledStatus(g.autoFailover, types.AutomaticFailoverStatusEnabled, types.AutomaticFailoverStatusDisabled),
		MultiAZ:                    enabledStatus(g.multiAZ, types.MultiAZStatusEnabled, types.MultiAZStatusDisabled),
		ClusterEnabled:             aws.Bool(g.clusterMode),
		ClusterMode:                enabledStatus(g.clusterMode, types.ClusterModeEnabled, types.ClusterModeDisabled),
		AtRestEncryptionEnabled:    aws.Bool(g.settings.atRestEncryption),
		StorageEncryptionType:      g.storageEncryption(),
		AutoMinorVersionUpgrade:    aws.Bool(g.settings.autoMinorUpgrade),
		SnapshotRetentionLimit:     aws.Int32(g.settings.snapshotRetention),
		SnapshotWindow:             aws.String(g.settings.snapshotWindow),
		DataTiering:                dataTieringStatus(g.nodeType),
		NetworkType:                types.NetworkTypeIpv4,
		IpDiscovery:                types.IpDiscoveryIpv4,
		UserGroupIds:               append([]string{}, g.userGroupIDs...),
		LogDeliveryConfigurations:  []types.LogDeliveryConfiguration{},
		PendingModifiedValues:      &types.ReplicationGroupPendingModifiedValues{},
	}
	g.sec.describeGroup(&out, g.rolling)
	g.describePendingSettings(out.PendingModifiedValues)
	if g.kmsKeyID != "" {
		out.KmsKeyId = aws.String(g.kmsKeyID)
	}
	if g.settings.snapshotRetention > 0 && len(g.nodeGroups) > 0 {
		out.SnapshottingClusterId = aws.String(g.snapshotSource(r))
	}
	for _, ng := range g.nodeGroups {
		out.NodeGroups = append(out.NodeGroups, ng.describe(r, g))
	}
	if g.clusterMode {
		g.describeCluster(r, &out)
	}
	return out
}

// snapshotSource is the member AWS would back up from: the one chosen with
// SnapshottingClusterId while it is a member, else a replica if any.
func (g *replicationGroup) snapshotSource(r *region) string {
	ng := g.nodeGroups[0]
	if g.snapshotting != "" && slices.Contains(ng.members, g.snapshotting) {
		return g.snapshotting
	}
	for _, m := range ng.members {
		if m != ng.primary {
			return m
		}
	}
	return ng.primary
}

// describe renders a node group; the caller holds r.mu.
func (ng *nodeGroup) describe(r *region, g *replicationGroup) types.NodeGroup {
	out := types.NodeGroup{
		NodeGroupId:      aws.String(ng.id),
		Status:           aws.String(nodeGroupStatus(g.status)),
		NodeGroupMembers: []types.NodeGroupMember{},
	}
	if a, ok := ng.addresses(); ok {
		out.PrimaryEndpoint = apiEndpoint(a.primary)
		out.ReaderEndpoint = apiEndpoint(a.reader)
	}
	for _, id := range ng.members {
		cl := r.clusters[id]
		if cl == nil {
			continue
		}
		m := types.NodeGroupMember{
			CacheClusterId:            aws.String(id),
			CacheNodeId:               aws.String(cl.nodes[0].id),
			PreferredAvailabilityZone: aws.String(cl.az),
		}
		if g.clusterMode {
			// AWS lists a cluster-mode member without endpoint or role:
			// clients find both through the configuration endpoint.
			out.NodeGroupMembers = append(out.NodeGroupMembers, m)
			continue
		}
		m.ReadEndpoint = apiEndpoint(cl.nodes[0].endpoint)
		if cl.status != statusCreating {
			m.CurrentRole = aws.String(enabledStatus(id == ng.primary, "primary", "replica"))
		}
		out.NodeGroupMembers = append(out.NodeGroupMembers, m)
	}
	return out
}

// listedEndpoints are the addresses a Describe of g gives clients: each
// node group's primary and reader endpoints and every member's node. The
// caller holds r.mu.
func (g *replicationGroup) listedEndpoints(r *region) []engine.Endpoint {
	var eps []engine.Endpoint
	if g.cfg != nil && g.cfg.ep != nil {
		eps = append(eps, g.cfg.ep.Addr())
	}
	for _, ng := range g.nodeGroups {
		if ng.primaryEP != nil {
			eps = append(eps, ng.primaryEP.Addr(), ng.readerEP.Addr())
		}
		for _, id := range ng.members {
			if cl := r.clusters[id]; cl != nil {
				eps = append(eps, cl.nodes[0].endpoint)
			}
		}
	}
	return eps
}

// syncEndpoints points the node group's endpoints at its current members:
// the primary endpoint at the primary while it is healthy, the reader
// endpoint at the healthy replicas (the primary when there is none).
// Connections to a backend that drops out are closed, like a DNS flip.
// The caller holds r.mu.
func (ng *nodeGroup) syncEndpoints(r *region) {
	if ng.cfg != nil {
		ng.cfg.sync(r)
		return
	}
	if ng.primaryEP == nil {
		return
	}
	var primary, replicas []engine.Endpoint
	for _, id := range ng.members {
		cl := r.clusters[id]
		if cl == nil || !cl.nodes[0].healthy() {
			continue
		}
		if id == ng.primary {
			primary = append(primary, cl.nodes[0].endpoint)
		} else {
			replicas = append(replicas, cl.nodes[0].endpoint)
		}
	}
	if len(replicas) == 0 {
		replicas = primary
	}
	// The reader endpoint first: a bound one wishes its address off a
	// promoted replica before the primary endpoint binds that node, whose
	// CONFIG SET bind then takes it off too (nodeBinds).
	ng.readerEP.SetBackends(replicas)
	ng.primaryEP.SetBackends(primary)
}

// allocateEndpoints reserves the addresses of the node group's primary and
// reader endpoints, on the group's port; openEndpoints listens there later,
// without the lock. The caller holds r.mu.
func (e *Emulator) allocateEndpoints(g *replicationGroup, ng *nodeGroup) error {
	primary, err := e.opts.Addresses.Allocate(int(g.port))
	if err != nil {
		return insufficientCapacityNoAddress("the primary endpoint", err)
	}
	reader, err := e.opts.Addresses.Allocate(int(g.port))
	if err != nil {
		e.opts.Addresses.Release(primary)
		return insufficientCapacityNoAddress("the reader endpoint", err)
	}
	ng.addrs = &endpointAddresses{primary: primary, reader: reader}
	return nil
}

// openEndpoints opens the endpoints of g's node groups that are not open,
// at their reserved or recorded addresses; exact refuses to move one whose
// address turns out taken (a restore: clients know the address). No lock
// is held by the caller: the sockets are bound without it, then installed
// under it.
func (e *Emulator) openEndpoints(r *region, g *replicationGroup, exact bool) error {
	r.mu.Lock()
	type pending struct {
		ng *nodeGroup
		a  endpointAddresses
	}
	var todo []pending
	for _, ng := range g.nodeGroups {
		if ng.primaryEP == nil && ng.addrs != nil {
			todo = append(todo, pending{ng, *ng.addrs})
		}
	}
	r.mu.Unlock()
	for _, p := range todo {
		primary, reader, err := e.listenEndpoints(g.id+"/"+p.ng.id+"/", p.a, exact)
		if err != nil {
			return err
		}
		r.mu.Lock()
		p.ng.primaryEP, p.ng.readerEP, p.ng.addrs = primary, reader, nil
		p.ng.syncEndpoints(r)
		// The record holds the same addresses, reserved or open.
		e.unlockProgress(r)
	}
	return e.openConfigEndpoint(r, g, exact)
}

// listenEndpoints starts a node group's primary and reader endpoints at a:
// bound on the primary and on a replica themselves, or forwarders.
func (e *Emulator) listenEndpoints(name string, a endpointAddresses, exact bool) (endpoint, endpoint, error) {
	listen := func(addr engine.Endpoint, role string) (*proxy.Proxy, error) {
		if exact {
			return proxy.Listen(addr.Addr(), e.proxyOptions(name+role))
		}
		return e.listenProxy(addr, name+role)
	}
	if e.opts.BindEndpoints {
		primary := e.newBindEndpoint(a.primary, "primary", name+"primary", 0)
		return primary, e.newBindEndpoint(a.reader, "reader", name+"reader", e.opts.ReaderEndpointRotation), nil
	}
	primary, err := listen(a.primary, "primary")
	if err != nil {
		return nil, nil, fmt.Errorf("opening the primary endpoint %s at %s: %w", name, a.primary.Addr(), err)
	}
	reader, err := listen(a.reader, "reader")
	if err != nil {
		e.closeEndpoint(primary)
		return nil, nil, fmt.Errorf("opening the reader endpoint %s at %s: %w", name, a.reader.Addr(), err)
	}
	return primary, reader, nil
}

// listenProxy starts a forwarder on addr, a fresh reservation of the pool,
// and owns that reservation from then on. The pool probed addr free, but
// anything on the machine may bind it before the forwarder does; then the
// next free address is tried (with the taken one still reserved, so the
// pool moves past it), a few times at most.
func (e *Emulator) listenProxy(addr engine.Endpoint, name string) (*proxy.Proxy, error) {
	var taken []engine.Endpoint
	defer func() {
		for _, a := range taken {
			e.opts.Addresses.Release(a)
		}
	}()
	for attempt := 1; ; attempt++ {
		p, err := proxy.Listen(addr.Addr(), e.proxyOptions(name))
		if err == nil {
			return p, nil
		}
		taken = append(taken, addr)
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 3 {
			return nil, err
		}
		e.log.Warn("endpoint address taken after the pool found it free; trying the next one", "endpoint", name, "addr", addr.Addr(), "err", err)
		if addr, err = e.opts.Addresses.Allocate(addr.Port); err != nil {
			return nil, err
		}
	}
}

// closeEndpoint stops an endpoint and returns its address to the pool.
func (e *Emulator) closeEndpoint(p endpoint) {
	if p == nil {
		return
	}
	addr := p.Addr()
	if err := p.Close(); err != nil {
		e.log.Warn("closing endpoint", "endpoint", addr.Addr(), "err", err)
	}
	e.opts.Addresses.Release(addr)
}

func nodeGroupStatus(groupStatus string) string {
	switch groupStatus {
	case statusCreating, statusModifying, statusDeleting:
		return groupStatus
	}
	return statusAvailable
}

// DescribeReplicationGroups lists groups (or one), sorted by id.
func (e *Emulator) DescribeReplicationGroups(ctx context.Context, in *elasticache.DescribeReplicationGroupsInput) (*elasticache.DescribeReplicationGroupsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	r := e.rlockRegion(ctx)
	defer r.mu.RUnlock() // read only: nothing to persist
	keys := r.groupIDs()
	if id := strings.ToLower(aws.ToString(in.ReplicationGroupId)); id != "" {
		if keys, err = describeKeys(r.groups, id, replicationGroupNotFound, nil); err != nil {
			return nil, err
		}
	}
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeReplicationGroupsOutput{ReplicationGroups: []types.ReplicationGroup{}, Marker: next}
	kept := make([]*renderedGroup, len(sel))
	for i, id := range sel {
		kept[i] = r.groups[id].describeCached(r)
	}
	// Answering a request, the answer is the kept bytes, all taken under
	// the same read lock (one consistent view of the region), and the
	// typed items are left out; a Go caller gets the typed items.
	if queryapi.Answered(ctx) && !slices.ContainsFunc(kept, func(c *renderedGroup) bool { return c.xml == nil }) {
		encoded := make([][]byte, len(kept))
		for i, c := range kept {
			encoded[i] = c.xml
		}
		queryapi.UseEncodedList(&out.ResultMetadata, schemas.ReplicationGroupMessage_ReplicationGroups, encoded)
		return out, nil
	}
	for _, c := range kept {
		out.ReplicationGroups = append(out.ReplicationGroups, c.item)
	}
	return out, nil
}

// DeleteReplicationGroup deletes the group and its nodes; with
// RetainPrimaryCluster the primary lives on as a standalone cluster.
func (e *Emulator) DeleteReplicationGroup(ctx context.Context, in *elasticache.DeleteReplicationGroupInput) (*elasticache.DeleteReplicationGroupOutput, error) {
	id, err := lookupID("ReplicationGroupId", in.ReplicationGroupId)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	g, err := r.group(id, statusAvailable, statusCreateFailed)
	if err != nil {
		return nil, err
	}
	final, err := e.finalSnapshot(r, in.FinalSnapshotIdentifier, g.id, "")
	if err != nil {
		return nil, err
	}
	retain := aws.ToBool(in.RetainPrimaryCluster)
	if retain && (len(g.nodeGroups) != 1 || g.clusterMode) {
		return nil, invalidParameterCombination("RetainPrimaryCluster is only valid for a replication group with a single node group.")
	}
	g.status = statusDeleting
	var doomed []*cacheCluster
	for _, m := range g.memberClusters() {
		cl := r.clusters[m]
		if retain && m == g.nodeGroups[0].primary {
			continue
		}
		cl.status = statusDeleting
		for _, n := range cl.nodes {
			n.status = statusDeleting
		}
		doomed = append(doomed, cl)
	}
	retained := r.clusters[g.nodeGroups[0].primary].nodes[0].endpoint
	out := &elasticache.DeleteReplicationGroupOutput{ReplicationGroup: ptr(g.describe(r))}
	e.record(r, types.SourceTypeReplicationGroup, id, "Replication group %s is being deleted", id)
	e.runOperation(r, opDeleteGroup, id, nil, func(ctx context.Context) {
		if final != nil {
			e.takeSnapshot(ctx, r, *final)
		}
		var wg sync.WaitGroup
		for _, cl := range doomed {
			for _, n := range cl.nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := e.stopNode(ctx, n); err != nil {
						e.log.Error("stopping node", "node", n.name, "err", err)
					}
				}()
			}
		}
		wg.Wait()
		if retain {
			// The retained primary stands alone from now on.
			if err := e.admin.ReplicaOf(ctx, retained, nil); err != nil {
				e.log.Warn("detaching retained primary", "endpoint", retained.Addr(), "err", err)
			}
		}
		// Closing an endpoint may talk to a node (a retained primary gives
		// the address back), so it happens before taking the lock.
		for _, ng := range g.nodeGroups {
			e.closeEndpoint(ng.primaryEP)
			e.closeEndpoint(ng.readerEP)
		}
		if g.cfg != nil && g.cfg.ep != nil {
			// Waits for its connections to end; closeConfigEndpoint below
			// finds it closed and gives its address back.
			_ = g.cfg.ep.Close()
		}
		r.mu.Lock()
		e.closeConfigEndpoint(g)
		for _, ng := range g.nodeGroups {
			if a := ng.addrs; a != nil { // never opened (its create failed)
				e.opts.Addresses.Release(a.primary)
				e.opts.Addresses.Release(a.reader)
			}
		}
		defer e.unlock(r)
		for _, cl := range doomed {
			delete(r.clusters, cl.id)
			delete(r.tags, r.arn("cluster", cl.id))
			e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster deleted")
		}
		if retain {
			if p := r.clusters[g.nodeGroups[0].primary]; p != nil {
				p.groupID = ""
			}
		}
		delete(r.groups, id)
		delete(r.tags, r.arn("replicationgroup", id))
		e.deleteAutomatedSnapshots(r, id)
		e.record(r, types.SourceTypeReplicationGroup, id, "Replication group %s deleted", id)
	})
	return out, nil
}
