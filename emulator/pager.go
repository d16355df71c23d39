package emulator

import (
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Every Describe pages the same way, here: MaxRecords between 20 and 100
// (100 when unset), and a Marker that names where the next page starts.

// checkMaxRecords validates the paging size of Describe* calls (20–100,
// default 100).
func checkMaxRecords(v *int32) (int, error) {
	if v == nil {
		return 100, nil
	}
	if *v < 20 || *v > 100 {
		return 0, invalidParameterValue("The parameter MaxRecords must be between 20 and 100.")
	}
	return int(*v), nil
}

// describeKeys selects what a Describe call lists: just id when it is set
// (notFound when m lacks it), otherwise every key of m that keep accepts
// (nil keep accepts all), sorted so Marker paging is stable.
func describeKeys[T any](m map[string]T, id string, notFound func(string) error, keep func(T) bool) ([]string, error) {
	if id != "" {
		if _, ok := m[id]; !ok {
			return nil, notFound(id)
		}
		return []string{id}, nil
	}
	var keys []string
	for k, v := range m {
		if keep == nil || keep(v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// page returns the page of sorted keys after marker; see pageAfter.
func page(keys []string, marker *string, max int) ([]string, *string) {
	return pageAfter(keys, func(k string) string { return k }, marker, max)
}

// pageAfter pages items sorted by key: the page starts after the items whose
// key is at most marker (at the first item when marker is empty), and the
// marker of the next page is the key of this page's last item. A key as
// marker, rather than a position, keeps the next page right when items are
// added or removed between the calls.
func pageAfter[T any](items []T, key func(T) string, marker *string, max int) ([]T, *string) {
	start := 0
	if marker != nil && *marker != "" {
		for start < len(items) && key(items[start]) <= *marker {
			start++
		}
	}
	return pageFrom(items, start, max, func(end int) string { return key(items[end-1]) })
}

// pageFrom returns at most max items from position start, and the marker of
// the next page, next(end) with end the position after this page; nil when
// this page is the last. The page is a copy and never nil, so an empty page
// is answered as an empty list.
func pageFrom[T any](items []T, start, max int, next func(end int) string) ([]T, *string) {
	start = min(start, len(items))
	end := min(start+max, len(items))
	var marker *string
	if end < len(items) {
		marker = aws.String(next(end))
	}
	return append([]T{}, items[start:end]...), marker
}
