package emulator

import "time"

// Defaults of the emulator's settings, defined once: New and Start apply
// them to zero values, and the binary's flags show them.
const (
	DefaultListen            = "127.0.0.1:4566"
	DefaultRegion            = "us-east-1"
	DefaultAccountID         = "000000000000"
	DefaultNodeReadyTimeout  = 60 * time.Second
	DefaultHealthInterval    = 100 * time.Millisecond
	DefaultHealthTimeout     = 250 * time.Millisecond
	DefaultHealthMisses      = 3
	DefaultTestFailoverQuota = 15
	// DefaultShutdownTimeout bounds a graceful stop of the binary: saving
	// every node's data (about 20 s per GiB of data on two cores) and
	// stopping it.
	DefaultShutdownTimeout = 30 * time.Second
)
