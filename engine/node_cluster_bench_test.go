package engine_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// BenchmarkMoveSlots moves a quarter of the slots (4096, about 205,000
// keys of 820,000) from three primaries to a fourth, empty one, twice in
// one run on two identical clusters: with Admin.MoveSlots, and with
// redis-cli --cluster rebalance --cluster-use-empty-masters (its defaults:
// 10 keys per MIGRATE, one slot at a time), and reports the keys/s of both
// and their ratio. With -benchtime 1x (each round forms its own clusters):
//
//	go test ./engine -run '^$' -bench MoveSlots -benchtime 1x
func BenchmarkMoveSlots(b *testing.B) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		b.Skip("no redis-cli:", err)
	}
	const keys = 820_000
	h := newClusterHarness(b)
	ctx := context.Background()
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		ours := formBenchCluster(b, h, ctx, fmt.Sprintf("ours%d", round), keys)
		theirs := formBenchCluster(b, h, ctx, fmt.Sprintf("cli%d", round), keys)
		b.StartTimer()

		begin := time.Now()
		moved, err := h.rt.Admin().MoveSlots(ctx, ours.quarterToLast(), 0)
		if err != nil {
			b.Fatal(err)
		}
		oursTook := time.Since(begin)

		b.StopTimer()
		begin = time.Now()
		out, err := exec.CommandContext(ctx, cli, "--cluster", "rebalance", theirs.members[0].Endpoint.Addr(),
			"--cluster-use-empty-masters").CombinedOutput()
		cliTook := time.Since(begin)
		if err != nil {
			b.Fatalf("redis-cli --cluster rebalance: %v\n%s", err, out)
		}
		cliMoved := 0
		for s, r := range theirs.members[3:4] {
			_ = s
			nodes, err := h.rt.Admin().ClusterNodes(ctx, r.Endpoint)
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range nodes {
				if n.Myself {
					for _, rg := range n.Slots {
						for slot := rg.Start; slot <= rg.End; slot++ {
							c, err := h.rt.Admin().CountKeysInSlot(ctx, r.Endpoint, slot)
							if err != nil {
								b.Fatal(err)
							}
							cliMoved += c
						}
					}
					b.Logf("redis-cli gave the new primary %d slots", engine.SlotCount(n.Slots))
				}
			}
		}
		for _, c := range []*testCluster{ours, theirs} {
			if err := h.rt.Admin().ClusterConsistent(ctx, c.endpoints()); err != nil {
				b.Fatal(err)
			}
		}
		oursRate := float64(moved) / oursTook.Seconds()
		cliRate := float64(cliMoved) / cliTook.Seconds()
		b.Logf("MoveSlots: %d keys in %s (%.0f keys/s); redis-cli rebalance: %d keys in %s (%.0f keys/s); ratio %.1f×",
			moved, oursTook.Round(time.Millisecond), oursRate, cliMoved, cliTook.Round(time.Millisecond), cliRate, oursRate/cliRate)
		b.ReportMetric(oursRate, "keys/s")
		b.ReportMetric(cliRate, "redis-cli-keys/s")
		b.ReportMetric(oursRate/cliRate, "ratio")
		b.StartTimer()
	}
}

// formBenchCluster forms 3 primaries holding n keys and a fourth, empty one.
func formBenchCluster(b *testing.B, h *clusterHarness, ctx context.Context, prefix string, n int) *testCluster {
	c := formCluster(b, h, ctx, prefix, 3, 0)
	c.add(ctx, "p3", engine.ClusterMember{})
	ids, err := h.rt.Admin().FormCluster(ctx, c.members)
	if err != nil {
		b.Fatal(err)
	}
	c.ids = ids
	begin := time.Now()
	writeKeys(b, ctx, c.client(b), "key:", n)
	b.Logf("%s: wrote %d keys in %s", prefix, n, time.Since(begin).Round(time.Millisecond))
	return c
}

// quarterToLast returns the moves of the last quarter of each of the first
// three members' slots to the fourth.
func (c *testCluster) quarterToLast() []engine.SlotMove {
	var moves []engine.SlotMove
	for i, r := range engine.SplitSlots(3) {
		n := (r[0].End - r[0].Start + 1) / 4
		moves = append(moves, c.moves(r[0].End-n+1, r[0].End, i, 3, 0)...)
	}
	return moves
}

var _ = strconv.Itoa
