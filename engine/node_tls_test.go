package engine

import (
	"reflect"
	"testing"
)

func TestNodeLabels(t *testing.T) {
	spec := NodeSpec{Labels: map[string]string{LabelCluster: "c", LabelTLS: "stale"}}
	if got := NodeLabels(spec); !reflect.DeepEqual(got, map[string]string{LabelCluster: "c"}) {
		t.Errorf("NodeLabels of a plaintext node = %v; want no %s", got, LabelTLS)
	}
	spec.TLS = &TLSSpec{}
	if got := NodeLabels(spec); !reflect.DeepEqual(got, map[string]string{LabelCluster: "c", LabelTLS: LabelTLSRequired}) {
		t.Errorf("NodeLabels of a TLS node = %v", got)
	}
	if spec.Labels[LabelTLS] != "stale" {
		t.Error("NodeLabels changed the spec's map")
	}
}

func TestUserDirectives(t *testing.T) {
	h := PasswordHash("x")
	got, err := UserDirectives([]ACLUser{
		{Name: "default", Enabled: true, PasswordHashes: []string{h}, Rules: "~* +@all"},
		{Name: "off", NoPassword: true},
	})
	want := [][]string{{"user", "default", "reset", "on", "#" + h, "~*", "+@all"}, {"user", "off", "reset", "off", "nopass"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("UserDirectives = %v, %v; want %v", got, err, want)
	}
	for _, name := range []string{"", "a b", "a\nb", AdminUser} {
		if _, err := UserDirectives([]ACLUser{{Name: name}}); err == nil {
			t.Errorf("UserDirectives accepted the name %q", name)
		}
	}
}
