package queryapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	smithy "github.com/aws/smithy-go"

	"github.com/elasticache-local/elasticache-local/queryapi/sigv4"
)

// Defaults used when Options leave Region or AccountID empty and the request
// does not say otherwise.
const (
	defaultRegion    = "us-east-1"
	defaultAccountID = "000000000000"
)

// apiVersion is the only Version the ElastiCache Query API answers.
const apiVersion = "2015-02-02"

// handlerFunc is a registered handler with its types erased; Handle builds
// it from a typed function after checking the types against the table.
type handlerFunc func(ctx context.Context, in any) (any, error)

// Service is the ElastiCache Query API endpoint. It decodes requests into
// the SDK's *XInput types, calls the handler registered for the action and
// encodes the *XOutput or error it returns. It is an http.Handler and safe
// for concurrent use; handlers may be registered while it serves.
type Service struct {
	region    string
	accountID string
	logger    *slog.Logger

	mu       sync.RWMutex
	handlers map[string]handlerFunc

	// bodies is the budget of body bytes held by requests in flight;
	// bodyWait bounds the wait for a share of it.
	bodies   *semaphore.Weighted
	bodyWait time.Duration

	// verifier checks SigV4 signatures; nil when no credentials are set.
	verifier *sigv4.Verifier
}

// New returns a Service with no handlers: every operation answers 501
// NotImplemented until one is registered with Handle. Empty Options fields
// default to us-east-1, account 000000000000 and slog.Default().
func New(opts Options) *Service {
	s := &Service{
		region:    opts.Region,
		accountID: opts.AccountID,
		logger:    opts.Logger,
		handlers:  map[string]handlerFunc{},
		verifier:  newVerifier(opts.Credentials),
	}
	budget := opts.BodyBudget
	if budget <= 0 {
		budget = DefaultBodyBudget
	}
	s.bodies = semaphore.NewWeighted(max(budget, bodyChunkBytes))
	s.bodyWait = cmp.Or(opts.BodyBudgetWait, defaultBodyBudgetWait)
	if s.region == "" {
		s.region = defaultRegion
	}
	if s.accountID == "" {
		s.accountID = defaultAccountID
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	return s
}

// Handle registers fn as the handler of the operation whose input type is I.
// The operation name is I's type name without the "Input" suffix
// (elasticache.CreateReplicationGroupInput → CreateReplicationGroup). Handle
// panics if I is not the input type of one of the SDK's operations or O is
// not that operation's output type; both are programming errors. A later
// registration for the same operation replaces the earlier one.
//
// fn may return (nil, nil) for an empty result. Errors should be the SDK's
// modelled types (*types.CacheClusterNotFoundFault, ...) or *Error; anything
// else is logged and answered as InternalFailure.
func Handle[I, O any](s *Service, fn func(ctx context.Context, in *I) (*O, error)) {
	it, ot := reflect.TypeFor[I](), reflect.TypeFor[O]()
	name, ok := strings.CutSuffix(it.Name(), "Input")
	op := lookupOperation(name)
	if !ok || op == nil || op.inputType != it {
		panic(fmt.Sprintf("queryapi.Handle: %v is not the input type of an ElastiCache operation", it))
	}
	if op.outputType != ot {
		panic(fmt.Sprintf("queryapi.Handle: %s returns %v, not %v", op.name, op.outputType, ot))
	}
	if fn == nil {
		panic("queryapi.Handle: nil handler for " + op.name)
	}
	s.register(op.name, func(ctx context.Context, in any) (any, error) {
		out, err := fn(ctx, in.(*I))
		if out == nil {
			// Keep a nil *O from becoming a non-nil interface.
			return nil, err
		}
		return out, err
	})
}

func (s *Service) register(name string, h handlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[name] = h
}

// Registered returns the names of the operations that have a handler,
// sorted; the others answer NotImplemented. Documentation generated from it
// (the README's table of operations) cannot claim more than is served.
func (s *Service) Registered() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.handlers))
	for name := range s.handlers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (s *Service) handler(name string) handlerFunc {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.handlers[name]
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := RequestInfo{RequestID: newRequestID()}
	status := s.serve(w, r, &info)
	s.logger.LogAttrs(r.Context(), slog.LevelDebug, "elasticache request",
		slog.String("action", info.Action),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", info.RequestID))
}

// serve handles one request and returns the HTTP status it wrote.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, info *RequestInfo) int {
	var qerr *Error
	if info.Region, info.AccountID, qerr = s.identity(r); qerr != nil {
		return writeError(w, qerr, info.RequestID)
	}
	signed, qerr := s.authenticate(r)
	if qerr != nil {
		return writeError(w, qerr, info.RequestID)
	}
	var held int64 // body bytes of the budget this request holds
	defer func() { s.bodies.Release(held) }()
	params, qerr := readParams(w, r, func(n int64) error {
		// The wait is bounded on its own: a handler blocked here reads
		// nothing, so neither the read timeout nor a client that went away
		// would end it.
		ctx, cancel := context.WithTimeout(r.Context(), s.bodyWait)
		defer cancel()
		if err := s.bodies.Acquire(ctx, n); err != nil {
			return errBodyBudget
		}
		held += n
		return nil
	})
	if qerr == nil {
		qerr = s.verifyPayload(w, r, signed, params.body)
	}
	if qerr != nil {
		return writeError(w, qerr, info.RequestID)
	}
	action, _, qerr := params.get("Action")
	if qerr != nil {
		return writeError(w, qerr, info.RequestID)
	}
	info.Action = shown(action) // it is logged
	if info.Action == "" {
		return writeError(w, &Error{Code: "MissingAction", HTTPStatus: http.StatusBadRequest,
			Message: "The request must contain the parameter Action."}, info.RequestID)
	}
	op := lookupOperation(action)
	if op == nil {
		return writeError(w, &Error{Code: "InvalidAction", HTTPStatus: http.StatusBadRequest,
			Message: fmt.Sprintf("The action %s is not valid for this web service.", info.Action)}, info.RequestID)
	}
	version, _, qerr := params.get("Version")
	switch {
	case qerr != nil:
		return writeError(w, qerr, info.RequestID)
	case version == "":
		return writeError(w, MissingParameter("Version"), info.RequestID)
	case version != apiVersion:
		// AWS resolves an operation by action and version together.
		return writeError(w, &Error{Code: "InvalidAction", HTTPStatus: http.StatusBadRequest,
			Message: fmt.Sprintf("Could not find operation %s for version %s", op.name, shown(version))}, info.RequestID)
	}
	// NotImplemented comes before input validation: telling a caller to fix
	// parameters of an operation that cannot succeed anyway helps nobody.
	h := s.handler(op.name)
	if h == nil {
		return writeError(w, notImplemented(op.name), info.RequestID)
	}
	root, qerr := buildParamTree(op, params)
	if qerr != nil {
		return writeError(w, qerr, info.RequestID)
	}
	in, err := decodeInput(op, root)
	if err != nil {
		return s.writeHandlerError(w, r, err, info)
	}

	ctx := context.WithValue(WithRequestInfo(r.Context(), *info), answeredKey{}, true)
	out, err := callHandler(ctx, h, in)
	if err != nil {
		return s.writeHandlerError(w, r, err, info)
	}
	if out == nil {
		out = reflect.New(op.outputType).Interface()
	}
	ser, ok := out.(smithy.Serializable)
	if !ok {
		return s.writeHandlerError(w, r, fmt.Errorf("output %T cannot serialize itself", out), info)
	}
	xw := pooledXMLWriter()
	defer xw.release() // once the body is written out
	body, err := encodeResultTo(xw, op.name, ser, info.RequestID)
	if err != nil {
		return s.writeHandlerError(w, r, fmt.Errorf("encode %s output: %w", op.name, err), info)
	}
	setHeaders(w, info.RequestID, len(body))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// callHandler runs h, turning a panic into an error so that one faulty
// handler answers InternalFailure instead of dropping the connection.
func callHandler(ctx context.Context, h handlerFunc, in any) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return h(ctx, in)
}

func (s *Service) writeHandlerError(w http.ResponseWriter, r *http.Request, err error, info *RequestInfo) int {
	e, known := wireError(err)
	if !known || e.HTTPStatus >= 500 && e.Code == "InternalFailure" {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "elasticache request failed",
			slog.String("action", info.Action),
			slog.String("request_id", info.RequestID),
			slog.Any("error", err))
	}
	return writeError(w, e, info.RequestID)
}

// setHeaders sets the headers AWS Query services send. The body is complete
// before anything is written, so its length is known up front.
func setHeaders(w http.ResponseWriter, requestID string, length int) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(length))
	h.Set("x-amzn-RequestId", requestID)
}

func writeError(w http.ResponseWriter, e *Error, requestID string) int {
	body := encodeError(e, requestID)
	setHeaders(w, requestID, len(body))
	w.WriteHeader(e.HTTPStatus)
	_, _ = w.Write(body)
	return e.HTTPStatus
}

// readParams collects the request parameters: a form-encoded POST body
// and the query string (AWS SDKs send everything in the body; GET with a
// query string is also valid Query protocol). The body is read whole, up to
// maxBodyBytes; the query string is bounded by the server's header limit.
//
// reserve takes each chunk's share of the service's body budget before
// the chunk is allocated; the caller gives it back once the request is done.
func readParams(w http.ResponseWriter, r *http.Request, reserve func(n int64) error) (requestParams, *Error) {
	p := requestParams{query: r.URL.RawQuery}
	if r.Method != http.MethodPost || r.Body == nil {
		return p, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		media, _, err := mime.ParseMediaType(ct)
		if err != nil || media != "application/x-www-form-urlencoded" {
			return p, nil
		}
	}
	tooLarge := &Error{Code: "RequestEntityTooLarge", HTTPStatus: http.StatusRequestEntityTooLarge,
		Message: "Request body must be at most " + strconv.Itoa(maxBodyBytes) + " bytes."}
	if r.ContentLength > maxBodyBytes {
		return p, tooLarge
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, maxBodyBytes), r.ContentLength, reserve)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return p, tooLarge
		}
		if errors.Is(err, errBodyBudget) {
			// AWS's answer to a caller it cannot serve now; SDKs retry it.
			return p, &Error{Code: "Throttling", HTTPStatus: http.StatusBadRequest,
				Message: "Rate exceeded: too many large requests are being read at once."}
		}
		return p, malformed(err)
	}
	p.body = body
	return p, nil
}

// bodyChunkBytes is the unit in which request bodies are read and counted
// against the body budget.
const bodyChunkBytes = 64 << 10

// defaultBodyBudgetWait bounds how long a request waits for its share of
// the body budget before it is answered Throttling.
const defaultBodyBudgetWait = 10 * time.Second

var errBodyBudget = errors.New("queryapi: body budget spent")

// readBody reads r whole into a string. Memory follows the bytes that
// arrive, in 64 KiB chunks, not what Content-Length promises (a client that
// announces 2 MiB and sends nothing holds 64 KiB), and the chunks are copied
// once into a string of the exact size: twice the body in all, where
// growing one buffer would allocate five times it. A body announced
// shorter than a chunk (length, -1 when unknown; the server delivers no
// more than it announces) is read in one chunk of its size, plus the byte
// that finds its end: most requests are a few hundred bytes, and a 64 KiB
// chunk each would cost more than the rest of their handling.
func readBody(r io.Reader, length int64, reserve func(n int64) error) (string, error) {
	var chunks [][]byte
	total := 0
	size := int64(bodyChunkBytes)
	if length >= 0 && length < size {
		size = length + 1
	}
	for {
		if err := reserve(size); err != nil {
			return "", err
		}
		chunk := make([]byte, size)
		n, err := io.ReadFull(r, chunk)
		chunks, total = append(chunks, chunk[:n]), total+n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", err
		}
		size = bodyChunkBytes
	}
	if len(chunks) == 1 {
		return string(chunks[0]), nil
	}
	var b strings.Builder
	b.Grow(total)
	for _, chunk := range chunks {
		b.Write(chunk)
	}
	return b.String(), nil
}

func malformed(err error) *Error {
	return &Error{Code: "MalformedQueryString", HTTPStatus: http.StatusBadRequest,
		Message: "The query string contains a syntax error: " + err.Error()}
}

// newRequestID returns a random (version 4) UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
