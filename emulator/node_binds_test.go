package emulator

import (
	"slices"
	"testing"
)

// TestNextBinds: the node's own host first; the caller's address added
// last; every wish to stop applied; another endpoint's wish to add its
// address left to that endpoint (its parking forwarder may still hold the
// address, which would fail the CONFIG SET); addresses nobody asked about
// kept.
func TestNextBinds(t *testing.T) {
	const own, primary, reader, stale = "127.0.0.5", "127.0.0.2", "127.0.0.3", "127.0.0.9"
	for _, c := range []struct {
		name string
		have []string
		want map[string]bool
		host string
		out  []string
	}{
		{"add mine", []string{own}, map[string]bool{reader: true}, reader, []string{own, reader}},
		{"already there", []string{own, reader}, map[string]bool{reader: true}, reader, []string{own, reader}},
		{"not another's addition", []string{own}, map[string]bool{primary: true, reader: true}, reader, []string{own, reader}},
		{"another's removal merged", []string{own, reader}, map[string]bool{primary: true, reader: false}, primary, []string{own, primary}},
		{"unasked kept", []string{own, stale}, map[string]bool{reader: true}, reader, []string{own, stale, reader}},
		{"own host first", []string{reader, own}, map[string]bool{reader: true}, reader, []string{own, reader}},
		{"remove mine", []string{own, primary, reader}, map[string]bool{reader: false}, reader, []string{own, primary}},
	} {
		if got := nextBinds(own, c.have, c.want, c.host); !slices.Equal(got, c.out) {
			t.Errorf("%s: nextBinds(%v, %v, %s) = %v, want %v", c.name, c.have, c.want, c.host, got, c.out)
		}
	}
}
