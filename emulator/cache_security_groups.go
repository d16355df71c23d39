package emulator

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// The EC2-Classic cache security group operations. AWS retired EC2-Classic,
// and on every account today these answer InvalidParameterValue "Use of
// cache security groups is not permitted in this API version for your
// account." (the Terraform provider's sweepers skip exactly that error).
// The emulator gives the same answer instead of NotImplemented: tools that
// tolerate AWS's refusal work unchanged, and nothing is stored. Every input
// member is classified noClassicSG, so the member audit answers first when
// one is set; the handlers answer for calls with none.

func (e *Emulator) CreateCacheSecurityGroup(ctx context.Context, in *elasticache.CreateCacheSecurityGroupInput) (*elasticache.CreateCacheSecurityGroupOutput, error) {
	return nil, cacheSecurityGroupsNotPermitted()
}

func (e *Emulator) DeleteCacheSecurityGroup(ctx context.Context, in *elasticache.DeleteCacheSecurityGroupInput) (*elasticache.DeleteCacheSecurityGroupOutput, error) {
	return nil, cacheSecurityGroupsNotPermitted()
}

func (e *Emulator) DescribeCacheSecurityGroups(ctx context.Context, in *elasticache.DescribeCacheSecurityGroupsInput) (*elasticache.DescribeCacheSecurityGroupsOutput, error) {
	return nil, cacheSecurityGroupsNotPermitted()
}

func (e *Emulator) AuthorizeCacheSecurityGroupIngress(ctx context.Context, in *elasticache.AuthorizeCacheSecurityGroupIngressInput) (*elasticache.AuthorizeCacheSecurityGroupIngressOutput, error) {
	return nil, cacheSecurityGroupsNotPermitted()
}

func (e *Emulator) RevokeCacheSecurityGroupIngress(ctx context.Context, in *elasticache.RevokeCacheSecurityGroupIngressInput) (*elasticache.RevokeCacheSecurityGroupIngressOutput, error) {
	return nil, cacheSecurityGroupsNotPermitted()
}
