package queryapi

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/schemas"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/document"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/aws/smithy-go/traits"
)

// isoMillis is the timestamp layout AWS Query services put in responses.
const isoMillis = "2006-01-02T15:04:05.000Z"

// serviceNamespace is the xmlns of every response, read from the service
// schema's @xmlNamespace so it follows the SDK rather than a literal.
func serviceNamespace() string {
	if ns, ok := smithy.SchemaTrait[*traits.XMLNamespace](schemas.AmazonElastiCacheV9.Schema); ok {
		return ns.URI
	}
	return ""
}

// xmlWriter wraps encoding/xml's token encoder, which does all escaping and
// checks that every end tag matches its start tag. The first error sticks
// and every later call is a no-op, so callers check once at the end.
type xmlWriter struct {
	buf bytes.Buffer
	enc *xml.Encoder
	err error
}

func newXMLWriter() *xmlWriter {
	w := &xmlWriter{}
	w.enc = xml.NewEncoder(&w.buf)
	return w
}

// writers keeps the writers of answers written, with their buffers: a
// Describe answer of a hundred groups is some 200 KB, which every answer
// allocating anew would make the garbage collector's main work.
var writers = sync.Pool{New: func() any { return newXMLWriter() }}

// maxPooledBuffer bounds the buffers kept in writers: a rare large answer
// does not stay allocated.
const maxPooledBuffer = 1 << 20

// pooledXMLWriter returns an empty writer from writers; give it back with
// release once its bytes are written out.
func pooledXMLWriter() *xmlWriter {
	w := writers.Get().(*xmlWriter)
	w.buf.Reset()
	return w
}

// release gives w back to writers, unless it failed (its encoder's state
// is then unknown) or grew too large. Its bytes must not be used after.
func (w *xmlWriter) release() {
	if w.err == nil && w.buf.Cap() <= maxPooledBuffer {
		writers.Put(w)
	}
}

func (w *xmlWriter) token(t xml.Token) {
	if w.err == nil {
		w.err = w.enc.EncodeToken(t)
	}
}

func (w *xmlWriter) start(name xml.Name) { w.token(xml.StartElement{Name: name}) }
func (w *xmlWriter) end(name xml.Name)   { w.token(xml.EndElement{Name: name}) }

func (w *xmlWriter) text(name, value string) {
	n := xml.Name{Local: name}
	w.start(n)
	w.token(xml.CharData(value))
	w.end(n)
}

func (w *xmlWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// bytes flushes the encoder and returns the document.
func (w *xmlWriter) bytes() ([]byte, error) {
	if w.err == nil {
		w.err = w.enc.Flush()
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.buf.Bytes(), nil
}

type frameKind uint8

const (
	frameStruct frameKind = iota
	frameList
	frameMap
	frameUnion
	frameSilent // root struct of a Unit output: writes no element
)

type xmlFrame struct {
	kind     frameKind
	schema   *smithy.Schema
	wrapper  xml.Name // element closed when the frame pops; empty if none
	itemName string   // element name of list items / map entries
	inEntry  bool     // a map <entry> is open
}

// xmlSerializer is a smithy.ShapeSerializer producing awsquery response XML.
// The SDK's generated Serialize methods drive it, so element names, list
// item names and nesting come from the same schemas the SDK client's
// deserializer reads. It writes into a shared xmlWriter so the caller can
// wrap the result in the <XResponse> envelope.
type xmlSerializer struct {
	w        *xmlWriter
	rootName string // element name for the outermost struct (XResult)
	stack    []xmlFrame
	// rootSchema records the schema of the outermost struct, which is how
	// a modelled error's Serialize reveals its schema and thus its traits.
	rootSchema *smithy.Schema
	// encoded is the root member list whose items are written already
	// encoded (encoded.go); while skipping is above zero the serializer
	// ignores the typed items (skipping-1 elements deep), counting in
	// skipped the items it ignored. encodedDone says the list was written.
	encoded     *encodedList
	skipping    int
	skipped     int
	encodedDone bool
}

var _ smithy.ShapeSerializer = (*xmlSerializer)(nil)

func (s *xmlSerializer) top() *xmlFrame {
	if len(s.stack) == 0 {
		return nil
	}
	return &s.stack[len(s.stack)-1]
}

func (s *xmlSerializer) push(f xmlFrame) { s.stack = append(s.stack, f) }

func (s *xmlSerializer) pop() (xmlFrame, bool) {
	if len(s.stack) == 0 {
		s.w.fail(errors.New("queryapi: unbalanced close in serializer"))
		return xmlFrame{}, false
	}
	f := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	return f, true
}

// ename is the element name of a member: only an @xmlName declared on the
// member itself counts (a target's xmlName does not rename references to
// it), else the member name. This mirrors smithy-go's XML codec.
func ename(schema *smithy.Schema) string {
	if schema == nil {
		return ""
	}
	if xn, ok := smithy.SchemaDirectTrait[*traits.XMLName](schema); ok && xn.Name != "" {
		return xn.Name
	}
	return schema.MemberName()
}

// ctxName resolves an element name in context: list items and map values
// are named by their container, everything else by ename.
func (s *xmlSerializer) ctxName(schema *smithy.Schema) string {
	if top := s.top(); top != nil {
		switch top.kind {
		case frameList:
			return top.itemName
		case frameMap:
			if top.inEntry {
				if n := ename(top.schema.MapValue()); n != "" {
					return n
				}
				return "value"
			}
		}
	}
	return ename(schema)
}

func (s *xmlSerializer) scalar(schema *smithy.Schema, v string) {
	if s.skip() {
		return
	}
	s.w.text(s.ctxName(schema), v)
}

// Bytes is part of smithy.ShapeSerializer; the envelope writer owns the
// buffer, so this only reports what has been written so far.
func (s *xmlSerializer) Bytes() []byte { return s.w.buf.Bytes() }

func (s *xmlSerializer) WriteInt8(schema *smithy.Schema, v int8) {
	s.scalar(schema, strconv.FormatInt(int64(v), 10))
}

func (s *xmlSerializer) WriteInt16(schema *smithy.Schema, v int16) {
	s.scalar(schema, strconv.FormatInt(int64(v), 10))
}

func (s *xmlSerializer) WriteInt32(schema *smithy.Schema, v int32) {
	s.scalar(schema, strconv.FormatInt(int64(v), 10))
}

func (s *xmlSerializer) WriteInt64(schema *smithy.Schema, v int64) {
	s.scalar(schema, strconv.FormatInt(v, 10))
}

func (s *xmlSerializer) WriteFloat32(schema *smithy.Schema, v float32) {
	s.scalar(schema, formatFloat(float64(v), 32))
}

func (s *xmlSerializer) WriteFloat64(schema *smithy.Schema, v float64) {
	s.scalar(schema, formatFloat(v, 64))
}

func formatFloat(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(v, 'f', -1, bits)
}

func (s *xmlSerializer) WriteBool(schema *smithy.Schema, v bool) {
	s.scalar(schema, strconv.FormatBool(v))
}

func (s *xmlSerializer) WriteString(schema *smithy.Schema, v string) { s.scalar(schema, v) }

func (s *xmlSerializer) WriteBlob(schema *smithy.Schema, v []byte) {
	if v != nil {
		s.scalar(schema, base64.StdEncoding.EncodeToString(v))
	}
}

func (s *xmlSerializer) WriteTime(schema *smithy.Schema, v time.Time) {
	format := "date-time"
	if tf, ok := smithy.SchemaTrait[*traits.TimestampFormat](schema); ok {
		format = tf.Format
	}
	switch format {
	case "epoch-seconds":
		s.scalar(schema, strconv.FormatFloat(smithytime.FormatEpochSeconds(v), 'f', -1, 64))
	case "http-date":
		s.scalar(schema, smithytime.FormatHTTPDate(v))
	default:
		s.scalar(schema, v.UTC().Format(isoMillis))
	}
}

func (s *xmlSerializer) WriteBigInt(*smithy.Schema, *big.Int) {
	s.w.fail(errors.New("queryapi: BigInteger is not supported by awsquery"))
}

func (s *xmlSerializer) WriteBigFloat(*smithy.Schema, *big.Float) {
	s.w.fail(errors.New("queryapi: BigDecimal is not supported by awsquery"))
}

func (s *xmlSerializer) WriteDocument(*smithy.Schema, document.Value) {
	s.w.fail(errors.New("queryapi: documents are not supported by awsquery"))
}

// WriteNil writes nothing: awsquery has no null, absent members are omitted.
func (s *xmlSerializer) WriteNil(*smithy.Schema) {}

func (s *xmlSerializer) WriteStruct(schema *smithy.Schema) {
	if s.skipOpen() {
		return
	}
	if len(s.stack) == 0 {
		s.rootSchema = schema
		if schema == nil {
			// Unit output: the SDK expects no <XResult> element at all.
			s.push(xmlFrame{kind: frameSilent})
			return
		}
		name := xml.Name{Local: s.rootName}
		s.w.start(name)
		s.push(xmlFrame{kind: frameStruct, schema: schema, wrapper: name})
		return
	}
	name := xml.Name{Local: s.ctxName(schema)}
	s.w.start(name)
	s.push(xmlFrame{kind: frameStruct, schema: schema, wrapper: name})
}

func (s *xmlSerializer) CloseStruct() { s.closeFrame() }

func (s *xmlSerializer) closeFrame() {
	if s.skipClose() {
		return
	}
	f, ok := s.pop()
	if !ok {
		return
	}
	if f.kind == frameMap && f.inEntry {
		s.w.end(xml.Name{Local: f.itemName})
	}
	if f.wrapper.Local != "" {
		s.w.end(f.wrapper)
	}
}

func (s *xmlSerializer) WriteUnion(schema, _ *smithy.Schema) {
	if s.skipOpen() {
		return
	}
	// The variant member writes its own element inside this one; the union
	// frame stops it from taking a list item or map value name.
	name := xml.Name{Local: s.ctxName(schema)}
	s.w.start(name)
	s.push(xmlFrame{kind: frameUnion, schema: schema, wrapper: name})
}

func (s *xmlSerializer) CloseUnion() { s.closeFrame() }

func (s *xmlSerializer) WriteList(schema *smithy.Schema) {
	if s.skipOpen() {
		return
	}
	if schema == nil {
		s.w.fail(errors.New("queryapi: list without schema"))
		return
	}
	name := s.ctxName(schema)
	encoded := s.encoded != nil && s.encoded.schema == schema && len(s.stack) == 1
	if _, flat := smithy.SchemaTrait[*traits.XMLFlattened](schema); flat {
		// Flattened lists repeat the member's own element per item.
		s.push(xmlFrame{kind: frameList, schema: schema, itemName: name})
	} else {
		wrapper := xml.Name{Local: name}
		s.w.start(wrapper)
		s.push(xmlFrame{kind: frameList, schema: schema, wrapper: wrapper, itemName: listItemName(schema)})
	}
	if encoded {
		s.writeEncodedList()
	}
}

// listItemName is the element name of the items of a list member: the
// member's own name for a flattened list, else the item's @xmlName or
// "member".
func listItemName(schema *smithy.Schema) string {
	if _, flat := smithy.SchemaTrait[*traits.XMLFlattened](schema); flat {
		return ename(schema)
	}
	if item := ename(schema.ListMember()); item != "" {
		return item
	}
	return "member"
}

func (s *xmlSerializer) CloseList() { s.closeFrame() }

func (s *xmlSerializer) WriteMap(schema *smithy.Schema) {
	if s.skipOpen() {
		return
	}
	if schema == nil {
		s.w.fail(errors.New("queryapi: map without schema"))
		return
	}
	name := s.ctxName(schema)
	if _, flat := smithy.SchemaTrait[*traits.XMLFlattened](schema); flat {
		s.push(xmlFrame{kind: frameMap, schema: schema, itemName: name})
		return
	}
	wrapper := xml.Name{Local: name}
	s.w.start(wrapper)
	s.push(xmlFrame{kind: frameMap, schema: schema, wrapper: wrapper, itemName: "entry"})
}

func (s *xmlSerializer) WriteKey(_ *smithy.Schema, key string) {
	if s.skipping > 0 {
		return
	}
	top := s.top()
	if top == nil || top.kind != frameMap {
		s.w.fail(errors.New("queryapi: map key outside a map"))
		return
	}
	entry := xml.Name{Local: top.itemName}
	if top.inEntry {
		s.w.end(entry)
	}
	s.w.start(entry)
	keyName := ename(top.schema.MapKey())
	if keyName == "" {
		keyName = "key"
	}
	s.w.text(keyName, key)
	top.inEntry = true
}

func (s *xmlSerializer) CloseMap() { s.closeFrame() }

// encodeResult renders a successful response:
//
//	<OpResponse xmlns="..."><OpResult>...</OpResult>
//	<ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></OpResponse>
//
// out is the handler's *XOutput; its own Serialize method walks the schema.
func encodeResult(op string, out smithy.Serializable, requestID string) ([]byte, error) {
	return encodeResultTo(newXMLWriter(), op, out, requestID)
}

// encodeResultTo is encodeResult into w, whose bytes the answer is.
func encodeResultTo(w *xmlWriter, op string, out smithy.Serializable, requestID string) ([]byte, error) {
	ser := &xmlSerializer{w: w, rootName: op + "Result", encoded: encodedListOf(out)}
	given := ser.encoded != nil
	if given {
		w.buf.Grow(ser.encoded.size() + 1024) // the items and the envelope
	}
	envelope := xml.Name{Space: serviceNamespace(), Local: op + "Response"}
	w.start(envelope)
	out.Serialize(ser)
	if len(ser.stack) != 0 {
		w.fail(fmt.Errorf("queryapi: %s output left %d open elements", op, len(ser.stack)))
	}
	if given && !ser.encodedDone {
		w.fail(fmt.Errorf("queryapi: %s output has encoded items for a list it does not write", op))
	}
	meta := xml.Name{Local: "ResponseMetadata"}
	w.start(meta)
	w.text("RequestId", requestID)
	w.end(meta)
	w.end(envelope)
	return w.bytes()
}

// encodeError renders an error response:
//
//	<ErrorResponse xmlns="..."><Error><Type>Sender</Type><Code>..</Code>
//	<Message>..</Message></Error><RequestId>id</RequestId></ErrorResponse>
func encodeError(e *Error, requestID string) []byte {
	w := newXMLWriter()
	envelope := xml.Name{Space: serviceNamespace(), Local: "ErrorResponse"}
	w.start(envelope)
	errElem := xml.Name{Local: "Error"}
	w.start(errElem)
	typ := "Sender"
	if e.Receiver {
		typ = "Receiver"
	}
	w.text("Type", typ)
	w.text("Code", e.Code)
	w.text("Message", e.Message)
	w.end(errElem)
	w.text("RequestId", requestID)
	w.end(envelope)
	// Fixed element names and escaped text cannot make the encoder fail.
	b, _ := w.bytes()
	return b
}
