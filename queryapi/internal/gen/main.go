// Command gen writes queryapi/operations_gen.go: the table of every
// ElastiCache operation in the pinned aws-sdk-go-v2/service/elasticache
// module, with the SDK's Input/Output types, the input/output schemas the
// SDK's own client uses for the operation, and the Input members the SDK
// documents as required.
//
// The table is derived from the SDK source rather than written by hand so
// that bumping the SDK in go.mod and re-running `go generate ./queryapi`
// is the whole upgrade procedure; a test in queryapi re-runs this program
// and fails if the checked-in file is stale.
//
// Usage (from the queryapi directory, which is what go:generate does):
//
//	go run ./internal/gen -o operations_gen.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const sdkModule = "github.com/aws/aws-sdk-go-v2/service/elasticache"

// requiredMarker is the sentence smithy-go-codegen appends to the doc comment
// of every @required member.
const requiredMarker = "This member is required."

type operation struct {
	Name         string
	InputSchema  string // identifier in package schemas
	OutputSchema string // identifier in package schemas, "" when the output is Unit
	Required     []string
}

func main() {
	out := flag.String("o", "operations_gen.go", "output file")
	flag.Parse()

	dir, version, err := moduleDir()
	if err != nil {
		log.Fatal(err)
	}
	ops, err := readOperations(dir)
	if err != nil {
		log.Fatal(err)
	}
	src, err := render(version, ops)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// moduleDir asks the go command where the SDK version pinned by go.mod lives,
// so the table always matches the code that is compiled in.
func moduleDir() (dir, version string, err error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", sdkModule)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go list -m %s: %w", sdkModule, err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(string(b)), "\t")
	if !ok || dir == "" {
		return "", "", fmt.Errorf("go list -m %s: module not downloaded (run go mod download)", sdkModule)
	}
	return dir, version, nil
}

func readOperations(dir string) ([]operation, error) {
	files, err := filepath.Glob(filepath.Join(dir, "api_op_*.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no api_op_*.go files in %s", dir)
	}
	var ops []operation
	for _, path := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "api_op_"), ".go")
		op, err := readOperation(path, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Name < ops[j].Name })
	return ops, nil
}

func readOperation(path, name string) (operation, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		return operation{}, err
	}
	op := operation{Name: name}
	var haveMethod, haveInput, haveSchemas bool
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			// func (c *Client) Name(ctx, *NameInput, ...) proves the file
			// really is the operation it is named after.
			if n.Recv != nil && n.Name.Name == name {
				haveMethod = true
			}
		case *ast.TypeSpec:
			st, ok := n.Type.(*ast.StructType)
			if !ok || n.Name.Name != name+"Input" {
				return true
			}
			haveInput = true
			for _, field := range st.Fields.List {
				if field.Doc == nil || !strings.Contains(field.Doc.Text(), requiredMarker) {
					continue
				}
				for _, id := range field.Names {
					op.Required = append(op.Required, id.Name)
				}
			}
		case *ast.CallExpr:
			// The middleware registration passes the operation's schemas:
			// smithy.NewOperationSchema(schemas.Op, schemas.In, schemas.Out|nil)
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewOperationSchema" || haveSchemas || len(n.Args) != 3 {
				return true
			}
			in, ok := schemaIdent(n.Args[1])
			if !ok {
				return true
			}
			op.InputSchema = in
			op.OutputSchema, _ = schemaIdent(n.Args[2])
			haveSchemas = true
		}
		return true
	})
	switch {
	case !haveMethod:
		return op, fmt.Errorf("no Client.%s method", name)
	case !haveInput:
		return op, fmt.Errorf("no %sInput struct", name)
	case !haveSchemas:
		return op, fmt.Errorf("no NewOperationSchema call")
	}
	return op, nil
}

// schemaIdent returns X for the expression schemas.X.
func schemaIdent(e ast.Expr) (string, bool) {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok || pkg.Name != "schemas" {
		return "", false
	}
	return sel.Sel.Name, true
}

func render(version string, ops []operation) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./internal/gen; DO NOT EDIT.\n")
	fmt.Fprintf(&b, "// Source: %s@%s (api_op_*.go).\n\n", sdkModule, version)
	fmt.Fprintf(&b, "package queryapi\n\n")
	fmt.Fprintf(&b, "import (\n\t\"reflect\"\n\n\t%q\n\t%q\n)\n\n", sdkModule, sdkModule+"/schemas")
	fmt.Fprintf(&b, "// sdkVersion is the version of %s the table was generated from.\n", sdkModule)
	fmt.Fprintf(&b, "const sdkVersion = %q\n\n", version)
	fmt.Fprintf(&b, "// operationTable lists every operation of the SDK, sorted by name.\n")
	fmt.Fprintf(&b, "var operationTable = [...]operation{\n")
	for _, op := range ops {
		out := "nil"
		if op.OutputSchema != "" {
			out = "schemas." + op.OutputSchema
		}
		req := "nil"
		if len(op.Required) > 0 {
			req = fmt.Sprintf("%#v", op.Required)
		}
		fmt.Fprintf(&b, "\t{\n")
		fmt.Fprintf(&b, "\t\tname:         %q,\n", op.Name)
		fmt.Fprintf(&b, "\t\tinputType:    reflect.TypeFor[elasticache.%sInput](),\n", op.Name)
		fmt.Fprintf(&b, "\t\toutputType:   reflect.TypeFor[elasticache.%sOutput](),\n", op.Name)
		fmt.Fprintf(&b, "\t\tinputSchema:  schemas.%s,\n", op.InputSchema)
		fmt.Fprintf(&b, "\t\toutputSchema: %s,\n", out)
		fmt.Fprintf(&b, "\t\trequired:     %s,\n", req)
		fmt.Fprintf(&b, "\t},\n")
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}
