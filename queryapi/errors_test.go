package queryapi

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/traits"
)

// TestModelledErrorTable maps every error type of the SDK's type registry
// and checks code, status and fault type against the schema's traits.
func TestModelledErrorTable(t *testing.T) {
	var names []string
	for id := range elasticache.TypeRegistry.Entries {
		names = append(names, id)
	}
	sort.Strings(names)
	count := 0
	for _, id := range names {
		entry := elasticache.TypeRegistry.Entries[id]
		if _, isErr := smithy.SchemaTrait[*traits.Error](entry.Schema); !isErr {
			continue
		}
		count++
		qe, ok := smithy.SchemaTrait[*traits.AWSQueryError](entry.Schema)
		if !ok {
			t.Errorf("%s: no awsQueryError trait", id)
			continue
		}
		et, _ := smithy.SchemaTrait[*traits.Error](entry.Schema)
		err, ok := entry.New().(error)
		if !ok {
			t.Errorf("%s: %T is not an error", id, entry.New())
			continue
		}
		got, known := wireError(err)
		if !known {
			t.Errorf("%s: not recognised as a modelled error", id)
			continue
		}
		if got.Code != qe.ErrorCode || got.HTTPStatus != qe.StatusCode || got.Receiver != (et.Type != "client") {
			t.Errorf("%s: got %s/%d receiver=%v, want %s/%d receiver=%v", id,
				got.Code, got.HTTPStatus, got.Receiver, qe.ErrorCode, qe.StatusCode, et.Type != "client")
		}
	}
	if count != 79 {
		t.Errorf("checked %d error schemas, want 79", count)
	}
}

// TestModelledErrorsThroughClient checks that the SDK client gets its own
// typed error back, with the right HTTP status, message and request id.
func TestModelledErrorsThroughClient(t *testing.T) {
	cases := []struct {
		err    error
		target func(error) bool
		status int
	}{
		{&types.CacheClusterNotFoundFault{Message: aws.String("CacheCluster c1 not found.")},
			func(err error) bool { var e *types.CacheClusterNotFoundFault; return errors.As(err, &e) }, 404},
		{&types.ReplicationGroupNotFoundFault{Message: aws.String("ReplicationGroup rg not found.")},
			func(err error) bool { var e *types.ReplicationGroupNotFoundFault; return errors.As(err, &e) }, 404},
		{&types.InvalidParameterValueException{Message: aws.String("bad <value> & more")},
			func(err error) bool { var e *types.InvalidParameterValueException; return errors.As(err, &e) }, 400},
		{&types.ReplicationGroupAlreadyExistsFault{Message: aws.String("exists")},
			func(err error) bool { var e *types.ReplicationGroupAlreadyExistsFault; return errors.As(err, &e) }, 400},
		{&types.InvalidReplicationGroupStateFault{Message: aws.String("busy")},
			func(err error) bool { var e *types.InvalidReplicationGroupStateFault; return errors.As(err, &e) }, 400},
		// Wrapped errors are found with errors.As.
		{errorsJoin(&types.InvalidParameterCombinationException{Message: aws.String("combo")}),
			func(err error) bool { var e *types.InvalidParameterCombinationException; return errors.As(err, &e) }, 400},
	}
	svc := New(Options{Logger: discardLogger()})
	var current guarded[error]
	Handle(svc, func(context.Context, *elasticache.DescribeReplicationGroupsInput) (*elasticache.DescribeReplicationGroupsOutput, error) {
		return nil, current.get()
	})
	srv := startService(t, svc)
	client := newTestClient(srv.URL, "AKIDEXAMPLE")
	for _, tc := range cases {
		current.set(tc.err)
		_, err := client.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{})
		if err == nil {
			t.Fatalf("%T: no error", tc.err)
		}
		if !tc.target(err) {
			t.Errorf("%T: client error %v is not the typed error", tc.err, err)
		}
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("%T: not an APIError: %v", tc.err, err)
		}
		var want smithy.APIError
		errors.As(tc.err, &want)
		if apiErr.ErrorMessage() != want.ErrorMessage() {
			t.Errorf("%T: message %q, want %q", tc.err, apiErr.ErrorMessage(), want.ErrorMessage())
		}
		var re *awshttp.ResponseError
		if !errors.As(err, &re) {
			t.Fatalf("%T: no ResponseError in %v", tc.err, err)
		}
		if re.HTTPStatusCode() != tc.status {
			t.Errorf("%T: status %d, want %d", tc.err, re.HTTPStatusCode(), tc.status)
		}
		if len(re.ServiceRequestID()) != 36 {
			t.Errorf("%T: request id %q", tc.err, re.ServiceRequestID())
		}
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

// TestErrorKinds covers *Error passthrough, unknown errors and handler
// panics (InternalFailure, logged) at the wire level.
func TestErrorKinds(t *testing.T) {
	logs := &syncBuffer{}
	svc := New(Options{Logger: slogTo(logs)})
	var current guarded[error]
	Handle(svc, func(context.Context, *elasticache.DescribeCacheClustersInput) (*elasticache.DescribeCacheClustersOutput, error) {
		if err := current.get(); err != nil {
			return nil, err
		}
		panic("boom")
	})
	srv := startService(t, svc)
	body := formBody("Action", "DescribeCacheClusters", "Version", "2015-02-02")

	current.set(&Error{Code: "InvalidParameterCombination", Message: "x & y", HTTPStatus: 400})
	res := postForm(t, srv.URL, body)
	assertError(t, res, 400, "Sender", "InvalidParameterCombination", "x &amp; y")

	current.set(errors.New("database is on fire"))
	res = postForm(t, srv.URL, body)
	assertError(t, res, 500, "Receiver", "InternalFailure", "unknown error")
	if strings.Contains(res.body, "fire") {
		t.Errorf("internal error text leaked to the client: %s", res.body)
	}
	if !strings.Contains(logs.String(), "database is on fire") {
		t.Errorf("internal error not logged: %q", logs.String())
	}

	current.set(nil) // panics
	res = postForm(t, srv.URL, body)
	assertError(t, res, 500, "Receiver", "InternalFailure", "")
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %q", logs.String())
	}
}

// assertError checks a raw error response: status, headers and body shape.
func assertError(t *testing.T, res rawResult, status int, typ, code, msgPart string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status %d, want %d (%s)", res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q", ct)
	}
	id := res.header.Get("x-amzn-RequestId")
	want := `<ErrorResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/"><Error><Type>` + typ +
		`</Type><Code>` + code + `</Code><Message>`
	if !strings.HasPrefix(res.body, want) {
		t.Errorf("body %s\nwant prefix %s", res.body, want)
	}
	if !strings.Contains(res.body, msgPart) {
		t.Errorf("body %s lacks %q", res.body, msgPart)
	}
	if id == "" || !strings.HasSuffix(res.body, "<RequestId>"+id+"</RequestId></ErrorResponse>") {
		t.Errorf("request id %q not at end of %s", id, res.body)
	}
}

// TestNotImplementedThroughClient: an operation without a handler is a 501
// the SDK surfaces as an API error, never a fake success.
func TestNotImplementedThroughClient(t *testing.T) {
	srv := startService(t, New(Options{Logger: discardLogger()}))
	_, err := newTestClient(srv.URL, "AKIDEXAMPLE").DescribeUsers(context.Background(), &elasticache.DescribeUsersInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NotImplemented" {
		t.Fatalf("err = %v, want NotImplemented", err)
	}
	if want := "The operation DescribeUsers is not implemented by elasticache-local yet."; apiErr.ErrorMessage() != want {
		t.Errorf("message %q, want %q", apiErr.ErrorMessage(), want)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotImplemented {
		t.Errorf("status: %v", err)
	}
}
