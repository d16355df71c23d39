package engine

// Cluster mode (Redis Cluster): the commands the control plane sends to
// cluster nodes.

import (
	"context"
	"errors"
)

var errClusterTODO = errors.New("engine: cluster support not implemented yet")

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID string
	// Addr is the client address as the node announces it: for docker the
	// announced hostname (the host IP) and the published port.
	Addr    Endpoint
	BusPort int

	Myself, Primary, Replica, Fail, PFail, Handshake, NoAddr bool

	// PrimaryID is the id of the primary a replica follows.
	PrimaryID string
	// Connected is link-state connected.
	Connected bool
	Slots     []SlotRange
	// Migrating and Importing map a slot to the peer node id.
	Migrating, Importing map[int]string
}

// ClusterInfo is the parsed CLUSTER INFO of a node.
type ClusterInfo struct {
	// State is "ok" or "fail".
	State                                    string
	SlotsAssigned, SlotsOK, KnownNodes, Size int
	CurrentEpoch                             int64
}

// ClusterMyID returns the node's cluster id (CLUSTER MYID).
func (a Admin) ClusterMyID(ctx context.Context, ep Endpoint) (string, error) {
	return "", errClusterTODO
}

// ClusterMeet introduces peer to the node at ep (CLUSTER MEET). peer is the
// address nodes reach each other at (ClusterAddrOf).
func (a Admin) ClusterMeet(ctx context.Context, ep Endpoint, peer Endpoint) error {
	return errClusterTODO
}

// ClusterAddSlots assigns ranges to the node at ep (CLUSTER ADDSLOTSRANGE).
// Slots ep already owns are fine.
func (a Admin) ClusterAddSlots(ctx context.Context, ep Endpoint, ranges []SlotRange) error {
	return errClusterTODO
}

// ClusterReplicate makes the node at ep a replica of primaryID; idempotent.
func (a Admin) ClusterReplicate(ctx context.Context, ep Endpoint, primaryID string) error {
	return errClusterTODO
}

// ClusterNodes returns the parsed CLUSTER NODES of the node at ep.
func (a Admin) ClusterNodes(ctx context.Context, ep Endpoint) ([]ClusterNode, error) {
	return nil, errClusterTODO
}

// ClusterInfo returns the parsed CLUSTER INFO of the node at ep.
func (a Admin) ClusterInfo(ctx context.Context, ep Endpoint) (ClusterInfo, error) {
	return ClusterInfo{}, errClusterTODO
}

// ClusterForget makes the node at ep forget node id; an unknown id is fine.
func (a Admin) ClusterForget(ctx context.Context, ep Endpoint, id string) error {
	return errClusterTODO
}

// ClusterFailover runs CLUSTER FAILOVER [mode] on replica ("", "FORCE" or
// "TAKEOVER") and returns once it reports role master.
func (a Admin) ClusterFailover(ctx context.Context, replica Endpoint, mode string) error {
	return errClusterTODO
}

// ClusterSetSlotStable clears a slot's importing/migrating state on ep.
func (a Admin) ClusterSetSlotStable(ctx context.Context, ep Endpoint, slot int) error {
	return errClusterTODO
}

// ClusterSetSlotNode runs CLUSTER SETSLOT slot NODE id on ep.
func (a Admin) ClusterSetSlotNode(ctx context.Context, ep Endpoint, slot int, id string) error {
	return errClusterTODO
}

// CountKeysInSlot returns CLUSTER COUNTKEYSINSLOT slot on ep.
func (a Admin) CountKeysInSlot(ctx context.Context, ep Endpoint, slot int) (int, error) {
	return 0, errClusterTODO
}

// ClusterOK is a Check: nil when the node reports cluster_state:ok.
func (a Admin) ClusterOK(ctx context.Context, ep Endpoint) error {
	return errClusterTODO
}

// ClusterConsistent returns nil when every node of eps knows all the others
// (no handshake), reports cluster_state:ok and agrees on the owner of every
// slot.
func (a Admin) ClusterConsistent(ctx context.Context, eps []Endpoint) error {
	return errClusterTODO
}
