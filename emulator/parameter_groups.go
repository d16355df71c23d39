package emulator

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// values returns every parameter value of the group: its own, over the
// family's defaults (cluster-enabled is yes in a .cluster.on group).
func (pg *paramGroup) values() map[string]string {
	defs := familyParams(pg.family)
	out := make(map[string]string, len(defs))
	for _, p := range defs {
		out[p.Name] = p.Default
	}
	if pg.clusterEnabled() {
		out["cluster-enabled"] = "yes"
	}
	for k, v := range pg.params {
		out[k] = v
	}
	return out
}

// describeParams renders the parameters, filtered by source ("user":
// changed in the group, "system": not modifiable, "engine-default": the
// others).
func (pg *paramGroup) describeParams(source string) []types.Parameter {
	if isMemcachedFamily(pg.family) {
		return pg.describeMemcachedParams(source)
	}
	values := pg.values()
	var out []types.Parameter
	for _, p := range familyParams(pg.family) {
		src := "engine-default"
		if _, user := pg.params[p.Name]; user {
			src = "user"
		} else if !p.Modifiable {
			src = "system"
		}
		if source != "" && source != src {
			continue
		}
		out = append(out, types.Parameter{
			ParameterName: aws.String(p.Name), ParameterValue: aws.String(values[p.Name]), Source: aws.String(src),
			DataType: aws.String(p.DataType), AllowedValues: aws.String(p.Allowed), Description: aws.String(p.Description),
			IsModifiable: aws.Bool(p.Modifiable), MinimumEngineVersion: aws.String(p.MinVersion), ChangeType: p.ChangeType,
		})
	}
	return out
}

// reservedMemory is the group's reserved memory: reserved-memory bytes of
// the node's (AWS) memory when set, else reserved-memory-percent percent.
func (pg *paramGroup) reservedMemory() (bytes int64, percent int) {
	v := pg.values()
	bytes, _ = strconv.ParseInt(v["reserved-memory"], 10, 64)
	percent, err := strconv.Atoi(v["reserved-memory-percent"])
	if err != nil {
		percent = defaultReservedMemoryPercent
	}
	return bytes, percent
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

// maxParamsPerCall is how many parameters one Modify or Reset call may
// name, as on AWS.
const maxParamsPerCall = 20

// ModifyCacheParameterGroup sets parameters. Immediate ones reach the nodes
// using the group at once (CONFIG SET); requires-reboot ones when a node
// restarts, the clusters showing pending-reboot until then.
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
	if len(in.ParameterNameValues) > maxParamsPerCall {
		return nil, invalidParameterValue("At most %d parameters can be modified in one call, not %d.", maxParamsPerCall, len(in.ParameterNameValues))
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg, err := r.modifiableParamGroup(in.CacheParameterGroupName)
	if err != nil {
		return nil, err
	}
	set := map[string]string{}
	for _, nv := range in.ParameterNameValues {
		def, err := r.changeableParam(pg, aws.ToString(nv.ParameterName))
		if err != nil {
			return nil, err
		}
		if err := def.check(aws.ToString(nv.ParameterValue)); err != nil {
			return nil, err
		}
		set[def.Name] = aws.ToString(nv.ParameterValue)
	}
	e.changeParams(r, pg, func() {
		for k, v := range set {
			pg.params[k] = v
		}
	})
	e.record(r, types.SourceTypeCacheParameterGroup, pg.name, "Updated parameter group %s", pg.name)
	return &elasticache.ModifyCacheParameterGroupOutput{CacheParameterGroupName: aws.String(pg.name)}, nil
}

// changeableParam finds the parameter a Modify or Reset of group pg names,
// or AWS's error for one the family lacks or that cannot change now; the
// caller holds r.mu.
func (r *region) changeableParam(pg *paramGroup, name string) (paramDef, error) {
	def, ok := findParam(pg.family, name)
	switch {
	case !ok:
		return def, invalidParameterValue("Unknown parameter %q for family %s.", name, pg.family)
	case !def.Modifiable:
		return def, invalidParameterValue("The parameter %s is not modifiable.", name)
	case def.OnlyUnassociated && r.paramGroupInUse(pg.name) != "":
		return def, invalidParamGroupState("The parameter %s can only be changed while no cache cluster uses parameter group %s; %s does.", name, pg.name, r.paramGroupInUse(pg.name))
	}
	return def, nil
}

// paramGroupInUse is the id of a cluster using the group, "" when none
// does; the caller holds r.mu.
func (r *region) paramGroupInUse(name string) string {
	for _, id := range sortedKeys(r.clusters) {
		if r.clusters[id].paramGroup == name {
			return id
		}
	}
	return ""
}

// changeParams makes change to pg's values, then applies the group to its
// clusters: a changed requires-reboot parameter leaves them pending-reboot;
// the caller holds r.mu.
func (e *Emulator) changeParams(r *region, pg *paramGroup, change func()) {
	before := pg.values()
	change()
	after := pg.values()
	for _, p := range familyParams(pg.family) {
		if p.ChangeType == types.ChangeTypeRequiresReboot && before[p.Name] != after[p.Name] {
			for _, cl := range r.clusters {
				if cl.paramGroup == pg.name {
					cl.pendingReboot = true
				}
			}
		}
	}
	e.applyParams(r, pg)
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
	if len(in.ParameterNameValues) > maxParamsPerCall {
		return nil, invalidParameterValue("At most %d parameters can be reset in one call, not %d.", maxParamsPerCall, len(in.ParameterNameValues))
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	pg, err := r.modifiableParamGroup(in.CacheParameterGroupName)
	if err != nil {
		return nil, err
	}
	names = nil
	for _, nv := range in.ParameterNameValues {
		def, err := r.changeableParam(pg, aws.ToString(nv.ParameterName))
		if err != nil {
			return nil, err
		}
		names = append(names, def.Name)
	}
	e.changeParams(r, pg, func() {
		if all {
			pg.params = map[string]string{}
		}
		for _, n := range names {
			delete(pg.params, n)
		}
	})
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
	out := &elasticache.DescribeCacheParametersOutput{Parameters: params, Marker: next,
		CacheNodeTypeSpecificParameters: []types.CacheNodeTypeSpecificParameter{}}
	if in.Marker == nil && (source == "" || source == "system") && !isMemcachedFamily(pg.family) {
		// On the first page only, so that pages add up to one list.
		out.CacheNodeTypeSpecificParameters = nodeTypeSpecificParams(pg.family, familyEngine(pg.family))
	}
	return out, nil
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
	out := &types.EngineDefaults{CacheParameterGroupFamily: aws.String(family), Parameters: params, Marker: next,
		CacheNodeTypeSpecificParameters: []types.CacheNodeTypeSpecificParameter{}}
	if in.Marker == nil && !isMemcachedFamily(family) {
		out.CacheNodeTypeSpecificParameters = nodeTypeSpecificParams(family, familyEngine(family))
	}
	return &elasticache.DescribeEngineDefaultParametersOutput{EngineDefaults: out}, nil
}

// pageParams pages parameters by name (a family's parameters are sorted by name).
func pageParams(params []types.Parameter, marker *string, max int) ([]types.Parameter, *string) {
	return pageAfter(params, func(p types.Parameter) string { return aws.ToString(p.ParameterName) }, marker, max)
}
