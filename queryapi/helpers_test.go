package queryapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/smithy-go/middleware"
)

// Shared test helpers: an SDK client pointed at a Service, a deterministic
// value filler and a structural comparer for SDK values.

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// guarded is a value shared between a test and its server's handler
// goroutines; the network round trip is not a happens-before edge the race
// detector can see.
type guarded[T any] struct {
	mu sync.Mutex
	v  T
}

func (g *guarded[T]) set(v T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.v = v
}

func (g *guarded[T]) get() T {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.v
}

// syncBuffer collects log output written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestClient returns the real SDK client talking to url with static
// credentials whose access key id is akid.
//
// Retries stay on (3 attempts) but without backoff: smithy-go closes the
// request body as soon as response headers arrive, and against a server this
// fast the transport can still be finishing the body write, so it tears the
// connection down under a large response body being read ("use of closed
// network connection", aws/aws-sdk-go-v2#2737). The SDK's answer is to retry
// that error by default; a few requests in a thousand hit it on loopback.
// None of the errors the tests expect are retryable, so they arrive as sent.
func newTestClient(url, akid string) *elasticache.Client {
	return elasticache.New(elasticache.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: akid, SecretAccessKey: "secret", Source: "test"}, nil
		}),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

// startService serves svc on a test server that is closed with the test.
func startService(t *testing.T, svc *Service) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return srv
}

// rawResult is a response read without the SDK, for protocol-level checks.
type rawResult struct {
	status int
	header http.Header
	body   string
}

// postForm sends body as a form-encoded POST, the way SDKs do.
func postForm(t *testing.T, srvURL, body string) rawResult {
	t.Helper()
	resp, err := http.Post(srvURL+"/", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return readResult(t, resp)
}

func readResult(t *testing.T, resp *http.Response) rawResult {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// sdkModuleDir locates the pinned SDK module, or skips the test when the go
// command is unavailable.
func sdkModuleDir(t testing.TB) string {
	t.Helper()
	dir := findSDKModuleDir()
	if dir == "" {
		t.Skip("cannot locate the SDK module with go list -m")
	}
	return dir
}

// findSDKModuleDir asks the go command for the directory of the SDK version
// pinned in go.mod; "" if that fails.
func findSDKModuleDir() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2/service/elasticache").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// filler sets every exported field reachable from a value to a deterministic
// non-zero value: strings carry XML/URL special characters, enums take a
// real value from the enum's Values(), lists get two elements, maps two
// entries, timestamps millisecond precision in UTC (what the wire carries).
type filler struct {
	n    int
	base time.Time
}

func newFiller() *filler {
	return &filler{base: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

var (
	metadataType = reflect.TypeFor[middleware.Metadata]()
	timeTypeT    = reflect.TypeFor[time.Time]()
)

func (f *filler) fill(v reflect.Value, name string, depth int) {
	if depth > 10 {
		return // no recursive shapes in ElastiCache; this is only a guard
	}
	f.n++
	switch {
	case v.Type() == timeTypeT:
		v.Set(reflect.ValueOf(f.base.Add(time.Duration(f.n) * 1001 * time.Millisecond)))
		return
	case v.Type() == metadataType:
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		f.fill(e.Elem(), name, depth+1)
		v.Set(e)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			f.fill(v.Field(i), sf.Name, depth+1)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			f.fill(s.Index(i), name, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 1; i <= 2; i++ {
			val := reflect.New(v.Type().Elem()).Elem()
			f.fill(val, name, depth+1)
			m.SetMapIndex(reflect.ValueOf(fmt.Sprintf("k%d", i)).Convert(v.Type().Key()), val)
		}
		v.Set(m)
	case reflect.String:
		if values := reflect.Zero(v.Type()).MethodByName("Values"); values.IsValid() {
			vals := values.Call(nil)[0]
			if vals.Len() > 0 {
				v.Set(vals.Index(f.n % vals.Len()))
				return
			}
		}
		v.SetString(fmt.Sprintf("%s-%d <a&b> \"q\" 'ü' +%%=.", name, f.n))
	case reflect.Bool:
		v.SetBool(f.n%2 == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.25)
	}
}

// filled returns a pointer to a new t with every reachable field set.
func filled(t reflect.Type) any {
	v := reflect.New(t)
	newFiller().fill(v.Elem(), t.Name(), 0)
	return v.Interface()
}

// diff returns "" if a and b hold the same SDK value, else a description of
// the first difference. Unexported fields and ResultMetadata are ignored,
// timestamps compare by instant, and nil and empty slices differ (an empty
// list is meaningful on the wire).
func diff(path string, a, b reflect.Value) string {
	if a.IsValid() != b.IsValid() {
		return fmt.Sprintf("%s: validity %v vs %v", path, a.IsValid(), b.IsValid())
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch {
	case a.Type() == timeTypeT:
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		if !ta.Equal(tb) {
			return fmt.Sprintf("%s: %v vs %v", path, ta, tb)
		}
		return ""
	case a.Type() == metadataType:
		return ""
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: nil %v vs %v", path, a.IsNil(), b.IsNil())
			}
			return ""
		}
		return diff(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			sf := a.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			if d := diff(path+"."+sf.Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v vs %v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d vs %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := diff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return fmt.Sprintf("%s: map len %d vs %d", path, a.Len(), b.Len())
		}
		for _, k := range a.MapKeys() {
			if d := diff(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), b.MapIndex(k)); d != "" {
				return d
			}
		}
		return ""
	}
	if a.Interface() != b.Interface() {
		return fmt.Sprintf("%s: %#v vs %#v", path, a.Interface(), b.Interface())
	}
	return ""
}

func diffValues(a, b any) string {
	return diff(reflect.TypeOf(a).String(), reflect.ValueOf(a), reflect.ValueOf(b))
}

// formBody builds a request body from alternating key, value strings,
// keeping the order given.
func formBody(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}
