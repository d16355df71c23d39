package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Create writes src's bytes to path unless path exists, which gives an
// error wrapping fs.ErrExist: for files created once and never replaced,
// whose first writers may race (credentials, a CA key) and must all end up
// with the same file. The bytes go to a temporary file (mode 0600), which
// is fsynced and hard-linked to path (a link, unlike rename, never
// replaces a file), then the directory is fsynced; so a crash leaves no
// file or the whole one. Where the file system has no hard links it falls
// back to a rename after checking path does not exist, which a concurrent
// writer could slip in between.
func Create(path string, src io.Reader) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, statErr := os.Lstat(path); statErr == nil {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
		if err := os.Rename(f.Name(), path); err != nil {
			return err
		}
	}
	return SyncDir(dir)
}
