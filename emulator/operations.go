package emulator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/elasticache-local/elasticache-local/emulator/state"
)

// Operation kinds: every long-running change is one of these, named, so
// that it is persisted with its region while it runs and the next start
// knows what was under way (restore.go resumes each kind).
const (
	opCreateGroup     = "create-replication-group"
	opCreateCluster   = "create-cache-cluster"
	opAddReplica      = "add-replica"     // CreateCacheCluster into a group, IncreaseReplicaCount
	opRemoveReplicas  = "remove-replicas" // DecreaseReplicaCount
	opDeleteGroup     = "delete-replication-group"
	opDeleteCluster   = "delete-cache-cluster"
	opFailover        = "failover"    // planned (TestFailover, ModifyReplicationGroup) or unplanned
	opRepair          = "repair-node" // a failed node rebuilt in place
	opReboot          = "reboot-cache-cluster"
	opSettle          = "settle" // waits for endpoints before "available"
	opSnapshot        = "create-snapshot"
	opCopySnapshot    = "copy-snapshot"
	opExportSnapshot  = "export-snapshot"
	opDeleteSnapshot  = "delete-snapshot"
	opApplyParameters = "apply-parameters"
	opModifyMetadata  = "modify"         // a metadata-only change settling to available
	opReshard         = "reshard"        // ModifyReplicationGroupShardConfiguration
	opMigration       = "migration"      // StartMigration's sync, CompleteMigration's promotion
	opTestMigration   = "test-migration" // TestMigration's connection test
)

// operation is one running operation of a region.
type operation struct {
	id      string
	kind    string
	target  string
	started time.Time
	detail  map[string]string
}

// operations are a region's running operations, guarded by its mu.
type operations struct {
	next int
	live map[string]*operation
}

func (o *operations) add(kind, target string, detail map[string]string, now time.Time) *operation {
	if o.live == nil {
		o.live = map[string]*operation{}
	}
	o.next++
	op := &operation{id: fmt.Sprintf("op-%d", o.next), kind: kind, target: target, started: now, detail: detail}
	o.live[op.id] = op
	return op
}

func (o *operations) remove(op *operation) { delete(o.live, op.id) }

// records lists the running operations in the order they started.
func (o *operations) records() []state.Operation {
	var out []state.Operation
	for _, id := range slices.Sorted(maps.Keys(o.live)) {
		op := o.live[id]
		out = append(out, state.Operation{ID: op.id, Kind: op.kind, Target: op.target, Started: op.started, Detail: op.detail})
	}
	slices.SortFunc(out, func(a, b state.Operation) int { return a.Started.Compare(b.Started) })
	return out
}

// restore takes the operations of an earlier run; restore.go resumes them.
func (o *operations) restore(recs []state.Operation) {
	for _, rec := range recs {
		if o.live == nil {
			o.live = map[string]*operation{}
		}
		o.live[rec.ID] = &operation{id: rec.ID, kind: rec.Kind, target: rec.Target, started: rec.Started, detail: rec.Detail}
		var n int
		if _, err := fmt.Sscanf(rec.ID, "op-%d", &n); err == nil && n > o.next {
			o.next = n
		}
	}
}

// running reports whether an operation of kind on target runs.
func (o *operations) running(kind, target string) bool {
	for _, op := range o.live {
		if op.kind == kind && op.target == target {
			return true
		}
	}
	return false
}

// stopping reports whether ctx, an operation's context, ended because the
// emulator is stopping: the operation's outcome is then not a failure to
// record but work for the next start to resume.
func stopping(ctx context.Context) bool { return ctx.Err() != nil }

// runOperation records an operation on r and runs fn as tracked background
// work; the record goes when fn returns. The caller holds r.mu, so the
// operation is persisted together with the status change that started it
// (at the caller's unlock): a crash after the API answered always finds it.
func (e *Emulator) runOperation(r *region, kind, target string, detail map[string]string, fn func(ctx context.Context)) {
	e.startOperation(r, kind, target, detail, true, fn)
}

// runOperationAhead is runOperation for work that may act before its
// record is on disk: a recovery of a crashed node, whose every millisecond
// is outage for the clients, while the write (fsync) takes milliseconds to
// tens of them on a busy machine. It is safe because the next start reads
// what such work did back from the nodes themselves, not from the record
// (reconcileNodeGroup finds a replica a failover promoted; a node left dead
// is found dead and recovered again). The record is written alongside.
func (e *Emulator) runOperationAhead(r *region, kind, target string, detail map[string]string, fn func(ctx context.Context)) {
	e.startOperation(r, kind, target, detail, false, fn)
}

func (e *Emulator) startOperation(r *region, kind, target string, detail map[string]string, diskFirst bool, fn func(ctx context.Context)) {
	op := r.ops.add(kind, target, detail, e.opts.Now().UTC())
	e.log.Debug("operation started", "account", r.account, "region", r.region, "operation", op.id, "kind", kind, "target", target)
	save := func() {
		// The caller holds r.mu, so this waits for its unlock, whose
		// change number the write must cover.
		r.mu.Lock()
		seq := r.seq
		r.mu.Unlock()
		e.persist(r, seq)
	}
	if e.store != nil && !diskFirst {
		e.goBackground(func(context.Context) { save() })
	}
	e.goBackground(func(ctx context.Context) {
		// Act only once the change that started the operation is on disk
		// (unless the work is safe ahead of it): else a kill right after
		// the work (a node stopped by a delete) finds a record that never
		// heard of it.
		if e.store != nil && diskFirst {
			save()
		}
		defer func() {
			if ctx.Err() != nil {
				// The emulator is stopping: the operation stays recorded
				// so the next start resumes it.
				return
			}
			r.mu.Lock()
			r.ops.remove(op)
			e.unlock(r)
		}()
		fn(ctx)
	})
}

// runOperationHere is runOperation for work its caller does itself (the
// backup ticker): the operation is recorded, fn runs on the caller's
// goroutine, and the record goes when fn returns, unless the emulator is
// stopping. No lock is held by the caller.
func (e *Emulator) runOperationHere(ctx context.Context, r *region, kind, target string, fn func(ctx context.Context)) {
	r.mu.Lock()
	op := r.ops.add(kind, target, nil, e.opts.Now().UTC())
	e.unlock(r)
	fn(ctx)
	if stopping(ctx) {
		return
	}
	r.mu.Lock()
	r.ops.remove(op)
	e.unlock(r)
}
