package state

import "time"

// Format and Version identify a state file; a file of another format or
// version is refused (see Store.Load).
const (
	Format  = "elasticache-local/state"
	Version = 1
)

// Scope is the key of all state: AWS resources live in one account and
// region.
type Scope struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// Region is everything one account has in one region: the unit that is
// persisted.
type Region struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Scope
	ReplicationGroups []ReplicationGroup `json:"replicationGroups"`
	CacheClusters     []CacheCluster     `json:"cacheClusters"`
	ParameterGroups   []ParameterGroup   `json:"parameterGroups"`
	SubnetGroups      []SubnetGroup      `json:"subnetGroups"`
	Events            []Event            `json:"events"`
	Tags              map[string][]Tag   `json:"tags"` // by ARN
	TestFailovers     []time.Time        `json:"testFailovers,omitempty"`
	Operations        []Operation        `json:"operations,omitempty"`
	// Users and UserGroups are the RBAC users (the built-in "default"
	// included) and user groups.
	Users      []User      `json:"users,omitempty"`
	UserGroups []UserGroup `json:"userGroups,omitempty"`
}

// EngineVersion is a catalog entry: Version as the API lists it, Actual as
// a running cluster reports it.
type EngineVersion struct {
	Engine  string `json:"engine"`
	Version string `json:"version"`
	Actual  string `json:"actual"`
	Family  string `json:"family"`
}

// Settings are the metadata-only settings of clusters and groups.
type Settings struct {
	MaintenanceWindow  string `json:"maintenanceWindow"`
	SnapshotWindow     string `json:"snapshotWindow"`
	SnapshotRetention  int32  `json:"snapshotRetentionLimit"`
	AutoMinorUpgrade   bool   `json:"autoMinorVersionUpgrade"`
	AtRestEncryption   bool   `json:"atRestEncryptionEnabled"`
	NotificationTopic  string `json:"notificationTopicArn,omitempty"`
	NotificationStatus string `json:"notificationTopicStatus,omitempty"`
}

// ReplicationGroup is a Redis OSS/Valkey replication group.
type ReplicationGroup struct {
	ID           string        `json:"id"`
	Description  string        `json:"description"`
	Status       string        `json:"status"`
	Created      time.Time     `json:"created"`
	Engine       EngineVersion `json:"engine"`
	NodeType     string        `json:"cacheNodeType"`
	ParamGroup   string        `json:"cacheParameterGroupName"`
	Port         int32         `json:"port"`
	AutoFailover bool          `json:"automaticFailover"`
	MultiAZ      bool          `json:"multiAZ"`
	KmsKeyID     string        `json:"kmsKeyId,omitempty"`
	UserGroupIDs []string      `json:"userGroupIds,omitempty"`
	Settings     Settings      `json:"settings"`
	NodeGroups   []NodeGroup   `json:"nodeGroups"`
	// Snapshotting is the member chosen with SnapshottingClusterId.
	Snapshotting string `json:"snapshottingClusterId,omitempty"`
	// ClusterMode is true for a cluster-mode-enabled group (Redis
	// Cluster): its node groups own hash slots and it has one
	// configuration endpoint instead of primary and reader endpoints.
	ClusterMode           bool      `json:"clusterMode,omitempty"`
	ConfigurationEndpoint *Endpoint `json:"configurationEndpoint,omitempty"`
	// Resharding is the online resharding in progress, if any.
	Resharding *Resharding `json:"resharding,omitempty"`
	// Security is the group's TLS and AUTH token (nil: neither).
	Security *Security `json:"security,omitempty"`
	// PendingNodeChange waits for the maintenance window; NodeChange is
	// under way (see NodeChange).
	PendingNodeChange *NodeChange `json:"pendingNodeChange,omitempty"`
	NodeChange        *NodeChange `json:"nodeChange,omitempty"`
	// PendingSettings wait for the maintenance window with the pending
	// node change (see PendingSettings).
	PendingSettings *PendingSettings `json:"pendingSettings,omitempty"`
	// Migration is the online migration into the group, if any.
	Migration *Migration `json:"migration,omitempty"`
}

// Migration is an online migration (StartMigration): the group's primary
// replicates from a server the emulator does not run, at Address:Port,
// until CompleteMigration promotes it. Completing is set from the
// CompleteMigration call until the promotion is done (or refused, data not
// in sync), so a restart in between finishes the completion instead of
// pointing the primary at the source again; Force skips the in-sync check.
type Migration struct {
	Address    string `json:"address"`
	Port       int    `json:"port"`
	Completing bool   `json:"completing,omitempty"`
	Force      bool   `json:"force,omitempty"`
}

// PendingSettings are the group-level changes a ModifyReplicationGroup
// without ApplyImmediately leaves for the maintenance window, as AWS
// lists them in ReplicationGroupPendingModifiedValues: automatic failover
// (with the Multi-AZ setting asked with it) and the primary cluster.
type PendingSettings struct {
	AutoFailover *bool  `json:"automaticFailover,omitempty"`
	MultiAZ      *bool  `json:"multiAZ,omitempty"`
	Primary      string `json:"primaryClusterId,omitempty"`
}

// NodeChange is a change of the nodes themselves (node type, engine
// version, with the parameter group of the new family) of a replication
// group or a standalone cluster, applied by replacing node after node.
// Done lists the member clusters replaced so far and Current the one being
// replaced, so a change resumed after a restart replaces only the others.
type NodeChange struct {
	NodeType   string         `json:"cacheNodeType,omitempty"`
	Engine     *EngineVersion `json:"engine,omitempty"`
	ParamGroup string         `json:"cacheParameterGroupName,omitempty"`
	Done       []string       `json:"done,omitempty"`
	Current    string         `json:"current,omitempty"`
	Transit    *TransitLayout `json:"transit,omitempty"`
	// Primary is the member to hold the primary role once every node is
	// replaced (a pending PrimaryClusterId applied with the change).
	Primary string `json:"primaryClusterId,omitempty"`
}

// Security is the in-transit encryption and AUTH token of a group or a
// standalone cluster. It holds token hashes only, never a token.
type Security struct {
	Transit bool `json:"transitEncryption,omitempty"`
	// AuthHashes are SHA-256 hashes (hex) of the accepted AUTH tokens.
	AuthHashes []string `json:"authTokenHashes,omitempty"`
	// AuthOpen: passwordless connections are still accepted (a first
	// token added by ROTATE, until a SET).
	AuthOpen     bool      `json:"authOpen,omitempty"`
	AuthModified time.Time `json:"authTokenLastModified,omitzero"`
	// AuthPending is the AuthTokenStatus of a change being applied.
	AuthPending string `json:"authTokenPending,omitempty"`
	// Preferred: TransitEncryptionMode preferred (TLS and plaintext).
	Preferred bool `json:"transitPreferred,omitempty"`
}

// TransitLayout is the in-transit encryption a node change moves a
// group's nodes to (ModifyReplicationGroup TransitEncryptionEnabled /
// TransitEncryptionMode).
type TransitLayout struct {
	Transit   bool `json:"transitEncryption,omitempty"`
	Preferred bool `json:"transitPreferred,omitempty"`
}

// Resharding is an online resharding of a cluster-mode group: the slot
// layout it moves to. Slots already moved show in the node groups' Slots
// (the layout is committed as moves finish), so a resumed resharding
// moves only what is left.
type Resharding struct {
	// Target is the slot ranges each node group ends with ("" for a node
	// group being removed), by node group id.
	Target map[string]string `json:"target"`
	// Remove are the node groups removed once their slots are moved out.
	Remove []string `json:"remove,omitempty"`
	// Keys and Moved count the keys to move and those moved, for the
	// progress percentage.
	Keys  int64 `json:"keys"`
	Moved int64 `json:"moved"`
	// From is the node group count before, for the events.
	From int `json:"from"`
}

// NodeGroup is a shard: one primary cluster and its replicas, and the
// addresses of its primary and reader endpoints, which never change.
type NodeGroup struct {
	ID              string    `json:"id"`
	Primary         string    `json:"primary"`
	Members         []string  `json:"members"`
	PrimaryEndpoint *Endpoint `json:"primaryEndpoint,omitempty"`
	ReaderEndpoint  *Endpoint `json:"readerEndpoint,omitempty"`
	// Slots are the hash slots of a cluster-mode node group ("0-5460").
	Slots string `json:"slots,omitempty"`
}

// Endpoint is a host:port address.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// CacheCluster is a standalone cluster or a member of a replication group.
type CacheCluster struct {
	ID          string        `json:"id"`
	GroupID     string        `json:"replicationGroupId,omitempty"`
	Status      string        `json:"status"`
	Created     time.Time     `json:"created"`
	Engine      EngineVersion `json:"engine"`
	NodeType    string        `json:"cacheNodeType"`
	ParamGroup  string        `json:"cacheParameterGroupName"`
	SubnetGroup string        `json:"cacheSubnetGroupName"`
	SecurityIDs []string      `json:"securityGroupIds,omitempty"`
	Port        int32         `json:"port"`
	AZ          string        `json:"availabilityZone"`
	Nodes       []CacheNode   `json:"nodes"`
	Settings    Settings      `json:"settings"`
	// Security of a standalone cluster (members take their group's).
	Security *Security `json:"security,omitempty"`
	// PendingNodeChange and NodeChange of a standalone cluster (members
	// take their group's).
	PendingNodeChange *NodeChange `json:"pendingNodeChange,omitempty"`
	NodeChange        *NodeChange `json:"nodeChange,omitempty"`
	// Memcached is set for a Memcached cluster.
	Memcached *Memcached `json:"memcached,omitempty"`
	// PendingReboot: a requires-reboot parameter changed since the nodes
	// started.
	PendingReboot bool `json:"pendingReboot,omitempty"`
}

// CacheNode is one engine node; Name is its name in the runtime.
type CacheNode struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Endpoint Endpoint  `json:"endpoint"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
	AZ       string    `json:"availabilityZone"`
}

// ParameterGroup is a cache parameter group; Params are the values set in
// it over the engine defaults.
type ParameterGroup struct {
	Name        string            `json:"name"`
	Family      string            `json:"family"`
	Description string            `json:"description"`
	Params      map[string]string `json:"params,omitempty"`
}

// SubnetGroup is a cache subnet group (metadata only locally).
type SubnetGroup struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	VpcID       string   `json:"vpcId"`
	Subnets     []Subnet `json:"subnets"`
}

// Subnet is one subnet of a subnet group.
type Subnet struct {
	ID               string `json:"id"`
	AvailabilityZone string `json:"availabilityZone"`
}

// Event is one DescribeEvents record.
type Event struct {
	Date       time.Time `json:"date"`
	SourceType string    `json:"sourceType"`
	SourceID   string    `json:"sourceId"`
	Message    string    `json:"message"`
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Operation is long-running work that has not finished: the emulator
// resumes it at its next start (see the emulator's operations.go). Kind
// names what it does, Target the resource it works on.
type Operation struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	Started time.Time `json:"started"`
	// Detail holds what the kind needs to resume (e.g. the failover target).
	Detail map[string]string `json:"detail,omitempty"`
}

// User is an RBAC user. It holds password hashes only (SHA-256, hex, as
// Redis ACLs take them), never a password.
type User struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Engine       string `json:"engine"`
	AccessString string `json:"accessString"`
	Status       string `json:"status"`
	// Authentication is "password" or "no-password".
	Authentication string   `json:"authentication"`
	PasswordHashes []string `json:"passwordHashes,omitempty"`
}

// UserGroup is an RBAC user group: its users, the replication groups it
// is attached to, and the users a modification in progress adds and
// removes.
type UserGroup struct {
	ID                string   `json:"id"`
	Engine            string   `json:"engine"`
	Status            string   `json:"status"`
	UserIDs           []string `json:"userIds"`
	ReplicationGroups []string `json:"replicationGroups,omitempty"`
	PendingAdd        []string `json:"pendingUserIdsToAdd,omitempty"`
	PendingRemove     []string `json:"pendingUserIdsToRemove,omitempty"`
}
