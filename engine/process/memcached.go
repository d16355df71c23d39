package process

// Memcached nodes (NodeSpec.Engine "memcached"): Debian's memcached binary,
// started with its options on the command line (memcached reads no
// configuration file). The command line ends with -P <node dir>/
// memcached.pid, which names the node as a Redis node's redis.conf does,
// so Reap, Adopt and the pid checks find and verify it the same way. The
// node keeps no data: Suspend stops it with SIGTERM and Resume starts it
// empty, as a Memcached node restarts on AWS.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// nodeCommand is how one node's server is started: conf, when not empty,
// is written to confPath first; args follow the binary.
type nodeCommand struct {
	conf     string
	confPath string
	args     []string
}

// commandFor renders the start of node spec, whose directory is dir, on
// the server srv.
func (r *Runtime) commandFor(spec engine.NodeSpec, dir string, srv server) (nodeCommand, error) {
	if !engine.IsMemcached(spec.Engine) {
		conf, err := buildConfig(spec, dir, srv.caps, r.admin)
		confPath := filepath.Join(dir, confFileName)
		return nodeCommand{conf: conf, confPath: confPath, args: []string{confPath}}, err
	}
	if spec.ReplicaOf != nil || spec.Cluster || spec.InitialRDB != nil || len(spec.Users) > 0 {
		return nodeCommand{}, fmt.Errorf("engine/process: node %s: a Memcached node has no replication, cluster mode, RDB or users", spec.Name)
	}
	pidPath := filepath.Join(dir, engine.MemcachedPIDFile)
	args, err := engine.MemcachedArgs(spec, spec.Endpoint.Host, os.Geteuid() == 0,
		filepath.Join(dir, engine.TLSCertFile), filepath.Join(dir, engine.TLSKeyFile), filepath.Join(dir, engine.TLSCAFile), pidPath)
	return nodeCommand{confPath: pidPath, args: args}, err
}

// readyCheck is the check that node spec, started as pid, is the server
// answering on its endpoint: INFO's process_id for Redis; memcached tells
// no pid without stats, so any answer to "version" counts, the process
// check beside it failing the start if our process exited.
func (r *Runtime) readyCheck(spec engine.NodeSpec, pid int) engine.Check {
	if engine.IsMemcached(spec.Engine) {
		return r.admin.Pings
	}
	return r.servedBy(pid)
}

// memcachedServer finds and probes the memcached binary: Options.
// MemcachedServer, or memcached on PATH and in the usual directories. It is
// looked up at the first Memcached node, so a machine without memcached
// runs Redis nodes all the same.
func (r *Runtime) memcachedServer() (server, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.memcached != nil {
		return *r.memcached, nil
	}
	name := r.memcachedName
	if name == "" {
		name = "memcached"
	}
	path, err := findBinary(name)
	if err != nil {
		return server{}, fmt.Errorf("engine/process: memcached binary not found: %v; install it with \"apt-get install memcached\" (Debian/Ubuntu, scripts/install-deps) or \"brew install memcached\" (macOS)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-V").CombinedOutput()
	if err != nil {
		return server{}, fmt.Errorf("engine/process: %s -V: %w: %s", path, err, bytes.TrimSpace(out))
	}
	r.memcached = &server{path: path, version: engine.MemcachedVersion(string(out))}
	return *r.memcached, nil
}

// stopMemcached ends a Memcached node's server for Suspend: SIGTERM (it
// has nothing to save), SIGKILL after termGrace.
func (r *Runtime) stopMemcached(ctx context.Context, lbl label, p *proc) error {
	_ = signalGroup(lbl.PID, sigCont) // a paused node must run to exit
	_ = signalGroup(lbl.PID, sigTerm)
	if r.waitExit(ctx, lbl, p, termGrace) {
		return nil
	}
	_ = signalGroup(lbl.PID, sigKill)
	if r.waitExit(context.Background(), lbl, p, killWait) {
		return nil
	}
	return fmt.Errorf("engine/process: node %s (pid %d) still running after SIGKILL", lbl.Name, lbl.PID)
}
