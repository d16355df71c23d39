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
)
