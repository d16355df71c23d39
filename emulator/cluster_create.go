package emulator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

// createClusterGroup creates a cluster-mode-enabled group: every node of
// every shard is a real node with cluster-enabled yes; the operation starts
// them, forms the cluster (cluster_form.go) and marks the group available
// once every node reports cluster_state:ok and every replica is in sync.
func (e *Emulator) createClusterGroup(ctx context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
	id, err := checkGroupIdentity(in)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	shards, err := planShards(in, e.opts.ClusterNodeQuota)
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
	if sec.preferred {
		// A preferred node's cluster bus would follow its TLS port off
		// the endpoint (engine.CheckTLSSpec).
		return nil, notImplemented("TransitEncryptionMode preferred for a cluster-mode-enabled replication group")
	}
	total := 0
	for _, sp := range shards {
		total += sp.replicas + 1
	}

	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if _, ok := r.groups[id]; ok {
		return nil, replicationGroupAlreadyExists(id)
	}
	if err := e.checkNodeQuota(r, total); err != nil {
		return nil, err
	}
	seeds, snap, err := e.resolveClusterSeeds(r, in, &shards)
	if err != nil {
		return nil, err
	}
	engineName, engineVer, nodeType := snap.restoreDefaults(in.Engine, in.EngineVersion, aws.ToString(in.CacheNodeType))
	ev, err := resolveEngine(engineName, engineVer)
	if err != nil {
		return nil, err
	}
	if nodeType == "" {
		return nil, missingNodeType()
	}
	if _, err := checkNodeType(nodeType, ev); err != nil {
		return nil, err
	}
	if err := checkDataTiering(nodeType, aws.ToBool(in.DataTieringEnabled)); err != nil {
		return nil, err
	}
	pg, err := r.resolveClusterParamGroup(in.CacheParameterGroupName, ev)
	if err != nil {
		return nil, err
	}
	userGroups, err := r.createUserGroups(in.UserGroupIds, ev, sec)
	if err != nil {
		return nil, err
	}
	sg, err := r.resolveSubnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	for _, sp := range shards {
		for n := 1; n <= sp.replicas+1; n++ {
			if _, taken := r.clusters[shardMemberID(id, sp.id, n)]; taken {
				return nil, cacheClusterAlreadyExists(shardMemberID(id, sp.id, n))
			}
		}
	}

	g := &replicationGroup{
		id: id, description: aws.ToString(in.ReplicationGroupDescription), status: statusCreating, created: e.opts.Now().UTC(),
		engine: ev, nodeType: nodeType, paramGroup: pg, port: port,
		autoFailover: true, multiAZ: aws.ToBool(in.MultiAZEnabled),
		kmsKeyID: aws.ToString(in.KmsKeyId), settings: settings, clusterMode: true, sec: sec,
	}
	g.cfg = &configEndpoint{g: g}
	cfgAddr, err := e.opts.Addresses.Allocate(int(port))
	if err != nil {
		return nil, insufficientCapacityNoAddress("the configuration endpoint", err)
	}
	g.cfg.addr = &cfgAddr
	var created []*cacheCluster
	release := func() {
		for _, c := range created {
			e.opts.Addresses.Release(c.nodes[0].endpoint)
		}
		e.opts.Addresses.Release(cfgAddr)
	}
	for si, sp := range shards {
		ng := &nodeGroup{id: sp.id, slots: sp.slots, cfg: g.cfg}
		for n := 1; n <= sp.replicas+1; n++ {
			mid := shardMemberID(id, sp.id, n)
			az := availabilityZones(r.region)[(si+n-1)%3]
			if len(sp.azs) > 0 {
				az = sp.azs[n-1]
			}
			cl, err := e.newCluster(r, mid, id, ev, port, az)
			if err != nil {
				release()
				return nil, err
			}
			cl.nodeType, cl.paramGroup, cl.subnetGroup, cl.settings = nodeType, pg, sg, settings
			cl.securityIDs = append([]string{}, in.SecurityGroupIds...)
			created = append(created, cl)
			ng.members = append(ng.members, mid)
		}
		ng.primary = ng.members[0]
		g.nodeGroups = append(g.nodeGroups, ng)
	}
	// Validation is over: from here on the request changes state.
	for _, cl := range created {
		r.clusters[cl.id] = cl
	}
	r.groups[g.id] = g
	r.setUserGroups(g, userGroups)
	if len(in.Tags) > 0 {
		r.tags[r.arn("replicationgroup", g.id)] = mergeTags(nil, in.Tags)
	}
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s is being created", g.id)
	var launches []nodeLaunch
	for _, cl := range created {
		launches = append(launches, e.launchFor(r, cl, cl.nodes[0], nil))
	}
	var detail map[string]string
	if len(seeds) > 0 {
		// A restart cannot tell how much of the data was loaded: it fails
		// the create rather than finish it with part of the data.
		detail = map[string]string{"seeded": "true"}
	}
	e.runOperation(r, opCreateGroup, g.id, detail, func(ctx context.Context) { e.provisionClusterGroup(ctx, r, g, launches, seeds) })
	return &elasticache.CreateReplicationGroupOutput{ReplicationGroup: ptr(g.describe(r))}, nil
}

// provisionClusterGroup starts every node of a new cluster-mode group in
// parallel, forms the cluster, loads the snapshot data if any, and marks
// the group available once it serves.
func (e *Emulator) provisionClusterGroup(ctx context.Context, r *region, g *replicationGroup, launches []nodeLaunch, seeds []rdbSeed) {
	started := time.Now()
	err := e.openEndpoints(r, g, false)
	if err == nil {
		err = e.startNodes(ctx, r, launches)
	}
	if err == nil {
		err = e.formCluster(ctx, r, g)
	}
	if err == nil && len(seeds) > 0 {
		err = e.loadClusterSeeds(ctx, r, g, seeds)
	}
	if err == nil {
		r.mu.Lock()
		g.cfg.sync(r)
		listed := e.listedEndpoints(r, g)
		e.unlockProgress(r)
		err = e.waitServing(ctx, listed)
	}
	if stopping(ctx) {
		return // the next start finishes the create (restore.go)
	}
	r.mu.Lock()
	defer e.unlockProgress(r) // the operation's end writes it
	if err != nil {
		g.status = statusCreateFailed
		e.log.Error("replication group create failed", "group", g.id, "err", err)
		e.record(r, types.SourceTypeReplicationGroup, g.id, "Failed to create replication group %s: %v", g.id, err)
		return
	}
	g.status = statusAvailable
	e.log.Info("replication group available", "group", g.id, "clusterMode", true, "shards", len(g.nodeGroups),
		"nodes", len(g.memberClusters()), "took", time.Since(started))
	e.record(r, types.SourceTypeReplicationGroup, g.id, "Replication group %s created", g.id)
}

// startNodes starts nodes in parallel, recording each outcome (markNode),
// and returns the first failure.
func (e *Emulator) startNodes(ctx context.Context, r *region, launches []nodeLaunch) error {
	var wg sync.WaitGroup
	errs := make([]error, len(launches))
	for i, l := range launches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.startNode(ctx, l)
			e.markNode(r, l, errs[i])
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

// openConfigEndpoint opens g's configuration endpoint at its reserved or
// recorded address; exact refuses to move it (a restore). No lock is held.
func (e *Emulator) openConfigEndpoint(r *region, g *replicationGroup, exact bool) error {
	r.mu.Lock()
	c := g.cfg
	if c == nil || c.ep != nil || c.addr == nil {
		r.mu.Unlock()
		return nil
	}
	addr := *c.addr
	r.mu.Unlock()
	name := g.id + "/configuration"
	listen := e.listenProxy
	if exact {
		listen = func(addr engine.Endpoint, name string) (*proxy.Proxy, error) {
			return proxy.Listen(addr.Addr(), e.proxyOptions(name))
		}
	}
	ep, err := listen(addr, name)
	if err != nil {
		return fmt.Errorf("opening the configuration endpoint of %s at %s: %w", g.id, addr.Addr(), err)
	}
	r.mu.Lock()
	c.ep, c.addr = ep, nil
	c.sync(r)
	e.unlock(r)
	return nil
}

// closeConfigEndpoint forgets g's configuration endpoint: it closes one
// still open (a caller that may not wait under the lock closes it first,
// see DeleteReplicationGroup) or gives back the address it never opened;
// the caller holds r.mu or owns g alone.
func (e *Emulator) closeConfigEndpoint(g *replicationGroup) {
	if g.cfg == nil {
		return
	}
	if g.cfg.ep != nil {
		e.closeEndpoint(g.cfg.ep)
		g.cfg.ep = nil
	}
	if g.cfg.addr != nil {
		e.opts.Addresses.Release(*g.cfg.addr)
		g.cfg.addr = nil
	}
}

// memberEndpoint is the node endpoint of member id; the caller holds r.mu.
func (r *region) memberEndpoint(id string) (engine.Endpoint, bool) {
	cl := r.clusters[id]
	if cl == nil {
		return engine.Endpoint{}, false
	}
	return cl.nodes[0].endpoint, true
}
