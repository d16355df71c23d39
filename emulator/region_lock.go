package emulator

import (
	"sync"
	"sync/atomic"
)

// regionLock guards a region's records. Writers (Lock) exclude everyone;
// readers (RLock: the Describe and List calls, the health monitor's look at
// the nodes) exclude only writers, so clients polling at once do not wait
// for each other. Every Lock advances gen: what a reader renders while gen
// holds a value stays true until it moves, which is what lets renderings
// be kept and answered again (describeCached) without ever answering a
// stale one.
type regionLock struct {
	sync.RWMutex
	gen atomic.Uint64
}

// Lock takes the region for a change, and ends the current generation.
func (l *regionLock) Lock() {
	l.RWMutex.Lock()
	l.gen.Add(1)
}

// generation is the current generation; the caller holds the lock (read
// or write), so it cannot move meanwhile unless the caller is the writer.
func (l *regionLock) generation() uint64 { return l.gen.Load() }
