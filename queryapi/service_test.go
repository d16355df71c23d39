package queryapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// crgService serves CreateReplicationGroup and DescribeEvents, recording
// the decoded inputs and how often the handlers ran.
type crgService struct {
	srv   *httptest.Server
	calls atomic.Int32
	crg   guarded[*elasticache.CreateReplicationGroupInput]
	info  guarded[RequestInfo]
}

func newCRGService(t *testing.T, opts Options) *crgService {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	c := &crgService{}
	svc := New(opts)
	Handle(svc, func(ctx context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
		c.calls.Add(1)
		c.crg.set(in)
		c.info.set(InfoFrom(ctx))
		return &elasticache.CreateReplicationGroupOutput{ReplicationGroup: &types.ReplicationGroup{
			ReplicationGroupId: in.ReplicationGroupId,
		}}, nil
	})
	Handle(svc, func(ctx context.Context, in *elasticache.DescribeEventsInput) (*elasticache.DescribeEventsOutput, error) {
		c.calls.Add(1)
		return nil, nil
	})
	c.srv = startService(t, svc)
	return c
}

func TestProtocolErrors(t *testing.T) {
	c := newCRGService(t, Options{})
	crg := []string{"Action", "CreateReplicationGroup", "Version", "2015-02-02",
		"ReplicationGroupId", "rg", "ReplicationGroupDescription", "d"}
	cases := []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"missing action", formBody("Version", "2015-02-02"), 400, "MissingAction", "Action"},
		{"invalid action", formBody("Action", "DescribeCacheKittens", "Version", "2015-02-02"), 400, "InvalidAction",
			"The action DescribeCacheKittens is not valid for this web service."},
		{"missing parameter", formBody("Action", "CreateReplicationGroup", "Version", "2015-02-02", "ReplicationGroupDescription", "d"), 400,
			"MissingParameter", "The request must contain the parameter ReplicationGroupId"},
		{"not implemented", formBody("Action", "DescribeUsers", "Version", "2015-02-02"), 501, "NotImplemented",
			"The operation DescribeUsers is not implemented by elasticache-local yet."},
		{"malformed integer", formBody(append(crg, "NumCacheClusters", "abc")...), 400, "InvalidParameterValue",
			"NumCacheClusters"},
		{"integer overflow", formBody(append(crg, "Port", "4294967296")...), 400, "InvalidParameterValue", "Port"},
		{"malformed boolean", formBody(append(crg, "AutomaticFailoverEnabled", "maybe")...), 400,
			"InvalidParameterValue", "AutomaticFailoverEnabled"},
		{"malformed nested integer", formBody(append(crg,
			"NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaCount", "two")...), 400,
			"InvalidParameterValue", "NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaCount"},
		{"scalar for list", formBody(append(crg, "SecurityGroupIds", "sg-1")...), 400,
			"InvalidParameterValue", "SecurityGroupIds"},
		{"malformed timestamp", formBody("Action", "DescribeEvents", "Version", "2015-02-02", "StartTime", "yesterday"), 400,
			"InvalidParameterValue", "StartTime"},
		{"malformed query string", "Action=CreateReplicationGroup&Version=2015-02-02&ReplicationGroupId=%zz", 400,
			"MalformedQueryString", "syntax error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.calls.Load()
			res := postForm(t, c.srv.URL, tc.body)
			assertError(t, res, tc.status, map[bool]string{true: "Receiver", false: "Sender"}[tc.status >= 500], tc.code, tc.msg)
			if c.calls.Load() != before {
				t.Error("handler was called")
			}
		})
	}
}

func TestDecodeWireForms(t *testing.T) {
	c := newCRGService(t, Options{})
	body := formBody(
		"Action", "CreateReplicationGroup",
		"Version", "2015-02-02",
		"ReplicationGroupId", "rg-1",
		"ReplicationGroupDescription", "a & b",
		"NumCacheClusters", "3",
		"AutomaticFailoverEnabled", "TRUE",
		"Unknown", "ignored",
		"ReplicationGroupId.extra", "ignored",
		"SecurityGroupIds", "",
		// indices out of order and with a gap are ordered and closed up
		"PreferredCacheClusterAZs.AvailabilityZone.3", "az-c",
		"PreferredCacheClusterAZs.AvailabilityZone.1", "az-a",
		"PreferredCacheClusterAZs.AvailabilityZone.x", "ignored",
		"UserGroupIds.member.1", "ug-1",
		"CacheSecurityGroupNames.member.1", "wrong member name: ignored",
		"Tags.Tag.1.Key", "k1",
		"Tags.Tag.1.Value", "v1",
		"Tags.Tag.1.Bogus", "ignored",
		"Tags.Tag.2.Key", "k2",
		"NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaCount", "2",
		"NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.1", "az-b",
		"LogDeliveryConfigurations.LogDeliveryConfigurationRequest.1.DestinationDetails.CloudWatchLogsDetails.LogGroup", "lg",
		"LogDeliveryConfigurations.LogDeliveryConfigurationRequest.1.LogType", "slow-log",
	)
	res := postForm(t, c.srv.URL, body)
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	in := c.crg.get()
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	checks := []struct{ got, want any }{
		{str(in.ReplicationGroupId), "rg-1"},
		{str(in.ReplicationGroupDescription), "a & b"},
		{*in.NumCacheClusters, int32(3)},
		{*in.AutomaticFailoverEnabled, true},
		{in.SecurityGroupIds != nil && len(in.SecurityGroupIds) == 0, true},
		{strings.Join(in.PreferredCacheClusterAZs, ","), "az-a,az-c"},
		{strings.Join(in.UserGroupIds, ","), "ug-1"},
		{in.CacheSecurityGroupNames == nil, true},
		{len(in.Tags), 2},
		{str(in.Tags[0].Key) + "=" + str(in.Tags[0].Value), "k1=v1"},
		{str(in.Tags[1].Key) + "=" + str(in.Tags[1].Value), "k2=<nil>"},
		{*in.NodeGroupConfiguration[0].ReplicaCount, int32(2)},
		{strings.Join(in.NodeGroupConfiguration[0].ReplicaAvailabilityZones, ","), "az-b"},
		{str(in.LogDeliveryConfigurations[0].DestinationDetails.CloudWatchLogsDetails.LogGroup), "lg"},
		{in.LogDeliveryConfigurations[0].LogType, types.LogTypeSlowLog},
		{in.Port == nil && in.MultiAZEnabled == nil, true},
	}
	for i, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("check %d: got %#v, want %#v", i, ch.got, ch.want)
		}
	}

	// The success envelope carries the namespace and the request id, which
	// also comes back as a header.
	id := res.header.Get("x-amzn-RequestId")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("request id %q is not a v4 UUID", id)
	}
	want := `<CreateReplicationGroupResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">` +
		`<CreateReplicationGroupResult><ReplicationGroup><ReplicationGroupId>rg-1</ReplicationGroupId>` +
		`</ReplicationGroup></CreateReplicationGroupResult><ResponseMetadata><RequestId>` + id +
		`</RequestId></ResponseMetadata></CreateReplicationGroupResponse>`
	if res.body != want {
		t.Errorf("body\n got %s\nwant %s", res.body, want)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestGETAndContentTypes(t *testing.T) {
	c := newCRGService(t, Options{})
	q := formBody("Action", "DescribeEvents", "Version", "2015-02-02", "StartTime", "2026-01-02T03:04:05Z", "Duration", "60")
	resp, err := http.Get(c.srv.URL + "/?" + q)
	if err != nil {
		t.Fatal(err)
	}
	if res := readResult(t, resp); res.status != 200 ||
		!strings.Contains(res.body, "<DescribeEventsResult></DescribeEventsResult>") {
		t.Errorf("GET: %d %s", res.status, res.body)
	}
	for _, ct := range []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8", ""} {
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/", strings.NewReader(q))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res := readResult(t, resp); res.status != 200 {
			t.Errorf("Content-Type %q: %d %s", ct, res.status, res.body)
		}
	}
	// The body wins over the query string for the same key.
	resp, err = http.Post(c.srv.URL+"/?Action=DescribeKittens", "application/x-www-form-urlencoded", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	if res := readResult(t, resp); res.status != 200 {
		t.Errorf("body precedence: %d %s", res.status, res.body)
	}
}

func TestRequestInfo(t *testing.T) {
	logs := &syncBuffer{}
	c := newCRGService(t, Options{Region: "eu-west-1", AccountID: "111111111111", Logger: slogTo(logs)})
	body := formBody("Action", "CreateReplicationGroup", "Version", "2015-02-02", "ReplicationGroupId", "rg", "ReplicationGroupDescription", "d")
	cases := []struct {
		auth, region, account string
	}{
		{"", "eu-west-1", "111111111111"},
		{"AWS4-HMAC-SHA256 Credential=123456789012/20260101/us-west-2/elasticache/aws4_request, SignedHeaders=host, Signature=00",
			"us-west-2", "123456789012"},
		{"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/ap-south-1/elasticache/aws4_request, SignedHeaders=host, Signature=00",
			"ap-south-1", "111111111111"},
		{"AWS4-HMAC-SHA256 Credential=1234567890/20260101/us-gov-west-1/elasticache/aws4_request, SignedHeaders=host, Signature=00",
			"us-gov-west-1", "111111111111"},
		{"Bearer not-sigv4", "eu-west-1", "111111111111"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res := readResult(t, resp)
		info := c.info.get()
		if res.status != 200 || info.Region != tc.region || info.AccountID != tc.account || info.Action != "CreateReplicationGroup" ||
			info.RequestID != res.header.Get("x-amzn-RequestId") {
			t.Errorf("auth %q: status %d, info %+v, want region %s account %s", tc.auth, res.status, info, tc.region, tc.account)
		}
	}

	// The real SDK signs with its configured region and access key.
	_, err := newTestClient(c.srv.URL, "210987654321").CreateReplicationGroup(context.Background(),
		&elasticache.CreateReplicationGroupInput{ReplicationGroupId: ptr("rg"), ReplicationGroupDescription: ptr("d")})
	if err != nil {
		t.Fatal(err)
	}
	if info := c.info.get(); info.Region != "us-east-1" || info.AccountID != "210987654321" {
		t.Errorf("SDK request info %+v", info)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), "action=CreateReplicationGroup status=200") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the log line is written after the response
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "action=CreateReplicationGroup status=200 duration=") {
		t.Errorf("no debug request log: %q", logs.String())
	}
}

func ptr[T any](v T) *T { return &v }

func TestHandleRejectsWrongTypes(t *testing.T) {
	svc := New(Options{})
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: Handle did not panic", name)
			}
		}()
		f()
	}
	mustPanic("not an input", func() {
		Handle(svc, func(context.Context, *types.Tag) (*elasticache.AddTagsToResourceOutput, error) { return nil, nil })
	})
	mustPanic("wrong output", func() {
		Handle(svc, func(context.Context, *elasticache.AddTagsToResourceInput) (*elasticache.ListTagsForResourceOutput, error) {
			return nil, nil
		})
	})
	type CreateReplicationGroupInput struct{}
	mustPanic("look-alike input", func() {
		Handle(svc, func(context.Context, *CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
			return nil, nil
		})
	})
	mustPanic("nil handler", func() {
		Handle[elasticache.AddTagsToResourceInput, elasticache.AddTagsToResourceOutput](svc, nil)
	})
}

// TestConcurrentRequests exercises registration while serving (run with
// -race) and the typed-nil output path.
func TestConcurrentRequests(t *testing.T) {
	svc := New(Options{Logger: discardLogger()})
	srv := startService(t, svc)
	client := newTestClient(srv.URL, "AKIDEXAMPLE")
	done := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			_, err := client.DescribeCacheSubnetGroups(context.Background(), &elasticache.DescribeCacheSubnetGroupsInput{})
			done <- err
		}()
	}
	Handle(svc, func(context.Context, *elasticache.DescribeCacheSubnetGroupsInput) (*elasticache.DescribeCacheSubnetGroupsOutput, error) {
		var out *elasticache.DescribeCacheSubnetGroupsOutput // typed nil
		return out, nil
	})
	for i := 0; i < 20; i++ {
		if err := <-done; err != nil && !strings.Contains(err.Error(), "NotImplemented") {
			t.Error(err)
		}
	}
	if _, err := client.DescribeCacheSubnetGroups(context.Background(), &elasticache.DescribeCacheSubnetGroupsInput{}); err != nil {
		t.Error(err)
	}
}

// TestMissingParameterOrder checks that the codec itself enforces required
// members (the SDK validates client-side, so this sends the raw form) and
// reports the first missing one in SDK member order.
func TestMissingParameterOrder(t *testing.T) {
	c := newCRGService(t, Options{})
	res := postForm(t, c.srv.URL, url.Values{"Action": {"CreateReplicationGroup"}, "Version": {"2015-02-02"}}.Encode())
	assertError(t, res, 400, "Sender", "MissingParameter", "The request must contain the parameter ReplicationGroupDescription")
	if c.calls.Load() != 0 {
		t.Error("handler was called")
	}
	var e *Error
	if !errors.As(MissingParameter("X"), &e) || e.HTTPStatus != 400 {
		t.Error("MissingParameter is not a 400 *Error")
	}
}
