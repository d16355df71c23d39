package emulator

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// resolveARN checks that arn names a resource the emulator owns in the
// request's account and region, answering the resource's own NotFound fault
// when it does not exist. The caller holds r.mu.
func (e *Emulator) resolveARN(r *region, arn *string) (string, error) {
	if arn == nil || *arn == "" {
		return "", mustNotBeBlank("ResourceName")
	}
	parts := strings.SplitN(*arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "elasticache" {
		return "", invalidARN(*arn, "is not valid")
	}
	if parts[3] != r.region || parts[4] != r.account {
		return "", invalidARN(*arn, "does not belong to this account and region")
	}
	kind, name := parts[5], parts[6]
	switch kind {
	case "cluster":
		if _, ok := r.clusters[name]; !ok {
			return "", cacheClusterNotFound(name)
		}
	case "replicationgroup":
		if _, ok := r.groups[name]; !ok {
			return "", replicationGroupNotFound(name)
		}
	case "parametergroup":
		if _, ok := r.paramGroups[name]; !ok {
			return "", paramGroupNotFound(name)
		}
	case "subnetgroup":
		if _, ok := r.subnetGroups[name]; !ok {
			return "", subnetGroupNotFound(name)
		}
	case "snapshot":
		if _, ok := r.snapshots[name]; !ok {
			return "", snapshotNotFound(name)
		}
	case "user":
		if _, ok := r.users[name]; !ok {
			return "", userNotFound(name)
		}
	case "usergroup":
		if _, ok := r.userGroups[name]; !ok {
			return "", userGroupNotFound(name)
		}
	default:
		return "", invalidARN(*arn, "does not name a taggable resource")
	}
	return *arn, nil
}

// AddTagsToResource adds or overwrites tags on a resource.
func (e *Emulator) AddTagsToResource(ctx context.Context, in *elasticache.AddTagsToResourceInput) (*elasticache.AddTagsToResourceOutput, error) {
	tags, err := e.changeTags(ctx, in.ResourceName, func(_ string, old []types.Tag) ([]types.Tag, error) {
		merged := mergeTags(old, in.Tags)
		if err := checkTags(merged); err != nil {
			return nil, err
		}
		return merged, nil
	})
	if err != nil {
		return nil, err
	}
	return &elasticache.AddTagsToResourceOutput{TagList: tags}, nil
}

// changeTags sets the tags of the resource name designates to what change
// makes of its current ones. A snapshot's tags are stored in its record
// before the answer, so they outlive a restart as the snapshot does; if
// that fails the old tags are put back.
func (e *Emulator) changeTags(ctx context.Context, name *string, change func(arn string, old []types.Tag) ([]types.Tag, error)) ([]types.Tag, error) {
	r := e.lockRegion(ctx)
	arn, err := e.resolveARN(r, name)
	if err != nil {
		e.unlock(r)
		return nil, err
	}
	old := r.tags[arn]
	tags, err := change(arn, cloneTags(old))
	if err != nil {
		e.unlock(r)
		return nil, err
	}
	r.tags[arn] = tags
	var snap *snapshot
	if parts := strings.SplitN(arn, ":", 7); parts[5] == "snapshot" {
		snap = r.snapshots[parts[6]]
	}
	e.unlock(r)
	if snap != nil {
		if err := e.rewriteRecord(ctx, r, snap); err != nil {
			r.mu.Lock()
			r.tags[arn] = old
			e.unlock(r)
			return nil, fmt.Errorf("storing the tags of snapshot %s: %w", snap.Name, err)
		}
	}
	return cloneTags(tags), nil
}

// ListTagsForResource lists a resource's tags.
func (e *Emulator) ListTagsForResource(ctx context.Context, in *elasticache.ListTagsForResourceInput) (*elasticache.ListTagsForResourceOutput, error) {
	r := e.rlockRegion(ctx)
	defer r.mu.RUnlock() // read only: nothing to persist
	arn, err := e.resolveARN(r, in.ResourceName)
	if err != nil {
		return nil, err
	}
	return &elasticache.ListTagsForResourceOutput{TagList: cloneTags(r.tags[arn])}, nil
}

// RemoveTagsFromResource removes tags by key; a key that is not there is a
// TagNotFound fault, as on AWS.
func (e *Emulator) RemoveTagsFromResource(ctx context.Context, in *elasticache.RemoveTagsFromResourceInput) (*elasticache.RemoveTagsFromResourceOutput, error) {
	tags, err := e.changeTags(ctx, in.ResourceName, func(arn string, kept []types.Tag) ([]types.Tag, error) {
		for _, k := range in.TagKeys {
			i := tagIndex(kept, k)
			if i < 0 {
				return nil, tagNotFound(k, arn)
			}
			kept = append(kept[:i], kept[i+1:]...)
		}
		return kept, nil
	})
	if err != nil {
		return nil, err
	}
	return &elasticache.RemoveTagsFromResourceOutput{TagList: tags}, nil
}

func tagIndex(tags []types.Tag, key string) int {
	for i, t := range tags {
		if aws.ToString(t.Key) == key {
			return i
		}
	}
	return -1
}

// mergeTags returns base with add applied (same key overwrites).
func mergeTags(base, add []types.Tag) []types.Tag {
	out := cloneTags(base)
	for _, t := range add {
		t = types.Tag{Key: aws.String(aws.ToString(t.Key)), Value: aws.String(aws.ToString(t.Value))}
		if i := tagIndex(out, *t.Key); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// cloneTags copies a tag list; never nil, so responses carry an empty list.
func cloneTags(tags []types.Tag) []types.Tag {
	return append([]types.Tag{}, tags...)
}
