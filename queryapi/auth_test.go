package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	smithy "github.com/aws/smithy-go"
)

// signingClient is the real SDK client signing with key and secret.
func signingClient(url, key, secret string) *elasticache.Client {
	return elasticache.New(elasticache.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, nil
		}),
		Retryer: aws.NopRetryer{},
	})
}

func wireCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

// TestSignedRequests: with credentials set, the SDK signing with one of
// them is served (the handler gets the decoded body, the account of a
// 12-digit key), and every other request is refused with AWS's error before
// any handler runs; nothing of a secret reaches the log.
func TestSignedRequests(t *testing.T) {
	logs := &syncBuffer{}
	creds := map[string]string{"AKIDGOOD": "good-secret", "222222222222": "account-secret"}
	c := newCRGService(t, Options{Credentials: creds, Logger: slogTo(logs)})
	ctx := context.Background()
	create := &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("rg-signed"), ReplicationGroupDescription: aws.String("d")}

	out, err := signingClient(c.srv.URL, "AKIDGOOD", "good-secret").CreateReplicationGroup(ctx, create)
	if err != nil || aws.ToString(out.ReplicationGroup.ReplicationGroupId) != "rg-signed" {
		t.Fatalf("signed create: %v", err)
	}
	if got := c.crg.get(); aws.ToString(got.ReplicationGroupDescription) != "d" {
		t.Fatalf("handler saw %+v", got)
	}
	if info := c.info.get(); info.Region != "eu-west-1" || info.AccountID != "000000000000" {
		t.Fatalf("info %+v", info)
	}
	if _, err := signingClient(c.srv.URL, "222222222222", "account-secret").CreateReplicationGroup(ctx, create); err != nil {
		t.Fatal(err)
	}
	if info := c.info.get(); info.AccountID != "222222222222" {
		t.Fatalf("a 12-digit key is the account: %+v", info)
	}

	calls := c.calls.Load()
	for _, tc := range []struct {
		key, secret, code string
	}{
		{"AKIDGOOD", "wrong-secret", "SignatureDoesNotMatch"},
		{"AKIDGOOD", "account-secret", "SignatureDoesNotMatch"},
		{"AKIDUNKNOWN", "good-secret", "InvalidClientTokenId"},
	} {
		_, err := signingClient(c.srv.URL, tc.key, tc.secret).CreateReplicationGroup(ctx, create)
		if code, status := wireCode(t, err); code != tc.code || status != http.StatusForbidden {
			t.Errorf("%s/%s: %s %d, want %s 403", tc.key, tc.secret, code, status, tc.code)
		}
	}
	res := postForm(t, c.srv.URL, formBody("Action", "DescribeEvents", "Version", "2015-02-02"))
	assertError(t, res, http.StatusForbidden, "Sender", "MissingAuthenticationToken", "Request is missing Authentication Token")
	if c.calls.Load() != calls {
		t.Fatal("a refused request reached a handler")
	}
	for _, secret := range []string{"good-secret", "account-secret", "wrong-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds a secret: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "request refused: signature") || !strings.Contains(logs.String(), "accessKey=AKIDUNKNOWN") {
		t.Fatalf("refusals not logged: %s", logs.String())
	}
}

// TestSignedBodyOfOtherTypes: a body the codec does not parse (not a form)
// is still covered by the signature; its parameters come from the query.
func TestSignedBodyOfOtherTypes(t *testing.T) {
	c := newCRGService(t, Options{Credentials: map[string]string{"AKID": "secret"}, Logger: discardLogger()})
	send := func(signedBody, sentBody string) rawResult {
		req, err := http.NewRequest(http.MethodPost, c.srv.URL+"/?Action=DescribeEvents&Version=2015-02-02", strings.NewReader(sentBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		sum := sha256.Sum256([]byte(signedBody))
		err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"},
			req, hex.EncodeToString(sum[:]), "elasticache", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readResult(t, resp)
	}
	if res := send("some text", "some text"); res.status != http.StatusOK {
		t.Fatalf("signed text body: %d %s", res.status, res.body)
	}
	assertError(t, send("some text", "same text"), http.StatusForbidden, "Sender", "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided.")
}

// TestSigningOffByDefault: without credentials nothing is verified, as
// before.
func TestSigningOffByDefault(t *testing.T) {
	c := newCRGService(t, Options{})
	if res := postForm(t, c.srv.URL, formBody("Action", "DescribeEvents", "Version", "2015-02-02")); res.status != http.StatusOK {
		t.Fatalf("unsigned request: %d %s", res.status, res.body)
	}
	client := elasticache.New(elasticache.Options{Region: "us-east-1", BaseEndpoint: aws.String(c.srv.URL),
		Credentials: aws.AnonymousCredentials{}, Retryer: retry.AddWithMaxAttempts(retry.NewStandard(), 1)})
	if _, err := client.DescribeEvents(context.Background(), &elasticache.DescribeEventsInput{}); err != nil {
		t.Fatal(err)
	}
}
