//go:build !unix

package emulator

// lockDataDir is a no-op where flock is not available.
func lockDataDir(_, _ string) (func(), error) { return func() {}, nil }
