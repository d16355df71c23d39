package integration

import (
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// recorder keeps everything written to it: the emulator's log, or every
// response body the SDK client read (recordingTransport).
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// RoundTrip records the response body of every request.
type recordingTransport struct{ rec *recorder }

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	t.rec.Write(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// startCapturedEmulator starts an emulator whose debug log and API
// responses (through its client) are recorded, for tests that look for
// secrets in them; it returns those and its data dir.
func startCapturedEmulator(t *testing.T) (e *emu, logs, responses *recorder, dataDir string) {
	t.Helper()
	logs, responses = &recorder{}, &recorder{}
	e = startEmulatorWith(t, func(cfg *emulator.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		dataDir = cfg.DataDir
	})
	e.client = elasticache.New(e.client.Options(), func(o *elasticache.Options) {
		o.HTTPClient = &http.Client{Transport: recordingTransport{rec: responses}}
	})
	return e, logs, responses, dataDir
}

// TestSecretsNeverLeave: a run that sets AUTH tokens (create, ROTATE,
// SET) and RBAC passwords (create, modify, pushed to a group's nodes)
// writes none of them into an API response, an event, a log line
// (debug level), the admin API's answers or any file of its data dir.
func TestSecretsNeverLeave(t *testing.T) {
	e, logs, responses, dataDir := startCapturedEmulator(t)
	c := e.client
	secrets := []string{tokenA, tokenB, "token-C-0123456789abcdef", "user-password-0123456789", "user-password-abcdefghij", "user-password-rotated-001"}

	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("sec"), NumCacheClusters: aws.Int32(2),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(secrets[0])})
	if _, err := c.CreateCacheCluster(ctxT(t, 5*time.Second), &elasticache.CreateCacheClusterInput{CacheClusterId: aws.String("sec-solo"),
		CacheNodeType: aws.String("cache.t4g.micro"), Engine: aws.String("redis"),
		TransitEncryptionEnabled: aws.Bool(true), AuthToken: aws.String(secrets[2])}); err != nil {
		t.Fatal(err)
	}
	waitClusterAvailable(t, c, "sec-solo")
	modifyAuth(t, c, "sec", secrets[1], types.AuthTokenUpdateStrategyTypeRotate)
	modifyAuth(t, c, "sec", secrets[1], types.AuthTokenUpdateStrategyTypeSet)
	// RBAC users' passwords: on create, on a modify, on a user group
	// attached to a TLS group whose nodes get them.
	if _, err := c.CreateUser(ctxT(t, 5*time.Second), &elasticache.CreateUserInput{UserId: aws.String("sec-default"), UserName: aws.String("default"),
		Engine: aws.String("redis"), AccessString: aws.String("on ~* +@all"), Passwords: []string{secrets[3], secrets[4]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyUser(ctxT(t, 5*time.Second), &elasticache.ModifyUserInput{UserId: aws.String("sec-default"),
		Passwords: []string{secrets[5]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUserGroup(ctxT(t, 5*time.Second), &elasticache.CreateUserGroupInput{UserGroupId: aws.String("sec-users"),
		Engine: aws.String("redis"), UserIds: []string{"sec-default"}}); err != nil {
		t.Fatal(err)
	}
	waitUserGroupStatus(t, c, "sec-users", "active")
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("sec-rbac"), NumCacheClusters: aws.Int32(2),
		TransitEncryptionEnabled: aws.Bool(true), UserGroupIds: []string{"sec-users"}})
	if _, err := c.DescribeUsers(ctxT(t, 5*time.Second), &elasticache.DescribeUsersInput{}); err != nil {
		t.Fatal(err)
	}
	// A refused request echoes nothing of what it was sent either.
	if _, err := c.ModifyReplicationGroup(ctxT(t, 5*time.Second), &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("sec"),
		AuthToken: aws.String(secrets[2] + "@"), ApplyImmediately: aws.Bool(true)}); err == nil {
		t.Fatal("an invalid token accepted")
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.DescribeReplicationGroups(ctxT(t, 5*time.Second), &elasticache.DescribeReplicationGroupsInput{})
			return err
		},
		func() error {
			_, err := c.DescribeCacheClusters(ctxT(t, 5*time.Second), &elasticache.DescribeCacheClustersInput{ShowCacheNodeInfo: aws.Bool(true)})
			return err
		},
		func() error {
			_, err := c.DescribeEvents(ctxT(t, 5*time.Second), &elasticache.DescribeEventsInput{Duration: aws.Int32(60)})
			return err
		},
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	var admin strings.Builder
	for _, path := range []string{emulator.AdminNodesPath, emulator.HealthPath} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&admin, resp.Body)
		resp.Body.Close()
	}
	// The state is persisted before the API answers: every file of the
	// data dir (state, node configurations and logs, CA) as it is now.
	var files strings.Builder
	filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil {
			files.WriteString(path + "\n")
			files.Write(b)
		}
		return nil
	})
	if !strings.Contains(files.String(), "state") || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatalf("nothing to search: %d bytes of files, %d of logs", files.Len(), len(logs.String()))
	}
	for name, text := range map[string]string{"API responses": responses.String(), "log": logs.String(),
		"admin API": admin.String(), "data dir": files.String()} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s contain the secret %s…", name, s[:7])
			}
		}
	}
}
