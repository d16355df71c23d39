// Package atomicfile replaces files crash-safely, for every file the
// emulator and its runtimes must never leave torn: the state of a scope, a
// suspended node's kept data.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of a file being written; a reader of the
// directory skips such files, and one a crash left may be removed.
const TempPrefix = ".tmp-"

// Write replaces path with src's bytes: they go to a temporary file in the
// same directory (mode 0600), which is fsynced and renamed over path, and
// then the directory is fsynced. rename(2) swaps the name atomically and
// the syncs order the data before the name, so a crash or a kill at any
// instant leaves the previous file or the new one, never a mix.
func Write(path string, src io.Reader) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, src); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	renamed = true
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
