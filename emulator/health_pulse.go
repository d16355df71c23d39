package emulator

import (
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// pulsePingEvery is how many beats apart a node whose pulse moves is still
// PINGed (every 5 s at the default 100 ms interval): a server busy in a
// long script is scheduled without answering, and only a PING tells. Its
// silence counts only after scriptSilence anyway, so this delays the
// recovery of such a hung server by up to these beats; a frozen, blocked
// or exited one shows no pulse and is PINGed at its next beat, as before.
const pulsePingEvery = 5

// openPulse opens the pulse of t's node where its runtime has one
// (engine.Pulser); nil otherwise, and the node is PINGed every beat. A
// Memcached node has none: its main thread only accepts connections and
// ticks its clock, while worker threads serve, so its pulse would not tell
// a serving node.
func (m *healthMonitor) openPulse(t monitored) *engine.Pulse {
	rt, ok := m.e.opts.Runtime.(engine.Pulser)
	if !ok {
		return nil
	}
	t.r.mu.RLock() // a change (applyChange) rewrites the cluster's record
	memcached := t.cl.mc != nil
	t.r.mu.RUnlock()
	if memcached {
		return nil
	}
	pulse, err := rt.Pulse(t.n.name)
	if err != nil {
		m.e.log.Debug("health monitor: no pulse for the node; PINGed every beat", "node", t.n.name, "err", err)
		return nil
	}
	return pulse
}

// pulsed reports whether p's node is taken for answering this round
// without a PING (quiet: a beat while no node fails): its watch connection
// is open, it failed no check, it answered a PING within pulsePingEvery
// beats, and its pulse moved since it last answered and it is not stopped
// (SIGSTOP). A pulse that cannot
// be read any more is dropped (the node is PINGed from then on).
func (m *healthMonitor) pulsed(p *probe, start time.Time, quiet bool) bool {
	if p.pulse == nil || !quiet || p.closed.Load() || !p.failingSince.IsZero() ||
		start.Sub(p.pinged) >= pulsePingEvery*quietCheckEvery*m.e.opts.HealthInterval {
		return false
	}
	beats, stopped, err := p.pulse.Read()
	if err != nil {
		_ = p.pulse.Close()
		p.pulse = nil
		return false
	}
	if beats == p.beats || stopped {
		return false // not scheduled since its last answer, or frozen: PING it
	}
	p.beats = beats
	return true
}

// felt records that p's node answered a PING sent at t0, and its pulse
// after that answer: a pulse read later that has not moved from it means
// the server has not run since.
func (m *healthMonitor) felt(p *probe, t0 time.Time) {
	p.pinged = t0
	if p.pulse == nil {
		return
	}
	if beats, _, err := p.pulse.Read(); err == nil {
		p.beats = beats
	}
}
