package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/smithy-go"
	"github.com/redis/go-redis/v9"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// addressBlock gives each emulator a test starts its own loopback range,
// 127.1.<block>.0/24, so emulators of one test binary never hand out the
// same node addresses, whatever their number. Tests with a fixed range of
// their own (crash, restart, soak, benchmarks) and the test binaries of
// other packages use 127.0.x ranges, which these never reach.
var addressBlock atomic.Int32

// addressOctet is the second octet of the blocks addressBlock hands out:
// 1, or ELASTICACHE_LOCAL_TEST_OCTET (2-99), so that test binaries run side
// by side (by several developers' checkouts on one machine) do not share
// node addresses.
func addressOctet() int {
	if n, err := strconv.Atoi(os.Getenv("ELASTICACHE_LOCAL_TEST_OCTET")); err == nil && n >= 2 && n <= 99 {
		return n
	}
	return 1
}

// emu is an emulator running for one test.
type emu struct {
	srv     *emulator.Server
	client  *elasticache.Client
	url     string
	runtime string
	dataDir string
}

// startEmulator starts an emulator and registers its shutdown (which stops
// every node) before anything can fail.
func startEmulator(t testing.TB) *emu {
	t.Helper()
	return startEmulatorWith(t, func(*emulator.Config) {})
}

// testConfig is the configuration of a test's emulator: the test runtime, a
// fresh data dir and an address block of its own.
func testConfig(t testing.TB) emulator.Config {
	block := addressBlock.Add(1)
	return emulator.Config{
		Listen:      "127.0.0.1:0",
		Runtime:     testRuntime(),
		DataDir:     t.TempDir(),
		AddressBase: fmt.Sprintf("127.%d.%d.2", addressOctet(), block%256),
		Logger:      testLogger(t),
	}
}

// startEmulatorWith is startEmulator with the config adjusted by tweak.
func startEmulatorWith(t testing.TB, tweak func(*emulator.Config)) *emu {
	t.Helper()
	cfg := testConfig(t)
	tweak(&cfg)
	srv, err := emulator.Start(context.Background(), cfg)
	if srv != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	return &emu{srv: srv, url: srv.URL(), client: newClient(srv.URL(), "us-east-1"), runtime: cfg.Runtime, dataDir: cfg.DataDir}
}

// testRuntime is the node runtime the suite runs on: process, or docker
// when ELASTICACHE_LOCAL_TEST_RUNTIME says so (scripts/test runs the suite
// on both).
func testRuntime() string {
	if rt := os.Getenv("ELASTICACHE_LOCAL_TEST_RUNTIME"); rt != "" {
		return rt
	}
	return "process"
}

// newClient is a real SDK client pointed at the emulator.
func newClient(url, region string) *elasticache.Client {
	return elasticache.New(elasticache.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		// The SDK's client transport occasionally fails a large response
		// from a fast local server with "use of closed network connection"
		// (aws/aws-sdk-go-v2#2737) and retries it; keep its retries but
		// without the backoff meant for a remote service.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond }),
	})
}

// ctxT returns a context bounded for one test step.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// apiError returns the AWS error code and HTTP status of err.
func apiError(t testing.TB, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error, got success")
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return ae.ErrorCode(), status
}

// expectError asserts err carries the AWS code and HTTP status.
func expectError(t testing.TB, err error, code string, status int) {
	t.Helper()
	gotCode, gotStatus := apiError(t, err)
	if gotCode != code || gotStatus != status {
		t.Fatalf("error = %s/%d (%v), want %s/%d", gotCode, gotStatus, err, code, status)
	}
}

// redisClient opens a client on a node or group endpoint.
func redisClient(t testing.TB, addr string, port int32) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", addr, port), DialTimeout: 2 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every 10 ms until it returns nil or the deadline
// passes, then fails with the last error.
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAvailable uses the SDK's own waiter, polling fast.
func waitAvailable(t testing.TB, c *elasticache.Client, id string) {
	t.Helper()
	w := elasticache.NewReplicationGroupAvailableWaiter(c, func(o *elasticache.ReplicationGroupAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctxT(t, time.Minute), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)}, time.Minute); err != nil {
		t.Fatalf("waiting for %s available: %v", id, err)
	}
}

// waitDeleted uses the SDK's own waiter, polling fast.
func waitDeleted(t testing.TB, c *elasticache.Client, id string) {
	t.Helper()
	w := elasticache.NewReplicationGroupDeletedWaiter(c, func(o *elasticache.ReplicationGroupDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctxT(t, time.Minute), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)}, time.Minute); err != nil {
		t.Fatalf("waiting for %s deleted: %v", id, err)
	}
}
