package queryapi

// Public surface of the codec. The emulator codes against exactly this; the
// implementation lives in the other files of the package.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Options configure a Service.
type Options struct {
	// Region and AccountID are used when a request carries no SigV4
	// credential scope (or its access key is not a 12-digit account id).
	Region    string
	AccountID string
	Logger    *slog.Logger
	// BodyBudget bounds the request body bytes held at once over all
	// requests being read and decoded (default DefaultBodyBudget): each
	// request is bounded on its own, and this keeps many connections
	// sending large bodies together from adding up past it. A request
	// waits for its share while the budget is spent.
	BodyBudget int64
	// BodyBudgetWait bounds how long a request waits for its share of the
	// budget before it is answered Throttling (default 10 s).
	BodyBudgetWait time.Duration
	// Credentials (access key id → secret access key), when there are any,
	// make every request prove it was signed with one of them (SigV4, see
	// auth.go); none means requests are not verified.
	Credentials map[string]string
}

// DefaultBodyBudget is 16 maximal request bodies: decoding costs about five
// times the body, so bodies in flight hold at most about 170 MiB.
const DefaultBodyBudget = 16 * maxBodyBytes

// RequestInfo describes the request being served; handlers read it from ctx.
type RequestInfo struct {
	Action    string
	RequestID string
	Region    string
	AccountID string
}

type requestInfoKey struct{}

// WithRequestInfo returns ctx carrying info (used by the Service, and by tests
// that call handlers directly).
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// InfoFrom returns the RequestInfo stored in ctx (zero value if none).
func InfoFrom(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info
}

// Error is a non-modelled AWS query error (MissingParameter, ValidationError,
// InvalidAction, ...). Modelled errors are the SDK's own types.* faults.
type Error struct {
	Code       string
	Message    string
	HTTPStatus int
	// Receiver marks a server-side fault (<Type>Receiver</Type>).
	Receiver bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// MissingParameter: a required parameter is absent (400, Sender).
func MissingParameter(name string) *Error {
	return &Error{Code: "MissingParameter", HTTPStatus: http.StatusBadRequest,
		Message: fmt.Sprintf("The request must contain the parameter %s", name)}
}

// ValidationError: a value breaks a model constraint (400, Sender).
func ValidationError(format string, args ...any) *Error {
	return &Error{Code: "ValidationError", HTTPStatus: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// AccessDenied: the request is refused before any operation runs (403,
// Sender), as AWS answers a caller that may not act.
func AccessDenied(format string, args ...any) *Error {
	return &Error{Code: "AccessDenied", HTTPStatus: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

// WriteError answers a request with e in the Query protocol's error format
// and a new request id. It is for what stands in front of a Service (the
// emulator's checks of where a request comes from); the Service answers its
// own errors.
func WriteError(w http.ResponseWriter, e *Error) {
	writeError(w, e, newRequestID())
}
