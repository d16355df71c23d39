package emulator

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// Operations about AWS-side maintenance and billing. Locally there are no
// service updates and no reserved nodes, and these answers say exactly
// that: empty lists, or the NotFound fault for a named item, after the same
// validation as AWS.

// ListAllowedNodeTypeModifications lists the node types a cluster or group
// can scale up and down to, from the node-type catalog (node_types.go).
func (e *Emulator) ListAllowedNodeTypeModifications(ctx context.Context, in *elasticache.ListAllowedNodeTypeModificationsInput) (*elasticache.ListAllowedNodeTypeModificationsOutput, error) {
	gid, cid := strings.ToLower(aws.ToString(in.ReplicationGroupId)), strings.ToLower(aws.ToString(in.CacheClusterId))
	if (gid == "") == (cid == "") {
		return nil, invalidParameterCombination("Exactly one of ReplicationGroupId and CacheClusterId must be specified.")
	}
	r := e.lockRegion(ctx)
	defer r.mu.Unlock() // read only: nothing to persist
	var nodeTypeName string
	var ev engineVersion
	if gid != "" {
		g, ok := r.groups[gid]
		if !ok {
			return nil, replicationGroupNotFound(gid)
		}
		nodeTypeName, ev = g.nodeType, g.engine
	} else {
		cl, ok := r.clusters[cid]
		if !ok {
			return nil, cacheClusterNotFound(cid)
		}
		nodeTypeName, ev = cl.nodeType, cl.engine
	}
	out := &elasticache.ListAllowedNodeTypeModificationsOutput{ScaleUpModifications: []string{}, ScaleDownModifications: []string{}}
	if nt, ok := lookupNodeType(nodeTypeName); ok {
		out.ScaleUpModifications, out.ScaleDownModifications = nodeTypeModifications(nt, ev)
	}
	return out, nil
}

// DescribeServiceUpdates lists service updates: there are none locally.
func (e *Emulator) DescribeServiceUpdates(ctx context.Context, in *elasticache.DescribeServiceUpdatesInput) (*elasticache.DescribeServiceUpdatesOutput, error) {
	if _, err := checkMaxRecords(in.MaxRecords); err != nil {
		return nil, err
	}
	if n := aws.ToString(in.ServiceUpdateName); n != "" {
		return nil, serviceUpdateNotFound(n)
	}
	return &elasticache.DescribeServiceUpdatesOutput{ServiceUpdates: []types.ServiceUpdate{}}, nil
}

// DescribeUpdateActions lists service update actions: there are none.
func (e *Emulator) DescribeUpdateActions(ctx context.Context, in *elasticache.DescribeUpdateActionsInput) (*elasticache.DescribeUpdateActionsOutput, error) {
	if _, err := checkMaxRecords(in.MaxRecords); err != nil {
		return nil, err
	}
	return &elasticache.DescribeUpdateActionsOutput{UpdateActions: []types.UpdateAction{}}, nil
}

// DescribeReservedCacheNodes lists reserved nodes: none are ever bought.
func (e *Emulator) DescribeReservedCacheNodes(ctx context.Context, in *elasticache.DescribeReservedCacheNodesInput) (*elasticache.DescribeReservedCacheNodesOutput, error) {
	if _, err := checkMaxRecords(in.MaxRecords); err != nil {
		return nil, err
	}
	if id := aws.ToString(in.ReservedCacheNodeId); id != "" {
		return nil, reservedCacheNodeNotFound(id)
	}
	return &elasticache.DescribeReservedCacheNodesOutput{ReservedCacheNodes: []types.ReservedCacheNode{}}, nil
}

// DescribeReservedCacheNodesOfferings lists reserved node offerings: there
// is nothing to buy locally.
func (e *Emulator) DescribeReservedCacheNodesOfferings(ctx context.Context, in *elasticache.DescribeReservedCacheNodesOfferingsInput) (*elasticache.DescribeReservedCacheNodesOfferingsOutput, error) {
	if _, err := checkMaxRecords(in.MaxRecords); err != nil {
		return nil, err
	}
	if id := aws.ToString(in.ReservedCacheNodesOfferingId); id != "" {
		return nil, reservedCacheNodesOfferingNotFound(id)
	}
	return &elasticache.DescribeReservedCacheNodesOfferingsOutput{ReservedCacheNodesOfferings: []types.ReservedCacheNodesOffering{}}, nil
}

// maxUpdateActionIDs is AWS's limit on each id list of BatchApplyUpdateAction
// and BatchStopUpdateAction.
const maxUpdateActionIDs = 20

// checkUpdateActionIDs checks the id lists of a batch update action call
// the way AWS's model bounds them.
func checkUpdateActionIDs(groups, clusters []string) error {
	if len(groups) > maxUpdateActionIDs {
		return invalidParameterValue("ReplicationGroupIds can have at most %d items.", maxUpdateActionIDs)
	}
	if len(clusters) > maxUpdateActionIDs {
		return invalidParameterValue("CacheClusterIds can have at most %d items.", maxUpdateActionIDs)
	}
	return nil
}

// BatchApplyUpdateAction applies a service update to groups and clusters.
// There are no service updates locally, so every name answers AWS's
// ServiceUpdateNotFoundFault, and nothing changes.
func (e *Emulator) BatchApplyUpdateAction(ctx context.Context, in *elasticache.BatchApplyUpdateActionInput) (*elasticache.BatchApplyUpdateActionOutput, error) {
	if err := checkUpdateActionIDs(in.ReplicationGroupIds, in.CacheClusterIds); err != nil {
		return nil, err
	}
	return nil, serviceUpdateNotFound(aws.ToString(in.ServiceUpdateName))
}

// BatchStopUpdateAction stops a service update: as above, none exists.
func (e *Emulator) BatchStopUpdateAction(ctx context.Context, in *elasticache.BatchStopUpdateActionInput) (*elasticache.BatchStopUpdateActionOutput, error) {
	if err := checkUpdateActionIDs(in.ReplicationGroupIds, in.CacheClusterIds); err != nil {
		return nil, err
	}
	return nil, serviceUpdateNotFound(aws.ToString(in.ServiceUpdateName))
}

// PurchaseReservedCacheNodesOffering buys reserved nodes. There are no
// offerings locally (DescribeReservedCacheNodesOfferings lists none), so
// every offering id answers AWS's ReservedCacheNodesOfferingNotFound after
// the rest of the request is checked, and nothing is bought.
func (e *Emulator) PurchaseReservedCacheNodesOffering(ctx context.Context, in *elasticache.PurchaseReservedCacheNodesOfferingInput) (*elasticache.PurchaseReservedCacheNodesOfferingOutput, error) {
	if in.CacheNodeCount != nil && *in.CacheNodeCount < 1 {
		return nil, invalidParameterValue("CacheNodeCount must be at least 1.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, reservedCacheNodesOfferingNotFound(aws.ToString(in.ReservedCacheNodesOfferingId))
}
