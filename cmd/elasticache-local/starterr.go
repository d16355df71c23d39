package main

// Start errors a new user meets first, told in their terms with the fix:
// the emulator's own errors name what failed; these add which flag,
// environment variable or install step gets past it.

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/engine/process"
)

// startError is an error that stopped the start, with what to do about it.
// It wraps the emulator's error, so errors.Is and errors.As still see it.
type startError struct {
	err   error
	what  string // what went wrong
	fix   string // how to get past it
	cause string // the underlying error, when what does not already say it
}

func (e *startError) Error() string {
	s := e.what + "\n  Fix: " + e.fix
	if e.cause != "" {
		s += "\n  Cause: " + e.cause
	}
	return s
}

func (e *startError) Unwrap() error { return e.err }

// explainStartError adds the fix to the start errors it knows (the listen
// address in use, no redis-server for the process runtime, the data dir
// held by another run) and returns the others as they are. cfg is the
// configuration the start was given.
func explainStartError(err error, cfg emulator.Config) error {
	var inUse *emulator.DataDirInUseError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		alt := nextPort(cfg.Listen)
		what := fmt.Sprintf("cannot listen on %s: another process holds that address", cfg.Listen)
		if portOf(cfg.Listen) == portOf(emulator.DefaultListen) {
			what += fmt.Sprintf(" (LocalStack, for one, also uses port %s)", portOf(emulator.DefaultListen))
		}
		return &startError{err: err, what: what,
			fix: fmt.Sprintf("listen on another port: --listen %s (or ELASTICACHE_LOCAL_LISTEN=%s), or stop the process that holds %s; "+
				"clients then use http://%s", alt, alt, cfg.Listen, clientAddress(alt)),
			cause: err.Error()}
	case errors.Is(err, process.ErrServerNotFound):
		// The runtime's own advice is for library users (Options.RedisServer);
		// keep only what it looked for.
		looked, _, _ := strings.Cut(err.Error(), "; ")
		return &startError{err: err,
			what: "no redis-server to run nodes with: the process runtime (the default) runs every node as a local redis-server process",
			fix: "install it: scripts/install-deps --runtime-only in a checkout of elasticache-local (scripts/run does this itself), " +
				"or Debian's redis-server package (sudo apt-get install redis-server; on macOS brew install redis); " +
				"or run every node in a container instead: --runtime docker (or ELASTICACHE_LOCAL_RUNTIME=docker)",
			cause: looked}
	case errors.As(err, &inUse):
		stop := "stop that run (Ctrl-C where it runs, or kill -TERM its pid: it saves every node and exits)"
		if inUse.PID > 0 {
			stop = fmt.Sprintf("stop that run (Ctrl-C where it runs, or kill -TERM %d: it saves every node and exits)", inUse.PID)
		}
		other := "give this one a data dir of its own: --data-dir <another directory> (or ELASTICACHE_LOCAL_DATA_DIR)"
		if inUse.Listen == cfg.Listen {
			// The same address would fail next.
			alt := nextPort(cfg.Listen)
			other += fmt.Sprintf(" and another port: --listen %s (or ELASTICACHE_LOCAL_LISTEN)", alt)
		}
		return &startError{err: err, what: err.Error(), fix: stop + ", or " + other}
	}
	return err
}

// nextPort is addr with the port after its own, the simplest free-looking
// alternative to suggest ("127.0.0.1:4566" → "127.0.0.1:4567").
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1:4567"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n >= 65535 {
		return net.JoinHostPort(host, "4567")
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

func portOf(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return port
	}
	return addr
}

// clientAddress is the address a client on this machine uses for a listen
// address: a wildcard host becomes the loopback address.
func clientAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// firstCommand is a command to paste into a shell to see the emulator
// answer: the AWS CLI pointed at it. Without --credentials any request is
// accepted, but the CLI sends none without credentials, so dummy ones are
// given inline; with --credentials the user's own key must sign.
func firstCommand(url, region string, signed bool) string {
	if rest, ok := strings.CutPrefix(url, "http://"); ok {
		url = "http://" + clientAddress(rest)
	}
	cmd := fmt.Sprintf("aws --endpoint-url %s --region %s elasticache describe-replication-groups", url, region)
	if signed {
		return cmd
	}
	return "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test " + cmd
}
