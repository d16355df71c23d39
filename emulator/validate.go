package emulator

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// maxDescriptionLen is AWS's limit on the description of a replication
// group ("Maximum length is 255 characters"), applied to every description.
const maxDescriptionLen = 255

// checkLength refuses a free-text member longer than max characters; AWS
// counts characters, not bytes.
func checkLength(param string, v *string, max int) error {
	if v != nil && utf8.RuneCountInString(*v) > max {
		return invalidParameterValue("The parameter %s must be at most %d characters long.", param, max)
	}
	return nil
}

// normalizeID checks an ElastiCache identifier (replication group or cache
// cluster id) against the AWS rules and returns it lower-cased, as AWS stores
// it: 1 to maxLen characters, a letter first, then letters, digits or
// hyphens, no two consecutive hyphens and no trailing hyphen.
func normalizeID(param string, v *string, maxLen int) (string, error) {
	if v == nil || *v == "" {
		return "", mustNotBeBlank(param)
	}
	id := strings.ToLower(*v)
	if len(id) > maxLen {
		return "", invalidParameterValue("The parameter %s must be at most %d characters long.", param, maxLen)
	}
	if id[0] < 'a' || id[0] > 'z' {
		return "", invalidParameterValue("The parameter %s must begin with a letter.", param)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", invalidParameterValue("The parameter %s must contain only ASCII letters, digits and hyphens.", param)
		}
	}
	if strings.Contains(id, "--") {
		return "", invalidParameterValue("The parameter %s cannot contain two consecutive hyphens.", param)
	}
	if strings.HasSuffix(id, "-") {
		return "", invalidParameterValue("The parameter %s cannot end with a hyphen.", param)
	}
	return id, nil
}

// lookupID normalizes an identifier used to find an existing resource; an
// empty one is reported like AWS does for a missing value.
func lookupID(param string, v *string) (string, error) {
	if v == nil || *v == "" {
		return "", mustNotBeBlank(param)
	}
	return strings.ToLower(*v), nil
}

// checkTags validates tags the way AWS does: at most 50, non-empty keys up
// to 128 characters, values up to 256 (characters, not bytes).
func checkTags(tags []types.Tag) error {
	if len(tags) > 50 {
		return tagQuotaPerResourceExceeded(50)
	}
	for _, t := range tags {
		if t.Key == nil || *t.Key == "" {
			return invalidParameterValue("Tag keys must not be empty.")
		}
		if utf8.RuneCountInString(*t.Key) > 128 {
			return invalidParameterValue("Tag key %q is longer than 128 characters.", *t.Key)
		}
		if t.Value != nil && utf8.RuneCountInString(*t.Value) > 256 {
			return invalidParameterValue("The value of tag %q is longer than 256 characters.", *t.Key)
		}
	}
	return nil
}

// cluster finds a cache cluster that must be in one of states (available
// when none are given): CacheClusterNotFound or InvalidCacheClusterState
// otherwise. The caller holds r.mu.
func (r *region) cluster(id string, states ...string) (*cacheCluster, error) {
	cl, ok := r.clusters[id]
	if !ok {
		return nil, cacheClusterNotFound(id)
	}
	if !inStates(cl.status, states) {
		return nil, invalidClusterState("Cache cluster %s is not in available state (it is %s).", id, cl.status)
	}
	return cl, nil
}

// group is cluster's twin for replication groups.
func (r *region) group(id string, states ...string) (*replicationGroup, error) {
	g, ok := r.groups[id]
	if !ok {
		return nil, replicationGroupNotFound(id)
	}
	if !inStates(g.status, states) {
		return nil, invalidGroupState("Replication group %s is not in available state (it is %s).", id, g.status)
	}
	return g, nil
}

func inStates(status string, states []string) bool {
	if len(states) == 0 {
		return status == statusAvailable
	}
	return slices.Contains(states, status)
}
