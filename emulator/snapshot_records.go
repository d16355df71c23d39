package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/s3store"
)

// Snapshot objects live in the store under
//
//	snapshots/<account>/<region>/<dir>/<node group>.rdb
//	snapshots/<account>/<region>/<dir>/snapshot.json   (the record)
//
// built with s3store.JoinKey, which refuses any component that is not one
// valid segment. <dir> is snapshotDir of the name, never the raw name, and
// deletes remove exactly these keys, never what a prefix lists.
//
// The record follows the snapshot's life so that a crash at any instant
// leaves a truthful one, which LoadSnapshots settles at the next start:
//
//	creating   written before any data; at load, "available" if every RDB
//	           object is complete (a put is atomic), else "failed"
//	available  written once all the data is stored; the snapshot is listed
//	           available only after that
//	failed     as is
//	deleting   written before the first object is deleted; at load, the
//	           delete is finished
//
// The record also keeps the snapshot's tags (a change of tags rewrites it).
// Every write of a record holds the snapshot's recordMu and reads what to
// write under e.mu while holding it, so the last write is the latest state,
// and a delete holds it from its marker until the snapshot is forgotten.

// snapshotRecordFile is the record's file name beside the RDB objects.
const snapshotRecordFile = "snapshot.json"

// maxSnapshotNameChars is AWS's limit on snapshot names (characters).
const maxSnapshotNameChars = 255

// checkSnapshotNameRules validates a new snapshot name as AWS does: 1 to 255
// characters, no control characters, no path separators, and "automatic."
// is reserved for automated backups.
func checkSnapshotNameRules(param, name string) error {
	switch {
	case utf8.RuneCountInString(name) > maxSnapshotNameChars:
		return invalidParameterValue("The parameter %s must be at most %d characters long.", param, maxSnapshotNameChars)
	case strings.ContainsAny(name, "/\\"):
		return invalidParameterValue("Invalid snapshot name: %s (%s cannot contain '/' or '\\').", name, param)
	case strings.HasPrefix(name, "automatic."):
		return invalidParameterValue("Invalid snapshot name: %s (the prefix 'automatic.' is reserved for automated backups).", name)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return invalidParameterValue("The parameter %s must not contain control characters.", param)
		}
	}
	return nil
}

// snapshotDir maps a snapshot name to the key segment holding its objects.
// A plain name (letters, digits, '.', '_', '-', starting with a letter or
// digit) is its own segment, so an operator finds a snapshot by its name;
// any other name ("." and "..", non-ASCII ones, names past a segment's byte
// limit) becomes "~" and the SHA-256 of the name, which no plain name can
// collide with. The record holds the real name.
func snapshotDir(name string) string {
	if plainSnapshotName(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "~" + hex.EncodeToString(sum[:])
}

func plainSnapshotName(name string) bool {
	if name == "" || len(name) > s3store.MaxSegmentBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// snapshotKey is the key of one file of the snapshot stored under dir.
func (r *region) snapshotKey(dir, file string) (string, error) {
	return s3store.JoinKey("snapshots", r.account, r.region, dir, file)
}

// placeSnapshot sets where s's objects and record live: under dir, one
// object per node group. The caller holds r.mu (or owns s alone).
func (r *region) placeSnapshot(s *snapshot, dir string) error {
	refuse := func(err error) error {
		return invalidParameterValue("Snapshot %s cannot be stored: %v", s.Name, err)
	}
	rec, err := r.snapshotKey(dir, snapshotRecordFile)
	if err != nil {
		return refuse(err)
	}
	for i := range s.Nodes {
		if s.Nodes[i].Key, err = r.snapshotKey(dir, s.Nodes[i].NodeGroupID+".rdb"); err != nil {
			return refuse(err)
		}
	}
	// A copy starts from its source's fields: it has no record yet.
	s.dir, s.recordKey = dir, rec
	s.recordMu, s.persisted = new(sync.Mutex), ""
	return nil
}

// recordOf copies s with the given status and its tags, for a record
// marshalled without the lock; the caller holds r.mu.
func (r *region) recordOf(s *snapshot, status string) snapshot {
	c := *s
	c.Status = status
	c.Nodes = append([]snapshotShard(nil), s.Nodes...)
	c.Tags = cloneTags(r.tags[r.arn("snapshot", s.Name)])
	return c
}

// writeRecord stores rec as the record of s; the caller holds s.recordMu.
func (e *Emulator) writeRecord(ctx context.Context, s *snapshot, rec *snapshot) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err = e.opts.Snapshots.Put(ctx, s.recordKey, strings.NewReader(string(body)), int64(len(body)), nil); err != nil {
		return err
	}
	s.persisted = rec.Status
	return nil
}

// storeRecord writes the record of s with the given status (and what fill
// changes in it). Called without r.mu.
func (e *Emulator) storeRecord(ctx context.Context, r *region, s *snapshot, status string, fill func(*snapshot)) error {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	r.mu.Lock()
	rec := r.recordOf(s, status)
	e.unlock(r)
	if fill != nil {
		fill(&rec)
	}
	return e.writeRecord(ctx, s, &rec)
}

// rewriteRecord writes the record of s again with its current tags, when
// a record exists and no delete has begun (one being written gets them
// anyway: it reads them under recordMu). Called without r.mu.
func (e *Emulator) rewriteRecord(ctx context.Context, r *region, s *snapshot) error {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	r.mu.Lock()
	status := s.persisted
	live := r.snapshots[s.Name] == s && s.Status != snapDeleting
	rec := r.recordOf(s, status)
	e.unlock(r)
	if !live || status == "" || status == snapDeleting {
		return nil
	}
	return e.writeRecord(ctx, s, &rec)
}

// recordOutcome stores the final record of a snapshot listed "creating"
// whose work ended with err: "available" (with what fill adds) or
// "failed". The record changes before the listing does. It returns err,
// or why the record could not be stored. Called without r.mu.
func (e *Emulator) recordOutcome(ctx context.Context, r *region, s *snapshot, err error, fill func(*snapshot)) error {
	status := snapAvailable
	if err != nil {
		status = snapFailed
	}
	if werr := e.storeRecord(ctx, r, s, status, fill); werr != nil && err == nil {
		err = fmt.Errorf("storing the snapshot's record: %w", werr)
		// Best effort: a "creating" record is settled at the next start.
		_ = e.storeRecord(ctx, r, s, snapFailed, fill)
	}
	return err
}

// eventSource is what events about s are recorded on.
func (s *snapshot) eventSource() (types.SourceType, string, string) {
	if s.GroupID != "" {
		return types.SourceTypeReplicationGroup, s.GroupID, "replication group"
	}
	return types.SourceTypeCacheCluster, s.ClusterID, "cache cluster"
}

// deleteSnapshotObjects removes exactly the snapshot's RDB objects and then
// its record; objects already gone are fine (a delete is being finished).
func (e *Emulator) deleteSnapshotObjects(ctx context.Context, s *snapshot) error {
	keys := make([]string, 0, len(s.Nodes)+1)
	for _, n := range s.Nodes {
		keys = append(keys, n.Key)
	}
	for _, k := range append(keys, s.recordKey) {
		if err := e.opts.Snapshots.Delete(ctx, k); err != nil && !errors.Is(err, s3store.ErrNotFound) {
			return fmt.Errorf("deleting %s: %w", k, err)
		}
	}
	return nil
}

// removeSnapshot deletes a snapshot the caller listed as "deleting" (its
// status was previous): the record says "deleting" before any object goes,
// then the objects and the record are deleted, then the snapshot is
// forgotten. A store failure before anything was deleted puts it back as it
// was; after, it is "failed" (its data is partly gone) and may be deleted
// again.
func (e *Emulator) removeSnapshot(ctx context.Context, r *region, s *snapshot, previous string) {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	r.mu.Lock()
	rec := r.recordOf(s, snapDeleting)
	e.unlock(r)
	marked := e.writeRecord(ctx, s, &rec)
	var err error
	if marked == nil {
		err = e.deleteSnapshotObjects(ctx, s)
	}
	r.mu.Lock()
	defer e.unlock(r)
	srcType, src, _ := s.eventSource()
	switch {
	case marked != nil:
		s.Status = previous
		e.log.Error("snapshot delete failed; the snapshot is unchanged", "snapshot", s.Name, "err", marked)
		e.record(r, srcType, src, "Deletion of snapshot '%s' failed, the snapshot is unchanged: %v", s.Name, marked)
	case err != nil:
		s.Status = snapFailed
		e.log.Error("snapshot delete failed midway; the snapshot is failed", "snapshot", s.Name, "err", err)
		e.record(r, srcType, src, "Deletion of snapshot '%s' failed midway, the snapshot can no longer be restored: %v", s.Name, err)
	default:
		s.persisted = ""
		if r.snapshots[s.Name] == s {
			delete(r.snapshots, s.Name)
			delete(r.tags, r.arn("snapshot", s.Name))
		}
	}
}

// LoadSnapshots reads the snapshot records a previous run left in the
// store, so snapshots outlive the emulator as they outlive clusters on AWS,
// and settles what a crash interrupted (see the record's life above): a
// delete is finished, a creation or copy whose data is complete becomes
// available, one whose data is not (or an available one whose data is gone)
// becomes failed, each with an event. It runs at start, before requests.
func (e *Emulator) LoadSnapshots(ctx context.Context) (int, error) {
	if e.opts.Snapshots == nil {
		return 0, nil
	}
	infos, err := e.opts.Snapshots.List(ctx, "snapshots/")
	if err != nil {
		return 0, err
	}
	loaded := 0
	for _, info := range infos {
		parts := strings.Split(info.Key, "/")
		if len(parts) != 5 || parts[4] != snapshotRecordFile {
			continue
		}
		s, err := e.readRecord(ctx, info.Key, parts[3])
		if err != nil {
			e.log.Warn("skipping unreadable snapshot record", "key", info.Key, "err", err)
			continue
		}
		r := e.lockRegion(queryapiContext(parts[1], parts[2]))
		err = r.placeSnapshot(s, parts[3])
		e.unlock(r)
		if err != nil {
			e.log.Warn("skipping snapshot record", "key", info.Key, "err", err)
			continue
		}
		if !e.settleSnapshot(ctx, r, s) {
			continue
		}
		s.persisted = s.Status
		r.mu.Lock()
		r.snapshots[s.Name] = s
		if len(s.Tags) > 0 {
			r.tags[r.arn("snapshot", s.Name)] = s.Tags
		}
		s.Tags = nil // r.tags holds the live ones
		e.unlock(r)
		loaded++
	}
	return loaded, nil
}

// readRecord reads and checks one snapshot record found under dir.
func (e *Emulator) readRecord(ctx context.Context, key, dir string) (*snapshot, error) {
	rc, _, err := e.opts.Snapshots.Get(ctx, key)
	if og, ok := e.opts.Snapshots.(s3store.ObjectGetter); ok && errors.Is(err, s3store.ErrCorrupt) {
		// A crash between writing a record and its metadata: the record
		// itself is whole (JSON, checked below), and it is the newer one.
		e.log.Info("reading a snapshot record whose metadata a crash left behind", "key", key)
		rc, err = og.GetObject(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var s snapshot
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&s); err != nil {
		return nil, err
	}
	// Older versions stored a snapshot under its raw name.
	if s.Name == "" || dir != snapshotDir(s.Name) && dir != s.Name {
		return nil, fmt.Errorf("the record of %q does not belong under %q", s.Name, dir)
	}
	return &s, nil
}

// settleSnapshot brings a loaded record to a state no crash can leave it
// in; false means the snapshot is gone (its delete was finished).
func (e *Emulator) settleSnapshot(ctx context.Context, r *region, s *snapshot) bool {
	srcType, src, kind := s.eventSource()
	event := func(format string, args ...any) {
		r.mu.Lock()
		defer e.unlock(r)
		e.record(r, srcType, src, format, args...)
	}
	switch s.Status {
	case snapFailed:
		return true
	case snapDeleting:
		if err := e.deleteSnapshotObjects(ctx, s); err != nil {
			e.log.Warn("finishing the delete of a snapshot interrupted by a restart", "snapshot", s.Name, "err", err)
			s.Status = snapFailed
			return true
		}
		e.log.Info("finished the delete of a snapshot interrupted by a restart", "snapshot", s.Name)
		return false
	}
	// creating, available (or a status no version writes): the data decides.
	was := s.Status
	missing := e.completeShards(ctx, s)
	switch {
	case missing == nil && was == snapAvailable:
		return true
	case missing == nil:
		s.Status = snapAvailable
		e.log.Info("snapshot data was complete when a restart interrupted it: available", "snapshot", s.Name)
		event("Snapshot succeeded for snapshot with ID '%s' of %s with ID '%s' (completed at restart)", s.Name, kind, src)
	default:
		s.Status = snapFailed
		e.log.Warn("snapshot data is incomplete after a restart: failed", "snapshot", s.Name, "was", was, "err", missing)
		event("Snapshot failed for snapshot with ID '%s' of %s with ID '%s': %v", s.Name, kind, src, missing)
	}
	rec := *s
	if err := e.writeRecord(ctx, s, &rec); err != nil {
		e.log.Warn("storing a settled snapshot record", "snapshot", s.Name, "err", err)
	}
	return true
}

// completeShards checks that every RDB object of s is stored whole, filling
// in the sizes and times a crash kept from the record; the error names what
// is missing.
func (e *Emulator) completeShards(ctx context.Context, s *snapshot) error {
	store := e.rdbStore(s.Encrypted)
	for i, n := range s.Nodes {
		info, err := store.Stat(ctx, n.Key)
		if err != nil {
			if errors.Is(err, s3store.ErrNotFound) {
				return fmt.Errorf("the data of node group %s was never stored or is gone", n.NodeGroupID)
			}
			return fmt.Errorf("the data of node group %s cannot be read: %w", n.NodeGroupID, err)
		}
		if n.Created.IsZero() {
			s.Nodes[i].Size, s.Nodes[i].Created = info.Size, info.Modified.UTC()
		}
	}
	return nil
}
