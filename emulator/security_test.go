package emulator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/aws/smithy-go"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

func TestCheckAuthToken(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"0123456789abcdef", true},
		{strings.Repeat("a", 128), true},
		{"Ab1!&#$^<>-Ab1!&#", true},
		{"0123456789abcde", false},        // 15 characters
		{strings.Repeat("a", 129), false}, // 129
		{"0123456789abcdef@", false},
		{"0123456789 abcdef", false},
		{"0123456789abcdef/", false},
		{`0123456789abcdef"`, false},
		{"0123456789abcdef%", false},
	} {
		err := checkAuthToken(tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("checkAuthToken(%q) = %v, want ok=%v", tc.token, err, tc.ok)
		}
		if err != nil {
			expectFault(t, err, "InvalidParameterValue", "Invalid AuthToken provided.")
		}
	}
}

// expectFault asserts err is the AWS fault code with message.
func expectFault(t *testing.T, err error, code, message string) {
	t.Helper()
	var gotCode, gotMessage string
	var qe *queryapi.Error
	var ae smithy.APIError
	switch {
	case errors.As(err, &qe):
		gotCode, gotMessage = qe.Code, qe.Message
	case errors.As(err, &ae):
		gotCode, gotMessage = ae.ErrorCode(), ae.ErrorMessage()
	default:
		t.Fatalf("error %v (%T) is not an API error", err, err)
	}
	if gotCode != code || (message != "" && gotMessage != message) {
		t.Fatalf("error = %s %q, want %s %q", gotCode, gotMessage, code, message)
	}
}

func TestNewSecurity(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	token := aws.String("0123456789abcdef")
	if _, err := newSecurity(nil, "", token, now); err == nil {
		t.Fatal("AuthToken without TLS accepted")
	} else {
		expectFault(t, err, "InvalidParameterValue", "The AUTH token is only supported when encryption-in-transit is enabled")
	}
	if _, err := newSecurity(aws.Bool(false), types.TransitEncryptionModeRequired, nil, now); err == nil {
		t.Fatal("TransitEncryptionMode without TLS accepted")
	}
	if s, err := newSecurity(aws.Bool(true), types.TransitEncryptionModePreferred, nil, now); err != nil || !s.preferred {
		t.Fatalf("preferred mode: %+v, %v", s, err)
	}
	if _, err := newSecurity(aws.Bool(true), "sometimes", nil, now); err == nil {
		t.Fatal("an unknown TransitEncryptionMode accepted")
	}
	s, err := newSecurity(aws.Bool(true), "", token, now)
	if err != nil {
		t.Fatal(err)
	}
	if !s.transit || !s.authEnabled() || s.authOpen || !s.authModified.Equal(now) {
		t.Fatalf("security = %+v", s)
	}
	if got := s.defaultUser(); len(got) != 1 || !slices.Equal(got[0].PasswordHashes, []string{engine.PasswordHash(*token)}) || got[0].NoPassword {
		t.Fatalf("default user = %+v", got)
	}
}

// TestModifyAuthSequence walks AWS's rotation: ROTATE of a first token
// keeps passwordless connections, SET keeps only the new token, ROTATE
// keeps the old and the new, DELETE needs preferred mode.
func TestModifyAuthSequence(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	s := security{transit: true}
	a, b, c := "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"
	if _, err := modifyAuth(&s, aws.String(a), authSet, now); err == nil {
		t.Fatal("SET before any ROTATE accepted")
	}
	if changed, err := modifyAuth(&s, aws.String(a), "", now); err != nil || !changed {
		t.Fatalf("ROTATE: %v %v", changed, err)
	}
	if u := s.defaultUser(); !u[0].NoPassword || s.authPending != types.AuthTokenUpdateStatusRotating {
		t.Fatalf("first ROTATE must keep passwordless access: %+v %s", u, s.authPending)
	}
	if _, err := modifyAuth(&s, aws.String(a), authSet, now); err != nil {
		t.Fatal(err)
	}
	if u := s.defaultUser(); u[0].NoPassword || !slices.Equal(u[0].PasswordHashes, []string{engine.PasswordHash(a)}) {
		t.Fatalf("after SET: %+v", u)
	}
	if _, err := modifyAuth(&s, aws.String(b), authRotate, now); err != nil {
		t.Fatal(err)
	}
	if u := s.defaultUser(); !slices.Equal(u[0].PasswordHashes, []string{engine.PasswordHash(a), engine.PasswordHash(b)}) {
		t.Fatalf("after ROTATE: %+v", u)
	}
	if _, err := modifyAuth(&s, aws.String(c), authRotate, now); err != nil {
		t.Fatal(err)
	}
	if u := s.defaultUser(); !slices.Equal(u[0].PasswordHashes, []string{engine.PasswordHash(b), engine.PasswordHash(c)}) {
		t.Fatalf("a second ROTATE keeps the newest two: %+v", u)
	}
	before := s
	if _, err := modifyAuth(&s, nil, authDelete, now); err == nil {
		t.Fatal("DELETE accepted in required mode")
	}
	if _, err := modifyAuth(&s, aws.String("short"), authRotate, now); err == nil {
		t.Fatal("a short token accepted")
	}
	if _, err := modifyAuth(&s, nil, authRotate, now); err == nil {
		t.Fatal("ROTATE without a token accepted")
	}
	if !slices.Equal(before.authHashes, s.authHashes) {
		t.Fatal("a refused change changed the tokens")
	}
	plain := security{}
	if _, err := modifyAuth(&plain, aws.String(a), authRotate, now); err == nil {
		t.Fatal("a token on a group without TLS accepted")
	}
}
