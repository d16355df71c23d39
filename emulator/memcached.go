package emulator

// Memcached clusters: 1–60 nodes without replication, each a real
// memcached on an address of its own, and a configuration endpoint
// (discovery.go) that answers Auto Discovery with the node list and a
// config version that grows with every node change.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// DefaultMemcachedNodeQuota is AWS's default quota of nodes per Memcached
// cluster.
const DefaultMemcachedNodeQuota = 60

// memcachedPort is the port Memcached nodes use unless Port says otherwise.
const memcachedPort = 11211

// memcachedTLSSince is the first Memcached version with TLS in transit.
const memcachedTLSSince = "1.6.12"

// AZ modes as the API spells them.
const (
	azSingle = "single-az"
	azCross  = "cross-az"
)

// memcachedCluster is what a Memcached cluster has beyond a cacheCluster.
type memcachedCluster struct {
	// cfgAddr is the configuration endpoint's address; cfg serves it once
	// opened.
	cfgAddr engine.Endpoint
	cfg     *discoveryServer
	// version is the Auto Discovery config version.
	version int
	azMode  string
	// pendingNodes and pendingRemove are a node count change requested
	// with ApplyImmediately false (PendingModifiedValues); 0/nil: none.
	pendingNodes  int
	pendingRemove []string
	// reboot are the nodes started before their parameter group changed
	// (CacheNodeIdsToReboot).
	reboot map[string]bool
}

// markReboot lists every node of nodes to reboot for new parameter values.
func (mc *memcachedCluster) markReboot(nodes []*cacheNode) {
	if mc.reboot == nil {
		mc.reboot = map[string]bool{}
	}
	for _, n := range nodes {
		mc.reboot[n.id] = true
	}
}

// rebootIDs lists the nodes waiting for a reboot, sorted.
func (mc *memcachedCluster) rebootIDs() []string {
	ids := []string{}
	for id := range mc.reboot {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// describe adds the Memcached parts to out: the configuration endpoint,
// the pending node changes, the parameter apply status; and drops what a
// Memcached cluster has not (snapshots, AUTH).
func (mc *memcachedCluster) describe(cl *cacheCluster, out *types.CacheCluster) {
	out.ConfigurationEndpoint = apiEndpoint(mc.cfgAddr)
	out.SnapshotRetentionLimit, out.SnapshotWindow = nil, nil
	out.AuthTokenEnabled, out.AuthTokenLastModifiedDate = nil, nil
	if mc.azMode == azCross {
		out.PreferredAvailabilityZone = aws.String("Multiple")
	}
	if mc.pendingNodes > 0 {
		out.PendingModifiedValues.NumCacheNodes = aws.Int32(int32(mc.pendingNodes))
		out.PendingModifiedValues.CacheNodeIdsToRemove = append([]string{}, mc.pendingRemove...)
	}
	if ids := mc.rebootIDs(); len(ids) > 0 {
		out.CacheParameterGroup.ParameterApplyStatus = aws.String("pending-reboot")
		out.CacheParameterGroup.CacheNodeIdsToReboot = ids
		for i := range out.CacheNodes {
			if mc.reboot[aws.ToString(out.CacheNodes[i].CacheNodeId)] {
				out.CacheNodes[i].ParameterGroupStatus = aws.String("pending-reboot")
			}
		}
	}
	// Nodes still being added or removed have no endpoint yet (any more).
	for i := range out.CacheNodes {
		if s := aws.ToString(out.CacheNodes[i].CacheNodeStatus); s == statusCreating || s == statusDeleting {
			out.CacheNodes[i].Endpoint = nil
		}
	}
}

func (mc *memcachedCluster) record() *state.Memcached {
	return &state.Memcached{ConfigurationEndpoint: *endpointRecord(mc.cfgAddr), ConfigVersion: mc.version, AZMode: mc.azMode,
		PendingNodes: mc.pendingNodes, PendingRemove: mc.pendingRemove, Reboot: mc.rebootIDs()}
}

func memcachedFromRecord(rec *state.Memcached) *memcachedCluster {
	if rec == nil {
		return nil
	}
	mc := &memcachedCluster{cfgAddr: endpointFromRecord(rec.ConfigurationEndpoint), version: rec.ConfigVersion,
		azMode: rec.AZMode, pendingNodes: rec.PendingNodes, pendingRemove: rec.PendingRemove}
	for _, id := range rec.Reboot {
		mc.markReboot([]*cacheNode{{id: id}})
	}
	return mc
}

// memcachedNodeQuota is the per-cluster node quota in force.
func (e *Emulator) memcachedNodeQuota() int {
	if e.opts.MemcachedNodeQuota > 0 {
		return e.opts.MemcachedNodeQuota
	}
	return DefaultMemcachedNodeQuota
}

// checkMemcachedNodes validates a cluster's node count.
func (e *Emulator) checkMemcachedNodes(n int) error {
	if n < 1 {
		return invalidParameterValue("The parameter NumCacheNodes must be a positive integer.")
	}
	if q := e.memcachedNodeQuota(); n > q {
		return memcachedNodeQuotaExceeded(n, q)
	}
	return nil
}

// resolveMemcached validates EngineVersion for Memcached: an exact version
// or major.minor (its newest release); empty is the newest.
func resolveMemcached(version *string) (engineVersion, error) {
	v := aws.ToString(version)
	var found *engineVersion
	for i := range engineCatalog {
		ev := &engineCatalog[i]
		if ev.Engine == engine.EngineMemcached && (v == "" || v == ev.Version || strings.HasPrefix(ev.Version, v+".")) {
			found = ev // later entries are newer
		}
	}
	if found == nil {
		return engineVersion{}, invalidParameterCombination("Cannot find version %s for memcached", v)
	}
	return *found, nil
}

// memcachedAZs returns the availability zone of each of n nodes.
func memcachedAZs(regionName, mode string, one *string, list []string, n int) ([]string, error) {
	zones := availabilityZones(regionName)
	for _, az := range append(slices.Clone(list), aws.ToString(one)) {
		if az != "" && !slices.Contains(zones, az) {
			return nil, invalidParameterValue("Availability zone %s is not in region %s.", az, regionName)
		}
	}
	if len(list) > 0 {
		if len(list) != n {
			return nil, invalidParameterValue("The number of PreferredAvailabilityZones (%d) must match NumCacheNodes (%d).", len(list), n)
		}
		if mode == azSingle && slices.ContainsFunc(list, func(az string) bool { return az != list[0] }) {
			return nil, invalidParameterCombination("AZMode single-az places every node in one availability zone; PreferredAvailabilityZones names several.")
		}
		return slices.Clone(list), nil
	}
	out := make([]string, n)
	for i := range out {
		switch {
		case aws.ToString(one) != "" && mode != azCross:
			out[i] = *one
		case mode == azCross:
			out[i] = zones[i%len(zones)]
		default:
			out[i] = zones[0]
		}
	}
	return out, nil
}

// refuseForMemcached answers the members of CreateCacheCluster a Memcached
// cluster does not have, the way AWS does.
func refuseForMemcached(in *elasticache.CreateCacheClusterInput) error {
	switch {
	case aws.ToString(in.ReplicationGroupId) != "":
		return invalidParameterCombination("Replication groups are only supported for the Redis OSS and Valkey engines; a memcached cluster cannot join one.")
	case len(in.SnapshotArns) > 0 || aws.ToString(in.SnapshotName) != "":
		return invalidParameterCombination("Snapshots are not supported for the memcached engine.")
	case aws.ToInt32(in.SnapshotRetentionLimit) > 0 || aws.ToString(in.SnapshotWindow) != "":
		return invalidParameterCombination("SnapshotRetentionLimit and SnapshotWindow are not supported for the memcached engine.")
	case in.AuthToken != nil:
		return invalidParameterCombination("AuthToken is only supported for the Redis OSS and Valkey engines.")
	}
	return nil
}

// createMemcachedCluster is CreateCacheCluster for Engine memcached.
func (e *Emulator) createMemcachedCluster(ctx context.Context, id string, in *elasticache.CreateCacheClusterInput) (*elasticache.CreateCacheClusterOutput, error) {
	if err := refuseForMemcached(in); err != nil {
		return nil, err
	}
	n := int(aws.ToInt32(in.NumCacheNodes))
	if in.NumCacheNodes == nil {
		n = 1
	}
	if err := e.checkMemcachedNodes(n); err != nil {
		return nil, err
	}
	nodeType := aws.ToString(in.CacheNodeType)
	if nodeType == "" {
		return nil, missingNodeType()
	}
	if _, ok := lookupNodeType(nodeType); !ok {
		return nil, unknownNodeType(nodeType)
	}
	ev, err := resolveMemcached(in.EngineVersion)
	if err != nil {
		return nil, err
	}
	mode := string(in.AZMode)
	if mode == "" {
		mode = azSingle
	}
	if mode != azSingle && mode != azCross {
		return nil, invalidParameterValue("Invalid value for parameter AZMode: %s. Valid values are single-az, cross-az.", mode)
	}
	transit := aws.ToBool(in.TransitEncryptionEnabled)
	if transit && !versionAtLeast(ev.Actual, memcachedTLSSince) {
		return nil, invalidParameterCombination("Encryption in transit is supported for memcached %s and later; the cluster runs %s.", memcachedTLSSince, ev.Actual)
	}
	if transit && e.opts.CA == nil {
		return nil, invalidParameterCombination("Encryption in transit needs the emulator's CA, which this emulator was started without.")
	}
	port := int32(memcachedPort)
	if in.Port != nil {
		if port, err = checkPort(in.Port); err != nil {
			return nil, err
		}
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	settings, err := newSettings(in.PreferredMaintenanceWindow, nil, nil, in.AutoMinorVersionUpgrade, in.NotificationTopicArn)
	if err != nil {
		return nil, err
	}

	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if _, ok := r.clusters[id]; ok {
		return nil, cacheClusterAlreadyExists(id)
	}
	if err := e.checkNodeQuota(r, n); err != nil {
		return nil, err
	}
	azs, err := memcachedAZs(r.region, mode, in.PreferredAvailabilityZone, in.PreferredAvailabilityZones, n)
	if err != nil {
		return nil, err
	}
	pg, err := r.resolveParamGroup(in.CacheParameterGroupName, ev)
	if err != nil {
		return nil, err
	}
	sg, err := r.resolveSubnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	cfgAddr, err := e.opts.Addresses.Allocate(int(port))
	if err != nil {
		return nil, insufficientCapacityNoAddress("the configuration endpoint", err)
	}
	cl, err := e.newCluster(r, id, "", ev, port, azs[0])
	if err != nil {
		e.opts.Addresses.Release(cfgAddr)
		return nil, err
	}
	cl.mc = &memcachedCluster{cfgAddr: cfgAddr, azMode: mode}
	for i := 1; i < n; i++ {
		if _, err := e.addMemcachedNode(r, cl, azs[i]); err != nil {
			e.releaseMemcached(cl)
			return nil, err
		}
	}
	cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.settings = nodeType, pg, sg, settings
	cl.sec = security{transit: transit}
	cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
	r.clusters[id] = cl
	if len(in.Tags) > 0 {
		r.tags[r.arn("cluster", id)] = mergeTags(nil, in.Tags)
	}
	var launches []nodeLaunch
	for _, node := range cl.nodes {
		launches = append(launches, e.launchFor(r, cl, node, nil))
	}
	e.runOperation(r, opCreateCluster, id, nil, func(ctx context.Context) { e.provisionMemcached(ctx, r, cl, launches) })
	return &elasticache.CreateCacheClusterOutput{CacheCluster: ptr(cl.describe(r, false))}, nil
}

// addMemcachedNode adds a node (status creating) with the next node id to
// cl; the caller holds r.mu.
func (e *Emulator) addMemcachedNode(r *region, cl *cacheCluster, az string) (*cacheNode, error) {
	ep, err := e.opts.Addresses.Allocate(int(cl.port))
	if err != nil {
		return nil, insufficientCapacityNoAddress("port "+itoa(int(cl.port)), err)
	}
	last := 0
	for _, n := range cl.nodes {
		var k int
		fmt.Sscanf(n.id, "%d", &k)
		last = max(last, k)
	}
	id := nodeID(last + 1)
	n := &cacheNode{id: id, name: nodeName(r.scope, cl.id, id), endpoint: ep, status: statusCreating, created: e.opts.Now().UTC(), az: az}
	cl.nodes = append(cl.nodes, n)
	return n, nil
}

// releaseMemcached gives back every address of cl (its nodes' and the
// configuration endpoint's), closing the endpoint if open; the caller holds
// r.mu or owns cl alone.
func (e *Emulator) releaseMemcached(cl *cacheCluster) {
	for _, n := range cl.nodes {
		e.opts.Addresses.Release(n.endpoint)
	}
	if cl.mc.cfg != nil {
		_ = cl.mc.cfg.Close()
		cl.mc.cfg = nil
	}
	e.opts.Addresses.Release(cl.mc.cfgAddr)
}

// provisionMemcached opens the configuration endpoint and starts every
// node in parallel; the cluster is available once all answer.
func (e *Emulator) provisionMemcached(ctx context.Context, r *region, cl *cacheCluster, launches []nodeLaunch) {
	started := time.Now()
	err := e.openDiscovery(r, cl)
	if err == nil {
		err = e.startMemcachedNodes(ctx, launches)
	}
	if stopping(ctx) {
		return // the next start finishes the create (reconcileMemcached)
	}
	r.mu.Lock()
	defer e.unlock(r)
	if err != nil {
		cl.status = statusCreateFailed
		for _, n := range cl.nodes {
			n.status = statusCreateFailed
		}
		e.log.Error("memcached cluster create failed", "cluster", cl.id, "err", err)
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Failed to create cache cluster %s: %v", cl.id, err)
		return
	}
	for _, n := range cl.nodes {
		n.status = statusAvailable
		e.record(r, types.SourceTypeCacheCluster, cl.id, "Added cache node %s in availability zone %s", n.id, n.az)
	}
	cl.status = statusAvailable
	cl.mc.version++
	e.syncDiscovery(r, cl)
	e.log.Info("memcached cluster available", "cluster", cl.id, "nodes", len(cl.nodes), "took", time.Since(started))
	e.record(r, types.SourceTypeCacheCluster, cl.id, "Cache cluster created")
}

// startMemcachedNodes starts nodes in parallel and returns the first
// failure.
func (e *Emulator) startMemcachedNodes(ctx context.Context, launches []nodeLaunch) error {
	errs := make([]error, len(launches))
	var wg sync.WaitGroup
	for i, l := range launches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.startNode(ctx, l)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// openDiscovery opens cl's configuration endpoint at its address (a TLS
// cluster's serves TLS with a certificate of the emulator's CA); no lock is
// held. An endpoint already open stays.
func (e *Emulator) openDiscovery(r *region, cl *cacheCluster) error {
	r.mu.Lock()
	mc, transit := cl.mc, cl.sec.transit
	open := mc.cfg != nil
	addr := mc.cfgAddr
	r.mu.Unlock()
	if open {
		return nil
	}
	var serverTLS, nodeTLS *tls.Config
	if transit {
		cert, key, err := e.opts.CA.Issue([]string{addr.Host}, certValidity)
		if err != nil {
			return fmt.Errorf("issuing the configuration endpoint's certificate: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(e.opts.CA.CertPEM())
		serverTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		nodeTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	srv, err := listenDiscovery(addr, serverTLS, nodeTLS, e.log)
	if err != nil {
		return fmt.Errorf("opening the configuration endpoint of %s at %s: %w", cl.id, addr.Addr(), err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if mc.cfg != nil || r.clusters[cl.id] != cl {
		_ = srv.Close()
		return nil
	}
	mc.cfg = srv
	e.syncDiscovery(r, cl)
	return nil
}

// syncDiscovery gives cl's configuration endpoint the current node list;
// the caller holds r.mu.
func (e *Emulator) syncDiscovery(r *region, cl *cacheCluster) {
	if cl.mc == nil || cl.mc.cfg == nil {
		return
	}
	c := &discoveryConfig{version: cl.mc.version}
	for _, n := range cl.nodes {
		if n.status != statusCreating && n.status != statusDeleting && n.status != statusCreateFailed {
			c.nodes = append(c.nodes, n.endpoint)
		}
		if n.healthy() {
			c.serving = append(c.serving, n.endpoint)
		}
	}
	cl.mc.cfg.set(c)
}
