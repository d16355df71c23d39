package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestMaintenanceListings: service updates and reserved nodes answer
// truthfully that there are none, node-type modifications list the
// catalog's (node_types_test.go checks them), with AWS's errors for named
// items that do not exist.
func TestMaintenanceListings(t *testing.T) {
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("m")})

	// cache.t4g.micro: the smallest type, nothing to scale down to.
	mods, err := c.ListAllowedNodeTypeModifications(ctx, &elasticache.ListAllowedNodeTypeModificationsInput{ReplicationGroupId: aws.String("m")})
	if err != nil || len(mods.ScaleUpModifications) == 0 || mods.ScaleDownModifications == nil || len(mods.ScaleDownModifications) != 0 {
		t.Fatalf("allowed modifications %+v %v", mods, err)
	}
	_, err = c.ListAllowedNodeTypeModifications(ctx, &elasticache.ListAllowedNodeTypeModificationsInput{ReplicationGroupId: aws.String("ghost")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)
	_, err = c.ListAllowedNodeTypeModifications(ctx, &elasticache.ListAllowedNodeTypeModificationsInput{})
	expectError(t, err, "InvalidParameterCombination", 400)

	if out, err := c.DescribeServiceUpdates(ctx, &elasticache.DescribeServiceUpdatesInput{}); err != nil || len(out.ServiceUpdates) != 0 {
		t.Fatalf("service updates %+v %v", out, err)
	}
	_, err = c.DescribeServiceUpdates(ctx, &elasticache.DescribeServiceUpdatesInput{ServiceUpdateName: aws.String("elc-2026-001")})
	expectError(t, err, "ServiceUpdateNotFoundFault", 404)
	if out, err := c.DescribeUpdateActions(ctx, &elasticache.DescribeUpdateActionsInput{}); err != nil || len(out.UpdateActions) != 0 {
		t.Fatalf("update actions %+v %v", out, err)
	}
	if out, err := c.DescribeReservedCacheNodesOfferings(ctx, &elasticache.DescribeReservedCacheNodesOfferingsInput{}); err != nil || len(out.ReservedCacheNodesOfferings) != 0 {
		t.Fatalf("offerings %+v %v", out, err)
	}
	_, err = c.DescribeReservedCacheNodes(ctx, &elasticache.DescribeReservedCacheNodesInput{ReservedCacheNodeId: aws.String("r1")})
	expectError(t, err, "ReservedCacheNodeNotFound", 404)

	// Nothing to apply, stop or buy: the named update or offering is not
	// found, after the request itself is checked, and nothing changes.
	_, err = c.BatchApplyUpdateAction(ctx, &elasticache.BatchApplyUpdateActionInput{ServiceUpdateName: aws.String("elc-2026-001"), ReplicationGroupIds: []string{"m"}})
	expectError(t, err, "ServiceUpdateNotFoundFault", 404)
	_, err = c.BatchStopUpdateAction(ctx, &elasticache.BatchStopUpdateActionInput{ServiceUpdateName: aws.String("elc-2026-001"), CacheClusterIds: []string{"m-001"}})
	expectError(t, err, "ServiceUpdateNotFoundFault", 404)
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = "m"
	}
	_, err = c.BatchApplyUpdateAction(ctx, &elasticache.BatchApplyUpdateActionInput{ServiceUpdateName: aws.String("elc-2026-001"), ReplicationGroupIds: tooMany})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.PurchaseReservedCacheNodesOffering(ctx, &elasticache.PurchaseReservedCacheNodesOfferingInput{ReservedCacheNodesOfferingId: aws.String("438012d3-4052-4cc7-b2e3-8d3372e0e706"), CacheNodeCount: aws.Int32(2)})
	expectError(t, err, "ReservedCacheNodesOfferingNotFound", 404)
	_, err = c.PurchaseReservedCacheNodesOffering(ctx, &elasticache.PurchaseReservedCacheNodesOfferingInput{ReservedCacheNodesOfferingId: aws.String("438012d3-4052-4cc7-b2e3-8d3372e0e706"), CacheNodeCount: aws.Int32(0)})
	expectError(t, err, "InvalidParameterValue", 400)
	if out, err := c.DescribeReservedCacheNodes(ctx, &elasticache.DescribeReservedCacheNodesInput{}); err != nil || len(out.ReservedCacheNodes) != 0 {
		t.Fatalf("reserved nodes after a refused purchase %+v %v", out, err)
	}
	if g := describeGroup(t, c, "m"); aws.ToString(g.Status) != "available" {
		t.Fatalf("group after refused update actions: %s", aws.ToString(g.Status))
	}
}

// TestCacheSecurityGroupsRefusedAsAWS: the EC2-Classic cache security
// groups answer AWS's own refusal of every account today, through the SDK
// and the AWS CLI, and a create naming one leaves nothing behind.
func TestCacheSecurityGroupsRefusedAsAWS(t *testing.T) {
	requireAWSCLI(t)
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	const msg = "Use of cache security groups is not permitted in this API version for your account."
	_, err := c.DescribeCacheSecurityGroups(ctx, &elasticache.DescribeCacheSecurityGroupsInput{})
	expectError(t, err, "InvalidParameterValue", 400)
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("describe: %v, want %q", err, msg)
	}
	_, err = c.CreateCacheSecurityGroup(ctx, &elasticache.CreateCacheSecurityGroupInput{CacheSecurityGroupName: aws.String("sg"), Description: aws.String("d")})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("classic"),
		ReplicationGroupDescription: aws.String("d"), CacheNodeType: aws.String("cache.t3.micro"), CacheSecurityGroupNames: []string{"default"}})
	expectError(t, err, "InvalidParameterValue", 400)
	_, err = c.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("classic")})
	expectError(t, err, "ReplicationGroupNotFoundFault", 404)

	_, stderr, err := runAWSWith(t, ctx, e.url, "test", "test", "authorize-cache-security-group-ingress",
		"--cache-security-group-name", "sg", "--ec2-security-group-name", "web", "--ec2-security-group-owner-id", "123456789012")
	if err == nil || !strings.Contains(stderr, "(InvalidParameterValue)") || !strings.Contains(stderr, msg) {
		t.Fatalf("aws authorize-cache-security-group-ingress: %v\n%s", err, stderr)
	}
}
