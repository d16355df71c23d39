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
// and reader endpoint (on the process runtime both are bound on the node
// itself: no forwarder) with the same nodes addressed directly, in the same
// run, pipelined (-P 16) and not (SET and GET on the primary, GET on the
// replica; the group has one replica, so the reader endpoint is on it).
// Each round runs the four sides one after the other, the order reversed
// every other round; a ratio is the median of its rounds' ratios, which a
// loaded machine's drift between rounds does not skew.
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
	rounds := envInt("ELASTICACHE_LOCAL_BENCH_ROUNDS", 5)
	for _, p := range []int{16, 1} {
		run := func(ep *types.Endpoint, tests string) float64 {
			return redisBenchmarkRPS(b, aws.ToString(ep.Address), aws.ToInt32(ep.Port), p, tests)
		}
		var primary, reader, direct []float64
		for r := range rounds {
			sides := []func(){
				func() {
					d := run(primaryNode, "set,get")
					primary = append(primary, run(ng.PrimaryEndpoint, "set,get")/d)
					direct = append(direct, d)
				},
				func() {
					d := run(replicaNode, "get")
					reader = append(reader, run(ng.ReaderEndpoint, "get")/d)
				},
			}
			if r%2 == 1 {
				// Reverse the order: the endpoint first, then direct.
				sides = []func(){
					func() {
						v := run(ng.ReaderEndpoint, "get")
						reader = append(reader, v/run(replicaNode, "get"))
					},
					func() {
						v := run(ng.PrimaryEndpoint, "set,get")
						d := run(primaryNode, "set,get")
						primary = append(primary, v/d)
						direct = append(direct, d)
					},
				}
			}
			for _, side := range sides {
				side()
			}
		}
		suffix := "-P" + strconv.Itoa(p)
		b.ReportMetric(median(primary), "primary/direct"+suffix)
		b.ReportMetric(median(reader), "reader/direct"+suffix)
		b.ReportMetric(median(direct), "direct-rps"+suffix)
	}
}
