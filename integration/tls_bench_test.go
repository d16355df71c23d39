package integration

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// tlsBenchAddressBase is the benchmark's own loopback range, which no other
// test or benchmark uses, so it can run beside them.
const tlsBenchAddressBase = "127.0.180.2"

// benchTarget is one address redis-benchmark is pointed at, with the
// options its group needs (TLS verifying the served CA and the AUTH token,
// or nothing for plaintext).
type benchTarget struct {
	name  string
	ep    *types.Endpoint
	tests string
	extra []string
}

// rps runs redis-benchmark against the target (50 connections, n requests
// per test, pipeline p) and returns the mean requests per second of its
// tests. Any error line fails the benchmark: a refused handshake or AUTH
// must not pass for a fast run.
func (bt benchTarget) rps(b *testing.B, p, n int) float64 {
	b.Helper()
	bin := "/usr/bin/redis-benchmark"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("%s missing in CI", bin)
		}
		b.Skipf("%s not installed (apt-get install redis-tools)", bin)
	}
	args := append([]string{"-h", aws.ToString(bt.ep.Address), "-p", strconv.Itoa(int(aws.ToInt32(bt.ep.Port))),
		"-q", "-t", bt.tests, "-n", strconv.Itoa(n), "-P", strconv.Itoa(p), "-c", "50"}, bt.extra...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	text := strings.ReplaceAll(string(out), "\r", "\n")
	if err != nil || strings.Contains(strings.ToLower(text), "error") {
		b.Fatalf("redis-benchmark on %s: %v\n%s", bt.name, err, text)
	}
	ms := rpsLine.FindAllStringSubmatch(text, -1)
	if len(ms) != len(strings.Split(bt.tests, ",")) {
		b.Fatalf("no requests per second for %s in:\n%s", bt.name, text)
	}
	var sum float64
	for _, m := range ms {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum / float64(len(ms))
}

// nodeRoles returns a node group's primary node endpoint and one replica's.
func nodeRoles(b *testing.B, ng types.NodeGroup) (primary, replica *types.Endpoint) {
	for _, m := range ng.NodeGroupMembers {
		if aws.ToString(m.CurrentRole) == "primary" {
			primary = m.ReadEndpoint
		} else if replica == nil {
			replica = m.ReadEndpoint
		}
	}
	if primary == nil || replica == nil {
		b.Fatalf("node group %s has no primary or no replica: %+v", aws.ToString(ng.NodeGroupId), ng.NodeGroupMembers)
	}
	return primary, replica
}

// BenchmarkTLSEndpoints compares, in the same run and with the same
// redis-benchmark settings, throughput over TLS (verifying the emulator's
// served CA, with an AUTH token) through a 3-node group's primary and
// reader endpoints against the same nodes addressed directly, and TLS
// against a plaintext 3-node group (reference: the cost of encryption),
// pipelined (-P 16, SET and GET, 300k requests per test) and not (-P 1,
// 60k). Every target runs once per round, eleven rounds, in an order
// reversed every round, with each endpoint next to its direct baseline; a
// ratio is the median over the rounds of the ratio within a round, so
// drift on the shared machine falls on both sides of it alike. The reader
// endpoint spreads connections over both replicas; its baseline is one
// replica addressed directly.
func BenchmarkTLSEndpoints(b *testing.B) {
	e := startEmulatorWith(b, func(c *emulator.Config) { c.AddressBase = tlsBenchAddressBase })
	_, caFile := fetchCA(b, e.url)
	createGroup(b, e.client, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("tls-bench"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(tokenA)})
	createGroup(b, e.client, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("plain-bench"), NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true)})
	tlsGroup := describeGroup(b, e.client, "tls-bench").NodeGroups[0]
	plainGroup := describeGroup(b, e.client, "plain-bench").NodeGroups[0]
	tlsPrimary, tlsReplica := nodeRoles(b, tlsGroup)
	plainPrimary, _ := nodeRoles(b, plainGroup)

	secure := []string{"--tls", "--cacert", caFile, "-a", tokenA}
	targets := []benchTarget{
		{"tls-direct", tlsPrimary, "set,get", secure},
		{"tls-primary", tlsGroup.PrimaryEndpoint, "set,get", secure},
		{"tls-direct-replica", tlsReplica, "get", secure},
		{"tls-reader", tlsGroup.ReaderEndpoint, "get", secure},
		{"plain-direct", plainPrimary, "set,get", nil},
		{"plain-primary", plainGroup.PrimaryEndpoint, "set,get", nil},
	}
	ratios := []struct{ metric, num, den string }{
		{"tls-primary/direct", "tls-primary", "tls-direct"},
		{"tls-reader/direct", "tls-reader", "tls-direct-replica"},
		{"tls/plain", "tls-direct", "plain-direct"},
		{"plain-primary/direct", "plain-primary", "plain-direct"},
	}
	const rounds = 11
	for _, p := range []int{16, 1} {
		n := 60_000
		if p > 1 {
			n = 300_000
		}
		runs := map[string][]float64{}
		perRound := map[string][]float64{}
		for round := range rounds {
			got := map[string]float64{}
			for i := range targets {
				if round%2 == 1 {
					i = len(targets) - 1 - i
				}
				tg := targets[i]
				got[tg.name] = tg.rps(b, p, n)
				runs[tg.name] = append(runs[tg.name], got[tg.name])
			}
			for _, r := range ratios {
				perRound[r.metric] = append(perRound[r.metric], got[r.num]/got[r.den])
			}
		}
		suffix := "-P" + strconv.Itoa(p)
		for _, r := range ratios {
			b.ReportMetric(median(perRound[r.metric]), r.metric+suffix)
			b.Logf("-P %d %s per round: %.3f", p, r.metric, perRound[r.metric])
		}
		b.ReportMetric(median(runs["tls-direct"]), "tls-direct-rps"+suffix)
		b.ReportMetric(median(runs["plain-direct"]), "plain-direct-rps"+suffix)
		for _, tg := range targets {
			b.Logf("-P %d %s requests/s: %.0f", p, tg.name, runs[tg.name])
		}
	}
}

// median is the middle value of xs (the upper middle for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
