package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DataDirInUseError is Start's error when another emulator holds the data
// dir's lock. It names the holder as its lock file records it, so that the
// user can tell which run to stop instead of guessing.
type DataDirInUseError struct {
	// Dir is the data dir.
	Dir string
	// PID, Started and Listen are the holder's process id, the time it took
	// the lock and the listen address it was configured with; zero when its
	// lock file does not record them (written by an older version, or read
	// while being written).
	PID     int
	Started time.Time
	Listen  string
}

func (e *DataDirInUseError) Error() string {
	var holder []string
	if e.PID > 0 {
		holder = append(holder, "pid "+strconv.Itoa(e.PID))
	}
	if !e.Started.IsZero() {
		holder = append(holder, "started "+e.Started.Local().Format(time.DateTime+" MST"))
	}
	if e.Listen != "" {
		holder = append(holder, "listening on "+e.Listen)
	}
	who := "another elasticache-local"
	if len(holder) > 0 {
		who += " (" + strings.Join(holder, ", ") + ")"
	}
	return fmt.Sprintf("emulator: data dir %s is in use by %s; stop it or choose another --data-dir", e.Dir, who)
}

// lockOwner is what the data dir's lock file records about its holder.
type lockOwner struct {
	pid     int
	started time.Time
	listen  string
}

// Lock file lines after the first, which is the holder's pid (the only
// line older versions wrote).
const (
	lockStartedPrefix = "started "
	lockListenPrefix  = "listen "
)

// format renders the lock file's content.
func (o lockOwner) format() string {
	return fmt.Sprintf("%d\n%s%s\n%s%s\n", o.pid, lockStartedPrefix, o.started.Format(time.RFC3339), lockListenPrefix, o.listen)
}

// parseLockOwner reads a lock file's content; what it cannot read stays zero.
func parseLockOwner(b string) lockOwner {
	var o lockOwner
	lines := strings.Split(b, "\n")
	o.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, lockStartedPrefix):
			o.started, _ = time.Parse(time.RFC3339, strings.TrimSpace(strings.TrimPrefix(l, lockStartedPrefix)))
		case strings.HasPrefix(l, lockListenPrefix):
			o.listen = strings.TrimSpace(strings.TrimPrefix(l, lockListenPrefix))
		}
	}
	return o
}
