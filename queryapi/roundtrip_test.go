package queryapi

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	smithy "github.com/aws/smithy-go"
)

// TestRoundTripAllOperations sends a fully populated Input for every
// operation through the real SDK client (its own query serializer), checks
// the handler received exactly that Input, and checks that the fully
// populated Output the handler returned reaches the client intact (through
// the SDK's own XML deserializer).
func TestRoundTripAllOperations(t *testing.T) {
	svc := New(Options{Logger: discardLogger()})
	var mu sync.Mutex
	received := map[string]any{}
	calls := map[string]int{}
	outputs := map[string]any{}
	for i := range operationTable {
		op := &operationTable[i]
		out := filled(op.outputType)
		outputs[op.name] = out
		svc.register(op.name, func(ctx context.Context, in any) (any, error) {
			if got := InfoFrom(ctx).Action; got != op.name {
				t.Errorf("RequestInfo.Action = %q, want %q", got, op.name)
			}
			mu.Lock()
			received[op.name] = in
			calls[op.name]++
			mu.Unlock()
			return out, nil
		})
	}
	srv := startService(t, svc)
	client := reflect.ValueOf(newTestClient(srv.URL, "AKIDEXAMPLE"))

	passed := 0
	for i := range operationTable {
		op := &operationTable[i]
		t.Run(op.name, func(t *testing.T) {
			in := filled(op.inputType)
			res := client.MethodByName(op.name).Call([]reflect.Value{
				reflect.ValueOf(context.Background()), reflect.ValueOf(in),
			})
			if err, _ := res[1].Interface().(error); err != nil {
				t.Fatalf("client call: %v", err)
			}
			mu.Lock()
			got := received[op.name]
			mu.Unlock()
			if got == nil {
				t.Fatal("handler not called")
			}
			if d := diffValues(in, got); d != "" {
				t.Errorf("decoded input differs from sent input: %s", d)
			}
			if d := diffValues(outputs[op.name], res[0].Interface()); d != "" {
				t.Errorf("client output differs from handler output: %s", d)
			}
			if !t.Failed() {
				passed++
			}
		})
	}
	retried := 0
	for _, n := range calls {
		retried += n - 1
	}
	t.Logf("round-tripped %d/%d operations (%d SDK retries, see newTestClient)", passed, len(operationTable), retried)
	if passed != 77 {
		t.Errorf("round-tripped %d operations, want 77", passed)
	}
}

// TestRoundTripEmptyList checks that an empty, non-nil list survives the
// trip: the SDK sends "SecurityGroupIds=" and the handler must see []string{}.
func TestRoundTripEmptyList(t *testing.T) {
	svc := New(Options{Logger: discardLogger()})
	var received guarded[*elasticache.CreateReplicationGroupInput]
	Handle(svc, func(_ context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
		received.set(in)
		return nil, nil
	})
	srv := startService(t, svc)
	_, err := newTestClient(srv.URL, "AKIDEXAMPLE").CreateReplicationGroup(context.Background(), &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId:          aws.String("rg"),
		ReplicationGroupDescription: aws.String("d"),
		SecurityGroupIds:            []string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := received.get()
	if got.SecurityGroupIds == nil || len(got.SecurityGroupIds) != 0 {
		t.Errorf("SecurityGroupIds = %#v, want empty non-nil", got.SecurityGroupIds)
	}
	if got.CacheSecurityGroupNames != nil {
		t.Errorf("CacheSecurityGroupNames = %#v, want nil (not sent)", got.CacheSecurityGroupNames)
	}
}

// TestSchemaMembersHaveFields verifies the codec's assumption that every
// member of every input and output shape has a Go field of the same name
// (modulo the capitalised first letter) in the SDK type.
func TestSchemaMembersHaveFields(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(path string, s *smithy.Schema, t reflect.Type) []string
	walk = func(path string, s *smithy.Schema, typ reflect.Type) []string {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == timeTypeT || seen[typ] {
			return nil
		}
		seen[typ] = true
		var bad []string
		for name, m := range s.Members() {
			f := fieldByMember(reflect.New(typ).Elem(), name)
			if !f.IsValid() {
				bad = append(bad, path+"."+name)
				continue
			}
			target := m
			for target.ListMember() != nil || target.MapValue() != nil {
				if lm := target.ListMember(); lm != nil {
					target = lm
				} else {
					target = target.MapValue()
				}
			}
			bad = append(bad, walk(path+"."+name, target, f.Type())...)
		}
		return bad
	}
	for i := range operationTable {
		op := &operationTable[i]
		if bad := walk(op.name+"Input", op.inputSchema, op.inputType); len(bad) > 0 {
			t.Errorf("members without Go field: %v", bad)
		}
		if op.outputSchema == nil {
			continue
		}
		if bad := walk(op.name+"Output", op.outputSchema, op.outputType); len(bad) > 0 {
			t.Errorf("members without Go field: %v", bad)
		}
	}
}
