package emulator

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/engine"
)

// TestParseAccessString: access strings are Redis ACL rules without
// passwords; on/off decide whether the user is enabled (off when neither
// is given, as on AWS), the rest goes to ACL SETUSER, with allchannels
// first when the string sets no channel rule (ElastiCache's
// acl-pubsub-default).
func TestParseAccessString(t *testing.T) {
	for _, tc := range []struct {
		in      string
		enabled bool
		rules   string
	}{
		{"on ~* +@all", true, "allchannels ~* +@all"},
		{"off ~* &* +@all", false, "~* &* +@all"},
		{"~* +@all", false, "allchannels ~* +@all"},
		{"on ~* +@all off", false, "allchannels ~* +@all"},
		{"ON ~app::* -@all +@read +@hash +@bitmap +@geo -setbit -bitfield -hset -hsetnx -hmset -hincrby -hincrbyfloat -hdel -bitop -geoadd -georadius -georadiusbymember", true,
			"allchannels ~app::* -@all +@read +@hash +@bitmap +@geo -setbit -bitfield -hset -hsetnx -hmset -hincrby -hincrbyfloat -hdel -bitop -geoadd -georadius -georadiusbymember"},
		{"on %R~ro:* %W~wo:* %RW~rw:* resetchannels &news:* +get +CONFIG|GET +select|0 -client|kill", true,
			"%R~ro:* %W~wo:* %RW~rw:* resetchannels &news:* +get +CONFIG|GET +select|0 -client|kill"},
		{"on allkeys allchannels allcommands", true, "allkeys allchannels allcommands"},
		{"on nocommands resetkeys ~a resetchannels", true, "nocommands resetkeys ~a resetchannels"},
		{"on ~* resetkeys ~only:*", true, "allchannels ~* resetkeys ~only:*"},
		{"on ~a:* +get (~b:* +set) clearselectors", true, "allchannels ~a:* +get (~b:* +set) clearselectors"},
		{"on", true, "allchannels"},
	} {
		got, err := parseAccessString(tc.in)
		if err != nil {
			t.Errorf("parseAccessString(%q): %v", tc.in, err)
			continue
		}
		if got.enabled != tc.enabled || got.rules != tc.rules {
			t.Errorf("parseAccessString(%q) = %v %q, want %v %q", tc.in, got.enabled, got.rules, tc.enabled, tc.rules)
		}
	}
}

// TestParseAccessStringRefuses what AWS refuses (passwords, reset) and
// what Redis would refuse, never echoing a password rule.
func TestParseAccessStringRefuses(t *testing.T) {
	for _, in := range []string{
		"on >secret-password ~* +@all", "on <secret ~*", "on #" + strings.Repeat("a", 64), "on !abc", "on nopass ~*",
		"on resetpass", "reset on ~* +@all", "on ~* ~foo", "on allkeys %R~foo", "on &* &news", "on allchannels &x",
		"on +nosuchcommand", "on +@nosuchcategory", "on -select|0", "on +config|bogus", "on +get|", "on (~a +get",
		"on (on ~a)", "on %X~a", "on %~a", "on hello", "on ~* +@all (>pw)",
	} {
		_, err := parseAccessString(in)
		var ipv *types.InvalidParameterValueException
		if !errors.As(err, &ipv) {
			t.Errorf("parseAccessString(%q) = %v, want InvalidParameterValue", in, err)
			continue
		}
		if strings.Contains(aws.ToString(ipv.Message), "secret") || strings.Contains(aws.ToString(ipv.Message), ">pw") {
			t.Errorf("the refusal of %q shows the password: %s", in, aws.ToString(ipv.Message))
		}
	}
}

// TestReadAuthentication: passwords follow AWS's AUTH token rules and are
// kept as their hashes only; the ways to say "no password" and their
// conflicts; IAM is refused as not implemented.
func TestReadAuthentication(t *testing.T) {
	ok16 := strings.Repeat("p", 16)
	ok128 := strings.Repeat("q", 128)
	a, err := readAuthentication(nil, []string{ok16, ok128}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.noPassword || len(a.hashes) != 2 || a.hashes[0] != engine.PasswordHash(ok16) || a.hashes[1] != engine.PasswordHash(ok128) {
		t.Errorf("two passwords = %+v, want their hashes", a)
	}
	if a, err := readAuthentication(nil, nil, aws.Bool(true), true); err != nil || !a.noPassword {
		t.Errorf("NoPasswordRequired = %+v, %v", a, err)
	}
	mode := &types.AuthenticationMode{Type: types.InputAuthenticationTypePassword, Passwords: []string{ok16}}
	if a, err := readAuthentication(mode, nil, nil, true); err != nil || len(a.hashes) != 1 {
		t.Errorf("AuthenticationMode password = %+v, %v", a, err)
	}
	mode = &types.AuthenticationMode{Type: types.InputAuthenticationTypeNoPassword}
	if a, err := readAuthentication(mode, nil, aws.Bool(false), true); err != nil || !a.noPassword {
		t.Errorf("AuthenticationMode no-password-required = %+v, %v", a, err)
	}
	if a, err := readAuthentication(nil, nil, aws.Bool(false), false); err != nil || a.noPassword || a.hashes != nil {
		t.Errorf("a modification without authentication = %+v, %v, want nothing", a, err)
	}

	var ipv *types.InvalidParameterValueException
	var ipc *types.InvalidParameterCombinationException
	for _, tc := range []struct {
		name      string
		mode      *types.AuthenticationMode
		passwords []string
		noPass    *bool
		want      any
	}{
		{"nothing", nil, nil, nil, &ipv},
		{"NoPasswordRequired false", nil, nil, aws.Bool(false), &ipv},
		{"15 characters", nil, []string{strings.Repeat("x", 15)}, nil, &ipv},
		{"129 characters", nil, []string{strings.Repeat("x", 129)}, nil, &ipv},
		{"a space", nil, []string{"has a space in it here"}, nil, &ipv},
		{"an @", nil, []string{"has-an-@-in-it-here"}, nil, &ipv},
		{"a quote", nil, []string{`has-a-"-in-it-here`}, nil, &ipv},
		{"a slash", nil, []string{"has-a-/-in-it-here"}, nil, &ipv},
		{"not ASCII", nil, []string{"has-a-é-in-it-here"}, nil, &ipv},
		{"three", nil, []string{ok16, ok16 + "1", ok16 + "2"}, nil, &ipv},
		{"passwords and NoPasswordRequired", nil, []string{ok16}, aws.Bool(true), &ipc},
		{"mode and passwords", &types.AuthenticationMode{Type: types.InputAuthenticationTypePassword, Passwords: []string{ok16}}, []string{ok16}, nil, &ipc},
		{"mode password without one", &types.AuthenticationMode{Type: types.InputAuthenticationTypePassword}, nil, nil, &ipv},
		{"mode no-password with one", &types.AuthenticationMode{Type: types.InputAuthenticationTypeNoPassword, Passwords: []string{ok16}}, nil, nil, &ipc},
		{"mode of no type", &types.AuthenticationMode{}, nil, nil, &ipv},
		{"mode of a bad type", &types.AuthenticationMode{Type: "kerberos"}, nil, nil, &ipv},
	} {
		_, err := readAuthentication(tc.mode, tc.passwords, tc.noPass, true)
		if !errors.As(err, tc.want) {
			t.Errorf("%s: %v, want %T", tc.name, err, tc.want)
		}
		if err != nil {
			for _, p := range tc.passwords {
				if strings.Contains(err.Error(), p) {
					t.Errorf("%s: the error shows the password: %v", tc.name, err)
				}
			}
		}
	}
	_, err = readAuthentication(&types.AuthenticationMode{Type: types.InputAuthenticationTypeIam}, nil, nil, true)
	if err == nil || !strings.Contains(err.Error(), "NotImplemented") && !strings.Contains(err.Error(), "does not implement") {
		t.Errorf("IAM authentication = %v, want NotImplemented", err)
	}
}
