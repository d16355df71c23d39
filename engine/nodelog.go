package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Kept engine logs: a node that is stopped (deleted, or rebuilt after a
// failure under the same name) leaves the end of its engine log behind, so
// why a node was replaced can still be read after its replacement started.
// Both runtimes keep them the same way, in <data dir>/node-logs/<node>/:
// redis.log.1 is the log of the node's previous server, redis.log.2 the
// one before, up to KeptLogFiles files of at most KeptLogBytes each (the
// end of the log, where the reason a server died is).
const (
	KeptLogFiles = 5
	KeptLogBytes = 1 << 20
	// KeptLogsDir is the directory of the kept logs under the data dir:
	// outside the nodes' own directories, which a stop removes.
	KeptLogsDir = "node-logs"
	// KeptLogName is the base name of a kept log; .1 is the newest.
	KeptLogName = "redis.log"
)

// LogKeeper keeps the engine logs of stopped nodes under Dir (see
// KeptLogFiles). The zero value (no Dir) keeps nothing.
type LogKeeper struct {
	Dir string
}

// KeptLog is the path of a node's n-th newest kept log (n from 1).
func (k LogKeeper) KeptLog(node string, n int) string {
	return filepath.Join(k.Dir, node, KeptLogName+"."+strconv.Itoa(n))
}

// Keep stores the last KeptLogBytes of src as the node's newest kept log,
// shifting the older ones (redis.log.1 → redis.log.2 …) and dropping the
// oldest past KeptLogFiles. A node name is a runtime's validated name, never
// a path of its own.
func (k LogKeeper) Keep(node string, src io.Reader) error {
	if k.Dir == "" {
		return nil
	}
	tail, err := readTail(src, KeptLogBytes)
	if err != nil {
		return fmt.Errorf("engine: reading the log of %s: %w", node, err)
	}
	if err := os.MkdirAll(filepath.Join(k.Dir, node), 0o700); err != nil {
		return fmt.Errorf("engine: keeping the log of %s: %w", node, err)
	}
	for n := KeptLogFiles - 1; n >= 1; n-- {
		if err := os.Rename(k.KeptLog(node, n), k.KeptLog(node, n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("engine: rotating the logs of %s: %w", node, err)
		}
	}
	if err := os.WriteFile(k.KeptLog(node, 1), tail, 0o600); err != nil {
		return fmt.Errorf("engine: keeping the log of %s: %w", node, err)
	}
	return nil
}

// KeepFile is Keep of the file at path; a missing file keeps nothing (a
// node whose start was cut short before its log existed).
func (k LogKeeper) KeepFile(node, path string) error {
	if k.Dir == "" {
		return nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: keeping the log of %s: %w", node, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > KeptLogBytes {
		// Only the end is kept: skip the rest without reading it.
		if _, err := f.Seek(fi.Size()-KeptLogBytes, io.SeekStart); err != nil {
			return fmt.Errorf("engine: keeping the log of %s: %w", node, err)
		}
	}
	return k.Keep(node, f)
}

// readTail reads src to its end and returns its last max bytes, holding at
// most about twice that in memory whatever src's length.
func readTail(src io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, 2*max)
	for {
		if len(buf) == cap(buf) {
			// Full: keep the newest max bytes and read on after them.
			buf = append(buf[:0], buf[len(buf)-max:]...)
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(buf) > max {
		buf = buf[len(buf)-max:]
	}
	return buf, nil
}
