package engine

// CONFIG SET and CONFIG GET: parameter groups, the cron rate (hz) and the
// addresses a node listens on (bind, for primary endpoints).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ConfigSet sets every parameter of values on the node at ep with one
// CONFIG SET name value [name value …] (Redis 7.0 applies them all or none).
func (a Admin) ConfigSet(ctx context.Context, ep Endpoint, values map[string]string) error {
	args := []any{"CONFIG", "SET"}
	for k, v := range values {
		args = append(args, k, v)
	}
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, args...).Err()
	})
}

// ConfigGet returns the value of one parameter of the node at ep (CONFIG
// GET name), or an error when the node has no such parameter.
func (a Admin) ConfigGet(ctx context.Context, ep Endpoint, name string) (string, error) {
	var value string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		kv, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			return err
		}
		v, ok := kv[name]
		if !ok {
			return fmt.Errorf("engine: CONFIG GET %s on %s: no such parameter", name, ep.Addr())
		}
		value = v
		return nil
	})
	return value, err
}

// SetHz sets the cron rate of the node at ep (CONFIG SET hz, see IdleHz and
// SyncHz).
func (a Admin) SetHz(ctx context.Context, ep Endpoint, hz int) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.ConfigSet(ctx, "hz", HzValue(hz)).Err()
	})
}

// Bind makes the node at ep listen on hosts, on its port, and on them only
// (CONFIG SET bind "host …"): a primary endpoint's address is added to the
// primary and taken off it when another node becomes primary. Connections
// already accepted on an address taken off stay open (see
// KillClientsByLocalAddr).
func (a Admin) Bind(ctx context.Context, ep Endpoint, hosts ...string) error {
	addrs := strings.Join(hosts, " ")
	defer a.rebinding(ep)()
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.ConfigSet(ctx, "bind", addrs).Err()
	})
	if err != nil {
		return fmt.Errorf("CONFIG SET bind %q on %s: %w", addrs, ep.Addr(), err)
	}
	return nil
}

// rebindRepairFor bounds how long a node whose CONFIG SET bind failed is
// bound again and again until it listens on its own address.
const rebindRepairFor = 3 * time.Second

// rebindAfterFailure follows a CONFIG SET bind from cur to next that
// failed, on the connection that sent it (still open: closing listeners
// leaves accepted connections alone). It returns the list the node has
// then, and whether that is next after all.
//
// Redis closed every listener, failed to bind next, and bound cur again;
// when an address of cur was taken in between, that failed too, and the
// node listened nowhere, its own address included, while every connection
// it had kept answering. Two things take an address in that moment: a
// parking forwarder, which takes an address the moment a node gives it up,
// and a fork child of the node itself (a BGSAVE for a replica's sync, a
// snapshot), which holds copies of the listening sockets from the fork
// until it closes them, later the busier the machine is. So the node is
// bound to what both lists share, its own address first (addresses it held
// that nobody asked to take away), and, while even that fails, next, the
// shared list and its own address alone are tried again with a growing
// pause for up to rebindRepairFor: a fork child's copies close within
// moments. Only a reply from the node is tried again; a connection that
// fails is a node that is gone. When every attempt failed it returns no
// list: the node listens nowhere, and is recorded so (ListensNowhere).
func (a Admin) rebindAfterFailure(ctx context.Context, c configSetter, ep Endpoint, cur, next []string, repairFor time.Duration) ([]string, bool) {
	shared := []string{ep.Host}
	for _, h := range next {
		if h != ep.Host && slices.Contains(cur, h) {
			shared = append(shared, h)
		}
	}
	own := []string{ep.Host}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), repairFor)
	defer cancel()
	lost := func() ([]string, bool) {
		a.markListening(ep, false)
		return nil, false
	}
	set := func(list []string) (ok, retry bool) {
		err := c.ConfigSet(ctx, "bind", strings.Join(list, " ")).Err()
		return err == nil, IsReply(err)
	}
	pause := time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 { // the caller's own attempt was the first
			if ok, retry := set(next); ok {
				return next, true
			} else if !retry {
				return lost()
			}
		}
		if ok, retry := set(shared); ok {
			a.markListening(ep, true)
			return shared, false
		} else if !retry {
			return lost()
		}
		if !slices.Equal(shared, own) {
			if ok, _ := set(own); ok {
				a.markListening(ep, true)
				return own, false
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return lost()
		case <-t.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Rebind reads the bind list of the node at ep and, when change returns
// another one, sets it (CONFIG SET bind), both on one connection; it
// returns the list the node has then. before runs right before the CONFIG
// SET and after right after it succeeded (either may be nil): a caller
// handing an address from one node to another takes it over or gives it up
// in those moments, so it stays without a listener only for about one
// command's round trip (the connection is open and authenticated by then).
// No CONFIG SET, and neither call, when the list does not change.
func (a Admin) Rebind(ctx context.Context, ep Endpoint, change func(cur []string) []string, before, after func()) ([]string, error) {
	var next []string
	defer a.rebinding(ep)()
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		kv, err := c.ConfigGet(ctx, "bind").Result()
		if err != nil {
			return err
		}
		cur := strings.Fields(kv["bind"])
		next = change(cur)
		if slices.Equal(next, cur) {
			return nil
		}
		if before != nil {
			before()
		}
		if err := c.ConfigSet(ctx, "bind", strings.Join(next, " ")).Err(); err != nil {
			want := strings.Join(next, " ")
			var applied bool
			if next, applied = a.rebindAfterFailure(ctx, c, ep, cur, next, rebindRepairFor); !applied {
				return fmt.Errorf("CONFIG SET bind %q on %s: %w", want, ep.Addr(), err)
			}
		}
		a.markListening(ep, true)
		if after != nil {
			after()
		}
		return nil
	})
	return next, err
}
