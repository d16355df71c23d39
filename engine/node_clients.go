package engine

// CLIENT KILL: dropping the connections that came through a primary
// endpoint when it moves to another node.

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// KillClientsByLocalAddr closes every client connection of the node at ep
// that was accepted on laddr (CLIENT KILL LADDR host:port), as a DNS flip
// makes clients of an ElastiCache endpoint reconnect. No such connection is
// not an error.
func (a Admin) KillClientsByLocalAddr(ctx context.Context, ep, laddr Endpoint) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := c.Do(ctx, "CLIENT", "KILL", "LADDR", laddr.Addr()).Err()
		if err != nil && err.Error() == "ERR No such client" {
			return nil
		}
		return err
	})
}
