// Package sigv4 verifies AWS Signature Version 4 on incoming requests, the
// way an AWS service checks the Authorization header before it runs an
// operation. It knows nothing of the wire format of answers: a failed check
// is a Failure with a Kind and AWS's message, which the codec turns into the
// Query protocol's error (package queryapi).
//
// Verification has two steps because the signature covers the body: Check
// looks at the headers only (present, well formed, in time, a known access
// key), so a request that fails there is refused before its body is read;
// Signed.Verify then recomputes the signature with the SHA-256 of the body.
//
// The canonical request is rebuilt from the request as it arrived, per the
// SigV4 specification, rather than by re-signing a copy with the SDK's
// signer: a client may sign headers the SDK's signer never signs
// (User-Agent, Expect, X-Amzn-Trace-Id), and the server sees Host outside
// the header map. The tests check the result against the SDK's signer and
// the AWS CLI.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm AWS services accept for SigV4.
const Algorithm = "AWS4-HMAC-SHA256"

// DefaultMaxSkew is how far AWS lets a request's date be from its own clock.
const DefaultMaxSkew = 15 * time.Minute

// amzDateLayout is the ISO 8601 basic format of X-Amz-Date.
const amzDateLayout = "20060102T150405Z"

// Kind is what a failed check means to the client; each maps to one AWS
// error code.
type Kind int

const (
	// Missing: no SigV4 authentication at all (MissingAuthenticationToken).
	Missing Kind = iota + 1
	// Incomplete: an Authorization header that does not have the form of
	// SigV4 (IncompleteSignature).
	Incomplete
	// Mismatch: a signature that is wrong, out of its time window or
	// scoped to something else (SignatureDoesNotMatch).
	Mismatch
	// UnknownKey: an access key id no credentials were configured for
	// (InvalidClientTokenId).
	UnknownKey
)

// Failure is a refused request: its Kind and AWS's message for it.
type Failure struct {
	Kind    Kind
	Message string
	// AccessKey is the access key id the request claimed, if it got that far.
	AccessKey string
}

func (f *Failure) Error() string { return f.Message }

// Verifier checks requests against a set of access keys. It is safe for
// concurrent use once built; none of its fields may change afterwards.
type Verifier struct {
	// Service is the signing name the credential scope must carry
	// ("elasticache").
	Service string
	// Secrets maps access key ids to secret access keys.
	Secrets map[string]string
	// MaxSkew bounds the distance between the request's date and Now
	// (DefaultMaxSkew when zero).
	MaxSkew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Signed is a request whose Authorization header passed every check that
// does not need the body.
type Signed struct {
	r             *http.Request
	accessKey     string
	secret        string
	amzDate       string
	scope         []string // date, region, service, terminator
	signedHeaders string
	signature     string
}

// AccessKey is the access key id the request was signed with.
func (s *Signed) AccessKey() string { return s.accessKey }

// Region is the region of the request's credential scope.
func (s *Signed) Region() string { return s.scope[1] }

// Check verifies everything but the signature itself, in the order AWS
// does: an Authorization header of the SigV4 form, its parameters and date,
// the date's skew, Host among the signed headers, the algorithm, the
// credential scope, and the access key. The caller checks the scope's
// region (it knows which regions exist).
func (v *Verifier) Check(r *http.Request) (*Signed, *Failure) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		q := r.URL.Query()
		if q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm") {
			return nil, &Failure{Kind: Incomplete, Message: "elasticache-local verifies Signature Version 4 in the Authorization " +
				"header only: presigned (query string) requests are not supported. Send the signature in the Authorization header."}
		}
		return nil, &Failure{Kind: Missing, Message: "Request is missing Authentication Token"}
	}
	if !strings.HasPrefix(strings.TrimSpace(auth), "AWS4-") {
		return nil, &Failure{Kind: Missing, Message: "Request is missing Authentication Token"}
	}
	algorithm, rest, _ := strings.Cut(strings.TrimSpace(auth), " ")
	params := map[string]string{}
	for _, field := range strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }) {
		k, val, ok := strings.Cut(field, "=")
		if !ok {
			return nil, &Failure{Kind: Incomplete, Message: fmt.Sprintf(
				"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", shown(field), shown(auth))}
		}
		params[k] = val
	}
	// The key the request claims, for the log of every refusal from here.
	claimed, _, _ := strings.Cut(params["Credential"], "/")
	claimed = shown(claimed)
	fail := func(kind Kind, format string, args ...any) *Failure {
		return &Failure{Kind: kind, Message: fmt.Sprintf(format, args...), AccessKey: claimed}
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	var missing strings.Builder
	for _, name := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[name] == "" {
			fmt.Fprintf(&missing, "Authorization header requires '%s' parameter. ", name)
		}
	}
	if date == "" {
		missing.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	if missing.Len() > 0 {
		return nil, fail(Incomplete, "%sAuthorization=%s", missing.String(), shown(auth))
	}
	at, err := time.Parse(amzDateLayout, date)
	if err != nil {
		return nil, fail(Incomplete, "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", shown(date))
	}
	if f := v.checkSkew(at); f != nil {
		f.AccessKey = claimed
		return nil, f
	}
	signedHeaders := params["SignedHeaders"]
	if !hasHost(signedHeaders) {
		return nil, fail(Mismatch, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if algorithm != Algorithm {
		return nil, fail(Incomplete, "Unsupported AWS 'algorithm': '%s' (only %s for now). ", shown(algorithm), Algorithm)
	}
	cred := params["Credential"]
	parts := strings.Split(strings.TrimRight(cred, "/"), "/")
	if len(parts) != 5 {
		return nil, fail(Incomplete, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", shown(cred))
	}
	var wrong strings.Builder
	if parts[3] != v.Service {
		fmt.Fprintf(&wrong, "Credential should be scoped to correct service: '%s'. ", v.Service)
	}
	if parts[4] != "aws4_request" {
		fmt.Fprintf(&wrong, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", shown(parts[4]))
	}
	if day := date[:8]; parts[1] != day {
		fmt.Fprintf(&wrong, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			shown(parts[1]), day, date)
	}
	if wrong.Len() > 0 {
		return nil, fail(Mismatch, "%s", strings.TrimSpace(wrong.String()))
	}
	secret, ok := v.Secrets[parts[0]]
	if !ok {
		return nil, fail(UnknownKey, "The security token included in the request is invalid.")
	}
	return &Signed{r: r, accessKey: parts[0], secret: secret, amzDate: date, scope: parts[1:],
		signedHeaders: signedHeaders, signature: params["Signature"]}, nil
}

// checkSkew refuses a date further than MaxSkew from now, with AWS's
// messages for either side.
func (v *Verifier) checkSkew(at time.Time) *Failure {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	t := now().UTC().Truncate(time.Second)
	minutes := int(skew / time.Minute)
	switch {
	case at.Before(t.Add(-skew)):
		return &Failure{Kind: Mismatch, Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			at.Format(amzDateLayout), t.Add(-skew).Format(amzDateLayout), t.Format(amzDateLayout), minutes)}
	case at.After(t.Add(skew)):
		return &Failure{Kind: Mismatch, Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			at.Format(amzDateLayout), t.Add(skew).Format(amzDateLayout), t.Format(amzDateLayout), minutes)}
	}
	return nil
}

// hasHost reports whether the signed header list names host.
func hasHost(signedHeaders string) bool {
	for _, h := range strings.Split(signedHeaders, ";") {
		if strings.EqualFold(strings.TrimSpace(h), "host") {
			return true
		}
	}
	return false
}

// Verify recomputes the signature over the request with payloadHash, the
// SHA-256 of the whole body, and compares it with the one sent in constant
// time. A client that signed a default port (":80") its Host header does not
// carry, or the other way round, is matched too, as SDKs differ there.
func (s *Signed) Verify(payloadHash []byte) *Failure {
	sent, err := hex.DecodeString(s.signature)
	if err == nil {
		key := signingKey(s.secret, s.scope)
		for _, host := range hostForms(s.r.Host) {
			if hmac.Equal(s.signatureFor(key, host, payloadHash), sent) {
				return nil
			}
		}
	}
	return &Failure{Kind: Mismatch, AccessKey: s.accessKey, Message: "The request signature we calculated does not match the signature " +
		"you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
}

// hostForms is the Host header as sent and, when it names a default HTTP
// port, without it: the SDKs strip ":80" and ":443" before signing, while
// some HTTP clients send them.
func hostForms(host string) []string {
	forms := []string{host}
	if h, port, err := net.SplitHostPort(host); err == nil && (port == "80" || port == "443") {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		forms = append(forms, h)
	}
	return forms
}

func (s *Signed) signatureFor(key []byte, host string, payloadHash []byte) []byte {
	canonical := CanonicalRequest(s.r, host, s.signedHeaders, payloadHash)
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := Algorithm + "\n" + s.amzDate + "\n" + strings.Join(s.scope, "/") + "\n" + hex.EncodeToString(sum[:])
	return hmacSHA256(key, stringToSign)
}

// CanonicalRequest is the SigV4 canonical request of r: method, URI path
// (each segment encoded twice, as for every service but S3), query string,
// the signed headers with their values trimmed and inner runs of spaces
// collapsed (Host taken from host), the signed header list, and the payload
// hash in hex.
func CanonicalRequest(r *http.Request, host, signedHeaders string, payloadHash []byte) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(uriEncode(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range strings.Split(signedHeaders, ";") {
		b.WriteString(name)
		b.WriteByte(':')
		if strings.EqualFold(name, "host") {
			b.WriteString(stripSpaces(host))
		} else {
			values := r.Header.Values(name)
			if strings.EqualFold(name, "content-length") && len(values) == 0 && r.ContentLength >= 0 {
				values = []string{fmt.Sprint(r.ContentLength)}
			}
			for i, v := range values {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(stripSpaces(v))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signedHeaders)
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(payloadHash))
	return b.String()
}

// canonicalQuery decodes each parameter of the raw query and encodes it
// again the SigV4 way (RFC 3986 unreserved characters kept, everything else
// %XX, space as %20), sorted by encoded name, then value.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type param struct{ k, v string }
	var params []param
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		params = append(params, param{uriEncode(queryUnescape(k), true), uriEncode(queryUnescape(v), true)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// queryUnescape decodes a query component ('+' is a space); a malformed
// escape is kept as it is, as the client must have signed it that way.
func queryUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// uriEncode is SigV4's URI encoding: unreserved characters (A-Z a-z 0-9
// - . _ ~) stay, '/' stays unless encodeSlash, every other byte is %XX in
// upper-case hex.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' ||
			c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// stripSpaces trims a header value and collapses inner runs of spaces.
func stripSpaces(v string) string {
	return strings.Join(strings.FieldsFunc(v, func(c rune) bool { return c == ' ' }), " ")
}

// signingKey derives the key of one day, region and service from the
// secret: HMAC chain over "AWS4"+secret, date, region, service, terminator.
func signingKey(secret string, scope []string) []byte {
	key := []byte("AWS4" + secret)
	for _, part := range scope {
		key = hmacSHA256(key, part)
	}
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// shown cuts client input short before it goes into a message or a log:
// header values may be up to a megabyte.
func shown(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
