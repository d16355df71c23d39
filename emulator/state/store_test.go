package state

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testRegion(n int) *Region {
	return &Region{
		Scope:             Scope{Account: "000000000000", Region: "us-east-1"},
		ReplicationGroups: []ReplicationGroup{{ID: "g" + strconv.Itoa(n), Status: "available", NodeGroups: []NodeGroup{{ID: "0001", Primary: "g-001", Members: []string{"g-001"}}}}},
		// Padding makes each write big enough for a kill to land inside it.
		Events: []Event{{SourceID: "seq", Message: strings.Repeat("x", 64<<10) + strconv.Itoa(n)}},
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(testRegion(1)); err != nil {
		t.Fatal(err)
	}
	other := testRegion(2)
	other.Region = "eu-west-1"
	if err := s.Save(other); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Region != "eu-west-1" || got[1].ReplicationGroups[0].ID != "g1" {
		t.Fatalf("loaded %+v", got)
	}
	if err := s.Save(&Region{Scope: Scope{Account: "../etc", Region: "us-east-1"}}); err == nil {
		t.Fatal("a scope that is not an account id named a file")
	}
}

func TestUnusableFilesAreReportedAndKept(t *testing.T) {
	good, err := os.ReadFile(func() string {
		s, _ := Open(t.TempDir())
		if err := s.Save(testRegion(1)); err != nil {
			t.Fatal(err)
		}
		p, _ := s.Path(testRegion(1).Scope)
		return p
	}())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"garbage":   []byte("\x00\x01not json"),
		"truncated": good[:len(good)/2],
		"version":   []byte(strings.Replace(string(good), `"version":1`, `"version":99`, 1)),
		"format":    []byte(strings.Replace(string(good), Format, "something-else", 1)),
		"unknown":   []byte(strings.Replace(string(good), `"format"`, `"surprise":1,"format"`, 1)),
		"trailing":  append(append([]byte{}, good...), []byte("{}")...),
		"empty":     nil,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path, _ := s.Path(testRegion(1).Scope)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = s.Load()
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != path || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load = %v, want a CorruptError naming %s", err, path)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(content) {
				t.Fatal("the unusable file was changed")
			}
		})
	}
	t.Run("misplaced", func(t *testing.T) {
		s, _ := Open(t.TempDir())
		if err := os.WriteFile(filepath.Join(s.Dir(), "111111111111-us-east-1.json"), good, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "belongs in") {
			t.Fatalf("Load = %v, want a file holding another scope refused", err)
		}
	})
}

// TestKilledWriterLeavesPreviousOrNext kills a process that saves a scope in
// a loop, at a different instant each round, and checks that the file then
// loads and holds one of the states written, never a torn one.
func TestKilledWriterLeavesPreviousOrNext(t *testing.T) {
	if os.Getenv("STATE_TEST_WRITER") != "" {
		return
	}
	dir := t.TempDir()
	last := -1
	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterChild$")
		cmd.Env = append(os.Environ(), "STATE_TEST_WRITER="+dir, "STATE_TEST_START="+strconv.Itoa(last+1))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the child's first completed save, then let it run a
		// little longer each round before the kill.
		buf := make([]byte, 1)
		if _, err := out.Read(buf); err != nil {
			t.Fatalf("round %d: the writer did not start: %v", round, err)
		}
		deadline := time.Now().Add(time.Duration(round) * 2 * time.Millisecond)
		for time.Now().Before(deadline) {
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil {
			t.Fatalf("round %d: after a kill: %v", round, err)
		}
		if len(got) != 1 {
			t.Fatalf("round %d: %d scopes", round, len(got))
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(got[0].ReplicationGroups[0].ID, "g"))
		if n < last || !strings.HasSuffix(got[0].Events[0].Message, strconv.Itoa(n)) {
			t.Fatalf("round %d: state %d after %d, or torn", round, n, last)
		}
		last = n
	}
	if last < 20 {
		t.Fatalf("only %d saves in 20 rounds: the kills landed before any write", last)
	}
}

// TestWriterChild is the process TestKilledWriterLeavesPreviousOrNext kills.
func TestWriterChild(t *testing.T) {
	dir := os.Getenv("STATE_TEST_WRITER")
	if dir == "" {
		t.Skip("run by TestKilledWriterLeavesPreviousOrNext")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("STATE_TEST_START"))
	for i := n; ; i++ {
		if err := s.Save(testRegion(i)); err != nil {
			t.Fatal(err)
		}
		if i == n {
			fmt.Print("s")
		}
	}
}
