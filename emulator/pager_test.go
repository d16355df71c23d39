package emulator

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// pageParams pages after a parameter name, which only works on a list
// sorted by name.
func TestParamCatalogSortedByName(t *testing.T) {
	for family, defs := range paramCatalogs() {
		if !slices.IsSortedFunc(defs, func(a, b paramDef) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("the parameters of %s are not sorted by name", family)
		}
	}
}

// TestParamsPageByName walks every page of a family's defaults, three at a
// time (MaxRecords is at least 20), and
// expects each parameter exactly once, in order.
func TestParamsPageByName(t *testing.T) {
	pg := &paramGroup{name: "default." + engineCatalog[0].Family, family: engineCatalog[0].Family}
	paramCatalog := familyParams(pg.family)
	var got []string
	var marker *string
	for pages := 0; ; pages++ {
		if pages > len(paramCatalog) {
			t.Fatal("paging does not end")
		}
		params, next := pageParams(pg.describeParams(""), marker, 3)
		if len(params) > 3 {
			t.Fatalf("page of %d parameters, max 3", len(params))
		}
		for _, p := range params {
			got = append(got, aws.ToString(p.ParameterName))
		}
		if marker = next; marker == nil {
			break
		}
	}
	var want []string
	for _, p := range paramCatalog {
		want = append(want, p.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages listed %v, want %v", got, want)
	}
}

func TestPageFrom(t *testing.T) {
	items := []int{10, 11, 12, 13, 14}
	pos := func(end int) string { return string(rune('0' + end)) }
	for _, tc := range []struct {
		start, max int
		want       []int
		next       string // "" for none
	}{
		{0, 2, []int{10, 11}, "2"},
		{2, 2, []int{12, 13}, "4"},
		{4, 2, []int{14}, ""},
		{5, 2, []int{}, ""},
		{9, 2, []int{}, ""},
		{0, 5, []int{10, 11, 12, 13, 14}, ""},
	} {
		got, next := pageFrom(items, tc.start, tc.max, pos)
		if got == nil || !slices.Equal(got, tc.want) || aws.ToString(next) != tc.next {
			t.Errorf("pageFrom(start %d, max %d) = %v, %q; want %v, %q", tc.start, tc.max, got, aws.ToString(next), tc.want, tc.next)
		}
	}
	var none []types.Event
	if got, next := pageFrom(none, 0, 20, func(int) string { return "x" }); got == nil || len(got) != 0 || next != nil {
		t.Errorf("empty list paged as %v, %v; want an empty, non-nil page", got, next)
	}
}
