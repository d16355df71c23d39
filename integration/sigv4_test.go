package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// The access keys the signing emulator accepts: one ordinary key, and one
// that is a 12-digit account id (its requests act in that account).
const (
	sigKey         = "AKIDSIGV4TEST"
	sigSecret      = "right/secret+key"
	sigAccountKey  = "123456789012"
	sigAccountPass = "account/secret"
)

// signedClient is the real SDK with the given key and secret.
func signedClient(url, key, secret string) *elasticache.Client {
	c := newClient(url, "us-east-1")
	return elasticache.New(c.Options(), func(o *elasticache.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(key, secret, "")
	})
}

// rawSigned sends a form body signed by the SDK's signer over signedBody at
// the given time (or unsigned when key is empty) and returns status and
// response body.
func rawSigned(t *testing.T, url, body, signedBody, key, secret string, at time.Time) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if key != "" {
		sum := sha256.Sum256([]byte(signedBody))
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "elasticache", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectWireError asserts an error answer in the Query protocol's form.
func expectWireError(t *testing.T, status int, body string, wantStatus int, code, message string) {
	t.Helper()
	if status != wantStatus || !strings.Contains(body, "<Type>Sender</Type><Code>"+code+"</Code>") || !strings.Contains(body, message) {
		t.Fatalf("got %d %s\nwant %d %s %q", status, body, wantStatus, code, message)
	}
}

// runAWSWith runs the AWS CLI against url with the given credentials and
// returns its stdout, stderr and error.
func runAWSWith(t *testing.T, ctx context.Context, url, key, secret string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, awsCLI, append([]string{"--endpoint-url", url, "--output", "json", "elasticache"}, args...)...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestSigV4 runs an emulator with credentials: the SDK and the AWS CLI
// signing with a configured key are served, and a wrong secret, an unknown
// key, an unsigned request, a request signed 20 minutes ago and a body
// changed after signing are refused with AWS's errors and change nothing.
// The health endpoint and the admin API need no signature.
func TestSigV4(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) {
		c.Credentials = map[string]string{sigKey: sigSecret, sigAccountKey: sigAccountPass}
	})
	ctx := ctxT(t, 2*time.Minute)
	good := signedClient(e.url, sigKey, sigSecret)

	// The right key: a Describe and a Create.
	if _, err := good.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{}); err != nil {
		t.Fatalf("describe with the right key: %v", err)
	}
	create := func(name string) *elasticache.CreateCacheParameterGroupInput {
		return &elasticache.CreateCacheParameterGroupInput{CacheParameterGroupName: aws.String(name),
			CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("signed")}
	}
	if _, err := good.CreateCacheParameterGroup(ctx, create("signed-params")); err != nil {
		t.Fatalf("create with the right key: %v", err)
	}
	// A 12-digit key acts in its own account.
	out, err := signedClient(e.url, sigAccountKey, sigAccountPass).CreateCacheParameterGroup(ctx, create("account-params"))
	if err != nil {
		t.Fatalf("create with the account key: %v", err)
	}
	if arn := aws.ToString(out.CacheParameterGroup.ARN); !strings.Contains(arn, ":"+sigAccountKey+":") {
		t.Fatalf("ARN %s is not in account %s", arn, sigAccountKey)
	}

	// Refusals through the SDK.
	_, err = signedClient(e.url, sigKey, "wrong-secret").CreateCacheParameterGroup(ctx, create("wrong-secret"))
	expectError(t, err, "SignatureDoesNotMatch", http.StatusForbidden)
	_, err = signedClient(e.url, "AKIDUNKNOWN", sigSecret).CreateCacheParameterGroup(ctx, create("unknown-key"))
	expectError(t, err, "InvalidClientTokenId", http.StatusForbidden)

	// Refusals of requests made by hand.
	form := func(name string) string {
		return "Action=CreateCacheParameterGroup&Version=2015-02-02&CacheParameterGroupName=" + name +
			"&CacheParameterGroupFamily=redis7&Description=x"
	}
	status, body := rawSigned(t, e.url, form("unsigned"), "", "", "", time.Time{})
	expectWireError(t, status, body, http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	status, body = rawSigned(t, e.url, form("expired"), form("expired"), sigKey, sigSecret, time.Now().Add(-20*time.Minute))
	expectWireError(t, status, body, http.StatusForbidden, "SignatureDoesNotMatch", " - 15 min.)")
	if !strings.Contains(body, "Signature expired: ") {
		t.Fatalf("expiry message: %s", body)
	}
	status, body = rawSigned(t, e.url, form("tampered"), form("tamperee"), sigKey, sigSecret, time.Now())
	expectWireError(t, status, body, http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	status, body = rawSigned(t, e.url, form("by-hand"), form("by-hand"), sigKey, sigSecret, time.Now())
	if status != http.StatusOK {
		t.Fatalf("a request signed by hand: %d %s", status, body)
	}

	// The AWS CLI (botocore's signer).
	requireAWSCLI(t)
	stdout, stderr, err := runAWSWith(t, ctx, e.url, sigKey, sigSecret, "create-cache-parameter-group",
		"--cache-parameter-group-name", "cli-params", "--cache-parameter-group-family", "redis7", "--description", "from the CLI")
	if err != nil {
		t.Fatalf("CLI with the right key: %v\n%s", err, stderr)
	}
	_, stderr, err = runAWSWith(t, ctx, e.url, sigKey, "wrong-secret", "create-cache-parameter-group",
		"--cache-parameter-group-name", "cli-wrong", "--cache-parameter-group-family", "redis7", "--description", "x")
	if err == nil || !strings.Contains(stderr, "SignatureDoesNotMatch") {
		t.Fatalf("CLI with a wrong secret: %v\n%s", err, stderr)
	}

	// Nothing the refused requests asked for exists.
	var groups struct {
		CacheParameterGroups []struct{ CacheParameterGroupName string }
	}
	stdout, stderr, err = runAWSWith(t, ctx, e.url, sigKey, sigSecret, "describe-cache-parameter-groups")
	if err != nil {
		t.Fatalf("CLI describe: %v\n%s", err, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &groups); err != nil {
		t.Fatal(err)
	}
	var custom []string
	for _, g := range groups.CacheParameterGroups {
		if !strings.HasPrefix(g.CacheParameterGroupName, "default.") {
			custom = append(custom, g.CacheParameterGroupName)
		}
	}
	if strings.Join(custom, ",") != "by-hand,cli-params,signed-params" {
		t.Fatalf("parameter groups of the default account: %v", custom)
	}

	// Health and the admin API are not signed.
	for _, path := range []string{emulator.HealthPath, emulator.AdminNodesPath} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s unsigned: %d", path, resp.StatusCode)
		}
	}
}

// TestAdminAPIOff: with --admin-api=off the admin paths answer 404 and the
// rest of the emulator works as ever.
func TestAdminAPIOff(t *testing.T) {
	e := startEmulatorWith(t, func(c *emulator.Config) { c.AdminAPI = emulator.AdminAPIOff })
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, emulator.AdminNodesPath, http.StatusNotFound},
		{http.MethodPost, emulator.AdminNodesPath + "/any-cluster/kill", http.StatusNotFound},
		{http.MethodGet, emulator.HealthPath, http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, nil)
		req.Header.Set(emulator.AdminHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	if _, err := e.client.DescribeReplicationGroups(ctxT(t, time.Minute), &elasticache.DescribeReplicationGroupsInput{}); err != nil {
		t.Fatal(err)
	}
}
