package queryapi

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	smithy "github.com/aws/smithy-go"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/aws/smithy-go/traits"
)

// paramNode is one segment of a dotted query key. The query protocol
// flattens nested shapes into keys such as
//
//	NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaCount=2
//
// so the flat parameters are first folded into a tree keyed by segment (only
// keys of the input; see buildParamTree) and the tree is then walked
// alongside the input schema.
type paramNode struct {
	value    string
	hasValue bool
	children map[string]*paramNode
}

func (n *paramNode) child(name string) *paramNode {
	if n == nil {
		return nil
	}
	return n.children[name]
}

// invalidValue reports a parameter whose value cannot be converted to the
// modelled type. AWS Query services answer InvalidParameterValue for this;
// the code matches the SDK's modelled InvalidParameterValueException, so a
// client sees the same typed error it would get from AWS.
func invalidValue(path, value, want string) *Error {
	return &Error{
		Code:       "InvalidParameterValue",
		HTTPStatus: http.StatusBadRequest,
		Message:    fmt.Sprintf("Value '%s' for parameter %s is invalid: %s.", shown(value), path, want),
	}
}

// shown is a client's value as an error message quotes it: cut short, so
// a huge value does not make a huge error, and valid UTF-8.
func shown(value string) string {
	const maxShown = 128
	if len(value) > maxShown {
		value = value[:maxShown] + "..."
	}
	return strings.ToValidUTF8(value, "\uFFFD")
}

// codecError reports a mismatch between a schema and the Go type it is
// decoded into. It means the codec does not understand some SDK shape, not
// that the client sent something wrong, so it is a 500.
func codecError(path string, format string, args ...any) *Error {
	return &Error{
		Code:       "InternalFailure",
		HTTPStatus: http.StatusInternalServerError,
		Receiver:   true,
		Message:    fmt.Sprintf("cannot decode parameter %s: %s", path, fmt.Sprintf(format, args...)),
	}
}

// decodeInput decodes the parameter tree into a new value of op's input
// type and returns a pointer to it. It then checks op's required members.
func decodeInput(op *operation, root *paramNode) (any, error) {
	in := reflect.New(op.inputType)
	if err := decodeStruct(root, op.inputSchema, in.Elem(), ""); err != nil {
		return nil, err
	}
	for _, name := range op.required {
		if !memberSet(in.Elem(), name, root.child(name)) {
			return nil, MissingParameter(name)
		}
	}
	return in.Interface(), nil
}

// memberSet reports whether a required member made it into the decoded
// input. Pointers, slices and maps are set iff non-nil (an empty list sent
// as "Key=" counts as present); other kinds cannot tell "absent" from "zero"
// so presence of the key on the wire decides.
func memberSet(v reflect.Value, name string, n *paramNode) bool {
	f := fieldByMember(v, name)
	if !f.IsValid() {
		return n != nil
	}
	switch f.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return !f.IsNil()
	case reflect.String:
		return f.Len() > 0
	}
	return n != nil
}

// wireName is the query key segment of a member: its xmlName if it has one
// (the effective trait, as the SDK's query serializer resolves it), else the
// member name.
func wireName(m *smithy.Schema) string {
	if xn, ok := smithy.SchemaTrait[*traits.XMLName](m); ok && xn.Name != "" {
		return xn.Name
	}
	return m.MemberName()
}

// fieldByMember finds the Go field of a struct that carries a schema
// member. smithy-go-codegen names fields after members, upper-casing the
// first letter of the few that start lower-case (e.g. error "message").
func fieldByMember(v reflect.Value, member string) reflect.Value {
	if f := v.FieldByName(member); f.IsValid() {
		return f
	}
	r, size := utf8.DecodeRuneInString(member)
	if r == utf8.RuneError || unicode.IsUpper(r) {
		return reflect.Value{}
	}
	return v.FieldByName(string(unicode.ToUpper(r)) + member[size:])
}

func joinPath(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

// sortedMembers returns a struct schema's members in name order, so that
// when a request has several bad values the one reported is deterministic.
func sortedMembers(s *smithy.Schema) []*smithy.Schema {
	ms := make([]*smithy.Schema, 0, len(s.Members()))
	for _, m := range s.Members() {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].MemberName() < ms[j].MemberName() })
	return ms
}

func decodeStruct(n *paramNode, s *smithy.Schema, v reflect.Value, path string) error {
	if v.Kind() != reflect.Struct {
		return codecError(path, "schema %s is a structure but Go type is %s", s.ID(), v.Type())
	}
	for _, m := range sortedMembers(s) {
		name := wireName(m)
		c := n.child(name)
		if c == nil {
			continue // absent, or an unknown key: AWS ignores those
		}
		f := fieldByMember(v, m.MemberName())
		if !f.IsValid() || !f.CanSet() {
			return codecError(joinPath(path, name), "no settable field for member %s in %s", m.MemberName(), v.Type())
		}
		if err := decodeValue(c, m, f, joinPath(path, name)); err != nil {
			return err
		}
	}
	return nil
}

// decodeValue decodes node n, described by schema s, into the settable
// value v (which may be a pointer to the actual storage).
func decodeValue(n *paramNode, s *smithy.Schema, v reflect.Value, path string) error {
	if v.Kind() == reflect.Pointer {
		elem := reflect.New(v.Type().Elem())
		if err := decodeValue(n, s, elem.Elem(), path); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	}
	switch s.Type() {
	case smithy.ShapeTypeStructure:
		return decodeStruct(n, s, v, path)
	case smithy.ShapeTypeList, smithy.ShapeTypeSet:
		return decodeList(n, s, v, path)
	case smithy.ShapeTypeMap:
		return decodeMap(n, s, v, path)
	}
	if !n.hasValue {
		// Only sub-keys were sent (Port.x=1): nothing to decode into a
		// scalar, so treat it like any other unknown key.
		return nil
	}
	return decodeScalar(n.value, s, v, path)
}

// indexedChildren returns the children of n whose keys are list/map indices
// (1, 2, ...), ordered by index. Gaps are tolerated and closed up. checkKey
// let only canonical indexes up to maxListIndex into the tree; anything else
// is skipped here too.
func indexedChildren(n *paramNode) []*paramNode {
	if n == nil {
		return nil
	}
	type indexed struct {
		i int
		n *paramNode
	}
	var items []indexed
	for k, c := range n.children {
		i, err := strconv.Atoi(k)
		if err != nil || i < 1 || strconv.Itoa(i) != k {
			continue
		}
		items = append(items, indexed{i, c})
	}
	sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
	out := make([]*paramNode, len(items))
	for j, it := range items {
		out[j] = it.n
	}
	return out
}

func decodeList(n *paramNode, s *smithy.Schema, v reflect.Value, path string) error {
	if v.Kind() != reflect.Slice {
		return codecError(path, "schema %s is a list but Go type is %s", s.ID(), v.Type())
	}
	member := s.ListMember()
	if member == nil {
		return codecError(path, "list schema %s has no member", s.ID())
	}
	_, flat := smithy.SchemaTrait[*traits.XMLFlattened](s)
	items, itemPath := n, path
	if !flat {
		// Wrapped lists put the member name between the list key and the
		// index: Tags.Tag.1.Key, UserGroupIds.member.1.
		name := wireName(member)
		items, itemPath = n.child(name), joinPath(path, name)
	}
	elems := indexedChildren(items)
	if len(elems) == 0 {
		if n.hasValue && n.value != "" && len(n.children) == 0 {
			return invalidValue(path, n.value, "expected a list")
		}
		if n.hasValue && n.value == "" {
			// "Key=" is how query clients send an empty list.
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		return nil
	}
	out := reflect.MakeSlice(v.Type(), len(elems), len(elems))
	for i, e := range elems {
		if err := decodeValue(e, member, out.Index(i), joinPath(itemPath, strconv.Itoa(i+1))); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

func decodeMap(n *paramNode, s *smithy.Schema, v reflect.Value, path string) error {
	if v.Kind() != reflect.Map || v.Type().Key().Kind() != reflect.String {
		return codecError(path, "schema %s is a map but Go type is %s", s.ID(), v.Type())
	}
	keySchema, valSchema := s.MapKey(), s.MapValue()
	if keySchema == nil || valSchema == nil {
		return codecError(path, "map schema %s has no key or value", s.ID())
	}
	_, flat := smithy.SchemaTrait[*traits.XMLFlattened](s)
	entries, entryPath := n, path
	if !flat {
		entries, entryPath = n.child("entry"), joinPath(path, "entry")
	}
	keyName, valName := mapPartNames(s)
	elems := indexedChildren(entries)
	if len(elems) == 0 {
		if n.hasValue && n.value != "" && len(n.children) == 0 {
			return invalidValue(path, n.value, "expected a map")
		}
		if n.hasValue && n.value == "" {
			v.Set(reflect.MakeMap(v.Type()))
		}
		return nil
	}
	out := reflect.MakeMapWithSize(v.Type(), len(elems))
	for i, e := range elems {
		p := joinPath(entryPath, strconv.Itoa(i+1))
		k := e.child(keyName)
		if k == nil || !k.hasValue {
			return MissingParameter(joinPath(p, keyName))
		}
		if !utf8.ValidString(k.value) {
			return invalidValue(joinPath(p, keyName), k.value, "not valid UTF-8")
		}
		val := reflect.New(v.Type().Elem()).Elem()
		if vn := e.child(valName); vn != nil {
			if err := decodeValue(vn, valSchema, val, joinPath(p, valName)); err != nil {
				return err
			}
		}
		out.SetMapIndex(reflect.ValueOf(k.value).Convert(v.Type().Key()), val)
	}
	v.Set(out)
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

func decodeScalar(raw string, s *smithy.Schema, v reflect.Value, path string) error {
	mismatch := func() error {
		return codecError(path, "schema %s has type %d but Go type is %s", s.ID(), s.Type(), v.Type())
	}
	switch s.Type() {
	case smithy.ShapeTypeString, smithy.ShapeTypeEnum:
		if v.Kind() != reflect.String {
			return mismatch()
		}
		if !utf8.ValidString(raw) {
			// Storing it would turn the bytes into U+FFFD on the way out:
			// the caller would read back something it never sent.
			return invalidValue(path, raw, "not valid UTF-8")
		}
		v.SetString(raw)
	case smithy.ShapeTypeBoolean:
		if v.Kind() != reflect.Bool {
			return mismatch()
		}
		switch {
		case strings.EqualFold(raw, "true"):
			v.SetBool(true)
		case strings.EqualFold(raw, "false"):
			v.SetBool(false)
		default:
			return invalidValue(path, raw, "expected true or false")
		}
	case smithy.ShapeTypeByte, smithy.ShapeTypeShort, smithy.ShapeTypeInteger,
		smithy.ShapeTypeLong, smithy.ShapeTypeIntEnum:
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		default:
			return mismatch()
		}
		i, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return invalidValue(path, raw, fmt.Sprintf("expected a %d-bit integer", v.Type().Bits()))
		}
		v.SetInt(i)
	case smithy.ShapeTypeFloat, smithy.ShapeTypeDouble:
		if v.Kind() != reflect.Float32 && v.Kind() != reflect.Float64 {
			return mismatch()
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), v.Type().Bits())
		if err != nil {
			return invalidValue(path, raw, "expected a number")
		}
		v.SetFloat(f)
	case smithy.ShapeTypeTimestamp:
		if v.Type() != timeType {
			return mismatch()
		}
		t, err := parseTimestamp(s, strings.TrimSpace(raw))
		if err != nil {
			return invalidValue(path, raw, "expected an ISO 8601 timestamp")
		}
		v.Set(reflect.ValueOf(t))
	case smithy.ShapeTypeBlob:
		if v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Uint8 {
			return mismatch()
		}
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return invalidValue(path, raw, "expected base64")
		}
		v.SetBytes(b)
	default:
		// Documents, big numbers and unions do not occur in the query
		// protocol; refuse rather than guess.
		return codecError(path, "unsupported shape type %d", s.Type())
	}
	return nil
}

// parseTimestamp honours @timestampFormat; query timestamps default to
// date-time (ISO 8601 / RFC 3339). Results are UTC like the SDK's own.
func parseTimestamp(s *smithy.Schema, raw string) (time.Time, error) {
	format := "date-time"
	if tf, ok := smithy.SchemaTrait[*traits.TimestampFormat](s); ok {
		format = tf.Format
	}
	switch format {
	case "epoch-seconds":
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || math.Abs(f) > 1e11 {
			return time.Time{}, fmt.Errorf("bad epoch seconds %q", raw)
		}
		return smithytime.ParseEpochSeconds(f).UTC(), nil
	case "http-date":
		return smithytime.ParseHTTPDate(raw)
	}
	t, err := smithytime.ParseDateTime(raw)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
