package emulator

import (
	"bytes"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// unlock releases r.mu, taken by lockRegion or r.mu.Lock, and persists r's
// records when they changed: they are copied under the lock, then encoded
// and written after it is released (no disk work under a lock), before
// unlock returns, so a change an API call made is on disk before the call
// is answered. Writes are ordered by the sequence number the copy got
// under the lock: a copy older than the one on disk is dropped.
func (e *Emulator) unlock(r *region) {
	if e.store == nil {
		r.mu.Unlock()
		return
	}
	r.seq++
	seq, rec := r.seq, r.record()
	r.mu.Unlock()
	e.persist(r, seq, rec)
}

// persist writes rec, copied under r.mu with sequence number seq.
func (e *Emulator) persist(r *region, seq uint64, rec *state.Region) {
	body, err := state.Encode(rec)
	if err != nil {
		e.log.Error("encoding the state of a region", "account", r.account, "region", r.region, "err", err)
		return
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if seq <= r.saved {
		return // a newer copy is on disk already
	}
	if bytes.Equal(body, r.savedBody) {
		r.saved = seq
		return
	}
	if err := e.store.WriteEncoded(rec.Scope, body); err != nil {
		// The change is live but not durable: say so loudly; the next
		// change writes the whole scope again.
		e.log.Error("persisting the state of a region failed; a restart now would lose its latest changes", "account", r.account, "region", r.region, "err", err)
		return
	}
	r.saved, r.savedBody = seq, body
}
