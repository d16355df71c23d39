package emulator

// inputMemberRules classifies every member of every registered operation's
// input (see inputs.go). Members marked applied are used by the handler;
// reported ones are echoed by Describe as AWS does; refused ones answer
// NotImplemented unless they ask for what the emulator does anyway.
func inputMemberRules() map[string]map[string]memberRule {
	applied := memberRule{use: memberApplied}
	reported := memberRule{use: memberReported}
	unusedByAWS := memberRule{use: memberUnusedByAWS}
	refused := func(defaults ...string) memberRule { return memberRule{use: memberRefused, defaults: defaults} }
	// Nodes speak IPv4 in one AZ, with no outposts, log delivery or data
	// tiering; EC2-Classic security groups are refused as AWS refuses them
	// on every account since EC2-Classic was retired. TLS and AUTH tokens are
	// applied (security.go), their modes a local node cannot serve refused
	// there.
	var (
		tls            = applied
		auth           = applied
		ipv4           = refused("ipv4")
		noLogDelivery  = refused()
		noClassicSG    = memberRule{use: memberRefusedByAWS, awsError: cacheSecurityGroupsNotPermitted}
		noOutposts     = refused()
		clusterModeOff = refused("disabled")
		durability     = refused("default")
	)
	paging := map[string]memberRule{"Marker": applied, "MaxRecords": applied}
	with := func(base map[string]memberRule, more map[string]memberRule) map[string]memberRule {
		out := map[string]memberRule{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	return map[string]map[string]memberRule{
		// Replication groups.
		"CreateReplicationGroupInput": {
			"ReplicationGroupDescription": applied, "ReplicationGroupId": applied,
			"AtRestEncryptionEnabled": applied, // snapshots are encrypted with the KMS key
			"AuthToken":               auth, "UserGroupIds": applied,
			"AutoMinorVersionUpgrade": reported, "AutomaticFailoverEnabled": applied,
			"CacheNodeType": reported, "CacheParameterGroupName": applied,
			"CacheSecurityGroupNames": noClassicSG, "CacheSubnetGroupName": reported,
			"ClusterMode": applied, "DataTieringEnabled": applied, "Durability": durability,
			"Engine": applied, "EngineVersion": applied,
			"GlobalReplicationGroupId": refused(), "IpDiscovery": ipv4, "NetworkType": ipv4,
			"KmsKeyId": applied, "LogDeliveryConfigurations": noLogDelivery,
			"MultiAZEnabled": applied, "NodeGroupConfiguration": applied,
			"NotificationTopicArn": reported, "NumCacheClusters": applied, "NumNodeGroups": applied,
			"Port": applied, "PreferredCacheClusterAZs": applied, "PreferredMaintenanceWindow": reported,
			"PrimaryClusterId": applied, "ReplicasPerNodeGroup": applied, "SecurityGroupIds": reported,
			"ServerlessCacheSnapshotName": refused(), "SnapshotArns": applied, "SnapshotName": applied,
			"SnapshotRetentionLimit": applied, "SnapshotWindow": applied, "Tags": applied,
			"TransitEncryptionEnabled": tls, "TransitEncryptionMode": tls,
		},
		"DescribeReplicationGroupsInput": with(paging, map[string]memberRule{"ReplicationGroupId": applied}),
		"ModifyReplicationGroupInput": {
			"ReplicationGroupId": applied,
			"ApplyImmediately":   applied, // node changes, failover and PrimaryClusterId wait for the maintenance window without it
			"AuthToken":          auth, "AuthTokenUpdateStrategy": auth,
			"UserGroupIdsToAdd": applied, "UserGroupIdsToRemove": applied, "RemoveUserGroups": applied,
			"AutoMinorVersionUpgrade": reported, "AutomaticFailoverEnabled": applied,
			"CacheNodeType": applied, "CacheParameterGroupName": applied, "CacheSecurityGroupNames": noClassicSG,
			"ClusterMode": clusterModeOff, "Durability": durability,
			"Engine": applied, "EngineVersion": applied, // rolling.go
			"IpDiscovery": ipv4, "LogDeliveryConfigurations": noLogDelivery, "MultiAZEnabled": applied,
			"NodeGroupId":          unusedByAWS,
			"NotificationTopicArn": reported, "NotificationTopicStatus": reported,
			"PreferredMaintenanceWindow": reported, "PrimaryClusterId": applied,
			"ReplicationGroupDescription": applied, "SecurityGroupIds": reported,
			"SnapshotRetentionLimit": applied, "SnapshotWindow": applied, "SnapshottingClusterId": applied,
			"TransitEncryptionEnabled": tls, "TransitEncryptionMode": tls,
		},
		"DeleteReplicationGroupInput": {"ReplicationGroupId": applied, "FinalSnapshotIdentifier": applied, "RetainPrimaryCluster": applied},
		"TestFailoverInput":           {"ReplicationGroupId": applied, "NodeGroupId": applied},
		"ModifyReplicationGroupShardConfigurationInput": {"ReplicationGroupId": applied, "ApplyImmediately": applied,
			"NodeGroupCount": applied, "NodeGroupsToRemove": applied, "NodeGroupsToRetain": applied,
			"ReshardingConfiguration": applied},
		"IncreaseReplicaCountInput": {"ReplicationGroupId": applied, "ApplyImmediately": applied, "NewReplicaCount": applied,
			"ReplicaConfiguration": applied},
		"DecreaseReplicaCountInput": {"ReplicationGroupId": applied, "ApplyImmediately": applied, "NewReplicaCount": applied,
			"ReplicasToRemove": applied, "ReplicaConfiguration": applied},
		// Cache clusters.
		"CreateCacheClusterInput": {
			"CacheClusterId": applied, "AZMode": applied, "AuthToken": auth, // AZMode: Memcached's
			"AutoMinorVersionUpgrade": reported, "CacheNodeType": reported, "CacheParameterGroupName": applied,
			"CacheSecurityGroupNames": noClassicSG, "CacheSubnetGroupName": reported,
			"Engine": applied, "EngineVersion": applied, "IpDiscovery": ipv4, "NetworkType": ipv4,
			"LogDeliveryConfigurations": noLogDelivery, "NotificationTopicArn": reported, "NumCacheNodes": applied,
			"OutpostMode": noOutposts, "PreferredOutpostArn": noOutposts, "PreferredOutpostArns": noOutposts,
			"Port": applied, "PreferredAvailabilityZone": applied, "PreferredAvailabilityZones": applied,
			"PreferredMaintenanceWindow": reported, "ReplicationGroupId": applied, "SecurityGroupIds": reported,
			"SnapshotArns": applied, "SnapshotName": applied, "SnapshotRetentionLimit": applied, "SnapshotWindow": applied,
			"Tags": applied, "TransitEncryptionEnabled": tls,
		},
		"DescribeCacheClustersInput": with(paging, map[string]memberRule{"CacheClusterId": applied,
			"ShowCacheClustersNotInReplicationGroups": applied, "ShowCacheNodeInfo": applied}),
		"ModifyCacheClusterInput": {
			"CacheClusterId": applied, "AZMode": applied, // Memcached's
			"ApplyImmediately": applied, // node changes wait for the maintenance window without it
			"AuthToken":        auth, "AuthTokenUpdateStrategy": auth,
			"AutoMinorVersionUpgrade": reported, "CacheNodeIdsToRemove": applied, "CacheNodeType": applied,
			"CacheParameterGroupName": applied, "CacheSecurityGroupNames": noClassicSG,
			"Engine": applied, "EngineVersion": applied, // rolling.go
			"IpDiscovery": ipv4, "LogDeliveryConfigurations": noLogDelivery,
			"NewAvailabilityZones": applied, "ScaleConfig": refused(), // Memcached only
			"NotificationTopicArn": reported, "NotificationTopicStatus": reported, "NumCacheNodes": applied,
			"PreferredMaintenanceWindow": reported, "SecurityGroupIds": reported,
			"SnapshotRetentionLimit": applied, "SnapshotWindow": applied,
		},
		"DeleteCacheClusterInput": {"CacheClusterId": applied, "FinalSnapshotIdentifier": applied},
		"RebootCacheClusterInput": {"CacheClusterId": applied, "CacheNodeIdsToReboot": applied},
		// Catalog: engine versions, parameter and subnet groups.
		"DescribeCacheEngineVersionsInput": with(paging, map[string]memberRule{"CacheParameterGroupFamily": applied,
			"DefaultOnly": applied, "Engine": applied, "EngineVersion": applied}),
		"DescribeCacheParameterGroupsInput": with(paging, map[string]memberRule{"CacheParameterGroupName": applied}),
		"CreateCacheParameterGroupInput": {"CacheParameterGroupFamily": applied, "CacheParameterGroupName": applied,
			"Description": applied, "Tags": applied},
		"ModifyCacheParameterGroupInput": {"CacheParameterGroupName": applied, "ParameterNameValues": applied},
		"ResetCacheParameterGroupInput": {"CacheParameterGroupName": applied, "ParameterNameValues": applied,
			"ResetAllParameters": applied},
		"DeleteCacheParameterGroupInput":       {"CacheParameterGroupName": applied},
		"DescribeCacheParametersInput":         with(paging, map[string]memberRule{"CacheParameterGroupName": applied, "Source": applied}),
		"DescribeEngineDefaultParametersInput": with(paging, map[string]memberRule{"CacheParameterGroupFamily": applied}),
		"DescribeCacheSubnetGroupsInput":       with(paging, map[string]memberRule{"CacheSubnetGroupName": applied}),
		"CreateCacheSubnetGroupInput": {"CacheSubnetGroupDescription": applied, "CacheSubnetGroupName": applied,
			"SubnetIds": reported, "Tags": applied},
		"ModifyCacheSubnetGroupInput": {"CacheSubnetGroupName": applied, "CacheSubnetGroupDescription": applied,
			"SubnetIds": reported},
		"DeleteCacheSubnetGroupInput": {"CacheSubnetGroupName": applied},
		// Snapshots.
		"CreateSnapshotInput": {"SnapshotName": applied, "CacheClusterId": applied, "ReplicationGroupId": applied,
			"KmsKeyId": applied, "Tags": applied},
		"DescribeSnapshotsInput": with(paging, map[string]memberRule{"CacheClusterId": applied, "ReplicationGroupId": applied,
			"ShowNodeGroupConfig": applied, "SnapshotName": applied, "SnapshotSource": applied}),
		"DeleteSnapshotInput": {"SnapshotName": applied},
		"CopySnapshotInput": {"SourceSnapshotName": applied, "TargetSnapshotName": applied, "KmsKeyId": applied,
			"Tags": applied, "TargetBucket": applied},
		// Maintenance and billing: the lists are empty locally, so every
		// filter applies to nothing and answers nothing, as AWS would.
		"ListAllowedNodeTypeModificationsInput": {"CacheClusterId": applied, "ReplicationGroupId": applied},
		"DescribeServiceUpdatesInput": with(paging, map[string]memberRule{"ServiceUpdateName": applied,
			"ServiceUpdateStatus": applied}),
		"DescribeUpdateActionsInput": with(paging, map[string]memberRule{"CacheClusterIds": applied, "Engine": applied,
			"ReplicationGroupIds": applied, "ServiceUpdateName": applied, "ServiceUpdateStatus": applied,
			"ServiceUpdateTimeRange": applied, "ShowNodeLevelUpdateStatus": applied, "UpdateActionStatus": applied}),
		"DescribeReservedCacheNodesInput": with(paging, map[string]memberRule{"CacheNodeType": applied, "Duration": applied,
			"OfferingType": applied, "ProductDescription": applied, "ReservedCacheNodeId": applied,
			"ReservedCacheNodesOfferingId": applied}),
		"DescribeReservedCacheNodesOfferingsInput": with(paging, map[string]memberRule{"CacheNodeType": applied,
			"Duration": applied, "OfferingType": applied, "ProductDescription": applied,
			"ReservedCacheNodesOfferingId": applied}),
		// Online migration into a replication group; the serverless cache
		// members are refused with serverless caches.
		"StartMigrationInput": {"ReplicationGroupId": applied, "CustomerNodeEndpointList": applied,
			"ServerlessCacheName": refused(), "AutoCutover": refused("false"), "ClearTargetCacheData": refused("false")},
		"TestMigrationInput":     {"ReplicationGroupId": applied, "CustomerNodeEndpointList": applied},
		"CompleteMigrationInput": {"ReplicationGroupId": applied, "Force": applied, "ServerlessCacheName": refused()},
		// EC2-Classic security groups: every member answers AWS's refusal.
		"CreateCacheSecurityGroupInput":           {"CacheSecurityGroupName": noClassicSG, "Description": noClassicSG, "Tags": noClassicSG},
		"DeleteCacheSecurityGroupInput":           {"CacheSecurityGroupName": noClassicSG},
		"DescribeCacheSecurityGroupsInput":        {"CacheSecurityGroupName": noClassicSG, "Marker": noClassicSG, "MaxRecords": noClassicSG},
		"AuthorizeCacheSecurityGroupIngressInput": {"CacheSecurityGroupName": noClassicSG, "EC2SecurityGroupName": noClassicSG, "EC2SecurityGroupOwnerId": noClassicSG},
		"RevokeCacheSecurityGroupIngressInput":    {"CacheSecurityGroupName": noClassicSG, "EC2SecurityGroupName": noClassicSG, "EC2SecurityGroupOwnerId": noClassicSG},
		// Nothing to apply, stop or buy: every call answers the NotFound
		// fault of the update or offering it names.
		"BatchApplyUpdateActionInput": {"ServiceUpdateName": applied, "ReplicationGroupIds": applied, "CacheClusterIds": applied},
		"BatchStopUpdateActionInput":  {"ServiceUpdateName": applied, "ReplicationGroupIds": applied, "CacheClusterIds": applied},
		"PurchaseReservedCacheNodesOfferingInput": {"ReservedCacheNodesOfferingId": applied, "ReservedCacheNodeId": applied,
			"CacheNodeCount": applied, "Tags": applied},
		// Users and user groups (RBAC): AuthenticationMode Type iam is
		// refused by the handlers.
		"CreateUserInput": {"UserId": applied, "UserName": applied, "Engine": applied, "AccessString": applied,
			"AuthenticationMode": applied, "NoPasswordRequired": applied, "Passwords": applied, "Tags": applied},
		"ModifyUserInput": {"UserId": applied, "AccessString": applied, "AppendAccessString": applied,
			"AuthenticationMode": applied, "Engine": applied, "NoPasswordRequired": applied, "Passwords": applied},
		"DeleteUserInput":      {"UserId": applied},
		"DescribeUsersInput":   with(paging, map[string]memberRule{"Engine": applied, "Filters": applied, "UserId": applied}),
		"CreateUserGroupInput": {"UserGroupId": applied, "Engine": applied, "UserIds": applied, "Tags": applied},
		"ModifyUserGroupInput": {"UserGroupId": applied, "Engine": applied, "UserIdsToAdd": applied,
			"UserIdsToRemove": applied},
		"DeleteUserGroupInput":    {"UserGroupId": applied},
		"DescribeUserGroupsInput": with(paging, map[string]memberRule{"UserGroupId": applied}),
		// Events and tags.
		"DescribeEventsInput": with(paging, map[string]memberRule{"Duration": applied, "EndTime": applied,
			"SourceIdentifier": applied, "SourceType": applied, "StartTime": applied}),
		"AddTagsToResourceInput":      {"ResourceName": applied, "Tags": applied},
		"ListTagsForResourceInput":    {"ResourceName": applied},
		"RemoveTagsFromResourceInput": {"ResourceName": applied, "TagKeys": applied},
	}
}
