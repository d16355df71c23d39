package queryapi

import (
	"errors"
	"net/http"
	"reflect"

	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/traits"

	"github.com/elasticache-local/elasticache-local/queryapi/sigv4"
)

// modelledError is implemented by every error type in the SDK's types
// package (types.CacheClusterNotFoundFault, ...).
type modelledError interface {
	error
	smithy.Serializable
	ErrorMessage() string
}

// internalFailure is what a client sees for any error the codec cannot
// attribute to the request; the cause is logged, never sent.
func internalFailure() *Error {
	return &Error{
		Code:       "InternalFailure",
		Message:    "The request processing has failed because of an unknown error, exception or failure.",
		HTTPStatus: http.StatusInternalServerError,
		Receiver:   true,
	}
}

// notImplemented answers operations that exist in the API but have no
// handler yet: a client must never mistake a missing feature for success.
func notImplemented(op string) *Error {
	return &Error{
		Code:       "NotImplemented",
		Message:    "The operation " + op + " is not implemented by elasticache-local yet.",
		HTTPStatus: http.StatusNotImplemented,
		Receiver:   true,
	}
}

// wireError maps a handler error to what goes on the wire. The boolean is
// false when the error was not understood and became an InternalFailure, so
// the caller knows to log it.
func wireError(err error) (*Error, bool) {
	var qe *Error
	if errors.As(err, &qe) && qe != nil {
		e := *qe
		if e.Code == "" {
			e.Code = "InternalFailure"
		}
		if e.HTTPStatus == 0 {
			e.HTTPStatus = http.StatusBadRequest
			if e.Receiver {
				e.HTTPStatus = http.StatusInternalServerError
			}
		}
		return &e, true
	}
	var me modelledError
	if errors.As(err, &me) {
		if e := modelledWireError(me); e != nil {
			return e, true
		}
	}
	return internalFailure(), false
}

// modelledWireError reads code, status and fault type from the traits of
// the error's schema, which its own Serialize method hands over.
func modelledWireError(me modelledError) *Error {
	if v := reflect.ValueOf(me); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	ser := &xmlSerializer{w: newXMLWriter(), rootName: "Error"}
	me.Serialize(ser)
	schema := ser.rootSchema
	if schema == nil {
		return nil
	}
	e := &Error{Code: schema.ID().Name, Message: me.ErrorMessage(), HTTPStatus: http.StatusBadRequest}
	if he, ok := smithy.SchemaTrait[*traits.HTTPError](schema); ok && he.Code != 0 {
		e.HTTPStatus = he.Code
	}
	if qe, ok := smithy.SchemaTrait[*traits.AWSQueryError](schema); ok {
		e.Code = qe.ErrorCode
		if qe.StatusCode != 0 {
			e.HTTPStatus = qe.StatusCode
		}
	}
	if et, ok := smithy.SchemaTrait[*traits.Error](schema); ok {
		e.Receiver = et.Type != "client"
	} else {
		e.Receiver = e.HTTPStatus >= 500
	}
	// The SDK types carry ErrorCodeOverride; ErrorCode() returns the trait
	// code unless a handler set the override, which then wins.
	if ec, ok := me.(interface{ ErrorCode() string }); ok && ec.ErrorCode() != "" {
		e.Code = ec.ErrorCode()
	}
	return e
}

// authFailure is the Query API's answer to a request whose SigV4
// authentication failed (see auth.go): the common errors every AWS Query
// service answers, all of Type Sender.
func authFailure(f *sigv4.Failure) *Error {
	e := &Error{Message: f.Message, HTTPStatus: http.StatusForbidden}
	switch f.Kind {
	case sigv4.Missing:
		e.Code = "MissingAuthenticationToken"
	case sigv4.Incomplete:
		e.Code, e.HTTPStatus = "IncompleteSignature", http.StatusBadRequest
	case sigv4.UnknownKey:
		e.Code = "InvalidClientTokenId"
	default:
		e.Code = "SignatureDoesNotMatch"
	}
	return e
}
