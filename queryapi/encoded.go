package queryapi

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// A handler that answers the same items again and again (a Describe that
// clients poll, whose resources rarely change) may keep each item's
// encoding and hand it back with its typed output: the answer then costs a
// copy of bytes instead of a walk of the schema per item. The bytes come
// from this codec (EncodeListItem), the way it encodes the item inside the
// list, so the answer is the one the typed items would give; the typed
// items stay set too, for Go callers of the handler, and their count is
// checked against the encoded ones.

// answeredKey marks the context of a handler called by the Service.
type answeredKey struct{}

// Answered reports whether the handler called with ctx is answering a
// request of the Service, whose output is encoded on the wire, rather than
// a Go caller that reads the typed output: with UseEncodedList, the typed
// items may then be left out.
func Answered(ctx context.Context) bool {
	answered, _ := ctx.Value(answeredKey{}).(bool)
	return answered
}

// encodedListKey is the output metadata key of an encodedList.
type encodedListKey struct{}

// encodedList is a list member of an output with its items encoded.
type encodedList struct {
	schema *smithy.Schema // the output's list member
	items  [][]byte
}

// size is the length of the items together.
func (l *encodedList) size() int {
	n := 0
	for _, item := range l.items {
		n += len(item)
	}
	return n
}

// EncodeListItem encodes item as one element of the list member list of an
// output (e.g. schemas.ReplicationGroupMessage_ReplicationGroups), for
// UseEncodedList.
func EncodeListItem(list *smithy.Schema, item smithy.Serializable) ([]byte, error) {
	if list == nil || list.ListMember() == nil {
		return nil, errors.New("queryapi: EncodeListItem needs a list member's schema")
	}
	w := newXMLWriter()
	ser := &xmlSerializer{w: w}
	ser.push(xmlFrame{kind: frameList, schema: list, itemName: listItemName(list)})
	item.Serialize(ser)
	if len(ser.stack) != 1 {
		w.fail(fmt.Errorf("queryapi: list item left %d open elements", len(ser.stack)-1))
	}
	return w.bytes()
}

// UseEncodedList makes the answer of the output whose ResultMetadata is md
// write items, encoded by EncodeListItem for the same list member, as that
// member's elements instead of encoding its typed items. The typed list
// must be set all the same (non-nil): to the same items, in order, or, in
// an Answered call, to an empty list; the answer fails with an internal
// error otherwise.
func UseEncodedList(md *middleware.Metadata, list *smithy.Schema, items [][]byte) {
	md.Set(encodedListKey{}, &encodedList{schema: list, items: items})
}

// encodedListOf returns the encoded list an output carries, or nil.
func encodedListOf(out any) *encodedList {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("ResultMetadata")
	if !f.IsValid() || f.Type() != reflect.TypeFor[middleware.Metadata]() {
		return nil
	}
	l, _ := f.Interface().(middleware.Metadata).Get(encodedListKey{}).(*encodedList)
	return l
}

// writeEncodedList writes the encoded items of the list the serializer is
// opening, and makes it skip the typed items the output then walks (see
// skipping); CloseList checks their count.
func (s *xmlSerializer) writeEncodedList() {
	if s.w.err == nil {
		s.w.err = s.w.enc.Flush() // the raw bytes go after what the encoder holds
	}
	if s.w.err != nil {
		return
	}
	for _, item := range s.encoded.items {
		s.w.buf.Write(item)
	}
	s.skipping, s.skipped = 1, 0
}

// skip accounts for an element the typed output opens while its encoded
// items are written instead: it reports whether the serializer skips it.
func (s *xmlSerializer) skip() bool {
	if s.skipping == 0 {
		return false
	}
	if s.skipping == 1 {
		s.skipped++ // an item of the list
	}
	return true
}

// skipOpen is skip for an element that is closed later (a struct, list,
// map or union).
func (s *xmlSerializer) skipOpen() bool {
	if !s.skip() {
		return false
	}
	s.skipping++
	return true
}

// skipClose reports whether a close belongs to a skipped element; the
// close of the encoded list itself is not skipped, and checks the count.
func (s *xmlSerializer) skipClose() bool {
	switch s.skipping {
	case 0:
		return false
	case 1:
		s.skipping = 0
		if n := len(s.encoded.items); s.skipped != n && s.skipped != 0 {
			s.w.fail(fmt.Errorf("queryapi: %d encoded items answered for %d typed ones", n, s.skipped))
		}
		s.encoded, s.encodedDone = nil, true
		return false
	}
	s.skipping--
	return true
}
