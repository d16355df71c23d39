package emulator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/queryapi"
	"github.com/elasticache-local/elasticache-local/s3store"
)

// Options configure an Emulator.
type Options struct {
	// Runtime starts the engine nodes; Addresses hands out their endpoints.
	Runtime   engine.Runtime
	Addresses *engine.AddressPool
	// Region and AccountID are the defaults for unsigned requests.
	Region    string
	AccountID string
	Logger    *slog.Logger
	// Now is the clock (tests inject one); defaults to time.Now.
	Now func() time.Time
	// NodeReadyTimeout bounds how long a node may take to start and sync.
	NodeReadyTimeout time.Duration
	// Health checks (health.go): a failing node gets a PING bounded by
	// HealthTimeout every HealthInterval, nodes that answer every 10
	// intervals, together; HealthMisses failures in a row mark a hung
	// node down, a node whose process is gone is down at once (its exit is
	// noticed within milliseconds).
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	HealthMisses   int
	// BindEndpoints makes the current primary listen on its group's
	// primary endpoint address itself, and one healthy replica on its
	// reader endpoint address (no forwarder in the data path); it needs an
	// address per node on the host (the process runtime in alias mode, or the
	// docker runtime on the host network).
	BindEndpoints bool
	// ReaderEndpointRotation is how long a bound reader endpoint stays on
	// one replica while others are healthy too;
	// DefaultReaderEndpointRotation when zero.
	ReaderEndpointRotation time.Duration
	// CA issues the certificates of TLS nodes (TransitEncryptionEnabled,
	// engine/tlsca); without one their starts fail.
	CA CertIssuer
	// NodeQuota is how many cache nodes an account may have in a region
	// (NodeQuotaForCustomerExceeded past it); DefaultNodeQuota when zero.
	NodeQuota int
	// ClusterNodeQuota is how many nodes one cluster-mode group may have
	// (NodeQuotaForClusterExceeded past it); DefaultClusterNodeQuota when zero.
	ClusterNodeQuota int
	// MemcachedNodeQuota is how many nodes one Memcached cluster may have
	// (NodeQuotaForClusterExceeded past it); DefaultMemcachedNodeQuota
	// when zero.
	MemcachedNodeQuota int
	// TestFailoverQuota is how many TestFailover calls an account may make
	// in a rolling 24 hours (APICallRateForCustomerExceeded past it).
	TestFailoverQuota int
	// Snapshots is where snapshot RDBs live (a directory or an S3 bucket);
	// SnapshotKeys gives the keys of snapshots encrypted at rest; Buckets
	// opens other S3 buckets (CopySnapshot TargetBucket, SnapshotArns) and is
	// nil when no S3 endpoint is configured.
	Snapshots    s3store.Store
	SnapshotKeys s3store.KeyProvider
	Buckets      func(bucket string) (s3store.Store, error)
	// Store persists every change of state; nil keeps state in memory only.
	Store *state.Store
}

// Emulator is the control plane. It is safe for concurrent use.
type Emulator struct {
	opts Options
	log  *slog.Logger
	// admin opens the control plane's connections to nodes, as the
	// runtime's admin user.
	admin engine.Admin

	// mu guards the regions map only; each region has its own lock.
	mu      sync.Mutex
	regions map[scope]*region
	// store persists every region's records (nil: nothing is persisted,
	// for unit tests); see lockRegion and unlock.
	store *state.Store

	// boosts raise primaries' cron rate while replicas sync from them.
	boosts syncBoosts
	// healthWake starts a health round at once (see wakeHealth).
	healthWake chan struct{}
	// demux serves TLS and plaintext on the endpoints of preferred nodes
	// (transit.go).
	demux *demuxes
	// binds owns the bind lists of the nodes bound endpoints listen on.
	binds *nodeBinds

	// Background work (node start/stop) runs under ctx and is tracked by
	// workers so Close can wait for it.
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// scope is the key of all state: AWS resources live in one account and region.
type scope struct {
	account string
	region  string
}

// region holds the resources of one account in one region. mu guards
// everything in it; a change is persisted when the changer releases mu
// through Emulator.unlock. Calls that only read take it shared (rlockRegion).
type region struct {
	scope
	mu regionLock
	// groupKeys are the groups' ids, sorted, kept for readers (groupIDs).
	groupKeys atomic.Pointer[keptIDs]
	// ops are the operations running on the region's resources.
	ops operations
	// seq numbers the changes (under mu); saveMu serializes the writes of
	// the records, and saved is the last change they hold (persist.go).
	seq          uint64
	saveMu       sync.Mutex
	saved        uint64
	savedBody    []byte
	groups       map[string]*replicationGroup
	clusters     map[string]*cacheCluster
	snapshots    map[string]*snapshot
	paramGroups  map[string]*paramGroup
	subnetGroups map[string]*subnetGroup
	events       []event
	tags         map[string][]types.Tag // by ARN
	// RBAC (users.go, user_groups.go, rbac_apply.go): users (the
	// built-in default user included) and user groups by id; aclMu
	// serializes the pushes of users to nodes.
	users      map[string]*user
	userGroups map[string]*userGroup
	aclMu      sync.Mutex
	// testFailovers are the times of TestFailover calls, for the quota.
	testFailovers []time.Time
}

// New returns an Emulator; call Close to stop every node it started.
func New(opts Options) (*Emulator, error) {
	if opts.Runtime == nil {
		return nil, fmt.Errorf("emulator: a runtime is required")
	}
	if opts.Addresses == nil {
		return nil, fmt.Errorf("emulator: an address pool is required")
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NodeReadyTimeout == 0 {
		opts.NodeReadyTimeout = DefaultNodeReadyTimeout
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = DefaultHealthInterval
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = DefaultHealthTimeout
	}
	if opts.HealthMisses == 0 {
		opts.HealthMisses = DefaultHealthMisses
	}
	switch {
	case opts.NodeQuota < 0:
		return nil, fmt.Errorf("emulator: the node quota must not be negative (got %d)", opts.NodeQuota)
	case opts.NodeQuota == 0:
		opts.NodeQuota = DefaultNodeQuota
	}
	if opts.ClusterNodeQuota == 0 {
		opts.ClusterNodeQuota = DefaultClusterNodeQuota
	}
	if opts.ReaderEndpointRotation == 0 {
		opts.ReaderEndpointRotation = DefaultReaderEndpointRotation
	}
	if opts.TestFailoverQuota == 0 {
		opts.TestFailoverQuota = DefaultTestFailoverQuota
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emulator{
		opts:    opts,
		log:     opts.Logger,
		admin:   opts.Runtime.Admin(),
		regions: make(map[scope]*region),
		demux:   newDemuxes(opts.Logger),
		// A round already due covers any number of wakes.
		healthWake: make(chan struct{}, 1),
		binds:      newNodeBinds(opts.Runtime.Admin()),
		store:      opts.Store,
		ctx:        ctx,
		cancel:     cancel,
	}
	// The health monitor runs at least every 10 HealthIntervals; automated
	// backups are due at most once a minute of their window, and pending
	// node changes in their maintenance window (at least an hour long).
	e.goBackground(e.monitorHealth)
	e.goBackground(func(ctx context.Context) { every(ctx, 30*time.Second, e.TickBackups) })
	e.goBackground(func(ctx context.Context) { every(ctx, 30*time.Second, e.TickMaintenance) })
	return e, nil
}

// Register installs every implemented operation on svc behind the input
// member audit (inputs.go). Operations not registered here answer
// NotImplemented from the codec.
func (e *Emulator) Register(svc *queryapi.Service) {
	rules := inputMemberRules()
	// Replication groups.
	handle(svc, rules, e.CreateReplicationGroup)
	handle(svc, rules, e.DescribeReplicationGroups)
	handle(svc, rules, e.ModifyReplicationGroup)
	handle(svc, rules, e.DeleteReplicationGroup)
	handle(svc, rules, e.TestFailover)
	handle(svc, rules, e.IncreaseReplicaCount)
	handle(svc, rules, e.DecreaseReplicaCount)
	handle(svc, rules, e.ModifyReplicationGroupShardConfiguration)
	// Cache clusters.
	handle(svc, rules, e.CreateCacheCluster)
	handle(svc, rules, e.DescribeCacheClusters)
	handle(svc, rules, e.ModifyCacheCluster)
	handle(svc, rules, e.DeleteCacheCluster)
	handle(svc, rules, e.RebootCacheCluster)
	// Catalog.
	handle(svc, rules, e.DescribeCacheEngineVersions)
	handle(svc, rules, e.DescribeCacheParameterGroups)
	handle(svc, rules, e.CreateCacheParameterGroup)
	handle(svc, rules, e.ModifyCacheParameterGroup)
	handle(svc, rules, e.ResetCacheParameterGroup)
	handle(svc, rules, e.DeleteCacheParameterGroup)
	handle(svc, rules, e.DescribeCacheParameters)
	handle(svc, rules, e.DescribeEngineDefaultParameters)
	handle(svc, rules, e.DescribeCacheSubnetGroups)
	handle(svc, rules, e.CreateCacheSubnetGroup)
	handle(svc, rules, e.ModifyCacheSubnetGroup)
	handle(svc, rules, e.DeleteCacheSubnetGroup)
	// Snapshots.
	handle(svc, rules, e.CreateSnapshot)
	handle(svc, rules, e.DescribeSnapshots)
	handle(svc, rules, e.DeleteSnapshot)
	handle(svc, rules, e.CopySnapshot)
	// Maintenance and billing: nothing to list, apply or buy locally.
	handle(svc, rules, e.ListAllowedNodeTypeModifications)
	handle(svc, rules, e.DescribeServiceUpdates)
	handle(svc, rules, e.DescribeUpdateActions)
	handle(svc, rules, e.DescribeReservedCacheNodes)
	handle(svc, rules, e.DescribeReservedCacheNodesOfferings)
	handle(svc, rules, e.BatchApplyUpdateAction)
	handle(svc, rules, e.BatchStopUpdateAction)
	handle(svc, rules, e.PurchaseReservedCacheNodesOffering)
	// Online migration from a self-managed server.
	handle(svc, rules, e.StartMigration)
	handle(svc, rules, e.TestMigration)
	handle(svc, rules, e.CompleteMigration)
	// EC2-Classic security groups: refused as AWS refuses them today.
	handle(svc, rules, e.CreateCacheSecurityGroup)
	handle(svc, rules, e.DeleteCacheSecurityGroup)
	handle(svc, rules, e.DescribeCacheSecurityGroups)
	handle(svc, rules, e.AuthorizeCacheSecurityGroupIngress)
	handle(svc, rules, e.RevokeCacheSecurityGroupIngress)
	// Events and tags.
	handle(svc, rules, e.DescribeEvents)
	handle(svc, rules, e.AddTagsToResource)
	handle(svc, rules, e.ListTagsForResource)
	handle(svc, rules, e.RemoveTagsFromResource)
	// Users and user groups (RBAC).
	handle(svc, rules, e.CreateUser)
	handle(svc, rules, e.DescribeUsers)
	handle(svc, rules, e.ModifyUser)
	handle(svc, rules, e.DeleteUser)
	handle(svc, rules, e.CreateUserGroup)
	handle(svc, rules, e.DescribeUserGroups)
	handle(svc, rules, e.ModifyUserGroup)
	handle(svc, rules, e.DeleteUserGroup)
}

// Counts reports how many resources exist, for the health endpoint.
type Counts struct {
	ReplicationGroups int `json:"replicationGroups"`
	CacheClusters     int `json:"cacheClusters"`
	Nodes             int `json:"nodes"`
}

// Counts returns resource counts over every account and region.
func (e *Emulator) Counts() Counts {
	var c Counts
	for _, r := range e.allRegions() {
		r.mu.RLock()
		c.ReplicationGroups += len(r.groups)
		c.CacheClusters += len(r.clusters)
		for _, cl := range r.clusters {
			c.Nodes += len(cl.nodes)
		}
		r.mu.RUnlock()
	}
	return c
}

// Close stops background work and every node the emulator started, in
// parallel; past ctx's deadline what still runs is killed (see stopNodes).
// With a runtime that can keep nodes (engine.Keeper) and a state store,
// every node saves its data first (suspendNodes) and its records stay, so
// the next start brings everything back; operations cut off stay recorded
// and are resumed then.
func (e *Emulator) Close(ctx context.Context) error {
	e.cancel()
	// Background work ends with its context; the wait is bounded all the
	// same, so one step that ignores cancellation cannot keep the nodes
	// running past the shutdown deadline (the runtime's final sweep in
	// Server.Shutdown stops anything such a step starts afterwards).
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.log.Warn("background work still running at the shutdown deadline; stopping the nodes anyway")
	}
	var nodes []*cacheNode
	var endpoints []endpoint
	for _, r := range e.allRegions() {
		r.mu.Lock()
		for _, cl := range r.clusters {
			nodes = append(nodes, cl.nodes...)
			if cl.mc != nil && cl.mc.cfg != nil {
				endpoints = append(endpoints, cl.mc.cfg) // its address is recorded
				cl.mc.cfg = nil
			}
		}
		for _, g := range r.groups {
			for _, ng := range g.nodeGroups {
				if a, ok := ng.addresses(); ok {
					ng.addrs = &a // recorded, though closed below
				}
				endpoints = append(endpoints, ng.primaryEP, ng.readerEP)
				ng.primaryEP, ng.readerEP = nil, nil
			}
			if c := g.cfg; c != nil && c.ep != nil {
				a := c.ep.Addr()
				endpoints = append(endpoints, c.ep)
				c.ep, c.addr = nil, &a // recorded, though closed below
			}
		}
		// The final write: what the cancelled operations left.
		e.unlock(r)
	}
	for _, p := range endpoints {
		e.closeEndpoint(p)
	}
	// The nodes are saved through their endpoints, a preferred node's
	// demultiplexer included: it closes after them.
	defer e.demux.closeAll()
	if keeper, ok := e.opts.Runtime.(engine.Keeper); ok && e.store != nil {
		return e.suspendNodes(ctx, keeper, nodes)
	}
	return e.stopNodes(ctx, nodes)
}

// regionFor returns the state of the request's account and region, creating
// it (with its default parameter and subnet groups) on first use. The
// region is not locked: see lockRegion.
func (e *Emulator) regionFor(ctx context.Context) *region {
	info := queryapi.InfoFrom(ctx)
	sc := scope{account: info.AccountID, region: info.Region}
	if sc.account == "" {
		sc.account = e.opts.AccountID
	}
	if sc.region == "" {
		sc.region = e.opts.Region
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.regions[sc]
	if !ok {
		r = newRegion(sc)
		e.regions[sc] = r
	}
	return r
}

// newRegion is the state of an account in a region before any request:
// the default parameter and subnet groups.
func newRegion(sc scope) *region {
	return &region{
		scope:        sc,
		groups:       make(map[string]*replicationGroup),
		clusters:     make(map[string]*cacheCluster),
		snapshots:    make(map[string]*snapshot),
		paramGroups:  defaultParamGroups(),
		subnetGroups: defaultSubnetGroups(sc.region),
		tags:         make(map[string][]types.Tag),
		users:        defaultUsers(),
		userGroups:   make(map[string]*userGroup),
	}
}

// lockRegion returns the request's region, locked; release it with
// e.unlock(r), which persists what changed.
func (e *Emulator) lockRegion(ctx context.Context) *region {
	r := e.regionFor(ctx)
	r.mu.Lock()
	return r
}

// rlockRegion returns the request's region, locked for reading only;
// release it with r.mu.RUnlock.
func (e *Emulator) rlockRegion(ctx context.Context) *region {
	r := e.regionFor(ctx)
	r.mu.RLock()
	return r
}

// allRegions lists every region (unlocked), for work over all of them.
func (e *Emulator) allRegions() []*region {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*region, 0, len(e.regions))
	for _, r := range e.regions {
		out = append(out, r)
	}
	return out
}

// queryapiContext is a context for the given account and region, for work
// that does not come from a request (loading state at start).
func queryapiContext(account, region string) context.Context {
	return queryapi.WithRequestInfo(context.Background(), queryapi.RequestInfo{AccountID: account, Region: region})
}

// arn builds an ElastiCache ARN in r for a resource kind and name.
func (r *region) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:elasticache:%s:%s:%s:%s", r.region, r.account, kind, name)
}

// settle finishes a change that is metadata only locally: the resource
// left "modifying" in the response goes back to "available" right after,
// with an event, as AWS does once such a change has applied.
func (e *Emulator) settle(r *region, status *string, st types.SourceType, id, format string, args ...any) {
	e.runOperation(r, opModifyMetadata, id, nil, func(context.Context) {
		r.mu.Lock()
		defer e.unlock(r)
		if *status == statusModifying {
			*status = statusAvailable
		}
		e.record(r, st, id, format, args...)
	})
}

// every runs fn each period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// goBackground runs fn as tracked background work under the emulator context.
func (e *Emulator) goBackground(fn func(ctx context.Context)) {
	e.workers.Add(1)
	go func() {
		defer e.workers.Done()
		fn(e.ctx)
	}()
}
