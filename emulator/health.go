package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// The health monitor checks the nodes and starts a recovery for the ones
// that are dead or hung. It has to stay cheap with hundreds of nodes on a
// small machine: a node that answers is checked only every quietCheckEvery
// intervals, all of them together in one round (a beat), and the monitor
// sleeps in between: each wake-up of the emulator costs more CPU than the
// PINGs it sends. Where the runtime reads its nodes' pulse, a check on most
// beats is the pulse alone, which wakes no node (health_pulse.go). A change of state (a node made available, a node being
// replaced) wakes it to pick the change up at once; the monitor also holds
// an idle connection to each node that the node's exit closes at once, and
// the runtime reports its nodes' exits, either of which starts a round
// right away, so a crashed node is still found dead within moments; a node
// that fails its checks is checked every interval until it answers or is
// replaced. And it
// must not mistake an overloaded machine for dead nodes: when the emulator
// itself does not get the CPU to run its checks on time, or most nodes miss
// a check at once, the nodes are not what failed, and replacing them (each
// one a SIGKILL, an empty restart and a full sync) would only make it worse.
const (
	// quietCheckEvery is how many health intervals apart a node that
	// answers is checked: every second at the default 100 ms, which is what
	// a hung node's detection adds to its misses. All answering nodes are
	// PINGed in the same round, so an idle emulator wakes once a beat.
	quietCheckEvery = 10
	// A round is starved when at least starvedMinMisses nodes and at least
	// half of the checked ones missed their check (or answered only after
	// half the timeout): one hung node, or a few, still count.
	starvedMinMisses = 4
	// Up to inspectEach failed checks in a round the runtime is asked about
	// each node; past that one List answers for all (one Docker API call
	// instead of one per container).
	inspectEach = 4
	// exitSettle is how long after its watch connection closed a node may
	// still be reported running before it is PINGed (see awaitExit).
	exitSettle = 50 * time.Millisecond
	// refusalDialTimeout bounds the dial that tells an exited node (its
	// address refuses) from one that still runs, before the runtime is
	// asked: a refusal comes at once, a live node's handshake too.
	refusalDialTimeout = 20 * time.Millisecond
	// runtimeStateTimeout bounds the runtime's answer about failed nodes.
	runtimeStateTimeout = 2 * time.Second
	// starvedWarnEvery rate-limits the warning about uncounted rounds.
	starvedWarnEvery = 10 * time.Second
	// scriptSilence is how long a node that runs, and is not frozen, may
	// stay silent before its missed checks count: Redis answers nothing at
	// all while a Lua script or function runs until lua-time-limit
	// (5000 ms, fixed on ElastiCache), and only then BUSY. A hung server
	// that is not frozen is still recovered, that much later; a frozen one
	// (SIGSTOP, docker pause) at once.
	scriptSilence = 5*time.Second + time.Second
)

// healthMonitor is the state of the monitor loop. It is used only by that
// loop's goroutine, so it needs no lock.
type healthMonitor struct {
	e *Emulator
	// probes hold one open, authenticated connection per checked node, by
	// runtime name: a PING on it costs a write and a read, where a new
	// connection and client per check cost several times the CPU of the
	// node answering it.
	probes map[string]*probe
	// wake starts a round at once: a watch connection closed, the runtime
	// reported an exit, or the state changed (Emulator.healthWake).
	wake chan struct{}
	// exits are the nodes the runtime reported exited (see
	// engine.ExitReporter), written by the runtime's goroutines.
	exits exitReports
	// due is when the round the monitor waits for should start, to tell a
	// round that started late (the emulator did not get the CPU) from one
	// on time.
	due time.Time
	// beat is when every answering node is next due for its check.
	beat time.Time
	// pressing is set by a round that leaves a node failing or with its
	// watch connection closed: the next round is an interval away, not a
	// beat.
	pressing bool
	// uncounted rounds since the last warning, and when that was.
	uncounted  int
	lastWarned time.Time
}

// probe is the health-check connection of one node.
type probe struct {
	ep     engine.Endpoint
	client *engine.Probe
	// watch is an idle connection to the node on which nothing is ever
	// sent (engine.Watch): closed is set when the node closes it (it
	// exited, or a user killed the connection), which makes the node due
	// for a check in a round that starts at once.
	watch  io.Closer
	closed atomic.Bool
	// lastCheck is when the node was last checked (zero: never, it is
	// new).
	lastCheck time.Time
	// pulse reads the node's pulse (engine.Pulser), nil when its runtime
	// has none or it could not be read; beats is its reading after the
	// node last answered, and pinged when that answer was to a PING.
	pulse  *engine.Pulse
	beats  uint64
	pinged time.Time
	// listenChecked is when the node was last checked for accepting new
	// connections (checkListening).
	listenChecked time.Time
	// failingSince is when the node's current run of failed checks began
	// (zero while it answers): for an unplanned failover, how long its
	// replicas may have been cut off without having missed any write.
	failingSince time.Time
}

// exitReports collects the names of the nodes the runtime reports exited
// until the monitor's next round takes them.
type exitReports struct {
	mu    sync.Mutex
	names []string
	// notify is signalled on every report, for a round that waits for a
	// node's exit to show (awaitExit).
	notify chan struct{}
}

func (x *exitReports) add(name string) {
	x.mu.Lock()
	x.names = append(x.names, name)
	x.mu.Unlock()
	select {
	case x.notify <- struct{}{}:
	default:
	}
}

func (x *exitReports) take() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	names := x.names
	x.names = nil
	return names
}

// errNodeGone is the check result of a node the runtime reports not running.
var errNodeGone = errors.New("the runtime reports the node not running")

// checkResult is the outcome of one node's check in a round.
type checkResult struct {
	err     error         // nil when the node answered (any reply)
	rtt     time.Duration // time to the answer
	gone    bool          // the runtime reports the node not running (or unknown)
	refused bool          // the node's address refused the connection
	// running is true when the runtime reports the node running and not
	// frozen, so that silence may be a long script (see scriptSilence).
	running bool
}

// monitorHealth runs the health checks until ctx ends: a round every beat
// (quietCheckEvery HealthIntervals), every HealthInterval while a node
// fails, and one at once when woken (a watch connection closed, an exit
// reported, a change of state).
func (e *Emulator) monitorHealth(ctx context.Context) {
	m := &healthMonitor{e: e, probes: make(map[string]*probe), wake: e.healthWake}
	m.exits.notify = make(chan struct{}, 1)
	defer m.closeProbes(nil)
	if rep, ok := e.opts.Runtime.(engine.ExitReporter); ok {
		// A crashed node is recovered the moment its runtime sees it
		// exit; the checks remain for hung nodes (and for nodes the
		// runtime cannot watch, whose watch connection closes instead).
		rep.ReportExits(func(name string) {
			m.exits.add(name)
			m.signal()
		})
		defer rep.ReportExits(nil)
	}
	// One timer for every node: the next round is an interval away while
	// a node fails, else at the next beat.
	wait := e.opts.HealthInterval
	m.beat = time.Now().Add(wait) // the first round is a beat
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		m.due = time.Now().Add(wait)
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
			woken = true
		}
		m.round(ctx, woken)
		wait = e.opts.HealthInterval
		if !m.pressing {
			wait = max(0, time.Until(m.beat))
		}
		timer.Reset(wait) // a tick that came while woken is dropped (Go 1.23 timers)
	}
}

// round checks, in parallel, the serving nodes that are due (all of them
// at a beat; new ones, those whose watch connection closed, and failing
// ones an interval after their last check) and starts a recovery for each
// one that is dead or missed HealthMisses checks in a row. woken says a
// watch connection, an exit or a change of state started it before its
// time.
func (m *healthMonitor) round(ctx context.Context, woken bool) {
	e := m.e
	start := time.Now()
	var late time.Duration
	if !woken {
		late = max(0, start.Sub(m.due))
	}
	beat := !start.Before(m.beat)
	if beat {
		m.beat = start.Add(time.Duration(quietCheckEvery) * e.opts.HealthInterval)
	}
	m.pressing = false

	var targets []monitored
	for _, r := range e.allRegions() {
		r.mu.RLock() // a look: Describe calls may look at the same time
		for _, cl := range r.clusters {
			for _, n := range cl.nodes {
				if n.status == statusAvailable && !n.recovering {
					targets = append(targets, monitored{r, cl, n})
				}
			}
		}
		r.mu.RUnlock()
	}

	probes := m.probesFor(targets)
	for _, name := range m.exits.take() {
		if p := m.probes[name]; p != nil {
			p.closed.Store(true) // checked at once, like a closed watch
		}
	}
	var due []int // the targets checked this round
	// While any node fails, every node is checked each interval: a
	// machine that stalls many nodes at once would otherwise show them
	// failing one by one, each round too few to look starved, until the
	// first ones were recovered (a node that joins between beats is
	// checked at once, out of step with the others).
	sweep := false
	for _, p := range probes {
		sweep = sweep || !p.failingSince.IsZero()
	}
	for i, p := range probes {
		failing := !p.failingSince.IsZero()
		var check bool
		switch {
		case p.lastCheck.IsZero() || p.closed.Load() && !failing:
			check = true // new, or its watch connection closed: at once
		case failing || sweep:
			// An interval apart, however often rounds are woken:
			// misses count checks, and HealthMisses of them must span
			// that many intervals.
			check = start.Sub(p.lastCheck) >= e.opts.HealthInterval
		default:
			check = beat
		}
		if check {
			due = append(due, i)
			p.lastCheck = start
		}
	}
	defer func() {
		// A node left failing, or with its watch connection closed
		// (it could not be opened again), is checked again an interval
		// from now instead of at the beat.
		for _, p := range probes {
			m.pressing = m.pressing || !p.failingSince.IsZero() || p.closed.Load()
		}
	}()
	results := make([]checkResult, len(targets))
	// A closed watch connection most often means the node exited: ask the
	// runtime first, and a dead node needs no PING (one to a node that is
	// going away can hang until the timeout).
	var closed []int
	for _, i := range due {
		if probes[i].closed.Load() {
			closed = append(closed, i)
		}
	}
	m.awaitExit(ctx, targets, closed, results)
	var wg sync.WaitGroup
	pulsed := 0 // nodes whose pulse answered for them
	for _, i := range due {
		p := probes[i]
		if results[i].gone {
			results[i].err = errNodeGone
			continue
		}
		if results[i].refused {
			continue // awaitExit found its address refusing: no PING needed
		}
		if m.pulsed(p, start, beat && !sweep) {
			pulsed++
			continue // it answered: its server runs its event loop
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, e.opts.HealthTimeout)
			defer cancel()
			t0 := time.Now()
			err := p.client.Ping(pctx)
			if engine.IsReply(err) {
				err = nil // BUSY, LOADING, NOAUTH…: only a live server replies
			}
			if err == nil {
				m.felt(p, t0)
			}
			results[i].err, results[i].rtt = err, time.Since(t0)
			// Nothing listens on the node's own address: its server
			// exited (a hung or starved one still has its socket, and
			// the kernel completes the handshake), even if the runtime
			// does not know yet (the docker daemon takes a moment to
			// see a container's process die).
			// A node whose listeners are being rebound refuses for
			// that moment (up to engine.Admin.Rebind's retries while a
			// fork child holds its address): its silence counts as
			// misses, and its process is asked about.
			results[i].refused = errors.Is(err, syscall.ECONNREFUSED) && !e.admin.Rebinding(p.ep)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if ctx.Err() != nil || len(due) == 0 {
		return
	}
	m.checkListening(ctx, targets, probes, due, results, start)
	var failed []int
	for _, i := range due {
		if results[i].err != nil && !results[i].gone && !results[i].refused {
			failed = append(failed, i)
		}
	}
	m.markGone(ctx, targets, failed, results)

	misses, slow := 0, 0
	for _, i := range due {
		switch res := results[i]; {
		case res.err != nil && !res.gone && !errors.Is(res.err, errListensNowhere):
			misses++
		case res.err == nil && res.rtt > e.opts.HealthTimeout/2:
			slow++
		}
	}
	// Starvation is judged on the nodes PINGed: a pulse is no check of
	// whether the emulator gets the CPU.
	starved := m.starved(late, took, misses, slow, len(due)-pulsed)
	for _, i := range due {
		if p := probes[i]; results[i].err == nil && p.closed.Load() {
			m.arm(p) // it answered: watch it again
		}
	}

	for _, i := range due {
		m.judge(targets[i], results[i], probes[i], start, starved)
	}
}

// judge counts one node's check result and starts its recovery when it
// has failed enough checks (or is gone). It locks the node's region; a
// recovery it starts persists the change itself, so the monitor's round
// never waits for the disk.
func (m *healthMonitor) judge(t monitored, res checkResult, p *probe, start time.Time, starved string) {
	e := m.e
	if res.err == nil && m.answeredAsBefore(t) {
		p.failingSince = time.Time{}
		return
	}
	t.r.mu.Lock()
	recovering := false
	defer func() {
		if recovering {
			e.unlockForOperation(t.r) // the recovery persists it
		} else {
			t.r.mu.Unlock()
		}
	}()
	n := t.n
	if n.status != statusAvailable || n.recovering {
		return // changed while we were checking
	}
	if res.err == nil {
		n.misses, p.failingSince = 0, time.Time{}
		return
	}
	if p.failingSince.IsZero() {
		p.failingSince = start
	}
	why := fmt.Sprintf("no answer to %d checks in a row", n.misses+1)
	switch {
	case res.gone:
		// A dead process needs no more evidence, starved or not.
		n.misses = max(n.misses+1, e.opts.HealthMisses)
		why = "the runtime reports it not running"
	case res.refused:
		n.misses = max(n.misses+1, e.opts.HealthMisses)
		why = "nothing listens on its address any more: its server exited"
	case starved != "":
		return // not the node's fault: see starved
	case res.running && start.Sub(p.failingSince) < scriptSilence:
		e.log.Debug("node silent but running; not counted yet (a script may be running)",
			"cluster", t.cl.id, "node", n.id, "silentFor", start.Sub(p.failingSince).Round(time.Millisecond))
		return
	default:
		n.misses++
	}
	if n.misses < e.opts.HealthMisses {
		return
	}
	failingFor := time.Since(p.failingSince).Round(time.Millisecond)
	e.log.Warn("node failed health checks; recovering it", "cluster", t.cl.id, "node", n.id, "why", why, "misses", n.misses, "failingFor", failingFor, "err", res.err)
	n.down, n.recovering = true, true
	recovering = true
	since := fmt.Sprintf("failing for %v", failingFor)
	if failingFor < time.Millisecond {
		since = "at its first failed check" // a gone process needs no second one
	}
	e.startRecovery(t.r, t.cl, n, p.failingSince, fmt.Sprintf("%s failed its health checks: %s (%s)", t.cl.id, why, since), res.gone || res.refused)
}

// answeredAsBefore reports, for a node that answered its check, whether
// that changes nothing: it had missed no check. It looks under the read
// lock only, so the checks of healthy nodes (nearly all of them) never
// take the region for a change: Describe answers kept from before stay
// valid (see regionLock).
func (m *healthMonitor) answeredAsBefore(t monitored) bool {
	t.r.mu.RLock()
	defer t.r.mu.RUnlock()
	return t.n.misses == 0
}

// starved says why a round's misses are not the nodes' fault, or "" when
// they are: the round started more than an interval late or took more than
// an interval beyond the check timeout (the emulator did not get the CPU to
// run it), or most nodes failed their check, or answered it only slowly, at
// once. It logs the verdict: every starved round at debug level, and at
// most every starvedWarnEvery a warning with the count.
func (m *healthMonitor) starved(late, took time.Duration, misses, slow, checked int) string {
	e := m.e
	var why []string
	if late > e.opts.HealthInterval {
		why = append(why, fmt.Sprintf("the round started %v late", late.Round(time.Millisecond)))
	}
	if took > e.opts.HealthTimeout+e.opts.HealthInterval {
		why = append(why, fmt.Sprintf("the round took %v with a %v check timeout", took.Round(time.Millisecond), e.opts.HealthTimeout))
	}
	if misses+slow >= starvedMinMisses && 2*(misses+slow) >= checked {
		why = append(why, fmt.Sprintf("%d of %d nodes missed their check and %d answered slowly", misses, checked, slow))
	}
	if len(why) == 0 {
		return ""
	}
	verdict := strings.Join(why, "; ")
	m.uncounted++
	e.log.Debug("health round not counted: the emulator looks starved", "why", verdict, "misses", misses)
	if now := time.Now(); now.Sub(m.lastWarned) >= starvedWarnEvery {
		e.log.Warn("missed health checks not counted: the machine looks overloaded, not the nodes dead",
			"why", verdict, "uncountedRounds", m.uncounted, "since", m.lastWarned)
		m.uncounted, m.lastWarned = 0, now
	}
	return verdict
}

// probesFor returns the probe of each target, opening the ones missing and
// closing those of nodes no longer checked (deleted, or being replaced: a
// replaced node gets a fresh connection).
func (m *healthMonitor) probesFor(targets []monitored) []*probe {
	out := make([]*probe, len(targets))
	keep := make(map[string]bool, len(targets))
	for i, t := range targets {
		p := m.probes[t.n.name]
		if p == nil || p.ep != t.n.endpoint {
			if p != nil {
				p.close()
			}
			p = &probe{ep: t.n.endpoint, client: m.e.admin.NewProbe(t.n.endpoint, m.e.opts.HealthTimeout)}
			p.pulse = m.openPulse(t)
			m.probes[t.n.name] = p
			m.arm(p)
		}
		out[i] = p
		keep[t.n.name] = true
	}
	m.closeProbes(keep)
	return out
}

// arm opens the watch connection of p (replacing a closed one). A node
// that cannot be reached is due for a check at once.
func (m *healthMonitor) arm(p *probe) {
	if p.watch != nil {
		_ = p.watch.Close()
	}
	p.closed.Store(false)
	watch, err := engine.Watch(p.ep, m.e.opts.HealthTimeout, func() {
		p.closed.Store(true)
		m.signal()
	})
	if err != nil {
		p.watch = nil
		p.closed.Store(true)
		return
	}
	p.watch = watch
}

// signal starts a round at once.
func (m *healthMonitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default: // a round is already due
	}
}

// close closes both connections of p.
func (p *probe) close() {
	_ = p.client.Close()
	if p.pulse != nil {
		_ = p.pulse.Close()
	}
	if p.watch != nil {
		_ = p.watch.Close()
	}
}

// closeProbes closes the probes of nodes not in keep (all when keep is nil).
func (m *healthMonitor) closeProbes(keep map[string]bool) {
	for name, p := range m.probes {
		if !keep[name] {
			p.close()
			delete(m.probes, name)
		}
	}
}

// awaitExit marks the nodes in closed that the runtime reports gone,
// asking again for up to exitSettle: a node's connections close while its
// process exits, a moment before the runtime sees it exited, and a PING in
// that moment hangs until the timeout. A node still running by then (a
// user killed the connection) is checked as usual.
func (m *healthMonitor) awaitExit(ctx context.Context, targets []monitored, closed []int, results []checkResult) {
	deadline := time.Now().Add(exitSettle)
	for {
		// A refused connection proves the exit at once, where the runtime
		// may take a while to see it (the docker daemon's die event).
		closed = slices.DeleteFunc(closed, func(i int) bool { return m.refuses(targets[i], &results[i]) })
		m.markGone(ctx, targets, closed, results)
		closed = slices.DeleteFunc(closed, func(i int) bool { return results[i].gone })
		if len(closed) == 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-m.exits.notify: // the runtime saw an exit: ask again now
		case <-time.After(exitSettle / 10):
		}
	}
}

// refuses reports whether nothing listens on t's own address any more (its
// server exited: a hung or starved one still has its socket, and the
// kernel completes the handshake), and records it in res.
func (m *healthMonitor) refuses(t monitored, res *checkResult) bool {
	p := m.probes[t.n.name]
	if p == nil || m.e.admin.Rebinding(p.ep) || !m.e.admin.Refuses(p.ep, refusalDialTimeout) {
		return false
	}
	res.err, res.refused = fmt.Errorf("connecting to %s: %w", p.ep.Addr(), syscall.ECONNREFUSED), true
	return true
}

// markGone asks the runtime about the nodes in failed (their check failed, or
// their watch connection closed) and marks those it reports not running, or
// does not know: they are dead whatever the load. One Inspect per node for a
// few, one List for many.
func (m *healthMonitor) markGone(ctx context.Context, targets []monitored, failed []int, results []checkResult) {
	if len(failed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, runtimeStateTimeout)
	defer cancel()
	rt := m.e.opts.Runtime
	if len(failed) <= inspectEach {
		for _, i := range failed {
			node, err := rt.Inspect(ctx, targets[i].n.name)
			results[i].gone = isNotFound(err) || (err == nil && !node.Running)
			results[i].running = err == nil && node.Running && !node.Paused
		}
		return
	}
	nodes, err := rt.List(ctx)
	if err != nil {
		m.e.log.Debug("health monitor: listing the runtime's nodes failed", "err", err)
		return
	}
	running := make(map[string]bool, len(nodes))
	unfrozen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		running[n.Name] = running[n.Name] || n.Running
		unfrozen[n.Name] = unfrozen[n.Name] || (n.Running && !n.Paused)
	}
	for _, i := range failed {
		results[i].gone = !running[targets[i].n.name]
		results[i].running = unfrozen[targets[i].n.name]
	}
}
