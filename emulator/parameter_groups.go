package emulator

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// paramDef is one engine parameter a parameter group can set. Name is the
// redis.conf directive; the emulator applies values to the nodes for real
// (at start, and with CONFIG SET when a group changes).
type paramDef struct {
	Name, Default, DataType, Allowed, Description string
	// Min and Max bound integers (Max 0: no upper bound).
	Min, Max int64
}

// paramCatalog lists the parameters of the Redis OSS / Valkey families.
var paramCatalog = []paramDef{
	{"lazyfree-lazy-eviction", "no", "string", "yes,no", "Performs an asynchronous delete on evictions.", 0, 0},
	{"lazyfree-lazy-expire", "no", "string", "yes,no", "Performs an asynchronous delete on expired keys.", 0, 0},
	{"lazyfree-lazy-server-del", "no", "string", "yes,no", "Performs an asynchronous delete for commands which update values.", 0, 0},
	{"maxmemory-policy", "volatile-lru", "string", "volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,allkeys-random,volatile-ttl,noeviction", "Max memory policy.", 0, 0},
	{"maxmemory-samples", "3", "integer", "1-", "Max memory samples.", 1, 0},
	{"notify-keyspace-events", "", "string", "", "The keyspace events for Redis to notify Pub/Sub clients about. By default all notifications are disabled.", 0, 0},
	{"slowlog-log-slower-than", "10000", "integer", "0-", "The execution time, in microseconds, to exceed in order for the command to get logged.", 0, 0},
	{"slowlog-max-len", "128", "integer", "0-", "The length of the slow log.", 0, 0},
	{"tcp-keepalive", "300", "integer", "0-", "If non-zero, send ACKs every given number of seconds.", 0, 0},
	{"timeout", "0", "integer", "0,20-", "Close connection if client is idle for a given number of seconds, or never if 0.", 0, 0},
}

func findParam(name string) (paramDef, bool) {
	i := slices.IndexFunc(paramCatalog, func(p paramDef) bool { return p.Name == name })
	if i < 0 {
		return paramDef{}, false
	}
	return paramCatalog[i], true
}

// check validates a value for the parameter.
func (p paramDef) check(v string) error {
	switch {
	case p.DataType == "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < p.Min || (p.Max > 0 && n > p.Max) || (p.Name == "timeout" && n > 0 && n < 20) {
			return invalidParameterValue("Invalid value %q for parameter %s; allowed values: %s.", v, p.Name, p.Allowed)
		}
	case p.Allowed != "" && !slices.Contains(strings.Split(p.Allowed, ","), v):
		return invalidParameterValue("Invalid value %q for parameter %s; allowed values: %s.", v, p.Name, p.Allowed)
	case p.Name == "notify-keyspace-events" && strings.Trim(v, "KEg$lshzxeAtmdn") != "":
		return invalidParameterValue("Invalid value %q for parameter notify-keyspace-events.", v)
	}
	return nil
}

// values returns the parameter values a node of the group runs with: the
// group's own, over the engine defaults.
func (pg *paramGroup) values() map[string]string {
	out := make(map[string]string, len(paramCatalog))
	for _, p := range paramCatalog {
		out[p.Name] = p.Default
	}
	for k, v := range pg.params {
		out[k] = v
	}
	return out
}

// describeParams renders the parameters, filtered by source ("user":
// changed in the group, "engine-default" or "system": not changed).
func (pg *paramGroup) describeParams(source string) []types.Parameter {
	if isMemcachedFamily(pg.family) {
		return pg.describeMemcachedParams(source)
	}
	var out []types.Parameter
	for _, p := range paramCatalog {
		v, user := pg.params[p.Name]
		src := "user"
		if !user {
			v, src = p.Default, "engine-default"
		}
		if source != "" && source != src && !(source == "system" && !user) {
			continue
		}
		out = append(out, types.Parameter{
			ParameterName: aws.String(p.Name), ParameterValue: aws.String(v), Source: aws.String(src),
			DataType: aws.String(p.DataType), AllowedValues: aws.String(p.Allowed), Description: aws.String(p.Description),
			IsModifiable: aws.Bool(!pg.isDefault()), MinimumEngineVersion: aws.String("2.8.6"), ChangeType: types.ChangeTypeImmediate,
		})
	}
	return out
}

// reservedMemoryPercent is the group's reserved-memory-percent.
func (pg *paramGroup) reservedMemoryPercent() int {
	if v, ok := pg.params["reserved-memory-percent"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return defaultReservedMemoryPercent
}

func (pg *paramGroup) isDefault() bool { return strings.HasPrefix(pg.name, "default.") }

func (pg *paramGroup) describe(r *region) types.CacheParameterGroup {
	return types.CacheParameterGroup{
		ARN:                       aws.String(r.arn("parametergroup", pg.name)),
		CacheParameterGroupName:   aws.String(pg.name),
		CacheParameterGroupFamily: aws.String(pg.family),
		Description:               aws.String(pg.description),
		IsGlobal:                  aws.Bool(false),
	}
}

func familyExists(family string) bool {
	return slices.ContainsFunc(engineCatalog, func(ev engineVersion) bool { return ev.Family == family })
}

// CreateCacheParameterGroup creates a parameter group of a family.
func (e *Emulator) CreateCacheParameterGroup(ctx context.Context, in *elasticache.CreateCacheParameterGroupInput) (*elasticache.CreateCacheParameterGroupOutput, error) {
	name, err := normalizeID("CacheParameterGroupName", in.CacheParameterGroupName, 255)
	if err != nil {
		return nil, err
	}
	family := aws.ToString(in.CacheParameterGroupFamily)
	if !familyExists(family) {
		return nil, invalidParameterValue("Invalid CacheParameterGroupFamily %q.", family)
	}
	if err := checkLength("Description", in.Description, maxDescriptionLen); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	if _, ok := r.paramGroups[name]; ok {
		return nil, paramGroupAlreadyExists(name)
	}
	pg := &paramGroup{name: name, family: family, description: aws.ToString(in.Description), params: map[string]string{}}
	r.paramGroups[name] = pg
	if len(in.Tags) > 0 {
		r.tags[r.arn("parametergroup", name)] = mergeTags(nil, in.Tags)
	}
	e.record(r, types.SourceTypeCacheParameterGroup, name, "Cache parameter group %s created", name)
	return &elasticache.CreateCacheParameterGroupOutput{CacheParameterGroup: ptr(pg.describe(r))}, nil
}

// modifiableParamGroup finds a parameter group the user may change; the caller holds r.mu.
func (r *region) modifiableParamGroup(name *string) (*paramGroup, error) {
	n := aws.ToString(name)
	if n == "" {
		return nil, mustNotBeBlank("CacheParameterGroupName")
	}
	pg, ok := r.paramGroups[n]
	if !ok {
		return nil, paramGroupNotFound(n)
	}
	if pg.isDefault() {
		return nil, invalidParameterValue("Default parameter groups cannot be modified or deleted: %s.", n)
	}
	return pg, nil
}

// ModifyCacheParameterGroup sets parameters; nodes using the group get them
// at once (CONFIG SET), like the immediate parameters on AWS.
func (e *Emulator) ModifyCacheParameterGroup(ctx context.Context, in *elasticache.ModifyCacheParameterGroupInput) (*elasticache.ModifyCacheParameterGroupOutput, error) {
	if len(in.ParameterNameValues) == 0 {
		return nil, mustNotBeBlank("ParameterNameValues")
	}
	if ok, err := e.memcachedGroupChange(ctx, in.CacheParameterGroupName, memcachedParamChange(in), nil, false); ok {
		if err != nil {
			return nil, err
		}
		return &elasticache.ModifyCacheParameterGroupOutput{CacheParameterGroupName: in.CacheParameterGroupName}, nil
	}
	set := map[string]string{}
	for _, nv := range in.ParameterNameValues {
		def, ok := findParam(aws.ToString(nv.ParameterName))
		if !ok {
			return nil, invalidParameterValue("Unknown parameter %q.", aws.ToString(nv.ParameterName))
		}
		if err := def.check(aws.ToString(nv.ParameterValue)); err != nil {
			return nil, err
		}
		set[def.Name] = aws.ToString(nv.ParameterValue)
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg, err := r.modifiableParamGroup(in.CacheParameterGroupName)
	if err != nil {
		return nil, err
	}
	for k, v := range set {
		pg.params[k] = v
	}
	e.applyParams(r, pg)
	e.record(r, types.SourceTypeCacheParameterGroup, pg.name, "Updated parameter group %s", pg.name)
	return &elasticache.ModifyCacheParameterGroupOutput{CacheParameterGroupName: aws.String(pg.name)}, nil
}

// ResetCacheParameterGroup returns parameters to the engine defaults.
func (e *Emulator) ResetCacheParameterGroup(ctx context.Context, in *elasticache.ResetCacheParameterGroupInput) (*elasticache.ResetCacheParameterGroupOutput, error) {
	all := aws.ToBool(in.ResetAllParameters)
	if all == (len(in.ParameterNameValues) > 0) {
		return nil, invalidParameterCombination("Specify either ResetAllParameters or ParameterNameValues.")
	}
	var names []string
	for _, nv := range in.ParameterNameValues {
		names = append(names, aws.ToString(nv.ParameterName))
	}
	if ok, err := e.memcachedGroupChange(ctx, in.CacheParameterGroupName, nil, names, all); ok {
		if err != nil {
			return nil, err
		}
		return &elasticache.ResetCacheParameterGroupOutput{CacheParameterGroupName: in.CacheParameterGroupName}, nil
	}
	names = nil
	for _, nv := range in.ParameterNameValues {
		if _, ok := findParam(aws.ToString(nv.ParameterName)); !ok {
			return nil, invalidParameterValue("Unknown parameter %q.", aws.ToString(nv.ParameterName))
		}
		names = append(names, aws.ToString(nv.ParameterName))
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg, err := r.modifiableParamGroup(in.CacheParameterGroupName)
	if err != nil {
		return nil, err
	}
	if all {
		pg.params = map[string]string{}
	}
	for _, n := range names {
		delete(pg.params, n)
	}
	e.applyParams(r, pg)
	e.record(r, types.SourceTypeCacheParameterGroup, pg.name, "Reset parameter group %s", pg.name)
	return &elasticache.ResetCacheParameterGroupOutput{CacheParameterGroupName: aws.String(pg.name)}, nil
}

// DeleteCacheParameterGroup deletes a parameter group no cluster uses.
func (e *Emulator) DeleteCacheParameterGroup(ctx context.Context, in *elasticache.DeleteCacheParameterGroupInput) (*elasticache.DeleteCacheParameterGroupOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg, err := r.modifiableParamGroup(in.CacheParameterGroupName)
	if err != nil {
		return nil, err
	}
	for _, cl := range r.clusters {
		if cl.paramGroup == pg.name {
			return nil, invalidParamGroupState("Parameter group %s is in use by cache cluster %s.", pg.name, cl.id)
		}
	}
	delete(r.paramGroups, pg.name)
	delete(r.tags, r.arn("parametergroup", pg.name))
	e.record(r, types.SourceTypeCacheParameterGroup, pg.name, "Cache parameter group %s deleted", pg.name)
	return &elasticache.DeleteCacheParameterGroupOutput{}, nil
}

// DescribeCacheParameters lists a group's parameters.
func (e *Emulator) DescribeCacheParameters(ctx context.Context, in *elasticache.DescribeCacheParametersInput) (*elasticache.DescribeCacheParametersOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	source := aws.ToString(in.Source)
	if source != "" && source != "user" && source != "system" && source != "engine-default" {
		return nil, invalidParameterValue("The parameter Source must be user, system or engine-default.")
	}
	r := e.lockRegion(ctx)
	defer r.mu.Unlock() // read only: nothing to persist
	name := aws.ToString(in.CacheParameterGroupName)
	pg, ok := r.paramGroups[name]
	if !ok {
		return nil, paramGroupNotFound(name)
	}
	params, next := pageParams(pg.describeParams(source), in.Marker, max)
	return &elasticache.DescribeCacheParametersOutput{Parameters: params, Marker: next,
		CacheNodeTypeSpecificParameters: []types.CacheNodeTypeSpecificParameter{}}, nil
}

// DescribeEngineDefaultParameters lists a family's default parameters.
func (e *Emulator) DescribeEngineDefaultParameters(ctx context.Context, in *elasticache.DescribeEngineDefaultParametersInput) (*elasticache.DescribeEngineDefaultParametersOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	family := aws.ToString(in.CacheParameterGroupFamily)
	if !familyExists(family) {
		return nil, invalidParameterValue("Invalid CacheParameterGroupFamily %q.", family)
	}
	pg := &paramGroup{name: "default." + family, family: family}
	params, next := pageParams(pg.describeParams(""), in.Marker, max)
	return &elasticache.DescribeEngineDefaultParametersOutput{EngineDefaults: &types.EngineDefaults{
		CacheParameterGroupFamily: aws.String(family), Parameters: params, Marker: next,
		CacheNodeTypeSpecificParameters: []types.CacheNodeTypeSpecificParameter{}}}, nil
}

// pageParams pages parameters by name (paramCatalog is sorted by name).
func pageParams(params []types.Parameter, marker *string, max int) ([]types.Parameter, *string) {
	return pageAfter(params, func(p types.Parameter) string { return aws.ToString(p.ParameterName) }, marker, max)
}

// applyParams pushes the group's values to every running node of every
// cluster using it (CONFIG SET), in the background; the caller holds r.mu.
func (e *Emulator) applyParams(r *region, pg *paramGroup) {
	var using []*cacheCluster
	for _, cl := range r.clusters {
		if cl.paramGroup == pg.name {
			using = append(using, cl)
		}
	}
	e.configSet(r, pg.name, using)
}

// configSet applies parameter group pg to every node of clusters in the
// background (each node's own configuration: maxmemory follows its node
// type), logging failures; the caller holds r.mu. An apply cut off by a
// restart is made again then (restore.go).
func (e *Emulator) configSet(r *region, pg string, clusters []*cacheCluster) {
	type nodeValues struct {
		ep     engine.Endpoint
		values map[string]string
	}
	var targets []nodeValues
	for _, cl := range clusters {
		values := r.nodeConfig(cl, pg)
		for _, n := range cl.nodes {
			targets = append(targets, nodeValues{n.endpoint, values})
		}
	}
	if len(targets) == 0 {
		return
	}
	e.runOperation(r, opApplyParameters, pg, nil, func(ctx context.Context) {
		for _, t := range targets {
			err := e.admin.ConfigSet(ctx, t.ep, t.values)
			if err != nil {
				e.log.Warn("applying parameters", "node", t.ep.Addr(), "err", fmt.Sprint(err))
			}
		}
	})
}
