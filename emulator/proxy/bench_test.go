package proxy

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// cpuTime returns the CPU time (user+system) used so far by this process and
// by the process pid, read from /proc; ok is false where there is no /proc.
func cpuTime(pid int) (self, other time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, false
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// Fields after "(comm)": state is field 3, utime and stime are 14 and 15.
	_, rest, found := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !found || len(f) < 13 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	const userHZ = 100 // USER_HZ, fixed at 100 on every Linux architecture Go supports
	return self, time.Duration(utime+stime) * time.Second / userHZ, true
}

// BenchmarkForwarding measures redis-benchmark throughput through the proxy
// against the same redis-server reached directly, in the same run, and
// reports proxy/direct (1.0 = the proxy costs nothing) with and without
// pipelining. It measures a demultiplexer (ListenDemux, plaintext clients)
// in front of the same server the same way: demux/direct.
//
// Each iteration runs redis-benchmark rounds times per side, alternating
// direct and proxy so drift hits both alike, and keeps each side's best
// requests/sec per test (SET, GET): on a shared machine the other load only
// ever slows a run down, so the best run is the one closest to the cost of
// the path itself. The ratio is that of the mean of SET and GET.
//
// It also reports proxy-cpu/redis-cpu: the CPU time this process (the proxy)
// used during the proxied runs over the CPU time redis-server used in them.
// Unlike throughput it barely depends on other load, and it shows why a
// forwarder cannot be free on a machine whose cores redis-benchmark and
// redis-server already keep busy.
//
//	go test -run '^$' -bench Forwarding ./emulator/proxy
func BenchmarkForwarding(b *testing.B) {
	bin := lookTool(b, "redis-benchmark", "redis-tools")
	srv := startRedis(b)
	p := listenProxy(b, "primary", srv.ep)
	d := listenDemux(b, srv.ep, srv.ep)
	sides := []struct {
		name string
		ep   engine.Endpoint
	}{{"direct", srv.ep}, {"proxy", p.Addr()}, {"demux", d.Addr()}}
	const rounds = 3

	for _, tc := range []struct {
		name     string
		pipeline int
	}{{"pipelined", 16}, {"unpipelined", 1}} {
		b.Run(fmt.Sprintf("%s/P=%d", tc.name, tc.pipeline), func(b *testing.B) {
			best := map[string]float64{} // "direct-SET" → best requests/sec
			var proxyCPU, redisCPU time.Duration
			cpuOK := true
			for range b.N {
				for r := range len(sides) * rounds {
					side, ep := sides[r%len(sides)].name, sides[r%len(sides)].ep
					self0, redis0, ok0 := cpuTime(srv.pid)
					rps := redisBenchmark(b, bin, ep, tc.pipeline)
					self1, redis1, ok1 := cpuTime(srv.pid)
					cpuOK = cpuOK && ok0 && ok1
					if side == "proxy" {
						proxyCPU += self1 - self0
						redisCPU += redis1 - redis0
					}
					b.Logf("%-6s SET %9.0f  GET %9.0f requests/s", side, rps["SET"], rps["GET"])
					for test, v := range rps {
						best[side+"-"+test] = max(best[side+"-"+test], v)
					}
				}
			}
			b.StopTimer()
			for _, test := range []string{"SET", "GET"} {
				b.ReportMetric(best["direct-"+test], "direct-"+strings.ToLower(test)+"-rps")
				b.ReportMetric(best["proxy-"+test], "proxy-"+strings.ToLower(test)+"-rps")
			}
			direct := (best["direct-SET"] + best["direct-GET"]) / 2
			proxied := (best["proxy-SET"] + best["proxy-GET"]) / 2
			b.ReportMetric(proxied/direct, "proxy/direct")
			b.ReportMetric((best["demux-SET"]+best["demux-GET"])/2/direct, "demux/direct")
			if cpuOK && redisCPU > 0 {
				b.ReportMetric(float64(proxyCPU)/float64(redisCPU), "proxy-cpu/redis-cpu")
			}
			// ns/op of a whole redis-benchmark cycle means nothing here.
			b.ReportMetric(0, "ns/op")
		})
	}
}
