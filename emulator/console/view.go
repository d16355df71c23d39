package console

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// view is everything one page shows, read at Built.
type view struct {
	Built  time.Time
	Took   time.Duration
	Scopes []scopeView
	Events []eventView
	// Errors are the reads that failed; the rest of the view still shows.
	Errors []string
	// Nodes counts every node shown.
	Nodes int
}

type scopeView struct {
	Scope
	Groups    []groupView
	Clusters  []clusterView // cache clusters outside any replication group
	Snapshots []types.Snapshot
}

type groupView struct {
	ID, Status, Description string
	ClusterMode, Failover   string
	Endpoint                string
	// Resharding is the slot migration's progress while one runs, else -1.
	Resharding float64
	Shards     []shardView
}

type shardView struct {
	ID, Status, Slots string
	// SlotCount is how many of the 16384 hash slots the shard serves.
	SlotCount int
	Nodes     []nodeView
}

type nodeView struct {
	Node
	// ClusterStatus is the cache cluster's status as Describe shows it;
	// Node.Status is its node's.
	ClusterStatus string
}

type clusterView struct {
	ID, Status, Engine, NodeType string
	Nodes                        []nodeView
}

type eventView struct {
	Scope
	Date                 time.Time
	SourceType, SourceID string
	Message              string
}

// Bounds of what one view holds: events of the last eventWindow, at most
// maxEvents of them across scopes (newest first), and Describe pages of
// pageSize records.
const (
	eventWindow = 24 * time.Hour
	maxEvents   = 100
	pageSize    = 100
)

// build reads everything through src, scope by scope in parallel.
func build(ctx context.Context, src Source) *view {
	begin := time.Now()
	scopes := src.Scopes()
	sort.Slice(scopes, func(i, j int) bool {
		return scopes[i].Account+"/"+scopes[i].Region < scopes[j].Account+"/"+scopes[j].Region
	})
	out := make([]scopeView, len(scopes))
	events := make([][]eventView, len(scopes))
	errs := make([][]string, len(scopes))
	var wg sync.WaitGroup
	for i, sc := range scopes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], events[i], errs[i] = buildScope(ctx, src, sc)
		}()
	}
	wg.Wait()
	v := &view{Built: begin}
	for i := range scopes {
		v.Errors = append(v.Errors, errs[i]...)
		v.Events = append(v.Events, events[i]...)
		if s := out[i]; len(s.Groups)+len(s.Clusters)+len(s.Snapshots) > 0 {
			v.Scopes = append(v.Scopes, s)
		}
		for _, g := range out[i].Groups {
			for _, sh := range g.Shards {
				v.Nodes += len(sh.Nodes)
			}
		}
		for _, cl := range out[i].Clusters {
			v.Nodes += len(cl.Nodes)
		}
	}
	sort.SliceStable(v.Events, func(i, j int) bool { return v.Events[i].Date.After(v.Events[j].Date) })
	if len(v.Events) > maxEvents {
		v.Events = v.Events[:maxEvents]
	}
	v.Took = time.Since(begin)
	return v
}

// buildScope reads one scope: its groups, clusters, snapshots and events
// through the Describe handlers, and its nodes live.
func buildScope(ctx context.Context, src Source, sc Scope) (scopeView, []eventView, []string) {
	sv := scopeView{Scope: sc}
	var errs []string
	fail := func(what string, err error) {
		errs = append(errs, fmt.Sprintf("%s/%s %s: %v", sc.Account, sc.Region, what, err))
	}
	var nodes map[string]Node
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nodes = map[string]Node{}
		for _, n := range src.NodeStats(ctx, sc) {
			nodes[n.CacheClusterID] = n
		}
	}()

	groups, err := allPages(func(marker *string) ([]types.ReplicationGroup, *string, error) {
		o, err := src.DescribeReplicationGroups(scoped(ctx, sc, "DescribeReplicationGroups"),
			&elasticache.DescribeReplicationGroupsInput{Marker: marker, MaxRecords: aws.Int32(pageSize)})
		if err != nil {
			return nil, nil, err
		}
		return o.ReplicationGroups, o.Marker, nil
	})
	if err != nil {
		fail("DescribeReplicationGroups", err)
	}
	clusters, err := allPages(func(marker *string) ([]types.CacheCluster, *string, error) {
		o, err := src.DescribeCacheClusters(scoped(ctx, sc, "DescribeCacheClusters"),
			&elasticache.DescribeCacheClustersInput{Marker: marker, MaxRecords: aws.Int32(pageSize), ShowCacheNodeInfo: aws.Bool(true)})
		if err != nil {
			return nil, nil, err
		}
		return o.CacheClusters, o.Marker, nil
	})
	if err != nil {
		fail("DescribeCacheClusters", err)
	}
	sv.Snapshots, err = allPages(func(marker *string) ([]types.Snapshot, *string, error) {
		o, err := src.DescribeSnapshots(scoped(ctx, sc, "DescribeSnapshots"),
			&elasticache.DescribeSnapshotsInput{Marker: marker, MaxRecords: aws.Int32(50)})
		if err != nil {
			return nil, nil, err
		}
		return o.Snapshots, o.Marker, nil
	})
	if err != nil {
		fail("DescribeSnapshots", err)
	}
	evs, err := src.DescribeEvents(scoped(ctx, sc, "DescribeEvents"),
		&elasticache.DescribeEventsInput{Duration: aws.Int32(int32(eventWindow.Minutes())), MaxRecords: aws.Int32(maxEvents)})
	var events []eventView
	if err != nil {
		fail("DescribeEvents", err)
	} else {
		for _, e := range evs.Events {
			events = append(events, eventView{Scope: sc, Date: aws.ToTime(e.Date), SourceType: string(e.SourceType),
				SourceID: aws.ToString(e.SourceIdentifier), Message: aws.ToString(e.Message)})
		}
	}
	wg.Wait()

	status := map[string]types.CacheCluster{}
	for _, cl := range clusters {
		status[aws.ToString(cl.CacheClusterId)] = cl
	}
	node := func(id string) nodeView {
		n, ok := nodes[id]
		if !ok {
			n = Node{CacheClusterID: id, Role: "unknown"}
		}
		return nodeView{Node: n, ClusterStatus: aws.ToString(status[id].CacheClusterStatus)}
	}
	for _, g := range groups {
		sv.Groups = append(sv.Groups, groupOf(g, node))
	}
	for _, cl := range clusters {
		if cl.ReplicationGroupId != nil {
			continue
		}
		cv := clusterView{ID: aws.ToString(cl.CacheClusterId), Status: aws.ToString(cl.CacheClusterStatus),
			Engine: aws.ToString(cl.Engine) + " " + aws.ToString(cl.EngineVersion), NodeType: aws.ToString(cl.CacheNodeType)}
		// The live view speaks Redis; a Memcached cluster shows what
		// Describe says of each of its nodes.
		if n, ok := nodes[cv.ID]; ok && aws.ToString(cl.Engine) != "memcached" {
			cv.Nodes = append(cv.Nodes, nodeView{Node: n, ClusterStatus: cv.Status})
		} else {
			for _, cn := range cl.CacheNodes {
				ep := ""
				if cn.Endpoint != nil {
					ep = fmt.Sprintf("%s:%d", aws.ToString(cn.Endpoint.Address), aws.ToInt32(cn.Endpoint.Port))
				}
				cv.Nodes = append(cv.Nodes, nodeView{ClusterStatus: cv.Status, Node: Node{CacheClusterID: cv.ID,
					Endpoint: ep, Status: aws.ToString(cn.CacheNodeStatus), Role: "-"}})
			}
		}
		sv.Clusters = append(sv.Clusters, cv)
	}
	return sv, events, errs
}

// groupOf is the view of one replication group, its nodes from node.
func groupOf(g types.ReplicationGroup, node func(id string) nodeView) groupView {
	gv := groupView{ID: aws.ToString(g.ReplicationGroupId), Status: aws.ToString(g.Status), Description: aws.ToString(g.Description),
		ClusterMode: string(g.ClusterMode), Failover: string(g.AutomaticFailover), Resharding: -1}
	if ep := g.ConfigurationEndpoint; ep != nil {
		gv.Endpoint = fmt.Sprintf("%s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port))
	}
	if pm := g.PendingModifiedValues; pm != nil && pm.Resharding != nil && pm.Resharding.SlotMigration != nil && pm.Resharding.SlotMigration.ProgressPercentage != nil {
		gv.Resharding = *pm.Resharding.SlotMigration.ProgressPercentage
	}
	for _, ng := range g.NodeGroups {
		sh := shardView{ID: aws.ToString(ng.NodeGroupId), Status: aws.ToString(ng.Status), Slots: aws.ToString(ng.Slots)}
		sh.SlotCount = slotCount(sh.Slots)
		if gv.Endpoint == "" && ng.PrimaryEndpoint != nil {
			gv.Endpoint = fmt.Sprintf("%s:%d", aws.ToString(ng.PrimaryEndpoint.Address), aws.ToInt32(ng.PrimaryEndpoint.Port))
		}
		for _, m := range ng.NodeGroupMembers {
			sh.Nodes = append(sh.Nodes, node(aws.ToString(m.CacheClusterId)))
		}
		gv.Shards = append(gv.Shards, sh)
	}
	return gv
}

// slotCount counts the slots of a Slots member ("0-5460,10923-16383").
func slotCount(slots string) int {
	n := 0
	for _, r := range strings.Split(slots, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(r), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				continue
			}
		}
		n += b - a + 1
	}
	return n
}

// allPages follows a Describe's markers to the end.
func allPages[T any](page func(marker *string) ([]T, *string, error)) ([]T, error) {
	var all []T
	var marker *string
	for {
		items, next, err := page(marker)
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if aws.ToString(next) == "" {
			return all, nil
		}
		marker = next
	}
}
