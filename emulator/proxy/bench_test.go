package proxy

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/engine"
)

// rpsLine matches redis-benchmark -q result lines such as
// "SET: 123456.79 requests per second, p50=0.199 msec"; the progress lines
// it overwrites with \r ("SET: rps=...") do not match.
var rpsLine = regexp.MustCompile(`(?m)^\s*([A-Z]+): ([0-9.]+) requests per second`)

// redisBenchmark runs redis-benchmark against ep and returns requests/sec
// per test (SET, GET).
func redisBenchmark(b *testing.B, bin string, ep engine.Endpoint, pipeline int) map[string]float64 {
	b.Helper()
	out, err := exec.Command(bin, "-h", ep.Host, "-p", strconv.Itoa(ep.Port),
		"-q", "-t", "set,get", "-n", "200000", "-P", strconv.Itoa(pipeline), "-c", "50").CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark against %s: %v\n%s", ep.Addr(), err, out)
	}
	rps := map[string]float64{}
	// Progress updates end in \r, results in \n: split on both.
	text := strings.ReplaceAll(string(out), "\r", "\n")
	for _, m := range rpsLine.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			b.Fatalf("parse %q: %v", m[0], err)
		}
		rps[m[1]] = v
	}
	if rps["SET"] == 0 || rps["GET"] == 0 {
		b.Fatalf("no SET/GET requests per second in redis-benchmark output:\n%s", out)
	}
	return rps
}

// BenchmarkForwarding measures redis-benchmark throughput through the proxy
// against the same redis-server reached directly, in the same run, and
// reports proxy/direct (1.0 = the proxy costs nothing). The runs alternate
// direct, proxy, proxy, direct so drift (CPU frequency, a noisy neighbour)
// hits both sides alike; each side's requests/sec is the mean of SET and GET
// over its runs.
//
//	go test -run '^$' -bench Forwarding ./emulator/proxy
func BenchmarkForwarding(b *testing.B) {
	bin := lookTool(b, "redis-benchmark", "redis-tools")
	srv := startRedis(b)
	p := listenProxy(b, "primary", srv.ep)

	for _, tc := range []struct {
		name     string
		pipeline int
	}{{"pipelined", 16}, {"unpipelined", 1}} {
		b.Run(fmt.Sprintf("%s/P=%d", tc.name, tc.pipeline), func(b *testing.B) {
			sum := map[string]float64{}
			for range b.N {
				for _, side := range []string{"direct", "proxy", "proxy", "direct"} {
					ep := srv.ep
					if side == "proxy" {
						ep = p.Addr()
					}
					for test, v := range redisBenchmark(b, bin, ep, tc.pipeline) {
						sum[side+"-"+test] += v
					}
				}
			}
			b.StopTimer()
			runs := float64(2 * b.N)
			for _, test := range []string{"SET", "GET"} {
				d, pr := sum["direct-"+test]/runs, sum["proxy-"+test]/runs
				b.ReportMetric(d, "direct-"+strings.ToLower(test)+"-rps")
				b.ReportMetric(pr, "proxy-"+strings.ToLower(test)+"-rps")
			}
			direct := (sum["direct-SET"] + sum["direct-GET"]) / 2 / runs
			proxied := (sum["proxy-SET"] + sum["proxy-GET"]) / 2 / runs
			b.ReportMetric(proxied/direct, "proxy/direct")
			// ns/op of a whole redis-benchmark cycle means nothing here.
			b.ReportMetric(0, "ns/op")
		})
	}
}
