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
}
