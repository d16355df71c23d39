package emulator

// Memcached parameter groups (families memcached1.4, 1.5, 1.6): AWS's
// parameters, each applied as the memcached option it stands for when a
// node starts. memcached reads its options only at start, so every change
// takes effect when a node restarts (requires-reboot, as on AWS): a node
// started before the change is listed in CacheNodeIdsToReboot until then.

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// memcachedParam is one parameter of the Memcached families: option is the
// memcached option (engine.MemcachedArgs) it sets, "" for one applied
// otherwise (memcached_connections_overhead lowers -m).
type memcachedParam struct {
	name, def, dataType, allowed, description string
	option                                    string
	// boolean parameters set a switch when 1 (option with no value).
	boolean bool
	// min and max bound integers and floats.
	min, max float64
	since    string // minimum engine version
}

// memcachedParams are the parameters AWS documents for Memcached, sorted by
// name. large_memory_pages and lock_down_paged_memory are not offered:
// they need privileges (huge pages, mlock) a local node lacks.
var memcachedParams = []memcachedParam{
	{"backlog_queue_limit", "1024", "integer", "1-10000", "The backlog queue limit.", "listen-backlog", false, 1, 10000, "1.4.5"},
	{"binding_protocol", "auto", "string", "auto,binary,ascii", "The binding protocol.", "protocol", false, 0, 0, "1.4.5"},
	{"cas_disabled", "0", "boolean", "0,1", "If 1 (true), check and set (CAS) operations will be disabled.", "disable-cas", true, 0, 1, "1.4.5"},
	{"chunk_size", "48", "integer", "1-48", "The minimum amount, in bytes, of space to allocate for the smallest item's key, value, and flags.", "slab-min-size", false, 1, 48, "1.4.5"},
	{"chunk_size_growth_factor", "1.25", "float", "1-2", "The growth factor that controls the size of each successive memcached chunk.", "slab-growth-factor", false, 1, 2, "1.4.5"},
	{"error_on_memory_exhausted", "0", "boolean", "0,1", "If 1 (true), when there is no more memory to store items, memcached will return an error rather than evicting items.", "disable-evictions", true, 0, 1, "1.4.5"},
	{"hash_algorithm", "jenkins", "string", "jenkins,murmur3", "The hash algorithm to be used for the hash table.", "o:hash_algorithm", false, 0, 0, "1.4.24"},
	{"idle_timeout", "0", "integer", "0-", "How long, in seconds, a connection may stay idle before it is closed; 0 never.", "o:idle_timeout", false, 0, 0, "1.4.33"},
	{"max_item_size", "1048576", "integer", "1048576-134217728", "The size, in bytes, of the largest item that can be stored in the cluster.", "max-item-size", false, 1048576, 134217728, "1.4.5"},
	{"max_simultaneous_connections", "65000", "integer", "3-65000", "The maximum number of simultaneous connections.", "conn-limit", false, 3, 65000, "1.4.5"},
	{"maximize_core_file_limit", "0", "boolean", "0,1", "If 1 (true), maximize the core file limit.", "enable-coredumps", true, 0, 1, "1.4.5"},
	{"memcached_connections_overhead", "100", "integer", "10-", "The amount of memory, in megabytes, to be reserved for memcached connections and other miscellaneous overhead.", "", false, 10, 0, "1.4.5"},
	{"requests_per_event", "20", "integer", "20-", "The maximum number of requests per event for a given connection.", "max-reqs-per-event", false, 20, 0, "1.4.5"},
}

// isMemcachedFamily reports whether family is a Memcached parameter family.
func isMemcachedFamily(family string) bool { return strings.HasPrefix(family, "memcached") }

func findMemcachedParam(name string) (memcachedParam, bool) {
	i := slices.IndexFunc(memcachedParams, func(p memcachedParam) bool { return p.name == name })
	if i < 0 {
		return memcachedParam{}, false
	}
	return memcachedParams[i], true
}

// check validates a value for the parameter.
func (p memcachedParam) check(v string) error {
	bad := invalidParameterValue("Invalid value %q for parameter %s; allowed values: %s.", v, p.name, p.allowed)
	switch p.dataType {
	case "integer", "boolean":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || float64(n) < p.min || (p.max > 0 && float64(n) > p.max) {
			return bad
		}
	case "float":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < p.min || f > p.max {
			return bad
		}
	default:
		if !slices.Contains(strings.Split(p.allowed, ","), v) {
			return bad
		}
	}
	return nil
}

// memcachedValues are the parameter values of group pg: its own over the
// defaults.
func (pg *paramGroup) memcachedValues() map[string]string {
	out := make(map[string]string, len(memcachedParams))
	for _, p := range memcachedParams {
		out[p.name] = p.def
	}
	for k, v := range pg.params {
		out[k] = v
	}
	return out
}

// describeMemcachedParams renders the group's parameters for
// DescribeCacheParameters, filtered by source like describeParams.
func (pg *paramGroup) describeMemcachedParams(source string) []types.Parameter {
	var out []types.Parameter
	for _, p := range memcachedParams {
		v, user := pg.params[p.name]
		src := "user"
		if !user {
			v, src = p.def, "engine-default"
		}
		if source != "" && source != src && !(source == "system" && !user) {
			continue
		}
		out = append(out, types.Parameter{
			ParameterName: aws.String(p.name), ParameterValue: aws.String(v), Source: aws.String(src),
			DataType: aws.String(p.dataType), AllowedValues: aws.String(p.allowed), Description: aws.String(p.description),
			IsModifiable: aws.Bool(!pg.isDefault()), MinimumEngineVersion: aws.String(p.since), ChangeType: types.ChangeTypeRequiresReboot,
		})
	}
	return out
}

// memcachedOptions are the memcached options a node of node type nt runs
// with under the parameter values: -m is the node type's memory less
// memcached_connections_overhead, as on AWS (unscaled, unlike a Redis
// node's maxmemory: memcached takes its memory as items arrive, so the
// limit costs nothing until filled). max_simultaneous_connections is
// capped at memcachedConnCap: memcached refuses to start when it cannot
// raise its open-files limit that far, which a local user usually cannot.
func memcachedOptions(nt nodeType, values map[string]string) map[string]string {
	overhead, _ := strconv.Atoi(values["memcached_connections_overhead"])
	opts := map[string]string{"memory-limit": strconv.FormatInt(max(nt.MemoryBytes>>20-int64(overhead), 64), 10)}
	for _, p := range memcachedParams {
		v := values[p.name]
		switch {
		case p.option == "":
		case p.boolean && v == "1":
			opts[p.option] = ""
		case p.boolean:
		case p.name == "max_simultaneous_connections":
			n, _ := strconv.Atoi(v)
			opts[p.option] = strconv.Itoa(min(n, memcachedConnCap))
		default:
			opts[p.option] = v
		}
	}
	return opts
}

// memcachedConfig is the configuration of a node of Memcached cluster cl
// under parameter group pgName; the caller holds r.mu.
func (r *region) memcachedConfig(cl *cacheCluster, pgName string) map[string]string {
	values := (&paramGroup{}).memcachedValues()
	if pg := r.paramGroups[pgName]; pg != nil {
		values = pg.memcachedValues()
	}
	nt, ok := lookupNodeType(cl.nodeType)
	if !ok {
		nt.MemoryBytes = 64 << 20 // validated at create: a hand-edited record
	}
	return memcachedOptions(nt, values)
}

// memcachedConnCap bounds the connection limit a local node gets.
const memcachedConnCap = 4096

// modifyMemcachedParamGroup is ModifyCacheParameterGroup (reset: Reset)
// for a Memcached group: the values are checked against the Memcached
// parameters (a Redis parameter is unknown here), recorded, and the nodes
// of the clusters using the group are marked to reboot for them.
func (e *Emulator) modifyMemcachedParamGroup(r *region, pg *paramGroup, set map[string]string, reset []string, all bool) error {
	for k, v := range set {
		p, ok := findMemcachedParam(k)
		if !ok {
			return invalidParameterValue("Unknown parameter %q for family %s.", k, pg.family)
		}
		if err := p.check(v); err != nil {
			return err
		}
	}
	for _, k := range reset {
		if _, ok := findMemcachedParam(k); !ok {
			return invalidParameterValue("Unknown parameter %q for family %s.", k, pg.family)
		}
	}
	if all {
		pg.params = map[string]string{}
	}
	for _, k := range reset {
		delete(pg.params, k)
	}
	for k, v := range set {
		pg.params[k] = v
	}
	for _, cl := range r.clusters {
		if cl.mc != nil && cl.paramGroup == pg.name {
			cl.mc.markReboot(cl.nodes)
		}
	}
	e.record(r, types.SourceTypeCacheParameterGroup, pg.name, "Updated parameter group %s", pg.name)
	return nil
}

// memcachedGroupChange handles ModifyCacheParameterGroup and
// ResetCacheParameterGroup of a Memcached group; handled is false for any
// other group (the caller goes on).
func (e *Emulator) memcachedGroupChange(ctx context.Context, name *string, set map[string]string, reset []string, all bool) (handled bool, err error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg := r.paramGroups[aws.ToString(name)]
	if pg == nil || !isMemcachedFamily(pg.family) {
		return false, nil
	}
	if _, err := r.modifiableParamGroup(name); err != nil {
		return true, err
	}
	return true, e.modifyMemcachedParamGroup(r, pg, set, reset, all)
}

// memcachedParamChange is the ModifyCacheParameterGroup input as
// name → value, for memcachedGroupChange.
func memcachedParamChange(in *elasticache.ModifyCacheParameterGroupInput) map[string]string {
	set := map[string]string{}
	for _, nv := range in.ParameterNameValues {
		set[aws.ToString(nv.ParameterName)] = aws.ToString(nv.ParameterValue)
	}
	return set
}
