package engine

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLogKeeperRotatesAndBounds: each Keep makes the given log the newest
// (.1), shifts the older ones, drops those past KeptLogFiles and keeps only
// the last KeptLogBytes of a long log (its end, where the reason is).
func TestLogKeeperRotatesAndBounds(t *testing.T) {
	k := LogKeeper{Dir: t.TempDir()}
	for i := 1; i <= KeptLogFiles+2; i++ {
		log := "server " + strconv.Itoa(i) + "\n"
		if i == KeptLogFiles+2 {
			// A long log: only its end is kept.
			log = strings.Repeat("x", 3*KeptLogBytes) + log
		}
		if err := k.Keep("node-1", strings.NewReader(log)); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= KeptLogFiles; n++ {
		b, err := os.ReadFile(k.KeptLog("node-1", n))
		if err != nil {
			t.Fatalf("kept log %d: %v", n, err)
		}
		want := []byte("server " + strconv.Itoa(KeptLogFiles+3-n) + "\n")
		if !bytes.HasSuffix(b, want) {
			t.Errorf("kept log %d ends %q, want %q", n, b[max(0, len(b)-20):], want)
		}
		if len(b) > KeptLogBytes {
			t.Errorf("kept log %d holds %d bytes, more than %d", n, len(b), KeptLogBytes)
		}
	}
	if _, err := os.Stat(k.KeptLog("node-1", KeptLogFiles+1)); !os.IsNotExist(err) {
		t.Errorf("a log past %d files is still there: %v", KeptLogFiles, err)
	}
	// A node without a log (a start cut short) keeps nothing and shifts nothing.
	if err := k.KeepFile("node-1", k.KeptLog("none", 1)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(k.KeptLog("node-1", 1)); !bytes.HasSuffix(b, []byte("server "+strconv.Itoa(KeptLogFiles+2)+"\n")) {
		t.Errorf("keeping a missing file changed the newest log")
	}
}
