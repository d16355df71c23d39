package queryapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// snapshotBody returns the form body of an SDK request snapshot: an HTTP
// request dump whose body follows the blank line after the headers.
func snapshotBody(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	i := strings.LastIndex(strings.TrimRight(text, "\n"), "\n\n")
	if i < 0 {
		t.Fatalf("%s: no body", path)
	}
	return strings.TrimSpace(text[i+2:])
}

func snapshotFiles(t testing.TB) []string {
	t.Helper()
	return snapshotFilesIn(sdkModuleDir(t))
}

func snapshotFilesIn(moduleDir string) []string {
	files, _ := filepath.Glob(filepath.Join(moduleDir, "request_snapshot", "*.request.snap"))
	return files
}

// TestDecodeRequestSnapshots decodes every request snapshot shipped with the
// SDK, then re-encodes the decoded Input with the real SDK client and checks
// the bytes equal the snapshot: decoding lost nothing.
func TestDecodeRequestSnapshots(t *testing.T) {
	files := snapshotFiles(t)
	if len(files) != len(operationTable) {
		t.Errorf("found %d snapshots, want %d", len(files), len(operationTable))
	}

	svc := New(Options{Logger: discardLogger()})
	var mu sync.Mutex
	decoded := map[string]any{}
	for i := range operationTable {
		op := &operationTable[i]
		svc.register(op.name, func(_ context.Context, in any) (any, error) {
			mu.Lock()
			decoded[op.name] = in
			mu.Unlock()
			return nil, nil
		})
	}
	srv := startService(t, svc)

	// A second server captures what the SDK sends for the decoded Input.
	var sent sync.Map
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		q, _ := url.ParseQuery(string(b))
		sent.Store(q.Get("Action"), string(b))
		w.WriteHeader(http.StatusOK) // empty 200: the SDK accepts it as an empty output
	}))
	t.Cleanup(capture.Close)
	client := reflect.ValueOf(newTestClient(capture.URL, "AKIDEXAMPLE"))

	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".request.snap")
		t.Run(name, func(t *testing.T) {
			body := snapshotBody(t, file)
			res := postForm(t, srv.URL, body)
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			op := lookupOperation(name)
			if op == nil {
				t.Fatalf("no operation %s", name)
			}
			mu.Lock()
			in := decoded[name]
			mu.Unlock()
			if reflect.TypeOf(in) != reflect.PointerTo(op.inputType) {
				t.Fatalf("decoded %T, want *%v", in, op.inputType)
			}
			out := client.MethodByName(name).Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(in)})
			if err, _ := out[1].Interface().(error); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, _ := sent.Load(name)
			if again != body {
				t.Errorf("re-encoded body differs\n got: %s\nwant: %s", again, body)
			}
		})
	}
}
