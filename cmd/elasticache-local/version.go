package main

import (
	"fmt"
	"runtime"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

// versionLine is what --version and the version command print: the
// emulator's version (the one its health endpoint reports), the ElastiCache
// API version it serves, and the Go toolchain and platform it was built
// with, so that a bug report can say exactly what ran.
func versionLine() string {
	return fmt.Sprintf("elasticache-local %s (ElastiCache API %s; built with %s for %s/%s)",
		emulator.Version, queryapi.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
