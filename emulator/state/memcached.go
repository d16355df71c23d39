package state

// Memcached is what a Memcached cluster records beyond a CacheCluster.
type Memcached struct {
	ConfigurationEndpoint Endpoint `json:"configurationEndpoint"`
	// ConfigVersion is the Auto Discovery config version.
	ConfigVersion int    `json:"configVersion"`
	AZMode        string `json:"azMode"`
	// PendingNodes and PendingRemove: a node count change waiting for the
	// maintenance window (ApplyImmediately false).
	PendingNodes  int      `json:"pendingNodes,omitempty"`
	PendingRemove []string `json:"pendingRemove,omitempty"`
	// Reboot lists the nodes to reboot for parameter changes.
	Reboot []string `json:"reboot,omitempty"`
}
