package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// TestExplainNoRedisServer: the process runtime's real not-found error (a
// binary name that exists nowhere) is told with what was looked for and
// every way past it, and still wraps ErrServerNotFound.
func TestExplainNoRedisServer(t *testing.T) {
	_, err := process.New(process.Options{DataDir: t.TempDir(), EmulatorID: "t", RedisServer: "no-such-redis-server"})
	if !errors.Is(err, process.ErrServerNotFound) {
		t.Fatalf("process.New = %v; want ErrServerNotFound", err)
	}
	got := explainStartError(err, emulator.Config{Listen: emulator.DefaultListen})
	msg := got.Error()
	for _, want := range []string{"no redis-server", "no-such-redis-server is not on PATH", "scripts/install-deps",
		"apt-get install redis-server", "--runtime docker", "ELASTICACHE_LOCAL_RUNTIME=docker"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Options.RedisServer") {
		t.Errorf("message gives the library's advice:\n%s", msg)
	}
	if !errors.Is(got, process.ErrServerNotFound) {
		t.Errorf("the explained error no longer wraps ErrServerNotFound")
	}
}

// TestExplainPortInUse: a real bind error on a held address, wrapped as the
// emulator wraps it, names the address and the fix with the next port.
func TestExplainPortInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	_, err = net.Listen("tcp", addr)
	if err == nil {
		t.Fatal("second listen on a held address succeeded")
	}
	got := explainStartError(fmt.Errorf("emulator: listen on %s: %w", addr, err), emulator.Config{Listen: addr}).Error()
	alt := nextPort(addr)
	for _, want := range []string{"cannot listen on " + addr, "another process", "--listen " + alt, "ELASTICACHE_LOCAL_LISTEN=" + alt} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "LocalStack") {
		t.Errorf("LocalStack named for a port it does not use:\n%s", got)
	}
	// On the default port, the likely other holder is named.
	got = explainStartError(fmt.Errorf("emulator: listen on %s: %w", emulator.DefaultListen, err), emulator.Config{Listen: emulator.DefaultListen}).Error()
	if !strings.Contains(got, "LocalStack") || !strings.Contains(got, "--listen 127.0.0.1:4567") {
		t.Errorf("default port:\n%s", got)
	}
}

// TestExplainDataDirInUse: the fix names the holder's pid and, when it
// listens where this run would, another port too.
func TestExplainDataDirInUse(t *testing.T) {
	inUse := &emulator.DataDirInUseError{Dir: "d", PID: 4242, Listen: "127.0.0.1:4566"}
	got := explainStartError(fmt.Errorf("wrapped: %w", inUse), emulator.Config{Listen: "127.0.0.1:4566"}).Error()
	for _, want := range []string{"data dir d is in use", "pid 4242", "kill -TERM 4242", "--data-dir", "ELASTICACHE_LOCAL_DATA_DIR", "--listen 127.0.0.1:4567"} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s", want, got)
		}
	}
	got = explainStartError(&emulator.DataDirInUseError{Dir: "d"}, emulator.Config{Listen: "127.0.0.1:4566"}).Error()
	if strings.Contains(got, "kill -TERM 0") || strings.Contains(got, "--listen") {
		t.Errorf("unknown holder elsewhere: %s", got)
	}
	other := errors.New("something else")
	if explainStartError(other, emulator.Config{}) != other {
		t.Errorf("an unknown error is not returned as it is")
	}
}

func TestNextPortAndFirstCommand(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:4566": "127.0.0.1:4567", ":4566": ":4567", "[::1]:80": "[::1]:81", "nonsense": "127.0.0.1:4567"} {
		if got := nextPort(in); got != want {
			t.Errorf("nextPort(%q) = %q; want %q", in, got, want)
		}
	}
	if got := firstCommand("http://0.0.0.0:4566", "eu-west-1", false); got != "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url http://127.0.0.1:4566 --region eu-west-1 elasticache describe-replication-groups" {
		t.Errorf("unsigned first command = %q", got)
	}
	if got := firstCommand("http://[::]:4566", "us-east-1", true); got != "aws --endpoint-url http://127.0.0.1:4566 --region us-east-1 elasticache describe-replication-groups" {
		t.Errorf("signed first command = %q", got)
	}
}
