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

// keptIDs are a region's replication group ids, sorted, at generation gen.
type keptIDs struct {
	gen uint64
	ids []string
}

// groupIDs is the sorted ids of r's groups, kept while the region does not
// change: sorting them for every page of a poll would cost more than the
// page. The caller holds r.mu for reading (a writer could change the groups
// after, at the same generation) and must not change the slice.
func (r *region) groupIDs() []string {
	gen := r.mu.generation()
	if k := r.groupKeys.Load(); k != nil && k.gen == gen {
		return k.ids
	}
	ids := sortedKeys(r.groups)
	r.groupKeys.Store(&keptIDs{gen: gen, ids: ids})
	return ids
}
