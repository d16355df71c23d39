package emulator

import (
	"context"
	"hash/fnv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// Cache subnet groups are metadata locally (every node is on loopback), but
// they keep the AWS shapes, rules and errors so that tools managing them
// (Terraform's aws_elasticache_subnet_group) work unchanged.

// maxSubnetsPerGroup is AWS's quota of subnets in one subnet group.
const maxSubnetsPerGroup = 20

// subnetsFor builds the Subnet shapes of subnet ids, each placed in one of
// the region's zones (stable per id).
func subnetsFor(regionName string, ids []string) ([]types.Subnet, error) {
	if len(ids) == 0 {
		return nil, mustNotBeBlank("SubnetIds")
	}
	if len(ids) > maxSubnetsPerGroup {
		return nil, subnetQuotaExceeded(maxSubnetsPerGroup)
	}
	zones := availabilityZones(regionName)
	var out []types.Subnet
	seen := map[string]bool{}
	for _, id := range ids {
		if !strings.HasPrefix(id, "subnet-") || len(id) < len("subnet-")+1 {
			return nil, invalidSubnet(id)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		h := fnv.New32a()
		h.Write([]byte(id))
		out = append(out, types.Subnet{
			SubnetIdentifier:       aws.String(id),
			SubnetAvailabilityZone: &types.AvailabilityZone{Name: aws.String(zones[h.Sum32()%uint32(len(zones))])},
			SupportedNetworkTypes:  []types.NetworkType{types.NetworkTypeIpv4},
		})
	}
	return out, nil
}

func (sg *subnetGroup) describe(r *region) types.CacheSubnetGroup {
	return types.CacheSubnetGroup{
		ARN:                         aws.String(r.arn("subnetgroup", sg.name)),
		CacheSubnetGroupName:        aws.String(sg.name),
		CacheSubnetGroupDescription: aws.String(sg.description),
		VpcId:                       aws.String(sg.vpcID),
		Subnets:                     append([]types.Subnet{}, sg.subnets...),
		SupportedNetworkTypes:       []types.NetworkType{types.NetworkTypeIpv4},
	}
}

// subnetGroup finds a subnet group by name; the caller holds r.mu.
func (r *region) subnetGroup(nameParam *string) (*subnetGroup, error) {
	name := strings.ToLower(aws.ToString(nameParam))
	if name == "" {
		return nil, mustNotBeBlank("CacheSubnetGroupName")
	}
	sg, ok := r.subnetGroups[name]
	if !ok {
		return nil, subnetGroupNotFound(name)
	}
	return sg, nil
}

// CreateCacheSubnetGroup creates a subnet group.
func (e *Emulator) CreateCacheSubnetGroup(ctx context.Context, in *elasticache.CreateCacheSubnetGroupInput) (*elasticache.CreateCacheSubnetGroupOutput, error) {
	name, err := normalizeID("CacheSubnetGroupName", in.CacheSubnetGroupName, 255)
	if err != nil {
		return nil, err
	}
	if aws.ToString(in.CacheSubnetGroupDescription) == "" {
		return nil, mustNotBeBlank("CacheSubnetGroupDescription")
	}
	if err := checkLength("CacheSubnetGroupDescription", in.CacheSubnetGroupDescription, maxDescriptionLen); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	subnets, err := subnetsFor(r.region, in.SubnetIds)
	if err != nil {
		return nil, err
	}
	if _, ok := r.subnetGroups[name]; ok {
		return nil, subnetGroupAlreadyExists(name)
	}
	sg := &subnetGroup{name: name, description: aws.ToString(in.CacheSubnetGroupDescription), vpcID: r.subnetGroups["default"].vpcID, subnets: subnets}
	r.subnetGroups[name] = sg
	if len(in.Tags) > 0 {
		r.tags[r.arn("subnetgroup", name)] = mergeTags(nil, in.Tags)
	}
	e.record(r, types.SourceTypeCacheSubnetGroup, name, "Cache subnet group %s created", name)
	return &elasticache.CreateCacheSubnetGroupOutput{CacheSubnetGroup: ptr(sg.describe(r))}, nil
}

// ModifyCacheSubnetGroup changes a subnet group's description or subnets.
func (e *Emulator) ModifyCacheSubnetGroup(ctx context.Context, in *elasticache.ModifyCacheSubnetGroupInput) (*elasticache.ModifyCacheSubnetGroupOutput, error) {
	if err := checkLength("CacheSubnetGroupDescription", in.CacheSubnetGroupDescription, maxDescriptionLen); err != nil {
		return nil, err
	}
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	sg, err := r.subnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	subnets := sg.subnets
	if len(in.SubnetIds) > 0 {
		var err error
		if subnets, err = subnetsFor(r.region, in.SubnetIds); err != nil {
			return nil, err
		}
	}
	if d := aws.ToString(in.CacheSubnetGroupDescription); d != "" {
		sg.description = d
	}
	sg.subnets = subnets
	e.record(r, types.SourceTypeCacheSubnetGroup, sg.name, "Cache subnet group %s modified", sg.name)
	return &elasticache.ModifyCacheSubnetGroupOutput{CacheSubnetGroup: ptr(sg.describe(r))}, nil
}

// DeleteCacheSubnetGroup deletes a subnet group no cluster uses.
func (e *Emulator) DeleteCacheSubnetGroup(ctx context.Context, in *elasticache.DeleteCacheSubnetGroupInput) (*elasticache.DeleteCacheSubnetGroupOutput, error) {
	r := e.lockRegion(ctx)
	defer e.unlock(r)
	sg, err := r.subnetGroup(in.CacheSubnetGroupName)
	if err != nil {
		return nil, err
	}
	name := sg.name
	if name == "default" {
		return nil, invalidParameterValue("The default cache subnet group cannot be deleted.")
	}
	for _, cl := range r.clusters {
		if cl.subnetGroup == name {
			return nil, subnetGroupInUse(name, cl.id)
		}
	}
	delete(r.subnetGroups, name)
	delete(r.tags, r.arn("subnetgroup", name))
	e.record(r, types.SourceTypeCacheSubnetGroup, name, "Cache subnet group %s deleted", name)
	return &elasticache.DeleteCacheSubnetGroupOutput{}, nil
}
