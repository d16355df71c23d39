package queryapi

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/traits"
)

// Bounds on what one request may make the decoder do. A form body is cheap
// to send and its keys are expensive to fold (each dotted segment would be a
// node), so every key is checked against the operation's input schema before
// anything is built for it, and the number and size of what is checked are
// capped.
const (
	// maxBodyBytes bounds a request body. The largest legitimate ElastiCache
	// request is a CreateReplicationGroup with 500 node groups (AWS's shard
	// limit) each naming its slots, replica count, five replica AZs and
	// Outposts, and 50 tags: about 900 KB form-encoded (TestLargestRequestFits
	// builds it with the SDK). Twice that leaves room for longer names.
	maxBodyBytes = 2 << 20
	// maxParams bounds the key=value pairs of one source (body or query
	// string). That largest request has about 7,500.
	maxParams = 16384
	// maxListIndex bounds list and map indexes (Tags.Tag.N): the longest
	// ElastiCache lists hold 500 items (node groups of a replication group).
	maxListIndex = 1000
)

// requestParams are the two sources of a request's parameters: the
// form-encoded POST body and the query string, both still encoded. For a key
// both carry the body wins; within one source the first value wins, as on
// AWS.
type requestParams struct {
	body, query string
}

// eachParam calls fn for each key=value pair of the form-encoded raw, in
// order, with the key unescaped and the value still encoded, so a caller
// looking for one key unescapes no value but the one it wants.
func eachParam(raw string, fn func(key, rawValue string) *Error) *Error {
	count := 0
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if count++; count > maxParams {
			return &Error{Code: "InvalidQueryParameter", HTTPStatus: http.StatusBadRequest,
				Message: "The request has more than " + strconv.Itoa(maxParams) + " parameters."}
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.Contains(k, ";") {
			return malformed(errors.New("invalid semicolon separator in query"))
		}
		key, err := url.QueryUnescape(k)
		if err != nil {
			return malformed(err)
		}
		if e := fn(key, v); e != nil {
			return e
		}
	}
	return nil
}

// each is eachParam over the body, then the query string.
func (p requestParams) each(fn func(key, rawValue string) *Error) *Error {
	if e := eachParam(p.body, fn); e != nil {
		return e
	}
	return eachParam(p.query, fn)
}

// lookupIn returns the first value of name in raw.
func lookupIn(raw, name string) (value string, found bool, qerr *Error) {
	stop := &Error{} // ends the scan at the first match
	e := eachParam(raw, func(key, rawValue string) *Error {
		if key != name {
			return nil
		}
		v, err := url.QueryUnescape(rawValue)
		if err != nil {
			return malformed(err)
		}
		value, found = v, true
		return stop
	})
	if e != nil && e != stop {
		return "", false, e
	}
	return value, found, nil
}

// get returns the value of a top-level parameter (Action, Version).
func (p requestParams) get(name string) (string, bool, *Error) {
	if v, ok, e := lookupIn(p.body, name); ok || e != nil {
		return v, ok, e
	}
	return lookupIn(p.query, name)
}

// buildParamTree folds the parameters that belong to op's input into a
// paramNode tree keyed by segment. Keys that are not part of the input
// (Action, Version, X-Amz-*, misspelt members) are skipped without building
// anything, as AWS ignores them; a list index out of range is refused.
func buildParamTree(op *operation, p requestParams) (*paramNode, *Error) {
	root := &paramNode{}
	e := p.each(func(key, rawValue string) *Error {
		known, e := checkKey(op.inputSchema, key)
		if e != nil || !known {
			return e
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return malformed(err)
		}
		n := root
		for seg := range strings.SplitSeq(key, ".") {
			c := n.children[seg]
			if c == nil {
				if n.children == nil {
					n.children = map[string]*paramNode{}
				}
				c = &paramNode{}
				n.children[seg] = c
			}
			n = c
		}
		if !n.hasValue {
			n.value, n.hasValue = value, true
		}
		return nil
	})
	if e != nil {
		return nil, e
	}
	return root, nil
}

// keyExpects is what the next segment of a key must be.
type keyExpects int

const (
	expectShape     keyExpects = iota // a member of a structure, or the list/map layout below
	expectListIndex                   // the N of a wrapped list: Tags.Tag.N
	expectMapIndex                    // the N of a wrapped map: X.entry.N
	expectMapPart                     // key or value of a map entry
)

// checkKey walks key's segments alongside the input schema s without
// allocating. It reports whether the key names something of the input; an
// index that is a number but not a valid one (0, 01, beyond maxListIndex)
// is an *Error, since the caller evidently meant an item.
func checkKey(s *smithy.Schema, key string) (bool, *Error) {
	expect := expectShape
	for rest, pos := key, 0; ; {
		seg, tail, more := strings.Cut(rest, ".")
		path := key[:max(pos-1, 0)] // the segments before seg, for errors
		switch expect {
		case expectShape:
			switch s.Type() {
			case smithy.ShapeTypeStructure:
				if s = memberByWireName(s, seg); s == nil {
					return false, nil
				}
			case smithy.ShapeTypeList, smithy.ShapeTypeSet:
				member := s.ListMember()
				if member == nil {
					return false, nil
				}
				if _, flat := smithy.SchemaTrait[*traits.XMLFlattened](s); !flat {
					if seg != wireName(member) {
						return false, nil
					}
					expect = expectListIndex
					break
				}
				if ok, e := checkIndex(seg, path); !ok || e != nil {
					return false, e
				}
				s = member
			case smithy.ShapeTypeMap:
				if s.MapKey() == nil || s.MapValue() == nil {
					return false, nil
				}
				if _, flat := smithy.SchemaTrait[*traits.XMLFlattened](s); !flat {
					if seg != "entry" {
						return false, nil
					}
					expect = expectMapIndex
					break
				}
				if ok, e := checkIndex(seg, path); !ok || e != nil {
					return false, e
				}
				expect = expectMapPart
			default:
				return false, nil // a scalar has no sub-keys
			}
		case expectListIndex, expectMapIndex:
			if ok, e := checkIndex(seg, path); !ok || e != nil {
				return false, e
			}
			if expect == expectListIndex {
				s, expect = s.ListMember(), expectShape
			} else {
				expect = expectMapPart
			}
		case expectMapPart:
			keyName, valueName := mapPartNames(s)
			switch seg {
			case keyName:
				s = s.MapKey()
			case valueName:
				s = s.MapValue()
			default:
				return false, nil
			}
			expect = expectShape
		}
		if !more {
			return true, nil
		}
		pos += len(seg) + 1
		rest = tail
	}
}

// checkIndex reports whether seg is a list or map index. Segments that are
// not numbers are unknown keys; numbers must be canonical and in range.
func checkIndex(seg, path string) (bool, *Error) {
	if seg == "" || strings.TrimLeft(seg, "0123456789") != "" {
		return false, nil
	}
	const maxDigits = 9 // fits an int anywhere; far past maxListIndex
	if i, _ := strconv.Atoi(seg); seg[0] == '0' || len(seg) > maxDigits || i > maxListIndex {
		return false, invalidValue(path, seg, "list indexes run from 1 to "+strconv.Itoa(maxListIndex))
	}
	return true, nil
}

// memberByWireName finds the member of structure s whose query key segment
// is name.
func memberByWireName(s *smithy.Schema, name string) *smithy.Schema {
	if m := s.Member(name); m != nil && wireName(m) == name {
		return m
	}
	for _, m := range s.Members() {
		if wireName(m) == name {
			return m
		}
	}
	return nil
}

// mapPartNames are the key segments of a map entry's key and value.
func mapPartNames(s *smithy.Schema) (keyName, valueName string) {
	keyName, valueName = "key", "value"
	if xn, ok := smithy.SchemaTrait[*traits.XMLName](s.MapKey()); ok && xn.Name != "" {
		keyName = xn.Name
	}
	if xn, ok := smithy.SchemaTrait[*traits.XMLName](s.MapValue()); ok && xn.Name != "" {
		valueName = xn.Name
	}
	return keyName, valueName
}
