package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/elasticache-local/elasticache-local/engine"
)

var (
	_ engine.FileReader = (*Runtime)(nil)
	_ engine.Reaper     = (*Runtime)(nil)
)

// PeerEndpoint implements engine.Runtime: processes share the host's network,
// so other nodes reach a node at the endpoint it listens on.
func (r *Runtime) PeerEndpoint(ep engine.Endpoint) engine.Endpoint { return ep }

// CopyFrom implements engine.FileReader by opening the file in the node's
// directory, which is the server's "dir" (dump.rdb lands there).
func (r *Runtime) CopyFrom(ctx context.Context, name, path string) (io.ReadCloser, error) {
	if validateName(name) != nil {
		return nil, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	if !fs.ValidPath(path) || path == "." {
		return nil, fmt.Errorf("engine/process: node %s: invalid path %q (want a relative path inside the node's data directory)", name, path)
	}
	if _, _, err := r.lookup(name); err != nil {
		return nil, err
	}
	full := filepath.Join(r.NodeDir(name), filepath.FromSlash(path))
	f, err := os.Open(full)
	if err != nil {
		return nil, fmt.Errorf("engine/process: node %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("engine/process: node %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("engine/process: node %s: %s: %w", name, path, errNotRegular)
	}
	return f, nil
}

// errNotRegular is returned by CopyFrom for directories and other non-files.
var errNotRegular = errors.New("not a regular file")
