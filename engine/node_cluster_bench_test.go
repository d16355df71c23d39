package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// BenchmarkMoveSlots moves a quarter of the slots (4096, about 205,000
// keys of 820,000) from three primaries to a fourth, empty one, on
// identical clusters in one run: with Admin.MoveSlots, with redis-cli
// --cluster rebalance --cluster-use-empty-masters as it comes (10 keys per
// MIGRATE, one slot at a time), and with redis-cli and --cluster-pipeline
// 1000 (MoveSlots' batch). It reports the keys/s of each and the ratios.
// Each round forms its own clusters; run it once:
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
		b.StartTimer()
		begin, nodesCPU, selfCPU := time.Now(), ours.cpu(b), selfCPUTime()
		moved, err := h.rt.Admin().MoveSlots(ctx, ours.quarterToLast(), 0)
		if err != nil {
			b.Fatal(err)
		}
		rate := float64(moved) / time.Since(begin).Seconds()
		b.StopTimer()
		nodesCPU, selfCPU = ours.cpu(b)-nodesCPU, selfCPUTime()-selfCPU
		b.Logf("MoveSlots: %d keys in %s: %.0f keys/s; CPU: nodes %s, mover %s",
			moved, time.Since(begin).Round(time.Millisecond), rate, nodesCPU, selfCPU)
		b.ReportMetric(rate, "keys/s")
		b.ReportMetric(float64((nodesCPU + selfCPU).Milliseconds()), "cpu-ms")
		if err := h.rt.Admin().ClusterConsistent(ctx, ours.endpoints()); err != nil {
			b.Fatal(err)
		}
		for _, v := range []struct {
			metric string
			args   []string
		}{
			{"redis-cli", nil},
			{"redis-cli-p1000", []string{"--cluster-pipeline", "1000"}},
		} {
			theirs := formBenchCluster(b, h, ctx, fmt.Sprintf("%s-%d", v.metric, round), keys)
			begin, nodesCPU := time.Now(), theirs.cpu(b)
			args := append([]string{"--cluster", "rebalance", theirs.members[0].Endpoint.Addr(), "--cluster-use-empty-masters"}, v.args...)
			cmd := exec.CommandContext(ctx, cli, args...)
			out, err := cmd.CombinedOutput()
			took := time.Since(begin)
			if err != nil {
				b.Fatalf("redis-cli %v: %v\n%s", args, err, out)
			}
			nodesCPU = theirs.cpu(b) - nodesCPU
			cliCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			n := keysServed(b, h, ctx, theirs.members[3].Endpoint)
			theirRate := float64(n) / took.Seconds()
			b.Logf("%s: %d keys in %s: %.0f keys/s; CPU: nodes %s, redis-cli %s; MoveSlots is %.1f× as fast",
				v.metric, n, took.Round(time.Millisecond), theirRate, nodesCPU, cliCPU, rate/theirRate)
			b.ReportMetric(theirRate, v.metric+"-keys/s")
			b.ReportMetric(float64((nodesCPU + cliCPU).Milliseconds()), v.metric+"-cpu-ms")
			b.ReportMetric(rate/theirRate, "ratio-"+v.metric)
			if err := h.rt.Admin().ClusterConsistent(ctx, theirs.endpoints()); err != nil {
				b.Fatal(err)
			}
		}
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
	writeKeys(b, ctx, c.client(b), "key:", n)
	return c
}

// keysServed counts the keys in the slots the node at ep serves.
func keysServed(b *testing.B, h *clusterHarness, ctx context.Context, ep engine.Endpoint) int {
	a := h.rt.Admin()
	nodes, err := a.ClusterNodes(ctx, ep)
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, n := range nodes {
		if !n.Myself {
			continue
		}
		for _, r := range n.Slots {
			for slot := r.Start; slot <= r.End; slot++ {
				c, err := a.CountKeysInSlot(ctx, ep, slot)
				if err != nil {
					b.Fatal(err)
				}
				total += c
			}
		}
	}
	return total
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

// cpu returns the CPU time the cluster's servers have used so far
// (user and system, from /proc/<pid>/stat), 0 where there is no /proc.
func (c *testCluster) cpu(b *testing.B) time.Duration {
	var total time.Duration
	for _, name := range c.names {
		n, err := c.h.rt.Inspect(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.PID))
		if err != nil {
			return 0
		}
		// Fields after the command name (which may hold spaces): utime
		// and stime are the 14th and 15th fields, in clock ticks (100/s).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		for _, v := range f[11:13] {
			ticks, _ := strconv.Atoi(v)
			total += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return total
}

// selfCPUTime is the CPU time this process has used (user and system).
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
