package queryapi

import (
	"reflect"
	"sort"

	smithy "github.com/aws/smithy-go"
)

// operation is one row of the generated operationTable.
type operation struct {
	name string
	// inputType and outputType are the SDK's struct types
	// (elasticache.XInput / elasticache.XOutput), not pointers.
	inputType, outputType reflect.Type
	// inputSchema and outputSchema are the schemas the SDK client itself
	// passes to its protocol for this operation; outputSchema is nil when
	// the operation's output is Unit (the SDK then expects no Result element).
	inputSchema, outputSchema *smithy.Schema
	// required lists the top-level Input members the SDK documents as
	// required, in SDK source order.
	required []string
}

// Operations returns the names of all operations the codec can decode,
// sorted. Every one of them answers NotImplemented until a handler is
// registered with Handle.
func Operations() []string {
	names := make([]string, 0, len(operationTable))
	for i := range operationTable {
		names = append(names, operationTable[i].name)
	}
	sort.Strings(names)
	return names
}

// lookupOperation finds a table row by action name. The table is sorted by
// the generator, so a binary search is enough and needs no index to be built.
func lookupOperation(name string) *operation {
	i := sort.Search(len(operationTable), func(i int) bool { return operationTable[i].name >= name })
	if i < len(operationTable) && operationTable[i].name == name {
		return &operationTable[i]
	}
	return nil
}
