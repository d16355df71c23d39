package docker

// A TLS node's files (engine.TLSFiles) in its container's /data, where its
// server reads them (engine.TLSDirectives).

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/elasticache-local/elasticache-local/engine"
)

// tlsPath is where a TLS file of a node is inside its container.
func tlsPath(name string) string { return dataPath + "/" + name }

// writeFiles writes files into the bind-mounted directory dir, readable by
// their owner only: the server runs as the caller (or, rootless, as
// container root mapped to the caller).
func writeFiles(dir string, files []engine.NodeFile) error {
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// copyFilesInto puts files into /data of a created container through the
// API, mode 0600 and owned by root, the user the server runs as in a
// container without bind mounts (the image's default).
func (r *Runtime) copyFilesInto(ctx context.Context, id string, files []engine.NodeFile) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o600, Size: int64(len(f.Data)), Typeflag: tar.TypeReg, ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return r.cli.CopyToContainer(ctx, id, dataPath, &buf, container.CopyToContainerOptions{})
}

// registerTLS records with the admin whether the node at ep serves TLS
// (engine.Admin.UseTLS) and speaks memcached (UseMemcached), from its
// labels.
func (r *Runtime) registerTLS(n engine.Node) {
	r.admin.RegisterNode(n)
}
