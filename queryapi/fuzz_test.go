package queryapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary form bodies to the decoder, directly and
// through ServeHTTP. Whatever the input, the codec must answer (200, 4xx, or
// 501) and never panic; a decoded value must have the operation's type.
//
//	go test ./queryapi -run '^$' -fuzz FuzzDecode -fuzztime 2m
func FuzzDecode(f *testing.F) {
	seeds := []string{
		"",
		"Action=CreateReplicationGroup&ReplicationGroupId=rg&ReplicationGroupDescription=d&NumCacheClusters=2",
		"Action=CreateReplicationGroup&Tags.Tag.1.Key=k&Tags.Tag.1.Value=v&Tags.Tag.2.Key=k2&SecurityGroupIds=",
		"Action=CreateReplicationGroup&NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.1=a",
		"Action=DescribeEvents&StartTime=2026-01-02T03:04:05.123Z&Duration=abc",
		"Action=ModifyReplicationGroup&AutomaticFailoverEnabled=maybe&UserGroupIdsToAdd.member.1=u",
		"Action=BatchApplyUpdateAction&ReplicationGroupIds.member.99999999999999999999=x",
		"Action=AddTagsToResource&Tags.Tag.0.Key=k&Tags.Tag.01.Key=k&Tags.Tag.-1.Key=k&Tags=x",
		"Action=%zz&Version=2015-02-02",
		"Action=PurchaseReservedCacheNodesOffering&Tags.Tag.1=x&Tags.Tag.1.Key.Deeper=y",
		// Hostile shapes: dotted names, keys deeper than the schema, indexes
		// out of range, bytes that are not UTF-8, separators and versions.
		"Action=CreateReplicationGroup&Version=2015-02-02&" + strings.Repeat("a.", 2000) + "a=1",
		"Action=CreateReplicationGroup&Version=2015-02-02&Tags.Tag.1.Key.a.b.c.d=1&Tags.Tag.1001.Key=k&Tags.Tag.1000.Value=%FF",
		"Action=CreateReplicationGroup&Version=2015-02-02&NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.0=a",
		"Action=CreateReplicationGroup&Version=2014-01-01&ReplicationGroupDescription=%C3%28&ReplicationGroupId=rg;x=1",
		"Action=ModifyCacheParameterGroup&Version=2015-02-02&ParameterNameValues.ParameterNameValue.1.ParameterName=%E2%82&..=.&.=",
		"Version=2015-02-02&Action=DescribeEvents&Action=CreateReplicationGroup&" + strings.Repeat("x=&", 300),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	if dir := findSDKModuleDir(); dir != "" {
		for _, file := range snapshotFilesIn(dir) {
			f.Add(snapshotBody(f, file))
		}
	}

	svc := New(Options{Logger: discardLogger()})
	for i := range operationTable {
		svc.register(operationTable[i].name, func(context.Context, any) (any, error) { return nil, nil })
	}

	f.Fuzz(func(t *testing.T, body string) {
		params := requestParams{body: body}
		if action, _, qerr := params.get("Action"); qerr == nil {
			op := lookupOperation(action)
			if op == nil {
				// Still exercise a decoder: pick an operation from the input.
				op = &operationTable[len(body)%len(operationTable)]
			}
			var err error
			root, qerr := buildParamTree(op, params)
			if qerr != nil {
				err = qerr
			} else {
				var in any
				if in, err = decodeInput(op, root); err == nil && reflect.TypeOf(in) != reflect.PointerTo(op.inputType) {
					t.Fatalf("decoded %T for %s", in, op.name)
				}
			}
			if err != nil {
				if e, ok := err.(*Error); !ok || e.HTTPStatus != http.StatusBadRequest {
					t.Fatalf("decode error %v is not a 400 *Error", err)
				}
			}
		}

		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
