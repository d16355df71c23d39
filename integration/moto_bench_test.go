package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// motoAuthorization is the Authorization header a raw request to moto
// carries: moto's server picks the service from its credential scope (it
// checks no signature), and without one it answers as S3.
const motoAuthorization = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/elasticache/aws4_request, SignedHeaders=host, Signature=0"

// startMoto starts moto's server (python3 -m moto.server, the mock most
// projects test ElastiCache code against) on a free loopback port and
// returns its URL, or "" with the reason when moto is not installed: it is
// a baseline of benchmarks only, never something a test needs.
func startMoto(b *testing.B) (string, string) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return "", "no python3"
	}
	if out, err := exec.Command(python, "-c", "import moto.server").CombinedOutput(); err != nil {
		return "", "moto is not installed: " + strings.TrimSpace(string(out))
	}
	port := freePort(b)
	cmd := exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = nil, nil // moto logs every request
	if err := cmd.Start(); err != nil {
		return "", "moto does not start: " + err.Error()
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	probe := newRawDescriber(url)
	probe.header = http.Header{"Authorization": {motoAuthorization}}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := probe.post(ctxT(b, 5*time.Second), "Action=DescribeReplicationGroups&Version=2015-02-02")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, ""
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("moto at %s does not answer after a minute: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// motoWanted tells whether the benchmark compares with moto: by default
// when it is installed; ELASTICACHE_LOCAL_BENCH_MOTO=0 leaves it out.
func motoWanted() bool { return os.Getenv("ELASTICACHE_LOCAL_BENCH_MOTO") != "0" }
