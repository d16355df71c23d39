package emulator

import "github.com/elasticache-local/elasticache-local/emulator/state"

// unlock releases r.mu, taken by lockRegion or r.mu.Lock, after a change,
// and returns once the change is on disk (before the API answers it). The
// disk work runs without r.mu: persist takes the scope's latest records
// under it, briefly, and writes them after releasing it. Changes made at
// the same time coalesce: the writer that gets the scope's save lock takes
// the latest records, which hold every change numbered before them, and
// the others, finding theirs written, return at once.
func (e *Emulator) unlock(r *region) {
	defer e.wakeHealth() // the change may have made a node available
	if e.store == nil {
		r.mu.Unlock()
		return
	}
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	e.persist(r, seq)
}

// unlockForOperation releases r.mu after a change that started an
// operation, leaving the write to the operation: runOperation's work
// persists the change before it acts. For a caller that must not wait for
// the disk (the health monitor, whose rounds would fall behind).
func (e *Emulator) unlockForOperation(r *region) {
	r.seq++
	r.mu.Unlock()
	e.wakeHealth()
}

// wakeHealth starts a health round at once, after a change of state: the
// monitor sleeps up to a beat (10 health intervals) while every node
// answers, and a node made available (created, replaced, rebuilt) gets its
// watch connection and its first check in that round instead of the next
// beat. A round with nothing new to check sends nothing.
func (e *Emulator) wakeHealth() {
	select {
	case e.healthWake <- struct{}{}:
	default: // a round is already due
	}
}

// unlockProgress releases r.mu after a step an operation records on its
// way (a created node marked available, a group's endpoints opened, the
// group available), without waiting for the disk: the operation's end
// writes it (removing the operation's record waits for the disk, see
// startOperation), and a restart before that resumes the operation from
// the record, which finishes every such status again (reconcile.go). With
// a hundred groups created at once, every step waiting for its own write of
// the whole region (fsynced, hundreds of KB) kept each create waiting
// seconds in a queue of writes.
func (e *Emulator) unlockProgress(r *region) {
	r.seq++
	r.mu.Unlock()
}

// persist makes sure the records of r as of change seq are on disk.
func (e *Emulator) persist(r *region, seq uint64) {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if r.saved >= seq {
		return // a write since covered it
	}
	r.mu.RLock() // reading the records changes nothing
	latest, rec := r.seq, r.record()
	r.mu.RUnlock()
	body, err := state.Encode(rec)
	if err != nil {
		e.log.Error("encoding the state of a region", "account", r.account, "region", r.region, "err", err)
		return
	}
	if string(body) == string(r.savedBody) {
		r.saved = latest
		return
	}
	if err := e.store.WriteEncoded(rec.Scope, body); err != nil {
		// The change is live but not durable: say so loudly; the next
		// change writes the whole scope again.
		e.log.Error("persisting the state of a region failed; a restart now would lose its latest changes", "account", r.account, "region", r.region, "err", err)
		return
	}
	r.saved, r.savedBody = latest, body
}
