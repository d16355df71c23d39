package integration

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

var rpsLine = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

// redisBenchmarkRPS runs redis-benchmark against addr:port and returns the
// mean requests per second of its tests.
func redisBenchmarkRPS(b *testing.B, addr string, port int32, pipeline int, tests string) float64 {
	b.Helper()
	bin := "/usr/bin/redis-benchmark"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			b.Fatalf("%s missing in CI", bin)
		}
		b.Skipf("%s not installed (apt-get install redis-tools)", bin)
	}
	out, err := exec.Command(bin, "-h", addr, "-p", strconv.Itoa(int(port)), "-q", "-t", tests,
		"-n", "200000", "-P", strconv.Itoa(pipeline), "-c", "50").CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	var sum float64
	ms := rpsLine.FindAllStringSubmatch(strings.ReplaceAll(string(out), "\r", "\n"), -1)
	for _, m := range ms {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	if len(ms) != len(strings.Split(tests, ",")) {
		b.Fatalf("no requests per second in:\n%s", out)
	}
	return sum / float64(len(ms))
}

// BenchmarkEndpoints compares throughput through a group's primary endpoint
// (the primary itself listens there: no forwarder) and reader endpoint (a
// forwarder spreading over replicas) with the same nodes addressed
// directly, in the same run, pipelined (-P 16) and not (SET and GET on the
// primary, GET on the replica). Each side runs
// three times, alternating; the best run of each counts.
func BenchmarkEndpoints(b *testing.B) {
	e := startEmulator(b)
	createGroup(b, e.client, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("bench"), NumCacheClusters: aws.Int32(2)})
	out, err := e.client.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String("bench")})
	if err != nil {
		b.Fatal(err)
	}
	ng := out.ReplicationGroups[0].NodeGroups[0]
	var primaryNode, replicaNode *types.Endpoint
	for _, m := range ng.NodeGroupMembers {
		if aws.ToString(m.CurrentRole) == "primary" {
			primaryNode = m.ReadEndpoint
		} else {
			replicaNode = m.ReadEndpoint
		}
	}
	best := func(ep *types.Endpoint, p int, tests string) float64 {
		return redisBenchmarkRPS(b, aws.ToString(ep.Address), aws.ToInt32(ep.Port), p, tests)
	}
	for _, p := range []int{16, 1} {
		var direct, viaPrimary, directReplica, viaReader float64
		for range 3 {
			direct = max(direct, best(primaryNode, p, "set,get"))
			viaPrimary = max(viaPrimary, best(ng.PrimaryEndpoint, p, "set,get"))
			directReplica = max(directReplica, best(replicaNode, p, "get"))
			viaReader = max(viaReader, best(ng.ReaderEndpoint, p, "get"))
		}
		suffix := "-P" + strconv.Itoa(p)
		b.ReportMetric(viaPrimary/direct, "primary/direct"+suffix)
		b.ReportMetric(viaReader/directReplica, "reader/direct"+suffix)
		b.ReportMetric(direct, "direct-rps"+suffix)
	}
}
