package queryapi

import (
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/elasticache-local/elasticache-local/queryapi/sigv4"
)

// signingName is ElastiCache's SigV4 service name, the one the credential
// scope of every request must carry.
const signingName = "elasticache"

// newVerifier returns the SigV4 verifier for credentials (access key id →
// secret access key), or nil when there are none: then requests are not
// verified at all, as before signing was a feature.
func newVerifier(credentials map[string]string) *sigv4.Verifier {
	if len(credentials) == 0 {
		return nil
	}
	secrets := make(map[string]string, len(credentials))
	for k, v := range credentials {
		secrets[k] = v
	}
	return &sigv4.Verifier{Service: signingName, Secrets: secrets}
}

// authenticate runs the checks of the request's signature that need no
// body, so an unsigned request or an unknown key is refused before its body
// is read. It returns nil, nil when verification is off.
func (s *Service) authenticate(r *http.Request) (*sigv4.Signed, *Error) {
	if s.verifier == nil {
		return nil, nil
	}
	signed, f := s.verifier.Check(r)
	if f != nil {
		s.refused(r, f)
		return nil, authFailure(f)
	}
	return signed, nil
}

// verifyPayload checks the signature over the body: body is what
// readParams read of it (a form body), and whatever it left unread (a body
// of another content type) is hashed here, bounded like a form body, and
// dropped.
func (s *Service) verifyPayload(w http.ResponseWriter, r *http.Request, signed *sigv4.Signed, body string) *Error {
	if signed == nil {
		return nil
	}
	h := sha256.New()
	_, _ = io.WriteString(h, body)
	if r.Body != nil {
		if _, err := io.Copy(h, http.MaxBytesReader(w, r.Body, maxBodyBytes-int64(len(body)))); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return &Error{Code: "RequestEntityTooLarge", HTTPStatus: http.StatusRequestEntityTooLarge,
					Message: "Request body must be at most " + strconv.Itoa(maxBodyBytes) + " bytes."}
			}
			return malformed(err)
		}
	}
	if f := signed.Verify(h.Sum(nil)); f != nil {
		s.refused(r, f)
		return authFailure(f)
	}
	return nil
}

// refused logs a request whose signature failed: the key it claimed and
// why, never anything of the secret or the signature.
func (s *Service) refused(r *http.Request, f *sigv4.Failure) {
	s.logger.LogAttrs(r.Context(), slog.LevelWarn, "request refused: signature",
		slog.String("code", authFailure(f).Code), slog.String("accessKey", f.AccessKey),
		slog.String("reason", shown(f.Message)), slog.String("remote", r.RemoteAddr))
}
