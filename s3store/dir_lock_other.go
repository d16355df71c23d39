//go:build !unix

package s3store

import "os"

// lockRoot opens path without a lock where flock is not available; sole is
// false, so only stale temporary files are removed.
func lockRoot(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	return f, false, err
}
