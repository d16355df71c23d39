package queryapi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

func TestOperationTable(t *testing.T) {
	if len(operationTable) != 77 {
		t.Fatalf("table has %d operations, want 77", len(operationTable))
	}
	names := Operations()
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("Operations() not sorted and unique: %v", names)
	}
	client := reflect.TypeFor[*elasticache.Client]()
	ctxType := reflect.TypeFor[context.Context]()
	for i := range operationTable {
		op := &operationTable[i]
		m, ok := client.MethodByName(op.name)
		if !ok {
			t.Errorf("%s: no elasticache.Client method", op.name)
			continue
		}
		// func(c *Client, ctx, *XInput, ...func(*Options)) (*XOutput, error)
		mt := m.Type
		if mt.NumIn() != 4 || mt.In(1) != ctxType || mt.In(2) != reflect.PointerTo(op.inputType) ||
			mt.NumOut() != 2 || mt.Out(0) != reflect.PointerTo(op.outputType) {
			t.Errorf("%s: client method %v does not match table types %v/%v", op.name, mt, op.inputType, op.outputType)
		}
		if op.inputSchema == nil {
			t.Errorf("%s: no input schema", op.name)
		}
		if lookupOperation(op.name) != op {
			t.Errorf("%s: lookup failed", op.name)
		}
		for _, r := range op.required {
			if _, ok := op.inputType.FieldByName(r); !ok {
				t.Errorf("%s: required member %s is not an input field", op.name, r)
			}
		}
	}
	// Conversely, every client method shaped like an operation is in the table.
	ops := 0
	for i := 0; i < client.NumMethod(); i++ {
		mt := client.Method(i).Type
		if mt.NumIn() == 4 && mt.In(1) == ctxType && strings.HasSuffix(mt.In(2).String(), "Input") {
			ops++
			if lookupOperation(client.Method(i).Name) == nil {
				t.Errorf("client operation %s missing from table", client.Method(i).Name)
			}
		}
	}
	if ops != len(operationTable) {
		t.Errorf("client has %d operations, table %d", ops, len(operationTable))
	}
	for _, name := range []string{"", "createReplicationGroup", "Nope", "zzz"} {
		if lookupOperation(name) != nil {
			t.Errorf("lookupOperation(%q) found something", name)
		}
	}

	crg := lookupOperation("CreateReplicationGroup")
	if !slices.Equal(crg.required, []string{"ReplicationGroupDescription", "ReplicationGroupId"}) {
		t.Errorf("CreateReplicationGroup required = %v", crg.required)
	}
	if lookupOperation("DeleteCacheParameterGroup").outputSchema != nil {
		t.Error("DeleteCacheParameterGroup should have a Unit output")
	}
}

// TestGeneratedTableUpToDate re-runs the generator against the SDK pinned in
// go.mod and requires the checked-in file to match, so an SDK bump without
// `go generate ./queryapi` fails here.
func TestGeneratedTableUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	sdkModuleDir(t) // skips without a go command / module cache
	out := filepath.Join(t.TempDir(), "operations_gen.go")
	cmd := exec.Command("go", "run", "./internal/gen", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("operations_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("operations_gen.go is stale: run go generate ./queryapi")
	}
	if !bytes.HasPrefix(got, []byte("// Code generated ")) || !bytes.Contains(got, []byte("DO NOT EDIT.")) {
		t.Error("operations_gen.go lacks the generated-code header")
	}
}
