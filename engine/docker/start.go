package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/elasticache-local/elasticache-local/engine"
	"github.com/elasticache-local/elasticache-local/engine/internal/keyed"
)

// Start implements engine.Runtime. It creates and starts the node's
// container and returns once the server answers PING on the host endpoint.
// If the container exits or ctx ends first, the container is removed and the
// error carries the tail of its log. A stopped container of the same node is
// replaced; a running one gives engine.ErrNodeExists. With NodeSpec.Resume
// and data Suspend kept, the kept dump.rdb seeds the node as InitialRDB
// would; the kept data is removed once the node runs (also without Resume),
// and stays when the start fails.
func (r *Runtime) Start(ctx context.Context, spec engine.NodeSpec) (engine.Node, error) {
	if err := validateName(spec.Name); err != nil {
		return engine.Node{}, err
	}
	if spec.Resume && spec.InitialRDB != nil {
		return engine.Node{}, fmt.Errorf("engine/docker: node %s: NodeSpec.Resume and InitialRDB exclude each other", spec.Name)
	}
	ep := spec.Endpoint
	if net.ParseIP(ep.Host) == nil || ep.Port <= 0 || ep.Port > 65535 {
		return engine.Node{}, fmt.Errorf("engine/docker: node %s: endpoint %q must be an IP address and a port (it is published on the host)", spec.Name, ep.Addr())
	}
	if err := engine.CheckTLSSpec(spec); err != nil {
		return engine.Node{}, err
	}
	image, entrypoint, err := r.imageFor(spec.Engine, spec.EngineVersion)
	if err != nil {
		return engine.Node{}, err
	}
	var replicaOf *engine.Endpoint
	if spec.ReplicaOf != nil {
		peer := r.PeerEndpoint(*spec.ReplicaOf)
		replicaOf = &peer
	}
	args, err := r.argsFor(spec, replicaOf)
	if err != nil {
		return engine.Node{}, err
	}
	labels, err := r.labels(spec)
	if err != nil {
		return engine.Node{}, err
	}

	unlock := r.locks.Lock(spec.Name)
	defer unlock()
	tr := r.tracer(spec.Name)
	r.peers.forget(spec.Name)
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return engine.Node{}, errors.New("engine/docker: runtime is closed")
	}
	if err := r.replaceStopped(ctx, spec.Name); err != nil {
		return engine.Node{}, err
	}
	tr.step("replaceStopped")
	if !r.hostNet {
		if err := r.ensureNetwork(ctx); err != nil {
			return engine.Node{}, err
		}
		tr.step("ensureNetwork")
	}
	resume := spec.Resume && r.hasKeptData(spec.Name)
	if resume {
		f, err := os.Open(filepath.Join(r.keptDir(spec.Name), rdbFileName))
		if err != nil {
			return engine.Node{}, fmt.Errorf("engine/docker: node %s: kept data: %w", spec.Name, err)
		}
		defer f.Close()
		spec.InitialRDB = f
	}
	dir := r.nodeDir(spec.Name)
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return engine.Node{}, fmt.Errorf("engine/docker: clearing %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return engine.Node{}, fmt.Errorf("engine/docker: %w", err)
		}
		if spec.InitialRDB != nil {
			if err := keyed.WriteFile(filepath.Join(dir, "dump.rdb"), spec.InitialRDB); err != nil {
				os.RemoveAll(dir)
				return engine.Node{}, fmt.Errorf("engine/docker: seeding %s: %w", spec.Name, err)
			}
		}
		if err := writeFiles(dir, engine.TLSFiles(spec)); err != nil {
			os.RemoveAll(dir)
			return engine.Node{}, fmt.Errorf("engine/docker: node %s: %w", spec.Name, err)
		}
	}

	started := time.Now()
	cfg := &container.Config{
		Image:        image,
		Entrypoint:   []string{entrypoint},
		Cmd:          args,
		Labels:       labels,
		ExposedPorts: nat.PortSet{},
		WorkingDir:   dataPath,
	}
	hc := &container.HostConfig{PortBindings: nat.PortMap{}}
	if r.hostNet {
		hc.NetworkMode = network.NetworkHost // the server binds the endpoint itself
	} else {
		for inside, host := range published(spec) {
			cfg.ExposedPorts[port(inside)] = struct{}{}
			hc.PortBindings[port(inside)] = []nat.PortBinding{{HostIP: host.Host, HostPort: strconv.Itoa(host.Port)}}
		}
	}
	if dir != "" {
		cfg.User = r.user
		hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: dataPath}}
	}
	id, err := r.create(ctx, cfg, hc, alias(ep), containerName(r.id, spec.Name))
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return engine.Node{}, fmt.Errorf("engine/docker: node %s: %w", spec.Name, err)
	}
	tr.step("create")
	// From here on a failure removes the container and its files.
	fail := func(err error, withLog bool) (engine.Node, error) {
		tail := ""
		if withLog {
			tail = "\n--- container log (tail) ---\n" + r.logTail(id, 20)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := r.remove(cctx, id); rerr != nil {
			r.log.Error("removing a container that failed to start", "node", spec.Name, "container", id, "err", rerr)
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
		r.admin.UseTLS(ep, false)
		r.admin.UseMemcached(ep, false)
		return engine.Node{}, fmt.Errorf("engine/docker: node %s (container %.12s, image %s) did not start on %s: %w%s",
			spec.Name, id, image, ep.Addr(), err, tail)
	}
	if spec.InitialRDB != nil && dir == "" {
		if err := r.copyInto(ctx, id, "dump.rdb", spec.InitialRDB); err != nil {
			return fail(fmt.Errorf("seeding dump.rdb: %w", err), false)
		}
	}
	if files := engine.TLSFiles(spec); len(files) > 0 && dir == "" {
		if err := r.copyFilesInto(ctx, id, files); err != nil {
			return fail(fmt.Errorf("copying the TLS files: %w", err), false)
		}
	}
	tr.step("copy")
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fail(err, true)
	}
	tr.step("start")
	// The admin's connections to the node (the readiness wait's first) use
	// TLS exactly when it serves TLS.
	r.admin.UseTLS(ep, spec.TLS != nil)
	r.admin.UseMemcached(ep, engine.IsMemcached(spec.Engine))
	if err := r.waitReady(ctx, id, ep); err != nil {
		return fail(err, true)
	}
	tr.step("ready")
	if spec.Cluster && spec.InitialRDB != nil { // a resume too
		// Loading keys made the fresh cluster node claim their slots.
		if err := r.admin.ClusterDropSlots(ctx, ep); err != nil {
			return fail(err, false)
		}
	}
	if err := r.dropKept(spec.Name); err != nil {
		// The node runs with its data: failing the start over a leftover
		// file would take it down for less.
		r.log.Warn("removing kept data of a started node", "node", spec.Name, "err", err)
	}
	r.log.Info("node started", "node", spec.Name, "addr", ep.Addr(), "container", id[:12], "image", image,
		"replicaOf", replicaOfAttr(replicaOf), "resumed", resume, "took", time.Since(started).Round(time.Microsecond))
	return engine.Node{Name: spec.Name, ID: id, Endpoint: ep, Labels: engine.NodeLabels(spec), Running: true}, nil
}

func port(p int) nat.Port { return nat.Port(strconv.Itoa(p) + "/tcp") }

func replicaOfAttr(ep *engine.Endpoint) string {
	if ep == nil {
		return ""
	}
	return ep.Addr()
}

// labels returns the container labels of spec.
func (r *Runtime) labels(spec engine.NodeSpec) (map[string]string, error) {
	specLabels := engine.NodeLabels(spec) // LabelTLS too
	l := make(map[string]string, len(specLabels)+5)
	keys := make([]string, 0, len(specLabels))
	for k, v := range specLabels {
		if strings.HasPrefix(k, labelPrefix) {
			return nil, fmt.Errorf("engine/docker: node %s: label %q uses the runtime's reserved prefix %s", spec.Name, k, labelPrefix)
		}
		l[k] = v
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	// The runtime's own labels win over spec labels of the same key.
	l[engine.LabelEmulator] = r.id
	l[LabelScope] = r.scope
	l[LabelNodeName] = spec.Name
	l[LabelEndpoint] = spec.Endpoint.Addr()
	l[LabelSpecKeys] = string(b)
	return l, nil
}

// replaceStopped removes containers of the node that are not running (a
// killed or crashed node being restarted) and reports ErrNodeExists for a
// running one. The caller holds the node's lock.
func (r *Runtime) replaceStopped(ctx context.Context, name string) error {
	cs, err := r.containers(ctx, name)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if running(c.State) {
			return fmt.Errorf("%w: %s (container %.12s on %s)", engine.ErrNodeExists, name, c.ID, c.Labels[LabelEndpoint])
		}
	}
	for _, c := range cs {
		if err := r.remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// create creates the container. A missing image gives ErrImageNotFound; a
// missing network (removed behind our back, e.g. by another emulator's Reap
// or Close) is re-created once. The container joins the network, by id,
// under the network alias given.
func (r *Runtime) create(ctx context.Context, cfg *container.Config, hc *container.HostConfig, netAlias, name string) (string, error) {
	for attempt := 0; ; attempt++ {
		nc := &network.NetworkingConfig{}
		if !r.hostNet {
			r.netMu.Lock()
			netID := r.netID
			r.netMu.Unlock()
			nc.EndpointsConfig = map[string]*network.EndpointSettings{netID: {Aliases: []string{netAlias}}}
		}
		resp, err := r.cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
		if err == nil {
			return resp.ID, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return "", err
		}
		if _, ierr := r.cli.ImageInspect(ctx, cfg.Image); cerrdefs.IsNotFound(ierr) {
			return "", fmt.Errorf("%w: %s is not present on the Docker host and the runtime never pulls; "+
				"build the offline images with scripts/build-offline-images, pull %s, or map the engine to another image (Options.Images)",
				ErrImageNotFound, cfg.Image, cfg.Image)
		}
		if attempt > 0 || r.hostNet {
			return "", err
		}
		r.netMu.Lock()
		r.netID = ""
		r.netMu.Unlock()
		if nerr := r.ensureNetwork(ctx); nerr != nil {
			return "", errors.Join(err, nerr)
		}
	}
}

// waitReady polls PING on the host endpoint until it answers, failing at
// once when the container exits.
func (r *Runtime) waitReady(ctx context.Context, id string, ep engine.Endpoint) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waitC, errC := r.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	var exited error
	alive := func(context.Context, engine.Endpoint) error {
		select {
		case res := <-waitC:
			exited = engine.Permanent(fmt.Errorf("container exited with status %d", res.StatusCode))
		case <-errC:
			// The wait request failed: exits are no longer detected early,
			// the PING deadline still bounds the start.
		default:
		}
		return exited
	}
	return engine.WaitReady(ctx, ep, alive, r.admin.Pings)
}

// logTail returns the last n lines of the container's output.
func (r *Runtime) logTail(id string, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := stdcopy.StdCopy(&b, &b, io.LimitReader(rc, 64<<10)); err != nil && b.Len() == 0 {
		return "(no log: " + err.Error() + ")"
	}
	return strings.TrimRight(b.String(), "\n")
}

// keepLog keeps the end of a container's output before it is removed
// (engine.LogKeeper), as the process runtime keeps a node's redis.log: a
// rebuilt node's previous log stays readable. Failing to keep it only warns.
func (r *Runtime) keepLog(ctx context.Context, name, id string) {
	if r.logs.Dir == "" {
		return
	}
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err == nil {
		pr, pw := io.Pipe()
		go func() { _, err := stdcopy.StdCopy(pw, pw, rc); pw.CloseWithError(err) }()
		err = r.logs.Keep(name, pr)
		pr.Close()
		rc.Close()
	}
	if err != nil {
		r.log.Warn("could not keep the log of a node", "node", name, "container", id[:min(12, len(id))], "err", err)
	}
}

// imageFor picks the image and server binary for an engine and version.
func (r *Runtime) imageFor(eng, version string) (image, entrypoint string, err error) {
	eng = strings.ToLower(eng)
	switch eng {
	case "", "redis":
		eng, entrypoint = "redis", "redis-server"
	case "valkey":
		entrypoint = "valkey-server"
	case engine.EngineMemcached:
		entrypoint = "memcached"
	default:
		return "", "", fmt.Errorf("engine/docker: unsupported engine %q (want redis, valkey or memcached)", eng)
	}
	keys := []string{eng}
	if parts := strings.SplitN(version, ".", 3); parts[0] != "" {
		keys = append([]string{eng + ":" + parts[0]}, keys...)
		if len(parts) > 1 {
			keys = append([]string{eng + ":" + parts[0] + "." + parts[1]}, keys...)
		}
	}
	for _, k := range keys {
		if img := r.images[k]; img != "" {
			return img, entrypoint, nil
		}
	}
	return "", "", fmt.Errorf("engine/docker: no image for engine %s %s", eng, version)
}

// reservedDirectives are set by the runtime and may not come from
// NodeSpec.Config: they decide where the node listens, where its files go
// and how replicas find and announce each other.
var reservedDirectives = map[string]bool{
	"bind": true, "port": true, "dir": true, "daemonize": true,
	"pidfile": true, "logfile": true, "include": true, "unixsocket": true,
	"replicaof": true, "slaveof": true, "supervised": true,
	"replica-announce-ip": true, "slave-announce-ip": true,
	"replica-announce-port": true, "slave-announce-port": true,
	"bind-source-addr": true,
	// The emulator's own ACL user and the credentials replicas use
	// (engine.Admin.ServerDirectives); an aclfile would reject them.
	"user": true, "masteruser": true, "masterauth": true, "aclfile": true,
	// Suspend and Resume keep a node's data in its dump.rdb.
	"dbfilename": true,
}

// published maps the ports a node's server listens on inside its
// container to where the host reaches them: the endpoint's port, or for a
// preferred node (plaintext on the port, TLS on the next one inside) its
// engine.PreferredEndpoints, the endpoint itself being the caller's
// demultiplexer.
func published(spec engine.NodeSpec) map[int]engine.Endpoint {
	ep := spec.Endpoint
	if spec.TLS == nil || !spec.TLS.Preferred {
		return map[int]engine.Endpoint{ep.Port: ep}
	}
	plain, tls := engine.PreferredEndpoints(ep)
	return map[int]engine.Endpoint{ep.Port: plain, ep.Port + 1: tls}
}

var directiveRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// Admin implements engine.Runtime: the credentials every container of this
// runtime accepts for the control plane.
func (r *Runtime) Admin() engine.Admin { return r.admin }

// serverArgs is the server's command line: the same settings the process
// runtime writes to redis.conf, as --directive value arguments (7.0+ servers
// quote each argument, so values may hold spaces or be empty), including the
// admin user's directives.
func serverArgs(spec engine.NodeSpec, replicaOf *engine.Endpoint, admin engine.Admin, hostNet bool) ([]string, error) {
	if spec.Cluster && replicaOf != nil {
		return nil, fmt.Errorf("engine/docker: node %s: a cluster node cannot start as a replica (NodeSpec.ReplicaOf): make it one with CLUSTER REPLICATE (engine.Admin.ClusterReplicate)", spec.Name)
	}
	p := strconv.Itoa(spec.Endpoint.Port)
	var args []string
	// The same port inside as on the host, so the internal and the
	// published endpoint differ by host only; a TLS node's is its TLS port
	// (no plaintext listener), its files in /data (copyFilesInto). A
	// preferred node serves plaintext there, so replicas that reach it by
	// alias replicate in plaintext (TLSSpec.PlainReplication), and TLS on
	// the next port (see published).
	ports := engine.PortDirectives(spec)
	if spec.TLS != nil && spec.TLS.Preferred && !hostNet {
		ports = [][]string{{"port", p}, {"tls-port", strconv.Itoa(spec.Endpoint.Port + 1)}}
	}
	for _, d := range ports {
		args = append(append(args, "--"+d[0]), d[1:]...)
	}
	for _, d := range engine.TLSDirectives(spec, tlsPath(engine.TLSCertFile), tlsPath(engine.TLSKeyFile), tlsPath(engine.TLSCAFile)) {
		args = append(append(args, "--"+d[0]), d[1:]...)
	}
	bind := "0.0.0.0"
	if hostNet {
		bind = spec.Endpoint.Host // on the host's network: the endpoint itself
	}
	args = append(args,
		"--bind", bind,
		"--protected-mode", "no",
		"--dir", dataPath,
		"--save", "",
		"--appendonly", "no",
		// Disk-based syncs stream at once (see engine/process/conf.go).
		"--repl-diskless-sync", "no",
		"--repl-diskless-sync-delay", "0",
		"--hz", engine.HzValue(engine.IdleHz), "--dynamic-hz", "yes", // see engine.SyncHz
		// A primary's INFO replication then lists the replica at its host
		// endpoint, not at its bridge address.
		"--replica-announce-ip", spec.Endpoint.Host,
		"--replica-announce-port", p,
	)
	// The control plane and replicas authenticate as the admin user, so
	// whatever a user does to the default user neither locks the emulator
	// out nor breaks replication.
	for _, d := range admin.ServerDirectives() {
		args = append(append(args, "--"+d[0]), d[1:]...)
	}
	users, err := engine.UserDirectives(spec.Users)
	if err != nil {
		return nil, fmt.Errorf("engine/docker: node %s: %w", spec.Name, err)
	}
	for _, d := range users {
		args = append(append(args, "--"+d[0]), d[1:]...)
	}
	if replicaOf != nil {
		args = append(args, "--replicaof", replicaOf.Host, strconv.Itoa(replicaOf.Port))
	}
	// Cluster mode: nodes.conf in /data (a new container, Resume included,
	// starts without one). The nodes meet and gossip over the scope network
	// at their container IPs (ClusterAddr), each learning its own from the
	// bus, and the bus port (port+10000) needs no publishing. Clients on the
	// host must be sent to the published endpoint instead: the node
	// announces its host IP as its hostname and has CLUSTER SLOTS, CLUSTER
	// SHARDS, MOVED and ASK prefer it; the port needs no announcing, it is
	// the same inside and out.
	for _, d := range engine.ClusterDirectives(spec, dataPath+"/"+engine.ClusterConfigFile) {
		args = append(append(args, "--"+d[0]), d[1:]...)
	}
	switch {
	case spec.Cluster && hostNet:
		// Every node has the host address of its own, peers included.
		args = append(args, "--cluster-announce-ip", spec.Endpoint.Host)
	case spec.Cluster:
		args = append(args,
			"--cluster-announce-hostname", spec.Endpoint.Host,
			"--cluster-preferred-endpoint-type", "hostname")
	}
	keys := make([]string, 0, len(spec.Config))
	for k := range spec.Config {
		if !directiveRE.MatchString(k) {
			return nil, fmt.Errorf("engine/docker: invalid config directive %q", k)
		}
		if reservedDirectives[strings.ToLower(k)] || engine.ReservedClusterDirective(k) || engine.ReservedTLSDirective(k) {
			return nil, fmt.Errorf("engine/docker: config directive %q is managed by the runtime", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--"+strings.ToLower(k), spec.Config[k])
	}
	return args, nil
}

// copyInto writes src as dataPath/name into a created container. A tar
// header needs the size first, so src is spooled to a temporary file.
func (r *Runtime) copyInto(ctx context.Context, id, name string, src io.Reader) error {
	tmp, err := os.CreateTemp("", "elasticache-local-seed-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, src)
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()})
		if err == nil {
			_, err = io.Copy(tw, tmp)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	err = r.cli.CopyToContainer(ctx, id, dataPath, pr, container.CopyToContainerOptions{})
	pr.CloseWithError(errors.New("copy finished")) // unblocks the writer if the API call failed early
	return err
}
