package emulator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// engineVersion is one entry of the engine catalog. Version is what the API
// lists and accepts; Actual is what a running cluster reports (AWS shows
// "7.1" in the catalog and "7.1.0" on the cluster).
type engineVersion struct {
	Engine  string
	Version string
	Actual  string
	Family  string
}

// engineCatalog lists the node-based Redis OSS and Valkey versions AWS
// offers, oldest first per engine (the last one is the default).
var engineCatalog = []engineVersion{
	{"redis", "4.0.10", "4.0.10", "redis4.0"},
	{"redis", "5.0.6", "5.0.6", "redis5.0"},
	{"redis", "6.0", "6.0.5", "redis6.x"},
	{"redis", "6.2", "6.2.6", "redis6.x"},
	{"redis", "7.0", "7.0.7", "redis7"},
	{"redis", "7.1", "7.1.0", "redis7"},
	{"valkey", "7.2", "7.2.6", "valkey7"},
	{"valkey", "8.0", "8.0.1", "valkey8"},
	{"valkey", "8.1", "8.1.0", "valkey8"},
	// Memcached, as AWS lists it; one memcached binary (Debian's) serves
	// them all, the protocol being the same (memcached.go).
	{"memcached", "1.4.5", "1.4.5", "memcached1.4"},
	{"memcached", "1.4.14", "1.4.14", "memcached1.4"},
	{"memcached", "1.4.24", "1.4.24", "memcached1.4"},
	{"memcached", "1.4.33", "1.4.33", "memcached1.4"},
	{"memcached", "1.4.34", "1.4.34", "memcached1.4"},
	{"memcached", "1.5.10", "1.5.10", "memcached1.5"},
	{"memcached", "1.5.16", "1.5.16", "memcached1.5"},
	{"memcached", "1.6.6", "1.6.6", "memcached1.6"},
	{"memcached", "1.6.12", "1.6.12", "memcached1.6"},
	{"memcached", "1.6.17", "1.6.17", "memcached1.6"},
	{"memcached", "1.6.22", "1.6.22", "memcached1.6"},
}

var engineDescriptions = map[string]string{
	"redis":  "Redis OSS",
	"valkey": "Valkey",

	"memcached": "Memcached",
}

// resolveEngine validates Engine/EngineVersion and returns the catalog
// entry, in AWS's forms: the version as the catalog lists it ("7.1", "6.2",
// "5.0.6"), "6.x" for the newest Redis OSS 6, or the engine's default when
// version is empty. A patch version of a major.minor release ("6.2.6") is
// refused as AWS refuses it, an unknown version likewise.
func resolveEngine(engine, version *string) (engineVersion, error) {
	eng := strings.ToLower(aws.ToString(engine))
	if eng == "" {
		eng = "redis"
	}
	if eng == "memcached" {
		// Memcached clusters come from CreateCacheCluster
		// (resolveMemcached); everything else here is Redis OSS/Valkey's.
		return engineVersion{}, invalidParameterValue("The memcached engine is only supported for cache clusters (CreateCacheCluster); replication groups need redis or valkey.")
	}
	if _, ok := engineDescriptions[eng]; !ok {
		return engineVersion{}, invalidParameterValue("Invalid value for parameter Engine: %s. Valid values are redis, valkey, memcached.", aws.ToString(engine))
	}
	v := aws.ToString(version)
	var found *engineVersion
	for i := range engineCatalog {
		ev := &engineCatalog[i]
		if ev.Engine != eng {
			continue
		}
		if v == "" || v == ev.Version || (eng == "redis" && v == "6.x" && strings.HasPrefix(ev.Version, "6.")) {
			found = ev // later entries are newer: keep the last match
			continue
		}
		if minor, ok := patchOf(v, ev.Version); ok {
			return engineVersion{}, invalidParameterValue("Specific version selection is not allowed for '%s', please use '%s'", v, minor)
		}
	}
	if found == nil {
		return engineVersion{}, invalidParameterCombination("Cannot find version %s for %s", v, eng)
	}
	return *found, nil
}

// patchOf reports whether v is a patch version ("6.2.6") of the
// major.minor release listed ("6.2"), which AWS selects by major.minor only.
func patchOf(v, listed string) (string, bool) {
	if strings.Count(listed, ".") != 1 || strings.Count(v, ".") != 2 {
		return "", false
	}
	if !strings.HasPrefix(v, listed+".") {
		return "", false
	}
	_, err := strconv.Atoi(v[len(listed)+1:])
	return listed, err == nil
}

// DescribeCacheEngineVersions lists the engine catalog.
func (e *Emulator) DescribeCacheEngineVersions(ctx context.Context, in *elasticache.DescribeCacheEngineVersionsInput) (*elasticache.DescribeCacheEngineVersionsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	var keys []string
	byKey := map[string]types.CacheEngineVersion{}
	defaults := map[string]string{}
	for _, ev := range engineCatalog {
		defaults[ev.Engine] = ev.Version
	}
	for i, ev := range engineCatalog {
		if in.Engine != nil && *in.Engine != "" && !strings.EqualFold(*in.Engine, ev.Engine) {
			continue
		}
		if in.EngineVersion != nil && *in.EngineVersion != "" && *in.EngineVersion != ev.Version && *in.EngineVersion != ev.Actual {
			continue
		}
		if in.CacheParameterGroupFamily != nil && *in.CacheParameterGroupFamily != "" && *in.CacheParameterGroupFamily != ev.Family {
			continue
		}
		if aws.ToBool(in.DefaultOnly) && defaults[ev.Engine] != ev.Version {
			continue
		}
		key := fmt.Sprintf("%04d", i) // catalog order, usable as a marker
		keys = append(keys, key)
		byKey[key] = types.CacheEngineVersion{
			Engine:                        aws.String(ev.Engine),
			EngineVersion:                 aws.String(ev.Version),
			CacheParameterGroupFamily:     aws.String(ev.Family),
			CacheEngineDescription:        aws.String(engineDescriptions[ev.Engine]),
			CacheEngineVersionDescription: aws.String(fmt.Sprintf("%s %s", engineDescriptions[ev.Engine], ev.Actual)),
		}
	}
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeCacheEngineVersionsOutput{CacheEngineVersions: []types.CacheEngineVersion{}, Marker: next}
	for _, k := range sel {
		out.CacheEngineVersions = append(out.CacheEngineVersions, byKey[k])
	}
	return out, nil
}

// paramGroup is a cache parameter group; params holds the values set in
// it (parameter_groups.go), over the engine defaults.
type paramGroup struct {
	name, family, description string
	params                    map[string]string
}

// defaultParamGroups returns the default.<family> groups AWS provides in
// every region, with a .cluster.on variant for cluster mode.
func defaultParamGroups() map[string]*paramGroup {
	out := map[string]*paramGroup{}
	for _, ev := range engineCatalog {
		for _, suffix := range []string{"", ".cluster.on"} {
			if suffix != "" && isMemcachedFamily(ev.Family) {
				continue // Memcached has no cluster mode
			}
			name := "default." + ev.Family + suffix
			out[name] = &paramGroup{name: name, family: ev.Family,
				description: "Default parameter group for " + ev.Family}
		}
	}
	return out
}

// resolveParamGroup checks a requested parameter group against the engine
// family; empty means the family's default. The caller holds r.mu.
func (r *region) resolveParamGroup(name *string, ev engineVersion) (string, error) {
	if name == nil || *name == "" {
		return "default." + ev.Family, nil
	}
	pg, ok := r.paramGroups[*name]
	if !ok {
		return "", paramGroupNotFound(*name)
	}
	if pg.family != ev.Family {
		return "", invalidParameterCombination("The parameter group %s belongs to family %s, which does not match engine %s %s (family %s).", pg.name, pg.family, ev.Engine, ev.Version, ev.Family)
	}
	if strings.HasSuffix(pg.name, ".cluster.on") {
		return "", invalidParameterCombination("Cluster mode is disabled for this replication group, but the parameter group %s enables it.", pg.name)
	}
	return pg.name, nil
}

// DescribeCacheParameterGroups lists parameter groups, or one by name.
func (e *Emulator) DescribeCacheParameterGroups(ctx context.Context, in *elasticache.DescribeCacheParameterGroupsInput) (*elasticache.DescribeCacheParameterGroupsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer r.mu.Unlock() // read only: nothing to persist
	keys, err := describeKeys(r.paramGroups, aws.ToString(in.CacheParameterGroupName), paramGroupNotFound, nil)
	if err != nil {
		return nil, err
	}
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeCacheParameterGroupsOutput{CacheParameterGroups: []types.CacheParameterGroup{}, Marker: next}
	for _, k := range sel {
		out.CacheParameterGroups = append(out.CacheParameterGroups, r.paramGroups[k].describe(r))
	}
	return out, nil
}

// subnetGroup is a cache subnet group; locally it is metadata only.
type subnetGroup struct {
	name, description, vpcID string
	subnets                  []types.Subnet
}

// availabilityZones are the zones the emulator pretends to spread nodes over.
func availabilityZones(regionName string) []string {
	return []string{regionName + "a", regionName + "b", regionName + "c"}
}

func defaultSubnetGroups(regionName string) map[string]*subnetGroup {
	sg := &subnetGroup{name: "default", description: "Default CacheSubnetGroup", vpcID: "vpc-0e1a5c0c0c0c0c0c0"}
	for i, az := range availabilityZones(regionName) {
		sg.subnets = append(sg.subnets, types.Subnet{
			SubnetIdentifier:       aws.String(fmt.Sprintf("subnet-0e1a5c0c0c0c0c0c%d", i)),
			SubnetAvailabilityZone: &types.AvailabilityZone{Name: aws.String(az)},
			SupportedNetworkTypes:  []types.NetworkType{types.NetworkTypeIpv4},
		})
	}
	return map[string]*subnetGroup{"default": sg}
}

// resolveSubnetGroup checks a requested subnet group; empty means "default".
func (r *region) resolveSubnetGroup(name *string) (string, error) {
	n := aws.ToString(name)
	if n == "" {
		n = "default"
	}
	if _, ok := r.subnetGroups[strings.ToLower(n)]; !ok {
		return "", subnetGroupNotFound(n)
	}
	return strings.ToLower(n), nil
}

// DescribeCacheSubnetGroups lists subnet groups, or one by name.
func (e *Emulator) DescribeCacheSubnetGroups(ctx context.Context, in *elasticache.DescribeCacheSubnetGroupsInput) (*elasticache.DescribeCacheSubnetGroupsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer r.mu.Unlock() // read only: nothing to persist
	keys, err := describeKeys(r.subnetGroups, strings.ToLower(aws.ToString(in.CacheSubnetGroupName)), subnetGroupNotFound, nil)
	if err != nil {
		return nil, err
	}
	sel, next := page(keys, in.Marker, max)
	out := &elasticache.DescribeCacheSubnetGroupsOutput{CacheSubnetGroups: []types.CacheSubnetGroup{}, Marker: next}
	for _, k := range sel {
		out.CacheSubnetGroups = append(out.CacheSubnetGroups, r.subnetGroups[k].describe(r))
	}
	return out, nil
}
