package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/elasticache-local/elasticache-local/engine"
)

// Stop implements engine.Runtime: SHUTDOWN NOSAVE on the host endpoint (a
// clean exit clients see as a closed connection), then the container is
// removed by force with its anonymous volumes, which kills whatever still
// runs (a hung or paused server). There is no SIGTERM grace step: with
// persistence off a server has nothing to flush. The bind-mounted data
// directory and the node's kept data (Suspend) are removed last; Stop of a
// suspended node removes its kept data.
func (r *Runtime) Stop(ctx context.Context, name string) error {
	if validateName(name) != nil {
		return fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	r.peers.forget(name)
	// Listing and removal must finish even when ctx has ended (an emulator
	// shutting down on an expired deadline); ctx only bounds SHUTDOWN.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	cs, err := r.containers(cctx, name)
	if err != nil {
		return err
	}
	dir := r.nodeDir(name)
	if len(cs) == 0 {
		if k, err := r.readKept(name); err == nil {
			r.admin.UseTLS(k.Endpoint, false)
			r.admin.UseMemcached(k.Endpoint, false)
			return r.dropKept(name) // a suspended node
		}
		if dir != "" {
			if _, err := os.Stat(dir); err == nil {
				// Files of a start that failed half-way.
				return os.RemoveAll(dir)
			}
		}
		return fmt.Errorf("%w: %s", engine.ErrNodeNotFound, name)
	}
	begin := time.Now()
	var errs []error
	for _, c := range cs {
		how := "removed"
		if c.State == container.StateRunning && ctx.Err() == nil {
			if ep, ok := endpointOf(c); ok {
				sctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
				if r.admin.Shutdown(sctx, ep) == nil {
					how = "SHUTDOWN"
				}
				cancel()
			}
		}
		r.keepLog(cctx, name, c.ID)
		if err := r.remove(cctx, c.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		delete(r.adopted, c.ID)
		r.mu.Unlock()
		if ep, ok := endpointOf(c); ok {
			r.admin.UseTLS(ep, false)
			r.admin.UseMemcached(ep, false)
		}
		r.log.Info("node stopped", "node", name, "container", c.ID[:12], "how", how, "took", time.Since(begin).Round(time.Microsecond))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("engine/docker: removing %s: %w", dir, err)
		}
	}
	return r.dropKept(name)
}

// remove force-removes a container and its anonymous volumes; a container
// that is already gone is fine.
func (r *Runtime) remove(ctx context.Context, id string) error {
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress") {
		// A removal an earlier run asked for before it was killed: the
		// daemon finishes it; wait for that.
		err = r.waitRemoved(ctx, id)
	}
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("engine/docker: removing container %.12s: %w", id, err)
	}
	return nil
}

// waitRemoved polls until the container is gone or ctx ends.
func (r *Runtime) waitRemoved(ctx context.Context, id string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := r.cli.ContainerInspect(ctx, id); err != nil {
			return err // NotFound once it is gone
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the removal in progress: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func endpointOf(c container.Summary) (engine.Endpoint, bool) {
	host, p, err := net.SplitHostPort(c.Labels[LabelEndpoint])
	if err != nil {
		return engine.Endpoint{}, false
	}
	n, err := strconv.Atoi(p)
	return engine.Endpoint{Host: host, Port: n}, err == nil
}

// runningContainer returns the node's container if it is running.
func (r *Runtime) runningContainer(ctx context.Context, name string) (container.Summary, error) {
	if validateName(name) != nil {
		return container.Summary{}, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	c, err := r.find(ctx, name)
	if err != nil {
		return c, err
	}
	if !running(c.State) {
		return c, fmt.Errorf("engine/docker: node %s is not running (container %s)", name, c.State)
	}
	return c, nil
}

// Kill implements engine.FaultInjector: SIGKILL to the container, then it
// waits (bounded by ctx and killWait) until Docker reports it exited, so an
// Inspect right after Kill reports Running=false. The container and its
// files stay until Stop.
func (r *Runtime) Kill(ctx context.Context, name string) error {
	c, err := r.runningContainer(ctx, name)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	// Register the wait before the kill, so the exit cannot be missed.
	waitC, errC := r.cli.ContainerWait(wctx, c.ID, container.WaitConditionNotRunning)
	if err := r.cli.ContainerKill(ctx, c.ID, "KILL"); err != nil {
		return fmt.Errorf("engine/docker: kill node %s: %w", name, err)
	}
	select {
	case <-waitC:
	case err := <-errC:
		return fmt.Errorf("engine/docker: node %s: waiting for the container to exit: %w", name, err)
	}
	r.peers.forget(name)
	r.log.Info("node killed", "node", name, "container", c.ID[:12])
	return nil
}

// Pause implements engine.FaultInjector with docker pause (cgroup freezer):
// the published port still accepts connections (docker-proxy forwards them
// into the container's network namespace) but the server answers nothing.
func (r *Runtime) Pause(ctx context.Context, name string) error {
	c, err := r.runningContainer(ctx, name)
	if err != nil {
		return err
	}
	if err := r.cli.ContainerPause(ctx, c.ID); err != nil {
		return fmt.Errorf("engine/docker: pause node %s: %w", name, err)
	}
	r.log.Info("node paused", "node", name, "container", c.ID[:12])
	return nil
}

// Resume implements engine.FaultInjector with docker unpause.
func (r *Runtime) Resume(ctx context.Context, name string) error {
	c, err := r.runningContainer(ctx, name)
	if err != nil {
		return err
	}
	if err := r.cli.ContainerUnpause(ctx, c.ID); err != nil {
		return fmt.Errorf("engine/docker: resume node %s: %w", name, err)
	}
	r.log.Info("node resumed", "node", name, "container", c.ID[:12])
	return nil
}

// CopyFrom implements engine.FileReader with the API's archive endpoint
// (docker cp), which works for stopped containers and remote daemons: the
// tar stream is unpacked to the single file it holds.
func (r *Runtime) CopyFrom(ctx context.Context, name, file string) (io.ReadCloser, error) {
	if validateName(name) != nil {
		return nil, fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	if !fs.ValidPath(file) || file == "." {
		return nil, fmt.Errorf("engine/docker: node %s: invalid path %q (want a relative path inside the node's data directory)", name, file)
	}
	c, err := r.find(ctx, name)
	if err != nil {
		return nil, err
	}
	rc, err := r.readFile(ctx, c.ID, file)
	if err != nil {
		return nil, fmt.Errorf("engine/docker: node %s: %w", name, err)
	}
	return rc, nil
}

// readFile streams the regular file dataPath/file of container id.
func (r *Runtime) readFile(ctx context.Context, id, file string) (io.ReadCloser, error) {
	body, _, err := r.cli.CopyFromContainer(ctx, id, path.Join(dataPath, file))
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", file, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("copying %s: %w", file, err)
	}
	tr := tar.NewReader(body)
	hdr, err := tr.Next()
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		body.Close()
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	return struct {
		io.Reader
		io.Closer
	}{tr, body}, nil
}

// reapParallelism bounds concurrent container removals in Reap.
const reapParallelism = 8

// Reap implements engine.Reaper: it force-removes every container in this
// runtime's scope that is not its own (its emulator id, or adopted): nodes
// of an earlier run, or of another emulator sharing the data dir; their
// bind-mounted files and kept data, unless a container of this runtime has
// the name; kept data no container has, unless this runtime suspended it;
// and then the networks of other emulator ids no container uses.
// Containers carry their labels from creation, so those in any state are
// found, including ones created but never started by a run killed in
// between. It returns how many nodes it removed (containers, and kept data
// without one). The emulator calls it at a fresh start and once more at
// shutdown (a create the daemon finished after the start-up Reap). It is
// Adopt with nothing owned.
func (r *Runtime) Reap(ctx context.Context) (int, error) {
	a, err := r.Adopt(ctx, nil)
	return a.Reaped, err
}

// reapNetworks removes the networks of other emulator ids in our scope that
// no container uses any more.
func (r *Runtime) reapNetworks(ctx context.Context) error {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelScope+"="+r.scope),
		filters.Arg("label", engine.LabelEmulator),
	)})
	if err != nil {
		return fmt.Errorf("engine/docker: listing networks: %w", err)
	}
	var errs []error
	for _, n := range nets {
		if n.Labels[engine.LabelEmulator] == r.id || n.Name == r.network {
			continue // ours; the scope's network is every run's
		}
		errs = append(errs, r.removeNetwork(ctx, n.ID))
	}
	return errors.Join(errs...)
}
