package queryapi

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/schemas"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// encodedCase is an output whose root list member is answered from
// encoded items.
type encodedCase struct {
	op    string
	out   func() any // a fully populated output
	list  *smithy.Schema
	field string // the list's field in the output
	md    func(out any) *middleware.Metadata
}

var encodedCases = []encodedCase{
	{"DescribeReplicationGroups", func() any { return filled(reflect.TypeFor[elasticache.DescribeReplicationGroupsOutput]()) },
		schemas.ReplicationGroupMessage_ReplicationGroups, "ReplicationGroups",
		func(out any) *middleware.Metadata {
			return &out.(*elasticache.DescribeReplicationGroupsOutput).ResultMetadata
		}},
	{"DescribeCacheClusters", func() any { return filled(reflect.TypeFor[elasticache.DescribeCacheClustersOutput]()) },
		schemas.CacheClusterMessage_CacheClusters, "CacheClusters",
		func(out any) *middleware.Metadata {
			return &out.(*elasticache.DescribeCacheClustersOutput).ResultMetadata
		}},
}

// encodeWithItems encodes out with its list's items encoded one by one by
// EncodeListItem, the first n of them (all when n < 0).
func encodeWithItems(t *testing.T, c encodedCase, out any, n int) ([]byte, error) {
	t.Helper()
	encoded := encodeItems(t, c, out)
	if n >= 0 {
		encoded = encoded[:n]
	}
	UseEncodedList(c.md(out), c.list, encoded)
	return encodeResult(c.op, out.(smithy.Serializable), "req-1")
}

// encodeItems encodes each item of out's list on its own (EncodeListItem).
func encodeItems(t *testing.T, c encodedCase, out any) [][]byte {
	t.Helper()
	items := reflect.ValueOf(out).Elem().FieldByName(c.field)
	var encoded [][]byte
	for i := range items.Len() {
		item, err := EncodeListItem(c.list, items.Index(i).Addr().Interface().(smithy.Serializable))
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, bytes.Clone(item))
	}
	return encoded
}

// TestEncodedListSameBytes: an answer made of encoded items is the very
// answer of the typed items, for fully populated outputs (nested lists,
// maps, timestamps, escaped text).
func TestEncodedListSameBytes(t *testing.T) {
	for _, c := range encodedCases {
		t.Run(c.op, func(t *testing.T) {
			out := c.out()
			items := reflect.ValueOf(out).Elem().FieldByName(c.field)
			if items.Len() == 0 {
				t.Fatal("the filled output has no items")
			}
			// Text that needs escaping, in an item.
			if f := items.Index(0).FieldByName("ARN"); f.IsValid() {
				s := `a<b>&"c"` + "\t'"
				f.Set(reflect.ValueOf(&s))
			}
			want, err := encodeResult(c.op, out.(smithy.Serializable), "req-1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeWithItems(t, c, out, -1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded items answer\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestEncodedListTypedLeftOut: an Answered handler may leave the typed
// items out (an empty list); the answer is the same.
func TestEncodedListTypedLeftOut(t *testing.T) {
	c := encodedCases[0]
	out := c.out()
	want, err := encodeResult(c.op, out.(smithy.Serializable), "req-1")
	if err != nil {
		t.Fatal(err)
	}
	encoded := encodeItems(t, c, out)
	items := reflect.ValueOf(out).Elem().FieldByName(c.field)
	items.Set(reflect.MakeSlice(items.Type(), 0, 0))
	UseEncodedList(c.md(out), c.list, encoded)
	got, err := encodeResult(c.op, out.(smithy.Serializable), "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("answer without typed items\n%s\nwant\n%s", got, want)
	}
}

// TestEncodedListCountChecked: encoded items that do not match the typed
// ones in number fail the answer instead of answering something else.
func TestEncodedListCountChecked(t *testing.T) {
	c := encodedCases[0]
	out := c.out()
	if _, err := encodeWithItems(t, c, out, 1); err == nil || !strings.Contains(err.Error(), "encoded items") {
		t.Fatalf("err = %v, want a count mismatch", err)
	}
	// Encoded items for a list the output does not write (nil typed list).
	out = c.out()
	UseEncodedList(c.md(out), c.list, [][]byte{[]byte("<ReplicationGroup/>")})
	reflect.ValueOf(out).Elem().FieldByName(c.field).SetZero()
	if _, err := encodeResult(c.op, out.(smithy.Serializable), "req-1"); err == nil {
		t.Fatal("encoded items of an unwritten list were accepted")
	}
}
