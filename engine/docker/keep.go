package docker

// Nodes that outlive one run of the emulator: Suspend keeps a node's data
// in the emulator's data dir and removes its container; Adopt takes over
// the containers an earlier run left running.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/elasticache-local/elasticache-local/engine"

	"github.com/elasticache-local/elasticache-local/engine/atomicfile"
)

// Kept data lives in DataDir/nodes/<node>/: kept.json (the node's record,
// written first) and dump.rdb (the data). A directory without kept.json is
// not this runtime's (the process runtime's nodes live there too) and is
// left alone.
const (
	keptDirName  = "nodes"
	keptFileName = "kept.json"
	rdbFileName  = "dump.rdb" // the server's default dbfilename
)

// suspendTimeout bounds Suspend when its context has no deadline.
const suspendTimeout = time.Minute

// keptRecord is kept.json: what Adopt, Inspect and List report of a node
// whose container Suspend removed.
type keptRecord struct {
	Name       string            `json:"name"`
	EmulatorID string            `json:"emulatorId"`
	Labels     map[string]string `json:"labels,omitempty"`
	Endpoint   engine.Endpoint   `json:"endpoint"`
	// Container is the id of the container suspended, Node.ID of the node.
	Container   string    `json:"container"`
	SuspendedAt time.Time `json:"suspendedAt"`
}

func (k keptRecord) node(hasData bool) engine.Node {
	return engine.Node{Name: k.Name, ID: k.Container, Endpoint: k.Endpoint, Labels: maps.Clone(k.Labels), HasData: hasData}
}

func (r *Runtime) keptDir(name string) string {
	return filepath.Join(r.dataDir, keptDirName, name)
}

// readKept reads the node's kept.json; fs.ErrNotExist when there is none
// (or no DataDir).
func (r *Runtime) readKept(name string) (keptRecord, error) {
	var k keptRecord
	if r.dataDir == "" {
		return k, fs.ErrNotExist
	}
	path := filepath.Join(r.keptDir(name), keptFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("engine/docker: %s: %w", path, err)
	}
	if k.Labels == nil {
		k.Labels = map[string]string{}
	}
	return k, nil
}

// hasKeptData reports whether Suspend kept data of the node.
func (r *Runtime) hasKeptData(name string) bool {
	if r.dataDir == "" {
		return false
	}
	if _, err := os.Stat(filepath.Join(r.keptDir(name), keptFileName)); err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(r.keptDir(name), rdbFileName))
	return err == nil && fi.Mode().IsRegular()
}

// keptRecords returns the record of every node with kept.json, by name; a
// record that does not parse is there with the node's name only.
func (r *Runtime) keptRecords() (map[string]keptRecord, error) {
	out := make(map[string]keptRecord)
	if r.dataDir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(filepath.Join(r.dataDir, keptDirName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return nil, fmt.Errorf("engine/docker: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || validateName(e.Name()) != nil {
			continue
		}
		k, err := r.readKept(e.Name())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			r.log.Warn("unreadable record of a suspended node", "node", e.Name(), "err", err)
			k = keptRecord{Name: e.Name(), Labels: map[string]string{}}
		}
		k.Name = e.Name()
		out[e.Name()] = k
	}
	return out, nil
}

// dropKept removes the node's kept data (a directory with kept.json only)
// and this runtime's claim on it.
func (r *Runtime) dropKept(name string) error {
	r.mu.Lock()
	delete(r.kept, name)
	r.mu.Unlock()
	if r.dataDir == "" {
		return nil
	}
	dir := r.keptDir(name)
	if _, err := os.Stat(filepath.Join(dir, keptFileName)); err != nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("engine/docker: removing kept data %s: %w", dir, err)
	}
	return nil
}

// Suspend implements engine.Keeper. kept.json is written first, then the
// server gets SHUTDOWN SAVE and until ctx's deadline (suspendTimeout
// without one) to exit; a container still running then, or whose save
// failed, is killed. The dump.rdb the container holds is copied out
// through the API (so the daemon may be remote) into DataDir/nodes/<node>/,
// and every container of the node is removed with its bind-mounted files.
// A node whose container does not run gets a record and keeps whatever
// kept data it has (none once killed). Suspending a suspended node does
// nothing. It needs Options.DataDir.
func (r *Runtime) Suspend(ctx context.Context, name string) error {
	if validateName(name) != nil {
		return fmt.Errorf("%w: %q", engine.ErrNodeNotFound, name)
	}
	if r.dataDir == "" {
		return fmt.Errorf("engine/docker: Suspend of node %s needs Options.DataDir", name)
	}
	unlock := r.locks.Lock(name)
	defer unlock()
	r.peers.forget(name)
	// Removals must finish even when ctx has ended; ctx bounds the save.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	cs, err := r.containers(cctx, name)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		if _, err := r.readKept(name); err != nil {
			return fmt.Errorf("%w: %s", engine.ErrNodeNotFound, name)
		}
		r.mu.Lock()
		r.kept[name] = true
		r.mu.Unlock()
		return nil
	}
	c, err := r.find(cctx, name)
	if err != nil {
		return err
	}
	ep, _ := endpointOf(c)
	spec := nodeOf(c)
	rec := keptRecord{Name: name, EmulatorID: c.Labels[engine.LabelEmulator], Labels: spec.Labels,
		Endpoint: ep, Container: c.ID, SuspendedAt: time.Now().UTC()}
	dir := r.keptDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("engine/docker: %w", err)
	}
	if running(c.State) {
		// No older data may pass for this suspend's. A container that does
		// not run leaves kept data as it is: none after a successful Start,
		// or what an interrupted Suspend copied out.
		if err := os.Remove(filepath.Join(dir, rdbFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("engine/docker: %w", err)
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, keptFileName), strings.NewReader(string(b)+"\n")); err != nil {
		return fmt.Errorf("engine/docker: node %s: writing %s: %w", name, keptFileName, err)
	}
	if running(c.State) {
		r.saveAndExit(ctx, cctx, c, ep)
		if err := r.copyDumpOut(cctx, c.ID, dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			r.log.Warn("suspended node had saved no data", "node", name, "container", c.ID[:12])
		}
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, r.remove(cctx, c.ID))
	}
	if d := r.nodeDir(name); d != "" {
		errs = append(errs, os.RemoveAll(d))
	}
	r.mu.Lock()
	for _, c := range cs {
		delete(r.adopted, c.ID)
	}
	r.kept[name] = true
	r.mu.Unlock()
	return errors.Join(errs...)
}

// saveAndExit has the container's server save its dataset and exit,
// killing the container when that does not happen before ctx's deadline.
// cctx bounds the kill.
func (r *Runtime) saveAndExit(ctx, cctx context.Context, c container.Summary, ep engine.Endpoint) {
	begin := time.Now()
	how := "SHUTDOWN SAVE"
	defer func() {
		r.log.Info("node suspended", "node", c.Labels[LabelNodeName], "container", c.ID[:12], "how", how, "took", time.Since(begin).Round(time.Microsecond))
	}()
	if c.State == container.StatePaused {
		// A frozen server must run to save.
		if err := r.cli.ContainerUnpause(cctx, c.ID); err != nil {
			r.log.Warn("unpausing a node to suspend it", "container", c.ID[:12], "err", err)
		}
	}
	// memcached keeps no data: nothing to save, its container is killed.
	if ctx.Err() == nil && !engine.IsMemcached(c.Labels[engine.LabelEngine]) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, suspendTimeout)
			defer cancel()
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Registered before the SHUTDOWN, so the exit cannot be missed.
		waitC, errC := r.cli.ContainerWait(wctx, c.ID, container.WaitConditionNotRunning)
		waitDone := false // errC answered: the wait ended without an exit
		exited := func(ctx context.Context, d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			if !waitDone {
				select {
				case <-waitC:
					return true
				case <-errC:
					waitDone = true
				case <-t.C:
					return false
				case <-ctx.Done():
					return false
				}
			}
			// The daemon's wait failed: ask it whether the container
			// still runs (gone counts as exited).
			info, err := r.cli.ContainerInspect(ctx, c.ID)
			if cerrdefs.IsNotFound(err) || err == nil && info.State != nil && !info.State.Running {
				return true
			}
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return false
		}
		if r.admin.SaveAndAwaitExit(ctx, ep, exited, r.log, c.Labels[LabelNodeName]) {
			return
		}
	}
	how = "SIGKILL"
	kctx, cancel := context.WithTimeout(cctx, killWait)
	defer cancel()
	waitC, errC := r.cli.ContainerWait(kctx, c.ID, container.WaitConditionNotRunning)
	if err := r.cli.ContainerKill(kctx, c.ID, "KILL"); err != nil {
		r.log.Warn("killing a node being suspended", "container", c.ID[:12], "err", err) // exited meanwhile, most likely
	}
	select {
	case <-waitC:
	case <-errC:
	}
}

// copyDumpOut copies the container's /data/dump.rdb to dir/dump.rdb, whole
// or not at all (fs.ErrNotExist when the container has none).
func (r *Runtime) copyDumpOut(ctx context.Context, id, dir string) error {
	rc, err := r.readFile(ctx, id, rdbFileName)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := atomicfile.Write(filepath.Join(dir, rdbFileName), rc); err != nil {
		return fmt.Errorf("engine/docker: keeping dump.rdb of container %.12s: %w", id, err)
	}
	return nil
}

// Adopt implements engine.Keeper over the containers of this scope and the
// kept data of DataDir. Per node name not this runtime's, the candidate is
// its newest running container (else its newest container, else its kept
// record). An owned running candidate is adopted as it runs (same
// container id) and joined to this runtime's network under its alias if an
// earlier version left it on another, so nodes started now reach it; the
// node's other containers are removed. An owned candidate that does not
// run is returned in Stopped, its containers left for Start to replace.
// Everything else is removed: containers, bind-mounted files and kept
// data. Removals run in parallel. A nil keep owns nothing (Reap); keep is
// called without locks held.
func (r *Runtime) Adopt(ctx context.Context, keep func(engine.Node) bool) (engine.Adoption, error) {
	var out engine.Adoption
	cs, err := r.containers(ctx, "")
	if err != nil {
		return out, err
	}
	kept, err := r.keptRecords()
	if err != nil {
		return out, err
	}
	byName := make(map[string][]container.Summary)
	ownedName := make(map[string]bool)
	for _, c := range cs {
		name := c.Labels[LabelNodeName]
		if r.owns(c) {
			ownedName[name] = true
			continue
		}
		byName[name] = append(byName[name], c)
	}
	names := slices.Sorted(maps.Keys(byName))
	for name := range kept {
		if _, ok := byName[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var (
		victims []victim
		errs    []error
	)
	for _, name := range names {
		r.mu.Lock()
		mine := r.kept[name]
		r.mu.Unlock()
		others := byName[name]
		if mine {
			continue
		}
		if ownedName[name] {
			// Leftovers beside this runtime's own container of the name:
			// its files are the live node's.
			for _, c := range others {
				victims = append(victims, victim{name: name, c: c})
			}
			continue
		}
		cand, ok := candidate(others)
		if ok && cand.State == container.StateCreated && keep != nil && keep(nodeOf(cand)) {
			// Only a node to take over is waited for; one to reap is
			// removed as it is.
			cand = r.settleCreated(ctx, cand)
		}
		n := kept[name].node(false) // names come from containers or records
		if ok {
			n = nodeOf(cand)
		}
		n.HasData = !n.Running && r.hasKeptData(name)
		// A record that does not parse names no endpoint: nothing to own.
		if keep == nil || !ok && kept[name].Endpoint.Port == 0 || !keep(n) {
			for _, c := range others {
				victims = append(victims, victim{name: name, c: c})
			}
			victims = append(victims, victim{name: name, files: true, count: len(others) == 0})
			continue
		}
		r.registerTLS(n) // resumed or running, it serves TLS only
		if !n.Running {
			r.mu.Lock()
			r.kept[name] = true
			r.mu.Unlock()
			out.Stopped = append(out.Stopped, n)
			r.log.Info("adopted stopped node of an earlier run", "node", name, "hasData", n.HasData)
			continue
		}
		r.mu.Lock()
		r.adopted[cand.ID] = true
		r.mu.Unlock()
		out.Running = append(out.Running, n)
		if err := r.joinNetwork(ctx, cand); err != nil {
			errs = append(errs, err)
		}
		r.log.Info("adopted node of an earlier run", "node", name, "emulator", cand.Labels[engine.LabelEmulator],
			"container", cand.ID[:12], "paused", n.Paused)
		for _, c := range others {
			if c.ID != cand.ID {
				victims = append(victims, victim{name: name, c: c})
			}
		}
	}
	n, err := r.removeVictims(ctx, victims)
	out.Reaped = n
	errs = append(errs, err, r.reapNetworks(ctx))
	return out, errors.Join(errs...)
}

// candidate picks the container standing for a node: the newest running
// one, else the newest.
func candidate(cs []container.Summary) (container.Summary, bool) {
	if len(cs) == 0 {
		return container.Summary{}, false
	}
	best := slices.MaxFunc(cs, func(a, b container.Summary) int {
		if running(a.State) != running(b.State) {
			if running(a.State) {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Created, b.Created)
	})
	return best, true
}

// joinNetwork attaches an adopted container to this runtime's network
// under its alias, unless it is attached already (the network's name is
// the scope's, so only containers of earlier versions are not). Joining adds
// an interface; connections through the published port are undisturbed.
func (r *Runtime) joinNetwork(ctx context.Context, c container.Summary) error {
	ep, ok := endpointOf(c)
	if !ok || r.hostNet || c.HostConfig.NetworkMode == network.NetworkHost {
		return nil
	}
	if err := r.ensureNetwork(ctx); err != nil {
		return err
	}
	r.netMu.Lock()
	netID := r.netID
	r.netMu.Unlock()
	if c.NetworkSettings != nil {
		for _, s := range c.NetworkSettings.Networks {
			if s != nil && s.NetworkID == netID {
				return nil
			}
		}
	}
	err := r.cli.NetworkConnect(ctx, netID, c.ID, &network.EndpointSettings{Aliases: []string{alias(ep)}})
	if err != nil && strings.Contains(err.Error(), "already exists in network") {
		// Joined already: a container listed while the daemon was still
		// starting it (see settleCreated) does not show its networks yet.
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine/docker: joining adopted container %.12s to network %s: %w", c.ID, r.network, err)
	}
	return nil
}

// victim is something Adopt removes: a container, or (files) a node's
// bind-mounted and kept files; count marks files that count as a node.
type victim struct {
	name         string
	c            container.Summary
	files, count bool
}

// removeVictims removes victims, reapParallelism at a time, each under its
// node's lock, and returns how many nodes (containers, and kept data
// without a container) went.
func (r *Runtime) removeVictims(ctx context.Context, victims []victim) (int, error) {
	var (
		mu   sync.Mutex
		n    int
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, reapParallelism)
	)
	// Containers first: a node's files go once its containers are gone.
	slices.SortStableFunc(victims, func(a, b victim) int {
		if a.files == b.files {
			return 0
		}
		if a.files {
			return 1
		}
		return -1
	})
	for i, v := range victims {
		if v.files && (i == 0 || !victims[i-1].files) {
			wg.Wait()
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			unlock := r.locks.Lock(v.name)
			defer unlock()
			var err error
			counted := false
			if v.files {
				if d := r.nodeDir(v.name); d != "" {
					err = os.RemoveAll(d)
				}
				if _, statErr := os.Stat(filepath.Join(r.keptDir(v.name), keptFileName)); r.dataDir != "" && statErr == nil {
					err = errors.Join(err, r.dropKept(v.name))
					counted = v.count
					r.log.Info("removed kept data of a node nothing owns", "node", v.name)
				}
			} else {
				err = r.remove(ctx, v.c.ID)
				counted = true
				if err == nil {
					r.log.Info("reaped node of another emulator run", "node", v.name, "emulator", v.c.Labels[engine.LabelEmulator],
						"container", v.c.ID[:12], "state", v.c.State)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if counted {
				n++
			}
		}()
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

// createdGrace is how long Adopt waits for a container still in the
// "created" state: an earlier run killed while starting it leaves the
// daemon finishing the start, and the node must be taken over running,
// not replaced while it comes up.
const createdGrace = 5 * time.Second

// settleCreated waits, up to createdGrace, for a created container to
// start or exit, and returns it with its state then.
func (r *Runtime) settleCreated(ctx context.Context, c container.Summary) container.Summary {
	ctx, cancel := context.WithTimeout(ctx, createdGrace)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return c // never started: the earlier run died before asking
		case <-tick.C:
		}
		info, err := r.cli.ContainerInspect(ctx, c.ID)
		if err != nil || info.State == nil {
			return c
		}
		if info.State.Status != container.StateCreated {
			c.State = info.State.Status
			return c
		}
	}
}
