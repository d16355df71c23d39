package integration

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

// TestBinaryStartErrors runs the real binary into the start errors a new
// user meets first and checks each says what is wrong and the fix, and
// that --version (and the version command) tells what runs. (No
// redis-server for the process runtime cannot be arranged on a machine that
// has one; cmd/elasticache-local's TestExplainNoRedisServer covers it with
// the runtime's real error.)
func TestBinaryStartErrors(t *testing.T) {
	bin := buildBinary(t)

	// fails runs the binary expecting exit status 1 and returns its output.
	fails := func(t *testing.T, args []string, env ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("%v: err = %v; want exit status 1\n%s", args, err, out)
		}
		return string(out)
	}
	contains := func(t *testing.T, out string, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	}

	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			// The same version the health endpoint reports, the API version
			// the codec answers, and the toolchain that built both.
			contains(t, string(out), "elasticache-local "+emulator.Version, "ElastiCache API "+queryapi.APIVersion, runtime.Version())
		}
	})

	t.Run("port in use", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		addr := held.Addr().String()
		port := held.Addr().(*net.TCPAddr).Port
		next := "127.0.0.1:" + strconv.Itoa(port+1)
		out := fails(t, []string{"--data-dir", t.TempDir()}, "ELASTICACHE_LOCAL_LISTEN="+addr, "ELASTICACHE_LOCAL_LOG_LEVEL=warn")
		contains(t, out, "cannot listen on "+addr, "another process holds", "--listen "+next, "ELASTICACHE_LOCAL_LISTEN="+next, "address already in use")
	})

	t.Run("data dir locked", func(t *testing.T) {
		dataDir := t.TempDir()
		port := freePort(t)
		holder := startBinary(t, bin, dataDir, port, "ELASTICACHE_LOCAL_FRESH=true")
		pid := holder.Process.Pid
		out := fails(t, []string{"--data-dir", dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, "ELASTICACHE_LOCAL_LOG_LEVEL=warn")
		contains(t, out, "data dir "+dataDir+" is in use", fmt.Sprintf("pid %d", pid), "started ",
			fmt.Sprintf("listening on 127.0.0.1:%d", port), fmt.Sprintf("kill -TERM %d", pid),
			"--data-dir", "ELASTICACHE_LOCAL_DATA_DIR", fmt.Sprintf("--listen 127.0.0.1:%d", port+1))
		// The holder is untouched by the refused start.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, emulator.HealthPath))
		if err != nil {
			t.Fatalf("the holder no longer answers: %v", err)
		}
		resp.Body.Close()
		if err := holder.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := holder.Wait(); err != nil {
			t.Fatalf("holder's exit after SIGTERM: %v", err)
		}
	})
}
