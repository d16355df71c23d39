package emulator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// listenCheckEvery is how many health intervals apart the monitor makes
// sure a node that answers its PINGs still accepts new connections (every
// 10 s at the default 100 ms): the PINGs go over a connection kept open,
// which a node that listens nowhere keeps answering. Each check costs the
// node one accept; a node a rebind left listening nowhere
// (engine.Admin.ListensNowhere), or one that failed the check, is checked
// at once and every interval.
const listenCheckEvery = 100

// errListensNowhere is the check result of a node that answers on its
// open connections but refuses new ones, and could not be bound again.
var errListensNowhere = errors.New("the node answers on its open connections but accepts no new one")

// checkListening makes sure the nodes of due that answered their PING
// still accept connections on their own address, when that is due (see
// listenCheckEvery). One that refuses them, outside a rebind, has its
// addresses bound again through the probe's open connection
// (engine.Probe.Relisten), each attempt bounded by the check timeout; while
// that fails its check fails, and a node that stays so past the grace of
// a running node is recovered as a hung one would be: clients cannot
// reach it.
func (m *healthMonitor) checkListening(ctx context.Context, targets []monitored, probes []*probe, due []int, results []checkResult, start time.Time) {
	e := m.e
	var wg sync.WaitGroup
	for _, i := range due {
		p := probes[i]
		if results[i].err != nil || !p.client.Rebindable() {
			continue
		}
		if start.Sub(p.listenChecked) < listenCheckEvery*e.opts.HealthInterval &&
			p.failingSince.IsZero() && !e.admin.ListensNowhere(p.ep) {
			continue
		}
		p.listenChecked = start
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e.admin.Rebinding(p.ep) || !e.admin.Refuses(p.ep, refusalDialTimeout) {
				return
			}
			t := targets[i]
			e.log.Warn("node answers on its open connections but refuses new ones; binding its addresses again",
				"node", t.n.name, "address", p.ep.Addr())
			rctx, cancel := context.WithTimeout(ctx, e.opts.HealthTimeout)
			defer cancel()
			err := p.client.Relisten(rctx, e.opts.HealthTimeout)
			if err == nil && e.admin.Refuses(p.ep, refusalDialTimeout) {
				err = errors.New("its address still refuses after CONFIG SET bind")
			}
			if err != nil {
				results[i].err = fmt.Errorf("%w: %v", errListensNowhere, err)
				return
			}
			e.log.Info("node listens on its address again", "node", t.n.name, "address", p.ep.Addr())
		}()
	}
	wg.Wait()
}
