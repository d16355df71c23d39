package integration

import (
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
