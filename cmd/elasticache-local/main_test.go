package main

import (
	"strings"
	"testing"
)

func TestParseCredentials(t *testing.T) {
	got, err := parseCredentials(" AKID1:secret1 , AKID2:sec:ret2,")
	if err != nil || len(got) != 2 || got["AKID1"] != "secret1" || got["AKID2"] != "sec:ret2" {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := parseCredentials(""); err != nil || got != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"AKID", "AKID:", ":secret", "A:s,A:t"} {
		_, err := parseCredentials(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") && bad == ":secret" {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}
