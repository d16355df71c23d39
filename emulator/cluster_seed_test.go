package emulator

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestSnapshotLayout: a restore of a cluster-mode snapshot without a layout
// of its own takes the snapshot's node groups, slots and replica counts;
// ReplicasPerNodeGroup overrides the counts; a record without slots gives
// no layout.
func TestSnapshotLayout(t *testing.T) {
	s := &snapshot{ClusterMode: true, Nodes: []snapshotShard{
		{NodeGroupID: "0001", Slots: "0-100,200-8191", ReplicaCount: 2},
		{NodeGroupID: "0007", Slots: "101-199,8192-16383", ReplicaCount: 0},
	}}
	want := []shardPlan{
		{id: "0001", slots: []engine.SlotRange{{Start: 0, End: 100}, {Start: 200, End: 8191}}, replicas: 2},
		{id: "0007", slots: []engine.SlotRange{{Start: 101, End: 199}, {Start: 8192, End: 16383}}, replicas: 0},
	}
	if got := s.layout(nil); !reflect.DeepEqual(got, want) {
		t.Errorf("layout = %+v, want %+v", got, want)
	}
	if err := checkSlotCoverage(s.layout(nil)); err != nil {
		t.Errorf("the layout does not cover the slots: %v", err)
	}
	for _, sp := range s.layout(aws.Int32(1)) {
		if sp.replicas != 1 {
			t.Errorf("node group %s has %d replicas, want ReplicasPerNodeGroup's 1", sp.id, sp.replicas)
		}
	}
	s.Nodes[1].Slots = ""
	if got := s.layout(nil); got != nil {
		t.Errorf("layout of a record without slots = %+v, want none", got)
	}
}
