//go:build unix

package emulator

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDataDirLockNamesHolder: a second lock on a held data dir fails with a
// DataDirInUseError naming the dir and the holder's pid, start time and
// listen address, and its message says how to get past it.
func TestDataDirLockNamesHolder(t *testing.T) {
	dir := t.TempDir()
	before := time.Now().Truncate(time.Second)
	release, err := lockDataDir(dir, "127.0.0.1:4566")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = lockDataDir(dir, "127.0.0.1:4567")
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second lock = %v; want a DataDirInUseError", err)
	}
	if inUse.Dir != dir || inUse.PID != os.Getpid() || inUse.Listen != "127.0.0.1:4566" ||
		inUse.Started.Before(before) || inUse.Started.After(time.Now()) {
		t.Errorf("holder = %+v; want dir %s, pid %d, listen 127.0.0.1:4566, started since %s", inUse, dir, os.Getpid(), before)
	}
	msg := err.Error()
	for _, want := range []string{dir, "in use", "pid " + strconv.Itoa(os.Getpid()), "started ", "listening on 127.0.0.1:4566", "--data-dir"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// Once released, the next run takes it.
	release()
	again, err := lockDataDir(dir, "127.0.0.1:4567")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

// TestParseLockOwner reads this version's lock file, an older version's
// (the pid alone) and garbage (nothing known, no panic).
func TestParseLockOwner(t *testing.T) {
	started := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	o := parseLockOwner(lockOwner{pid: 42, started: started, listen: "0.0.0.0:4566"}.format())
	if o.pid != 42 || !o.started.Equal(started) || o.listen != "0.0.0.0:4566" {
		t.Errorf("round trip = %+v", o)
	}
	if o := parseLockOwner("17\n"); o.pid != 17 || !o.started.IsZero() || o.listen != "" {
		t.Errorf("older lock file = %+v", o)
	}
	if o := parseLockOwner("not a pid\nstarted yesterday"); o.pid != 0 || !o.started.IsZero() {
		t.Errorf("garbage = %+v", o)
	}
	if got := (&DataDirInUseError{Dir: "d"}).Error(); !strings.Contains(got, "in use by another elasticache-local;") {
		t.Errorf("unknown holder: %q", got)
	}
}
