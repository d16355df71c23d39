package engine

// A node's pulse: whether its server's main thread keeps being scheduled,
// read from the kernel without sending the node anything. An idle Redis
// server runs its cron from its event loop several times a second (hz 10),
// so its main thread is put on a CPU at least that often; one blocked on a
// lock or on a disk is not, and a frozen one (SIGSTOP) shows as stopped.
// The health monitor takes a pulse that moved for an answer on most of its
// quiet beats, sparing the node a wake-up for a PING (an idle node's
// largest cost after its own cron), and still PINGs it every few beats,
// every beat it did not move or is stopped, and every interval once a
// check failed: a server busy in a long script is scheduled without
// answering, and only a PING tells.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Pulser is implemented by runtimes that can read their nodes' pulse (the
// process runtime: its nodes are processes of this machine).
type Pulser interface {
	// Pulse opens the pulse of the node's running server. The caller
	// closes it; it keeps reading the same process, and fails once that
	// exited (a node started again needs a new Pulse).
	Pulse(name string) (*Pulse, error)
}

// Pulse reads how many times a process's main thread was put on a CPU
// (the third field of /proc/<pid>/task/<pid>/schedstat) and whether it is
// stopped (SIGSTOP: the state in .../stat), from files kept open: two
// preads a reading.
type Pulse struct {
	sched, stat *os.File
	buf         [512]byte
}

// OpenPulse opens the pulse of process pid's main thread.
func OpenPulse(pid int) (*Pulse, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("engine: no pulse for pid %d", pid)
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/"
	sched, err := os.Open(dir + "schedstat")
	if err != nil {
		return nil, fmt.Errorf("engine: pulse of pid %d: %w", pid, err)
	}
	stat, err := os.Open(dir + "stat")
	if err != nil {
		_ = sched.Close()
		return nil, fmt.Errorf("engine: pulse of pid %d: %w", pid, err)
	}
	return &Pulse{sched: sched, stat: stat}, nil
}

// Read returns how many times the process's main thread has been scheduled
// so far, and whether it is stopped now (a stopped thread was scheduled
// before it stopped: its count moved since the last reading all the same).
// It fails once the process exited.
func (p *Pulse) Read() (beats uint64, stopped bool, err error) {
	n, err := p.stat.ReadAt(p.buf[:], 0)
	if n == 0 && err != nil {
		return 0, false, err
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold ") ".
	i := bytes.LastIndexByte(p.buf[:n], ')')
	if i < 0 || i+2 >= n {
		return 0, false, errors.New("engine: unexpected stat " + strconv.Quote(string(p.buf[:n])))
	}
	stopped = p.buf[i+2] == 'T' || p.buf[i+2] == 't'
	n, err = p.sched.ReadAt(p.buf[:], 0)
	if n == 0 && err != nil {
		return 0, false, err
	}
	f := strings.Fields(string(p.buf[:n]))
	if len(f) < 3 {
		return 0, false, errors.New("engine: unexpected schedstat " + strconv.Quote(string(p.buf[:n])))
	}
	beats, err = strconv.ParseUint(f[2], 10, 64)
	return beats, stopped, err
}

// Close closes the pulse's files.
func (p *Pulse) Close() error {
	_ = p.stat.Close()
	return p.sched.Close()
}
