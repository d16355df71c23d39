package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// TestAWSVectors checks get-vanilla and post-vanilla of AWS's published
// SigV4 test suite (service "service", 2015-08-30 12:36:00 UTC).
func TestAWSVectors(t *testing.T) {
	when := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	v := &Verifier{Service: "service", Secrets: map[string]string{testKey: testSecret}, Now: func() time.Time { return when }}
	for method, sig := range map[string]string{
		http.MethodGet:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		http.MethodPost: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	} {
		r := httptest.NewRequest(method, "/", nil)
		r.Host = "example.amazonaws.com"
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig)
		s, f := v.Check(r)
		if f != nil {
			t.Fatalf("%s: Check: %v", method, f)
		}
		empty := sha256.Sum256(nil)
		if f := s.Verify(empty[:]); f != nil {
			t.Fatalf("%s: Verify: %v", method, f)
		}
		if s.AccessKey() != testKey || s.Region() != "us-east-1" {
			t.Fatalf("%s: key %q region %q", method, s.AccessKey(), s.Region())
		}
	}
}

// verdict is what the test server answers about the request it received.
type verdict struct {
	Kind    Kind
	Message string
}

// verifyingServer verifies every request it receives as the emulator does:
// the header checks, then the signature over the body's SHA-256.
func verifyingServer(t *testing.T, v *Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out verdict
		s, f := v.Check(r)
		if f == nil {
			body, _ := io.ReadAll(r.Body)
			sum := sha256.Sum256(body)
			f = s.Verify(sum[:])
		}
		if f != nil {
			out = verdict{f.Kind, f.Message}
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// send signs req with the SDK's signer (unless secret is empty), sends it
// and returns the server's verdict.
func send(t *testing.T, req *http.Request, body, key, secret string, at time.Time) verdict {
	t.Helper()
	if secret != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexOf(sum[:]), "elasticache", "eu-west-1", at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out verdict
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func newRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// TestSDKSignedRequests: what the SDK's signer signs, the verifier accepts,
// whatever the path, query, extra headers and repeated header values.
func TestSDKSignedRequests(t *testing.T) {
	v := &Verifier{Service: "elasticache", Secrets: map[string]string{testKey: testSecret}}
	srv := verifyingServer(t, v)
	body := "Action=DescribeCacheClusters&Version=2015-02-02&Marker=a%20b%2Bc~"
	cases := []struct {
		name, method, path, body string
		headers                  [][2]string
	}{
		{"form POST", http.MethodPost, "/", body, nil},
		{"empty body", http.MethodPost, "/", "", nil},
		{"GET with a query", http.MethodGet, "/?Version=2015-02-02&Action=DescribeEvents&Marker=x%2Fy%20z+w&Empty=&b=2&b=1&~t=%E2%82%AC", "", nil},
		{"escaped path", http.MethodPost, "/some%20path/a+b/~x", body, nil},
		{"extra and repeated headers", http.MethodPost, "/", body, [][2]string{
			{"X-Amz-Meta-One", "  spaced   value  "}, {"X-Amz-Meta-One", "second"}, {"X-Amz-Security-Token", "tok"}, {"Content-Md5", "abc"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(t, c.method, srv.URL+c.path, c.body)
			for _, h := range c.headers {
				req.Header.Add(h[0], h[1])
			}
			if got := send(t, req, c.body, testKey, testSecret, time.Now()); got.Kind != 0 {
				t.Fatalf("refused: %+v", got)
			}
		})
	}
}

// TestHeadersTheSDKDoesNotSign: a client may sign User-Agent (the SDK's
// signer never does); the canonical request is built from what was signed.
func TestHeadersTheSDKDoesNotSign(t *testing.T) {
	now := time.Now().UTC()
	v := &Verifier{Service: "elasticache", Secrets: map[string]string{testKey: testSecret}}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("Action=X"))
	r.Host = "127.0.0.1:4566"
	r.Header.Set("User-Agent", "custom/1.0   (linux)")
	r.Header.Set("X-Amz-Date", now.Format(amzDateLayout))
	scope := []string{now.Format("20060102"), "us-east-1", "elasticache", "aws4_request"}
	signed := "host;user-agent;x-amz-date"
	sum := sha256.Sum256([]byte("Action=X"))
	s := &Signed{r: r, secret: testSecret, amzDate: now.Format(amzDateLayout), scope: scope, signedHeaders: signed}
	sig := hexOf(s.signatureFor(signingKey(testSecret, scope), r.Host, sum[:]))
	if !strings.Contains(CanonicalRequest(r, r.Host, signed, sum[:]), "\nuser-agent:custom/1.0 (linux)\n") {
		t.Fatalf("canonical request: %q", CanonicalRequest(r, r.Host, signed, sum[:]))
	}
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKey+"/"+strings.Join(scope, "/")+", SignedHeaders="+signed+", Signature="+sig)
	got, f := v.Check(r)
	if f != nil {
		t.Fatal(f)
	}
	if f := got.Verify(sum[:]); f != nil {
		t.Fatal(f)
	}
	r.Header.Set("User-Agent", "other")
	if f := got.Verify(sum[:]); f == nil || f.Kind != Mismatch {
		t.Fatalf("a changed signed header passed: %v", f)
	}
}

// TestRefusals: each way a request fails, with AWS's kind and message.
func TestRefusals(t *testing.T) {
	v := &Verifier{Service: "elasticache", Secrets: map[string]string{testKey: testSecret}}
	srv := verifyingServer(t, v)
	body := "Action=DescribeCacheClusters&Version=2015-02-02"
	expect := func(t *testing.T, got verdict, kind Kind, message string) {
		t.Helper()
		if got.Kind != kind || !strings.Contains(got.Message, message) {
			t.Fatalf("got %+v, want kind %d with %q", got, kind, message)
		}
	}
	t.Run("wrong secret", func(t *testing.T) {
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, testKey, "wrong", time.Now())
		expect(t, got, Mismatch, "The request signature we calculated does not match the signature you provided.")
	})
	t.Run("unknown key", func(t *testing.T) {
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, "AKIDOTHER", testSecret, time.Now())
		expect(t, got, UnknownKey, "The security token included in the request is invalid.")
	})
	t.Run("unsigned", func(t *testing.T) {
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, "", "", time.Now())
		expect(t, got, Missing, "Request is missing Authentication Token")
	})
	t.Run("not SigV4", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, srv.URL, body)
		req.Header.Set("Authorization", "Bearer abc")
		expect(t, send(t, req, body, "", "", time.Now()), Missing, "Request is missing Authentication Token")
	})
	t.Run("presigned", func(t *testing.T) {
		req := newRequest(t, http.MethodGet, srv.URL+"/?Action=X&X-Amz-Signature=abc", "")
		expect(t, send(t, req, "", "", "", time.Now()), Incomplete, "presigned (query string) requests are not supported")
	})
	t.Run("expired", func(t *testing.T) {
		at := time.Now().Add(-20 * time.Minute)
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, testKey, testSecret, at)
		expect(t, got, Mismatch, "Signature expired: "+at.UTC().Format(amzDateLayout)+" is now earlier than ")
		expect(t, got, Mismatch, " - 15 min.)")
	})
	t.Run("in the future", func(t *testing.T) {
		at := time.Now().Add(20 * time.Minute)
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, testKey, testSecret, at)
		expect(t, got, Mismatch, "Signature not yet current: "+at.UTC().Format(amzDateLayout)+" is still later than ")
	})
	t.Run("within the skew", func(t *testing.T) {
		got := send(t, newRequest(t, http.MethodPost, srv.URL, body), body, testKey, testSecret, time.Now().Add(-14*time.Minute))
		expect(t, got, 0, "")
	})
	t.Run("tampered body", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, srv.URL, body)
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexOf(sum[:]), "elasticache", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		tampered := strings.Replace(body, "Describe", "Deleteit", 1) // same length: Content-Length stays right
		req.Body = io.NopCloser(strings.NewReader(tampered))
		expect(t, send(t, req, tampered, "", "", time.Now()), Mismatch, "does not match the signature you provided")
	})
	t.Run("changed signed header", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, srv.URL, body)
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexOf(sum[:]), "elasticache", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		expect(t, send(t, req, body, "", "", time.Now()), Mismatch, "does not match the signature you provided")
	})
	t.Run("wrong service", func(t *testing.T) {
		req := newRequest(t, http.MethodPost, srv.URL, body)
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexOf(sum[:]), "rds", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		expect(t, send(t, req, body, "", "", time.Now()), Mismatch, "Credential should be scoped to correct service: 'elasticache'.")
	})
}

// TestMalformedHeaders: Authorization headers that are not well-formed
// SigV4 answer IncompleteSignature (or SignatureDoesNotMatch for a scope
// that does not fit), before any key is looked up.
func TestMalformedHeaders(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	v := &Verifier{Service: "elasticache", Secrets: map[string]string{testKey: testSecret}, Now: func() time.Time { return now }}
	date := now.Format(amzDateLayout)
	good := "Credential=" + testKey + "/20260501/us-east-1/elasticache/aws4_request"
	cases := []struct {
		auth, date string
		kind       Kind
		message    string
	}{
		{"AWS4-HMAC-SHA256 " + good, date, Incomplete,
			"Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential="},
		{"AWS4-HMAC-SHA256 " + good + ", SignedHeaders=host, Signature=00", "", Incomplete,
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
		{"AWS4-HMAC-SHA256 " + good + ", SignedHeaders=host, Signature", date, Incomplete,
			"'Signature' not a valid key=value pair (missing equal-sign) in Authorization header"},
		{"AWS4-HMAC-SHA256 " + good + ", SignedHeaders=host, Signature=00", "2026-05-01T10:00:00Z", Incomplete,
			"Date must be in ISO-8601 'basic format'. Got '2026-05-01T10:00:00Z'."},
		{"AWS4-HMAC-SHA256 " + good + ", SignedHeaders=x-amz-date, Signature=00", date, Mismatch,
			"'Host' must be a 'SignedHeader' in the AWS Authorization."},
		{"AWS4-HMAC-SHA512 " + good + ", SignedHeaders=host, Signature=00", date, Incomplete,
			"Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/20260501/us-east-1/elasticache, SignedHeaders=host, Signature=00", date, Incomplete,
			"Credential must have exactly 5 slash-delimited elements"},
		{"AWS4-HMAC-SHA256 Credential=" + testKey + "/20260430/us-east-1/elasticache/aws4_reques, SignedHeaders=host, Signature=00", date, Mismatch,
			"Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260430' != '20260501', from '20260501T100000Z'."},
		{"AWS4-HMAC-SHA256 " + good + ",SignedHeaders=host,Signature=zz", date, Mismatch,
			"does not match the signature you provided"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", c.auth)
		if c.date != "" {
			r.Header.Set("X-Amz-Date", c.date)
		}
		s, f := v.Check(r)
		if f == nil {
			f = s.Verify(make([]byte, 32))
		}
		if f == nil || f.Kind != c.kind || !strings.Contains(f.Message, c.message) {
			t.Errorf("%s: got %+v, want kind %d with %q", c.auth, f, c.kind, c.message)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                        "",
		"b=2&a=1&a=0":             "a=0&a=1&b=2",
		"k=a+b%20c&e=&f":          "e=&f=&k=a%20b%20c",
		"x=%2f%7E*":               "x=%2F~%2A",
		"bad=%zz":                 "bad=%25zz",
		"%E2%82%AC=v&A=1":         "%E2%82%AC=v&A=1",
		"X-Amz-Date=20260501T1&x": "X-Amz-Date=20260501T1&x=",
	} {
		if got := canonicalQuery(raw); got != want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestHostForms(t *testing.T) {
	for host, want := range map[string]string{
		"localhost:80":   "localhost:80 localhost",
		"[::1]:443":      "[::1]:443 [::1]",
		"127.0.0.1:4566": "127.0.0.1:4566",
		"example.com":    "example.com",
	} {
		if got := strings.Join(hostForms(host), " "); got != want {
			t.Errorf("hostForms(%q) = %q, want %q", host, got, want)
		}
	}
}
