package emulator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

// The admin API lives next to the health endpoint. It is not part of AWS:
// it lets users' own tests see replication state and rehearse failures
// without knowing process ids or container names.
const (
	AdminNodesPath = "/_elasticache/nodes"
	// AdminHeader must be on every admin action (POST): a page cannot add
	// a custom header to a cross-site request without a preflight, which
	// the front door refuses.
	AdminHeader = "X-Elasticache-Local-Admin"
)

// NodeView is one node as the admin API shows it.
type NodeView struct {
	AccountID          string `json:"accountId"`
	Region             string `json:"region"`
	ReplicationGroupID string `json:"replicationGroupId,omitempty"`
	NodeGroupID        string `json:"nodeGroupId,omitempty"`
	CacheClusterID     string `json:"cacheClusterId"`
	CacheNodeID        string `json:"cacheNodeId"`
	// Node is the runtime's name for the node (process directory or
	// container name), for faults made from outside (docker kill).
	Node     string `json:"node"`
	Endpoint string `json:"endpoint"`
	Status   string `json:"status"`
	// Role is "primary" or "replica" as the node itself reports it, or
	// "unreachable".
	Role              string `json:"role"`
	ReplicationOffset int64  `json:"replicationOffset"`
	// LagBytes is how far a replica is behind its primary's offset;
	// LagSeconds is seconds since it last heard from the primary.
	LagBytes   int64 `json:"lagBytes"`
	LagSeconds int   `json:"lagSeconds"`
	LinkUp     bool  `json:"linkUp"`
	// UsedMemory and MaxMemory are the node's used_memory and maxmemory
	// (0: no limit); Keys counts the keys of every database.
	UsedMemory int64 `json:"usedMemory"`
	MaxMemory  int64 `json:"maxMemory"`
	Keys       int64 `json:"keys"`
	// PID is the node's process id where the runtime has one, so a test can
	// also fail a node from outside the emulator (kill -9).
	PID int `json:"pid,omitempty"`
	// EngineVersion is the engine and version the node was started as
	// ("redis 7.1.0"), a node change under way included; Server is what it
	// really runs ("redis 7.0.15"): the binary or image the runtime maps
	// that version to.
	EngineVersion string `json:"engineVersion"`
	Server        string `json:"server,omitempty"`
}

// Nodes inspects every node live and returns them sorted by account,
// region and cluster id.
func (e *Emulator) Nodes(ctx context.Context) []NodeView {
	return e.nodes(ctx, func(scope) bool { return true }, true)
}

// NodesIn is Nodes of one account and region.
func (e *Emulator) NodesIn(ctx context.Context, account, region string) []NodeView {
	return e.nodes(ctx, func(sc scope) bool { return sc == scope{account, region} }, true)
}

// Bounds of a live inspection of many nodes: at most inspectParallel INFO
// calls at a time, each given inspectTimeout, so a view of hundreds of
// nodes, some of them paused, answers in bounded time.
const (
	inspectParallel = 32
	inspectTimeout  = 2 * time.Second
)

// nodes inspects the nodes of the scopes include selects, with one INFO
// call per node; withPIDs also asks the runtime for each node's process id
// (a docker inspect per node on the docker runtime).
func (e *Emulator) nodes(ctx context.Context, include func(scope) bool, withPIDs bool) []NodeView {
	type target struct {
		view    NodeView
		ep      engine.Endpoint
		name    string
		primary string // the node group's primary's endpoint, for a replica
		offset  int64  // master_repl_offset as the node reports it
		// memcached: a Memcached node, which has no replication to show.
		memcached bool
	}
	var targets []target
	for _, r := range e.allRegions() {
		sc := r.scope
		if !include(sc) {
			continue
		}
		r.mu.RLock() // a look, like a Describe (the console polls it)
		for _, cl := range r.clusters {
			if cl.mc != nil {
				// Every node of a Memcached cluster, with no replication.
				for _, n := range cl.nodes {
					targets = append(targets, target{ep: n.endpoint, name: n.name, memcached: true, view: NodeView{
						AccountID: sc.account, Region: sc.region, CacheClusterID: cl.id, CacheNodeID: n.id,
						Node: n.name, Endpoint: n.endpoint.Addr(), Status: n.status, Role: "memcached",
					}})
				}
				continue
			}
			n := cl.nodes[0]
			runs := r.runningAs(cl).engine
			t := target{ep: n.endpoint, name: n.name, view: NodeView{
				EngineVersion: runs.Engine + " " + runs.Actual,
				AccountID:     sc.account, Region: sc.region, ReplicationGroupID: cl.groupID,
				CacheClusterID: cl.id, CacheNodeID: n.id, Node: n.name, Endpoint: n.endpoint.Addr(), Status: n.status,
			}}
			if g := r.groups[cl.groupID]; g != nil {
				if ng := g.nodeGroupOf(cl.id); ng != nil {
					t.view.NodeGroupID = ng.id
					if p := r.clusters[ng.primary]; p != nil && ng.primary != cl.id {
						t.primary = p.nodes[0].endpoint.Addr()
					}
				}
			}
			targets = append(targets, t)
		}
		r.mu.RUnlock()
	}

	sem := make(chan struct{}, inspectParallel)
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				targets[i].view.Role = "unreachable"
				return
			}
			ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
			defer cancel()
			t := &targets[i]
			if withPIDs {
				if node, err := e.opts.Runtime.Inspect(ctx, t.name); err == nil && node.Running {
					t.view.PID = node.PID
				}
			}
			if t.memcached {
				return
			}
			st, err := e.admin.InspectNode(ctx, t.ep)
			if err != nil {
				t.view.Role = "unreachable"
				return
			}
			info := st.Replication
			t.view.Role = map[bool]string{true: "primary", false: "replica"}[info.IsPrimary()]
			t.view.UsedMemory, t.view.MaxMemory, t.view.Keys = st.UsedMemory, st.MaxMemory, st.Keys
			t.offset = info.MasterOffset
			t.view.Server = st.Server
			t.view.ReplicationOffset = info.MasterOffset
			if info.IsReplica() {
				t.view.ReplicationOffset = info.ReplicaOffset
				t.view.LinkUp, t.view.LagSeconds = info.LinkUp, info.LagSeconds
			}
		}()
	}
	wg.Wait()
	// A replica's lag in bytes is its primary's offset less its own, both
	// read in this one pass (no second INFO of the primary per replica).
	offsets := map[string]int64{}
	for _, t := range targets {
		if t.view.Role == "primary" {
			offsets[t.view.Endpoint] = t.offset
		}
	}
	out := make([]NodeView, len(targets))
	for i, t := range targets {
		if p, ok := offsets[t.primary]; ok && t.view.Role == "replica" {
			t.view.LagBytes = max(0, p-t.view.ReplicationOffset)
		}
		out[i] = t.view
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.AccountID+"/"+a.Region+"/"+a.CacheClusterID+"/"+a.CacheNodeID < b.AccountID+"/"+b.Region+"/"+b.CacheClusterID+"/"+b.CacheNodeID
	})
	return out
}

// ErrNoSuchNode is returned by InjectFault for an unknown cluster.
var ErrNoSuchNode = errors.New("no such cache cluster")

// InjectFault kills, pauses (SIGSTOP / docker pause) or resumes the node of
// a cache cluster. account and region default to the emulator's.
func (e *Emulator) InjectFault(ctx context.Context, account, region, clusterID, action string) error {
	fi, ok := e.opts.Runtime.(engine.FaultInjector)
	if !ok {
		return fmt.Errorf("the %s runtime cannot inject faults", e.opts.Runtime.Name())
	}
	if account == "" {
		account = e.opts.AccountID
	}
	if region == "" {
		region = e.opts.Region
	}
	var name string
	r := e.regionFor(queryapiContext(account, region))
	r.mu.RLock()
	if cl := r.clusters[strings.ToLower(clusterID)]; cl != nil {
		name = cl.nodes[0].name
	}
	r.mu.RUnlock()
	if name == "" {
		return fmt.Errorf("%w: %s in %s/%s", ErrNoSuchNode, clusterID, account, region)
	}
	e.log.Info("fault injected", "cluster", clusterID, "action", action)
	switch action {
	case "kill":
		return fi.Kill(ctx, name)
	case "pause":
		return fi.Pause(ctx, name)
	case "resume":
		return fi.Resume(ctx, name)
	}
	return fmt.Errorf("unknown fault %q (kill, pause, resume)", action)
}

// registerAdmin adds the admin routes to router. Both act in one account
// and region, the emulator's defaults unless ?account=…&region=… say
// otherwise, as a signed API request would. Fault injection needs the
// AdminHeader, which a web page cannot send cross-site (see frontDoor).
func (s *Server) registerAdmin(router *mux.Router) {
	router.HandleFunc(AdminNodesPath, func(w http.ResponseWriter, r *http.Request) {
		account, region, ok := s.adminScope(w, r)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, s.emu.NodesIn(r.Context(), account, region))
	}).Methods(http.MethodGet)
	router.HandleFunc(AdminNodesPath+"/{cacheClusterId}/{action:kill|pause|resume}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(AdminHeader) == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "fault injection needs the header " + AdminHeader + ": 1"})
			return
		}
		account, region, ok := s.adminScope(w, r)
		if !ok {
			return
		}
		v := mux.Vars(r)
		err := s.emu.InjectFault(r.Context(), account, region, v["cacheClusterId"], v["action"])
		switch {
		case errors.Is(err, ErrNoSuchNode):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}).Methods(http.MethodPost)
}

// adminScope is the account and region an admin request acts in, checked
// like a credential scope; it answers 400 itself when they are invalid.
func (s *Server) adminScope(w http.ResponseWriter, r *http.Request) (account, region string, ok bool) {
	q := r.URL.Query()
	account, region = cmp.Or(q.Get("account"), s.emu.opts.AccountID), cmp.Or(q.Get("region"), s.emu.opts.Region)
	if !queryapi.ValidAccountID(account) || !queryapi.ValidRegion(region) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "account must be 12 digits and region an AWS region code (like us-east-1)"})
		return "", "", false
	}
	return account, region, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
