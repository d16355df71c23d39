package emulator

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

func TestEvenSlotsAsAWS(t *testing.T) {
	for n, want := range map[int]string{
		1: "0-16383",
		2: "0-8191 8192-16383",
		3: "0-5461 5462-10922 10923-16383",
	} {
		var got []string
		for _, r := range evenSlots(n) {
			got = append(got, engine.FormatSlotRanges(r))
		}
		if s := joinSpace(got); s != want {
			t.Errorf("evenSlots(%d) = %s, want %s", n, s, want)
		}
	}
	for _, n := range []int{4, 7, 90, 500} {
		total := 0
		for _, r := range evenSlots(n) {
			c := engine.SlotCount(r)
			if c < engine.ClusterSlots/n || c > engine.ClusterSlots/n+1 {
				t.Errorf("evenSlots(%d) gives a node group %d slots", n, c)
			}
			total += c
		}
		if total != engine.ClusterSlots {
			t.Errorf("evenSlots(%d) covers %d slots", n, total)
		}
	}
}

func joinSpace(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

func TestPlanShards(t *testing.T) {
	in := func(mod func(*elasticache.CreateReplicationGroupInput)) *elasticache.CreateReplicationGroupInput {
		x := &elasticache.CreateReplicationGroupInput{NumNodeGroups: aws.Int32(3), ReplicasPerNodeGroup: aws.Int32(2)}
		if mod != nil {
			mod(x)
		}
		return x
	}
	shards, err := planShards(in(nil), DefaultClusterNodeQuota)
	if err != nil || len(shards) != 3 || shards[2].id != "0003" || shards[1].replicas != 2 {
		t.Fatalf("planShards = %+v, %v", shards, err)
	}
	shards, err = planShards(in(func(x *elasticache.CreateReplicationGroupInput) {
		x.NumNodeGroups = nil
		x.NodeGroupConfiguration = []types.NodeGroupConfiguration{
			{NodeGroupId: aws.String("7"), Slots: aws.String("0-100,16000-16383"), ReplicaCount: aws.Int32(0)},
			{Slots: aws.String("101-15999"), PrimaryAvailabilityZone: aws.String("us-east-1b"), ReplicaAvailabilityZones: []string{"us-east-1c", "us-east-1a"}},
		}
	}), DefaultClusterNodeQuota)
	if err != nil {
		t.Fatal(err)
	}
	if shards[0].id != "0007" || shards[0].replicas != 0 || engine.FormatSlotRanges(shards[0].slots) != "0-100,16000-16383" ||
		shards[1].id != "0002" || !slices.Equal(shards[1].azs, []string{"us-east-1b", "us-east-1c", "us-east-1a"}) {
		t.Fatalf("planShards with a configuration = %+v", shards)
	}
	for name, tc := range map[string]struct {
		mod  func(*elasticache.CreateReplicationGroupInput)
		want any
	}{
		"overlap": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NumNodeGroups = nil
			x.NodeGroupConfiguration = []types.NodeGroupConfiguration{{Slots: aws.String("0-9000")}, {Slots: aws.String("9000-16383")}}
		}, &types.InvalidParameterValueException{}},
		"gap": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NumNodeGroups = nil
			x.NodeGroupConfiguration = []types.NodeGroupConfiguration{{Slots: aws.String("0-9000")}, {Slots: aws.String("9002-16383")}}
		}, &types.InvalidParameterValueException{}},
		"some slots": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NumNodeGroups = nil
			x.NodeGroupConfiguration = []types.NodeGroupConfiguration{{Slots: aws.String("0-16383")}, {}}
		}, &types.InvalidParameterValueException{}},
		"count mismatch": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NodeGroupConfiguration = []types.NodeGroupConfiguration{{}}
		}, &types.InvalidParameterCombinationException{}},
		"duplicate id": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NumNodeGroups = nil
			x.NodeGroupConfiguration = []types.NodeGroupConfiguration{{NodeGroupId: aws.String("1")}, {NodeGroupId: aws.String("0001")}}
		}, &types.InvalidParameterValueException{}},
		"bad id": {func(x *elasticache.CreateReplicationGroupInput) {
			x.NodeGroupConfiguration = make([]types.NodeGroupConfiguration, 3)
			x.NodeGroupConfiguration[0].NodeGroupId = aws.String("a1")
		}, &types.InvalidParameterValueException{}},
		"too many shards": {func(x *elasticache.CreateReplicationGroupInput) { x.NumNodeGroups = aws.Int32(501) }, &types.NodeGroupsPerReplicationGroupQuotaExceededFault{}},
		"too many nodes":  {func(x *elasticache.CreateReplicationGroupInput) { x.NumNodeGroups = aws.Int32(31) }, &types.NodeQuotaForClusterExceededFault{}},
		"replicas":        {func(x *elasticache.CreateReplicationGroupInput) { x.ReplicasPerNodeGroup = aws.Int32(6) }, &types.InvalidParameterValueException{}},
		"NumCacheClusters": {func(x *elasticache.CreateReplicationGroupInput) { x.NumCacheClusters = aws.Int32(2) },
			&types.InvalidParameterCombinationException{}},
		"disabled": {func(x *elasticache.CreateReplicationGroupInput) { x.ClusterMode = types.ClusterModeDisabled },
			&types.InvalidParameterCombinationException{}},
	} {
		_, err := planShards(in(tc.mod), DefaultClusterNodeQuota)
		if err == nil || !sameErrorType(err, tc.want) {
			t.Errorf("%s: err = %T %v, want %T", name, err, err, tc.want)
		}
	}
}

func sameErrorType(err error, want any) bool {
	switch want.(type) {
	case *types.InvalidParameterValueException:
		var e *types.InvalidParameterValueException
		return errors.As(err, &e)
	case *types.InvalidParameterCombinationException:
		var e *types.InvalidParameterCombinationException
		return errors.As(err, &e)
	case *types.NodeGroupsPerReplicationGroupQuotaExceededFault:
		var e *types.NodeGroupsPerReplicationGroupQuotaExceededFault
		return errors.As(err, &e)
	case *types.NodeQuotaForClusterExceededFault:
		var e *types.NodeQuotaForClusterExceededFault
		return errors.As(err, &e)
	}
	return false
}

// layoutOf turns node group → ranges into slot → node group.
func layoutOf(m map[string][]engine.SlotRange) []string {
	owner := make([]string, engine.ClusterSlots)
	for id, rs := range m {
		for _, r := range rs {
			for s := r.Start; s <= r.End; s++ {
				owner[s] = id
			}
		}
	}
	return owner
}

func TestTargetLayoutMovesLittleAndEvens(t *testing.T) {
	three := map[string][]engine.SlotRange{}
	for i, r := range evenSlots(3) {
		three[nodeID(i+1)] = r
	}
	for name, tc := range map[string]struct {
		current map[string][]engine.SlotRange
		final   []string
	}{
		"scale out 3→4": {three, []string{"0001", "0002", "0003", "0004"}},
		"scale in 3→2":  {three, []string{"0002", "0003"}},
		"rebalance": {map[string][]engine.SlotRange{
			"0001": {{Start: 0, End: 12000}}, "0002": {{Start: 12001, End: 16383}}}, []string{"0001", "0002"}},
	} {
		target := targetLayout(tc.current, tc.final)
		before, after := layoutOf(tc.current), layoutOf(target)
		moved := 0
		for s := range after {
			if after[s] == "" {
				t.Fatalf("%s: slot %d has no owner", name, s)
			}
			if after[s] != before[s] {
				moved++
			}
		}
		counts := map[string]int{}
		for _, id := range after {
			counts[id]++
		}
		share := engine.ClusterSlots / len(tc.final)
		for _, id := range tc.final {
			if counts[id] < share || counts[id] > share+1 {
				t.Errorf("%s: node group %s ends with %d slots", name, id, counts[id])
			}
		}
		// The fewest moves: every slot above a node group's share moves,
		// no other.
		least := 0
		held := map[string]int{}
		for _, id := range before {
			held[id]++
		}
		for id, n := range held {
			if slices.Contains(tc.final, id) {
				least += max(0, n-counts[id])
			} else {
				least += n
			}
		}
		if moved != least {
			t.Errorf("%s: %d slots move, the least is %d", name, moved, least)
		}
		for id := range tc.current {
			if !slices.Contains(tc.final, id) && len(target[id]) != 0 {
				t.Errorf("%s: removed node group %s keeps %v", name, id, target[id])
			}
		}
	}
	if !balanced(three, slices.Sorted(maps.Keys(three))) {
		t.Errorf("an even split of 3 is not balanced")
	}
}

func TestInterleaveByPair(t *testing.T) {
	moves := []slotMove{{1, "a", "x"}, {2, "a", "x"}, {3, "b", "x"}, {4, "b", "x"}, {5, "a", "y"}}
	got := interleaveByPair(moves)
	var slots []int
	for _, m := range got {
		slots = append(slots, m.slot)
	}
	if !slices.Equal(slots, []int{1, 3, 5, 2, 4}) {
		t.Errorf("interleaved = %v", slots)
	}
}
