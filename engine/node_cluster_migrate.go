package engine

// Moving hash slots between primaries live (resharding).

import "context"

// SlotMove describes moving one hash slot from one primary to another.
type SlotMove struct {
	Slot int
	// Source and Target are the addresses the control plane uses.
	Source, Target Endpoint
	// TargetPeer is the target as the source node reaches it (ClusterAddrOf).
	TargetPeer         Endpoint
	SourceID, TargetID string
	// Others are every other node (primaries and replicas) to tell SETSLOT
	// NODE; errors on these are not fatal.
	Others []Endpoint
	// Batch is the number of keys per MIGRATE (default 1000).
	Batch int
	// Progress, when set, is called after each batch with its key count.
	Progress func(keysMoved int)
}

// MoveSlot moves one hash slot live with the standard protocol and returns
// the number of keys moved.
func (a Admin) MoveSlot(ctx context.Context, m SlotMove) (keys int, err error) {
	return 0, errClusterTODO
}

// RollbackSlot undoes a move that did not finish: the slot stays with
// SourceID.
func (a Admin) RollbackSlot(ctx context.Context, m SlotMove) error {
	return errClusterTODO
}
