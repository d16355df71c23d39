package emulator

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/s3store"
)

// CopySnapshot copies a snapshot under a new name, or with TargetBucket
// exports its RDB to an S3 bucket as <TargetSnapshotName>-<node group>.rdb,
// a plain RDB any Redis can load (decrypted if the snapshot is encrypted).
// A copy's record is stored as "creating" before the answer and says
// "available" once every object is copied, as a new snapshot's does.
func (e *Emulator) CopySnapshot(ctx context.Context, in *elasticache.CopySnapshotInput) (*elasticache.CopySnapshotOutput, error) {
	srcName, target := aws.ToString(in.SourceSnapshotName), aws.ToString(in.TargetSnapshotName)
	if srcName == "" {
		return nil, mustNotBeBlank("SourceSnapshotName")
	}
	if target == "" {
		return nil, mustNotBeBlank("TargetSnapshotName")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	bucket := aws.ToString(in.TargetBucket)
	var dest s3store.Store
	if bucket != "" {
		if e.opts.Buckets == nil {
			return nil, invalidParameterValue("TargetBucket needs an S3 endpoint: start elasticache-local with --s3-endpoint.")
		}
		var err error
		if dest, err = e.opts.Buckets(bucket); err != nil {
			return nil, invalidParameterValue("Cannot use bucket %s: %v", bucket, err)
		}
	}
	r := e.lockRegion(ctx)
	src, ok := r.snapshots[srcName]
	if !ok {
		e.unlock(r)
		return nil, snapshotNotFound(srcName)
	}
	if src.Status != snapAvailable {
		e.unlock(r)
		return nil, invalidSnapshotState("Snapshot %s is not in available state (it is %s).", srcName, src.Status)
	}
	if dest != nil {
		defer e.unlock(r)
		return e.exportSnapshot(r, src, dest, bucket, target)
	}
	name, err := e.checkSnapshotName(r, "TargetSnapshotName", in.TargetSnapshotName)
	if err != nil {
		e.unlock(r)
		return nil, err
	}
	cp := *src
	cp.Name, cp.Source, cp.Status, cp.Created = name, snapManual, snapCreating, e.opts.Now().UTC()
	if k := aws.ToString(in.KmsKeyId); k != "" {
		cp.Encrypted, cp.KmsKeyID = true, k
	}
	cp.Nodes = append([]snapshotShard{}, src.Nodes...)
	if err := r.placeSnapshot(&cp, snapshotDir(name)); err != nil {
		e.unlock(r)
		return nil, err
	}
	s := &cp
	r.snapshots[name] = s
	if len(in.Tags) > 0 {
		r.tags[r.arn("snapshot", name)] = mergeTags(nil, in.Tags)
	}
	src.Status = snapCopying
	out := &elasticache.CopySnapshotOutput{Snapshot: ptr(s.describe(r, false))}
	e.unlock(r)

	if err := e.storeRecord(ctx, r, s, snapCreating, nil); err != nil {
		r.mu.Lock()
		defer e.unlock(r)
		if r.snapshots[name] == s {
			delete(r.snapshots, name)
			delete(r.tags, r.arn("snapshot", name))
		}
		src.Status = snapAvailable
		return nil, fmt.Errorf("storing the record of snapshot %s: %w", name, err)
	}
	e.runOperation(r, opCopySnapshot, s.Name, nil, func(ctx context.Context) { e.copySnapshot(ctx, r, src, s) })
	return out, nil
}

// copySnapshot copies src's objects to s (listed "creating", src
// "copying"), then records s as available.
func (e *Emulator) copySnapshot(ctx context.Context, r *region, src, s *snapshot) {
	srcStore, dstStore := e.rdbStore(src.Encrypted), e.rdbStore(s.Encrypted)
	var err error
	for i, n := range src.Nodes {
		var meta map[string]string
		if s.Encrypted {
			meta = map[string]string{s3store.MetaKMSKeyID: s.KmsKeyID}
		}
		if err = copyObject(ctx, srcStore, n.Key, dstStore, s.Nodes[i].Key, meta); err != nil {
			break
		}
	}
	err = e.recordOutcome(ctx, r, s, err, nil)
	r.mu.Lock()
	defer e.unlock(r)
	src.Status = snapAvailable
	srcType, srcID, _ := src.eventSource()
	if err != nil {
		s.Status = snapFailed
		e.log.Error("snapshot copy failed", "source", src.Name, "target", s.Name, "err", err)
		e.record(r, srcType, srcID, "Copy of snapshot '%s' to '%s' failed: %v", src.Name, s.Name, err)
		return
	}
	s.Status = snapAvailable
}

// exportSnapshot starts the export of src to a bucket; the caller holds
// r.mu. The object keys are checked before the answer, so a name the bucket
// cannot hold is refused rather than failing later.
func (e *Emulator) exportSnapshot(r *region, src *snapshot, dest s3store.Store, bucket, target string) (*elasticache.CopySnapshotOutput, error) {
	keys := make([]string, len(src.Nodes))
	for i, n := range src.Nodes {
		keys[i] = target + "-" + n.NodeGroupID + ".rdb"
		if err := s3store.ValidateKey(keys[i]); err != nil {
			return nil, invalidParameterValue("TargetSnapshotName %s cannot name an object in bucket %s: %v", target, bucket, err)
		}
	}
	srcStore := e.rdbStore(src.Encrypted)
	src.Status = snapCopying
	out := &elasticache.CopySnapshotOutput{Snapshot: ptr(src.describe(r, false))}
	e.runOperation(r, opExportSnapshot, src.Name, map[string]string{"bucket": bucket, "target": target}, func(ctx context.Context) {
		var err error
		for i, n := range src.Nodes {
			if err = copyObject(ctx, srcStore, n.Key, dest, keys[i], nil); err != nil {
				break
			}
		}
		r.mu.Lock()
		defer e.unlock(r)
		src.Status = snapAvailable
		srcType, srcID, _ := src.eventSource()
		if err != nil {
			e.log.Error("snapshot export failed", "snapshot", src.Name, "bucket", bucket, "err", err)
			e.record(r, srcType, srcID, "Export of snapshot '%s' to bucket '%s' failed: %v", src.Name, bucket, err)
			return
		}
		e.record(r, srcType, srcID, "Export of snapshot '%s' to bucket '%s' completed", src.Name, bucket)
	})
	return out, nil
}

// sourceID names what a snapshot was taken of, for events.
func (s *snapshot) sourceID() string {
	_, id, _ := s.eventSource()
	return id
}

// copyObject streams one object between stores (decrypting and
// re-encrypting on the way where the stores do).
func copyObject(ctx context.Context, from s3store.Store, fromKey string, to s3store.Store, toKey string, meta map[string]string) error {
	rc, info, err := from.Get(ctx, fromKey)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = to.Put(ctx, toKey, rc, info.Size, meta)
	return err
}

// rdbSeed opens the RDB a new node starts from.
type rdbSeed func(ctx context.Context) (io.ReadCloser, error)

// resolveSeed validates SnapshotName / SnapshotArns of a create request and
// returns where the primary's data comes from (nil when neither is given)
// and the snapshot, if any, whose settings are defaults. The caller holds
// r.mu.
func (e *Emulator) resolveSeed(r *region, name *string, arns []string) (rdbSeed, *snapshot, error) {
	n := aws.ToString(name)
	switch {
	case n != "" && len(arns) > 0:
		return nil, nil, invalidParameterCombination("Specify either SnapshotName or SnapshotArns, not both.")
	case n != "":
		s, ok := r.snapshots[n]
		if !ok {
			return nil, nil, snapshotNotFound(n)
		}
		if s.Status != snapAvailable {
			return nil, nil, invalidSnapshotState("Snapshot %s is not in available state (it is %s).", n, s.Status)
		}
		if s.ClusterMode {
			// Its data is spread over the shards' RDBs; AWS restores such a
			// snapshot into a cluster-mode-enabled group only.
			return nil, nil, invalidParameterCombination("Snapshot %s is of a cluster-mode-enabled replication group; restore it into a replication group with cluster mode enabled (ClusterMode enabled, or NumNodeGroups / NodeGroupConfiguration).", n)
		}
		store, key := e.rdbStore(s.Encrypted), s.Nodes[0].Key
		return func(ctx context.Context) (io.ReadCloser, error) {
			rc, _, err := store.Get(ctx, key)
			return rc, err
		}, s, nil
	case len(arns) > 0:
		if len(arns) > 1 {
			return nil, nil, invalidParameterValue("A replication group with cluster mode disabled is seeded from exactly one RDB file; got %d SnapshotArns.", len(arns))
		}
		bucket, key, err := s3store.ParseS3ARN(arns[0])
		if err != nil {
			return nil, nil, invalidParameterValue("Invalid SnapshotArns value %s: %v", arns[0], err)
		}
		if e.opts.Buckets == nil {
			return nil, nil, invalidParameterValue("SnapshotArns needs an S3 endpoint: start elasticache-local with --s3-endpoint.")
		}
		return func(ctx context.Context) (io.ReadCloser, error) {
			st, err := e.opts.Buckets(bucket)
			if err != nil {
				return nil, err
			}
			rc, _, err := st.Get(ctx, key)
			return rc, err
		}, nil, nil
	}
	return nil, nil, nil
}

// finalSnapshot validates FinalSnapshotIdentifier of a delete and registers
// the snapshot, taken from the primary (the freshest data) before the nodes
// stop; nil when none was asked for. The caller holds r.mu.
func (e *Emulator) finalSnapshot(r *region, name *string, groupID, clusterID string) (*snapshotJob, error) {
	if aws.ToString(name) == "" {
		return nil, nil
	}
	n, err := e.checkSnapshotName(r, "FinalSnapshotIdentifier", name)
	if err != nil {
		return nil, err
	}
	s, srcs, err := e.snapshotSourceOf(r, n, groupID, clusterID, false)
	if err != nil {
		return nil, err
	}
	r.snapshots[n] = s
	job := r.snapshotJob(s, srcs)
	return &job, nil
}

// restoreDefaults fills what a create request leaves out with the
// snapshot's engine, version and node type, as a restore does on AWS. A nil
// snapshot (no restore) changes nothing.
func (s *snapshot) restoreDefaults(engineName, version *string, nodeType string) (*string, *string, string) {
	if s == nil {
		return engineName, version, nodeType
	}
	if aws.ToString(engineName) == "" {
		engineName = aws.String(s.Engine.Engine)
	}
	if aws.ToString(version) == "" {
		// The version as the catalog lists it: AWS refuses a patch
		// version ("7.1.0") of a major.minor release.
		version = aws.String(s.Engine.Version)
	}
	if nodeType == "" {
		nodeType = s.NodeType
	}
	return engineName, version, nodeType
}

// TickBackups takes the automated daily backups that are due and prunes
// the ones past their retention. A background loop calls it every 30 s;
// tests with an injected clock call it directly.
func (e *Emulator) TickBackups(ctx context.Context) {
	if e.opts.Snapshots == nil {
		return
	}
	now := e.opts.Now().UTC()
	var jobs []snapshotJob
	var regions []*region
	var prune []*snapshot
	var pruneIn []*region
	for _, r := range e.allRegions() {
		r.mu.Lock()
		type source struct {
			groupID, clusterID string
			settings           clusterSettings
		}
		var sources []source
		for _, g := range r.groups {
			if g.status == statusAvailable && g.settings.snapshotRetention > 0 {
				sources = append(sources, source{groupID: g.id, settings: g.settings})
			}
		}
		for _, cl := range r.clusters {
			if cl.groupID == "" && cl.status == statusAvailable && cl.settings.snapshotRetention > 0 {
				sources = append(sources, source{clusterID: cl.id, settings: cl.settings})
			}
		}
		for _, src := range sources {
			id := src.groupID + src.clusterID
			var latest time.Time
			for _, s := range r.snapshots {
				if s.Source != snapAutomated || s.sourceID() != id {
					continue
				}
				if now.Sub(s.Created) >= time.Duration(src.settings.snapshotRetention)*24*time.Hour && s.Status == snapAvailable {
					s.Status = snapDeleting
					prune, pruneIn = append(prune, s), append(pruneIn, r)
				} else if s.Created.After(latest) {
					latest = s.Created
				}
			}
			if !inWindow(now, src.settings.snapshotWindow) || now.Sub(latest) < 23*time.Hour {
				continue
			}
			name := "automatic." + id + "-" + now.Format("2006-01-02-15-04")
			if _, taken := r.snapshots[name]; taken {
				continue
			}
			s, srcs, err := e.snapshotSourceOf(r, name, src.groupID, src.clusterID, true)
			if err != nil {
				continue
			}
			s.Source = snapAutomated
			r.snapshots[name] = s
			e.markSnapshotting(r, s, true)
			jobs, regions = append(jobs, r.snapshotJob(s, srcs)), append(regions, r)
		}
		e.unlock(r)
	}
	// The ticker's own goroutine does the work, one after the other, each
	// recorded as an operation of its scope while it runs.
	for i, s := range prune {
		e.runOperationHere(ctx, pruneIn[i], opDeleteSnapshot, s.Name, func(ctx context.Context) { e.removeSnapshot(ctx, pruneIn[i], s, snapAvailable) })
	}
	for i, job := range jobs {
		e.runOperationHere(ctx, regions[i], opSnapshot, job.s.Name, func(ctx context.Context) { e.takeSnapshot(ctx, regions[i], job) })
	}
}

// inWindow reports whether now (UTC) falls in a daily "hh:mm-hh:mm"
// window, which may wrap past midnight.
func inWindow(now time.Time, window string) bool {
	start, end, ok := strings.Cut(window, "-")
	if !ok {
		return false
	}
	s, e := minuteOfDay(start), minuteOfDay(end)
	if s < 0 || e < 0 {
		return false
	}
	m := now.Hour()*60 + now.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e
}

func minuteOfDay(hhmm string) int {
	h, m, ok := strings.Cut(hhmm, ":")
	if !ok {
		return -1
	}
	hi, err1 := strconv.Atoi(h)
	mi, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil {
		return -1
	}
	return hi*60 + mi
}

// deleteAutomatedSnapshots removes the automated backups of a deleted
// source, as AWS does; manual ones stay. The caller holds r.mu.
func (e *Emulator) deleteAutomatedSnapshots(r *region, sourceID string) {
	for _, s := range r.snapshots {
		if s.Source == snapAutomated && s.sourceID() == sourceID && s.Status == snapAvailable {
			s.Status = snapDeleting
			e.runOperation(r, opDeleteSnapshot, s.Name, nil, func(ctx context.Context) { e.removeSnapshot(ctx, r, s, snapAvailable) })
		}
	}
}
