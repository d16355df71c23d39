package emulator

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// Every error the API answers with an AWS code is built here, so the codes
// and wording the emulator shares with AWS are in one place to review
// against the service. They are the SDK's modelled types, so the codec takes
// code and HTTP status from their schema traits; notImplemented is the one
// error of our own.

// Request validation.

func invalidParameterValue(format string, args ...any) error {
	return &types.InvalidParameterValueException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func invalidParameterCombination(format string, args ...any) error {
	return &types.InvalidParameterCombinationException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func mustNotBeBlank(name string) error {
	return invalidParameterValue("The parameter %s must be provided and must not be blank.", name)
}

// missingNodeType is AWS's answer to a create without CacheNodeType (and no
// snapshot to take it from).
func missingNodeType() error {
	return invalidParameterValue("The parameter CacheNodeType must be provided and must not be null.")
}

// unknownNodeType is AWS's answer to a CacheNodeType it does not know.
func unknownNodeType(name string) error {
	return invalidParameterValue("Invalid Cache Node Type: %s.", name)
}

// nodeTypeNotSupported answers a known node type that AWS does not offer
// for the engine or engine version asked for.
func nodeTypeNotSupported(name string, ev engineVersion) error {
	return invalidParameterCombination("Cache node type %s is not supported for engine %s version %s.", name, ev.Engine, ev.Version)
}

// notImplemented answers a feature the emulator does not have yet with a
// clear error instead of a silent success. It is not an AWS fault (AWS has
// no such answer), so it carries its own code and a 501.
func notImplemented(feature string) error {
	return &queryapi.Error{Code: "NotImplemented", HTTPStatus: http.StatusNotImplemented, Receiver: true,
		Message: "elasticache-local does not implement " + feature + " yet."}
}

// Quotas and capacity.

func nodeQuotaForCustomerExceeded(quota, have, adding int) error {
	return &types.NodeQuotaForCustomerExceededFault{Message: aws.String(fmt.Sprintf(
		"The request cannot be processed because it would exceed the allowed number of cache nodes per customer (%d nodes per region; %d in use, %d requested).",
		quota, have, adding))}
}

// memcachedNodeQuotaExceeded answers a Memcached cluster of more nodes than
// the per-cluster quota.
func memcachedNodeQuotaExceeded(n, quota int) error {
	return &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf(
		"The request cannot be processed because it would exceed the allowed number of cache nodes in a single cache cluster (%d requested, the quota is %d).", n, quota))}
}

// insufficientCapacityNoAddress is the answer when the address pool has no
// address left for what (a port, an endpoint); err says why.
func insufficientCapacityNoAddress(what string, err error) error {
	return &types.InsufficientCacheClusterCapacityFault{Message: aws.String("No local address is free for " + what + ": " + err.Error())}
}

// Cache clusters.

func cacheClusterNotFound(id string) error {
	return &types.CacheClusterNotFoundFault{Message: aws.String("CacheCluster not found: " + id)}
}

func cacheClusterAlreadyExists(id string) error {
	return &types.CacheClusterAlreadyExistsFault{Message: aws.String("Cache cluster " + id + " already exists.")}
}

func invalidClusterState(format string, args ...any) error {
	return &types.InvalidCacheClusterStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

// Replication groups and their node groups.

func replicationGroupNotFound(id string) error {
	return &types.ReplicationGroupNotFoundFault{Message: aws.String("Replication group " + id + " not found.")}
}

func replicationGroupAlreadyExists(id string) error {
	return &types.ReplicationGroupAlreadyExistsFault{Message: aws.String("Replication group " + id + " already exists.")}
}

func invalidGroupState(format string, args ...any) error {
	return &types.InvalidReplicationGroupStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

func nodeGroupNotFound(ngID, groupID string) error {
	return &types.NodeGroupNotFoundFault{Message: aws.String("Node group " + ngID + " not found in replication group " + groupID + ".")}
}

// nodeQuotaForClusterExceeded refuses a node beyond max in a replication
// group that already has have.
func nodeQuotaForClusterExceeded(groupID string, have, max int) error {
	return &types.NodeQuotaForClusterExceededFault{Message: aws.String(fmt.Sprintf("Replication group %s already has %d nodes; the maximum is %d (one primary and 5 replicas).", groupID, have, max))}
}

// nodeGroupsPerReplicationGroupQuotaExceeded refuses more than max shards.
func nodeGroupsPerReplicationGroupQuotaExceeded(max int) error {
	return &types.NodeGroupsPerReplicationGroupQuotaExceededFault{Message: aws.String(fmt.Sprintf(
		"The request cannot be processed because it would exceed the maximum of %d node groups (shards) per replication group.", max))}
}

func testFailoverNotAvailable(ngID string) error {
	return &types.TestFailoverNotAvailableFault{Message: aws.String("Node group " + ngID + " has no replica available for failover.")}
}

// testFailoverQuotaExceeded is AWS's fault for TestFailover calls beyond
// quota in a rolling day.
func testFailoverQuotaExceeded(quota int) error {
	return &types.APICallRateForCustomerExceededFault{Message: aws.String(fmt.Sprintf("You have exceeded the quota of %d TestFailover calls in a rolling 24 hours.", quota))}
}

// Snapshots.

func snapshotNotFound(name string) error {
	return &types.SnapshotNotFoundFault{Message: aws.String("Snapshot " + name + " not found.")}
}

func snapshotAlreadyExists(name string) error {
	return &types.SnapshotAlreadyExistsFault{Message: aws.String("Snapshot " + name + " already exists.")}
}

func invalidSnapshotState(format string, args ...any) error {
	return &types.InvalidSnapshotStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

func snapshotFeatureNotSupported(nodeType string) error {
	return &types.SnapshotFeatureNotSupportedFault{Message: aws.String("Snapshots are not supported for cache node type " + nodeType + ".")}
}

// snapshotFeatureNotSupportedForEngine answers a snapshot of a Memcached
// cluster.
func snapshotFeatureNotSupportedForEngine() error {
	return &types.SnapshotFeatureNotSupportedFault{Message: aws.String("Snapshots are not supported for the memcached engine.")}
}

// Parameter groups.

func paramGroupNotFound(name string) error {
	return &types.CacheParameterGroupNotFoundFault{Message: aws.String("CacheParameterGroup " + name + " not found.")}
}

func paramGroupAlreadyExists(name string) error {
	return &types.CacheParameterGroupAlreadyExistsFault{Message: aws.String("Parameter group " + name + " already exists.")}
}

func invalidParamGroupState(format string, args ...any) error {
	return &types.InvalidCacheParameterGroupStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

// Subnet groups.

func subnetGroupNotFound(name string) error {
	return &types.CacheSubnetGroupNotFoundFault{Message: aws.String("CacheSubnetGroup " + name + " not found.")}
}

func subnetGroupAlreadyExists(name string) error {
	return &types.CacheSubnetGroupAlreadyExistsFault{Message: aws.String("Cache subnet group " + name + " already exists.")}
}

func subnetGroupInUse(name, clusterID string) error {
	return &types.CacheSubnetGroupInUse{Message: aws.String("Cache subnet group " + name + " is in use by cache cluster " + clusterID + ".")}
}

func invalidSubnet(id string) error {
	return &types.InvalidSubnet{Message: aws.String("The subnet ID " + id + " is not valid.")}
}

// subnetQuotaExceeded refuses a subnet group of more than max subnets.
func subnetQuotaExceeded(max int) error {
	return &types.CacheSubnetQuotaExceededFault{Message: aws.String(fmt.Sprintf("A cache subnet group can have at most %d subnets.", max))}
}

// Tags.

// invalidARN refuses arn for why ("is not valid", "does not name a
// taggable resource"...).
func invalidARN(arn, why string) error {
	return &types.InvalidARNFault{Message: aws.String("The ARN " + arn + " " + why + ".")}
}

func tagNotFound(key, arn string) error {
	return &types.TagNotFoundFault{Message: aws.String("The tag " + key + " was not found on " + arn + ".")}
}

// tagQuotaPerResourceExceeded refuses a tag list longer than max.
func tagQuotaPerResourceExceeded(max int) error {
	return &types.TagQuotaPerResourceExceeded{Message: aws.String(fmt.Sprintf("The request cannot be processed because it would cause the resource to have more than the allowed number of tags. The maximum number of tags permitted on a resource is %d.", max))}
}

// Maintenance and reserved nodes, of which the emulator has none.

// cacheSecurityGroupsNotPermitted is AWS's answer to every use of
// EC2-Classic cache security groups (the CacheSecurityGroup operations and
// CacheSecurityGroupNames) on a VPC-only account, which every account is
// since EC2-Classic was retired.
func cacheSecurityGroupsNotPermitted() error {
	return invalidParameterValue("Use of cache security groups is not permitted in this API version for your account.")
}

func serviceUpdateNotFound(name string) error {
	return &types.ServiceUpdateNotFoundFault{Message: aws.String("Service update " + name + " not found.")}
}

func reservedCacheNodeNotFound(id string) error {
	return &types.ReservedCacheNodeNotFoundFault{Message: aws.String("Reserved cache node " + id + " not found.")}
}

func reservedCacheNodesOfferingNotFound(id string) error {
	return &types.ReservedCacheNodesOfferingNotFoundFault{Message: aws.String("Reserved cache nodes offering " + id + " not found.")}
}

// Users and user groups (RBAC).

func userNotFound(id string) error {
	return &types.UserNotFoundFault{Message: aws.String("User " + id + " not found.")}
}

func userAlreadyExists(id string) error {
	return &types.UserAlreadyExistsFault{Message: aws.String("User " + id + " already exists.")}
}

func invalidUserState(format string, args ...any) error {
	return &types.InvalidUserStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

// userQuotaExceeded refuses a user beyond the region's quota of max.
func userQuotaExceeded(max int) error {
	return &types.UserQuotaExceededFault{Message: aws.String(fmt.Sprintf("The request cannot be processed because it would exceed the allowed number of users per region (%d).", max))}
}

func userGroupNotFound(id string) error {
	return &types.UserGroupNotFoundFault{Message: aws.String("User Group " + id + " not found.")}
}

func userGroupAlreadyExists(id string) error {
	return &types.UserGroupAlreadyExistsFault{Message: aws.String("User Group " + id + " already exists.")}
}

func invalidUserGroupState(format string, args ...any) error {
	return &types.InvalidUserGroupStateFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

// userGroupQuotaExceeded refuses a user group beyond the region's quota of
// max, or a user group of more than max users (perGroup).
func userGroupQuotaExceeded(format string, args ...any) error {
	return &types.UserGroupQuotaExceededFault{Message: aws.String(fmt.Sprintf(format, args...))}
}

// defaultUserRequired is AWS's answer to a user group without a user named
// "default".
func defaultUserRequired() error {
	return &types.DefaultUserRequired{Message: aws.String("User group needs to contain a user with the user name default.")}
}

// duplicateUserName refuses a user group with two users named name.
func duplicateUserName(name string) error {
	return &types.DuplicateUserNameFault{Message: aws.String("A user with the user name " + name + " already exists in the user group.")}
}

// defaultUserAssociatedToUserGroup refuses to delete a user named "default"
// that a user group holds (the group would be left without one).
func defaultUserAssociatedToUserGroup(id, group string) error {
	return &types.DefaultUserAssociatedToUserGroupFault{Message: aws.String("User is associated to user group " + group + " as its default user; replace it in the user group before deleting user " + id + ".")}
}
