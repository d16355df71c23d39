package queryapi

import (
	"net/http"
	"strings"
)

// identity derives region and account from the SigV4 credential scope
// (Authorization header, or X-Amz-Credential of a presigned request).
// Signatures are verified only when Options.Credentials are set (auth.go);
// otherwise any credentials are accepted. An access key id of exactly 12 digits is taken as the account id, so tests
// can pick an account per client; any other key means the default account.
//
// Region and account name storage (snapshot keys, node labels), so a scope
// that is malformed or names no valid region is refused with AWS's error
// for it before anything uses them.
func (s *Service) identity(r *http.Request) (region, account string, qerr *Error) {
	region, account = s.region, s.accountID
	var cred string
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, rest, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return region, account, nil // not SigV4: nothing to scope
		}
		cred, _, _ = strings.Cut(rest, ",")
		cred = strings.TrimSpace(cred)
	} else {
		v, found, qerr := lookupIn(r.URL.RawQuery, "X-Amz-Credential")
		if qerr != nil {
			return region, account, qerr
		}
		if !found {
			return region, account, nil
		}
		cred = v
	}
	// AKID/yyyymmdd/region/service/aws4_request
	parts := strings.SplitN(cred, "/", 6)
	if len(parts) != 5 {
		return region, account, &Error{Code: "IncompleteSignature", HTTPStatus: http.StatusBadRequest,
			Message: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" +
				shown(cred) + "'"}
	}
	if !ValidRegion(parts[2]) {
		return region, account, &Error{Code: "SignatureDoesNotMatch", HTTPStatus: http.StatusForbidden,
			Message: "Credential should be scoped to a valid region, not '" + shown(parts[2]) + "'."}
	}
	region = parts[2]
	if ValidAccountID(parts[0]) {
		account = parts[0]
	}
	return region, account, nil
}

// ValidAccountID reports whether s is an AWS account id: exactly 12 digits.
func ValidAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidRegion reports whether s has the shape of an AWS region code: a
// 2–4 letter area, one or more lower-case words and a number, as in
// us-east-1, us-gov-west-1, cn-north-1, eu-isoe-west-1 or eusc-de-east-1.
// It never holds a dot, a slash or an upper-case letter, so it is safe in
// a storage key.
func ValidRegion(s string) bool {
	const maxLen = 32
	if len(s) > maxLen {
		return false
	}
	words := strings.Split(s, "-")
	if len(words) < 3 {
		return false
	}
	area, middle, number := words[0], words[1:len(words)-1], words[len(words)-1]
	if len(area) < 2 || len(area) > 4 || !lowerLetters(area) {
		return false
	}
	for _, w := range middle {
		if w == "" || !lowerLetters(w) {
			return false
		}
	}
	if number == "" || len(number) > 2 || strings.TrimLeft(number, "0123456789") != "" {
		return false
	}
	return true
}

func lowerLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
