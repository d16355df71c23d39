package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts of the short-lived clients used by the node operations. A call is
// additionally bounded by its context.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = 2 * time.Second
)

// WithClient connects to the node at ep as the admin user and calls fn with
// a single-connection go-redis client that is closed when fn returns. The
// connection is dialled before the client is built, so an unreachable node
// fails fast with the dial error (no go-redis retries, backoff or log
// lines); commands are not retried and respect ctx (its deadline and its
// cancellation) as well as a 2 s I/O timeout. Use it for one-off commands
// the helpers below do not cover (CONFIG SET, FLUSHALL, …).
func (a Admin) WithClient(ctx context.Context, ep Endpoint, fn func(ctx context.Context, c *redis.Client) error) error {
	addr := ep.Addr()
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	var once sync.Once
	opts := a.Options(ep)
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var first net.Conn
		once.Do(func() { first = conn })
		if first != nil {
			return first, nil
		}
		return d.DialContext(ctx, network, addr)
	}
	opts.DialerRetries = 1
	opts.PipelinePoolSize = -1
	c := redis.NewClient(opts)
	// Abort a command in flight when ctx is cancelled, not only at its
	// deadline (go-redis maps deadlines, not cancellation, onto the socket).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = c.Close()
		once.Do(func() { _ = conn.Close() }) // fn never used the client
	}()
	err = fn(ctx, c)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// Ping sends PING to the node at ep.
func (a Admin) Ping(ctx context.Context, ep Endpoint) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Ping(ctx).Err()
	})
}

// ReplicaOf makes the node at ep a replica of primary, or a primary
// (REPLICAOF NO ONE) when primary is nil.
func (a Admin) ReplicaOf(ctx context.Context, ep Endpoint, primary *Endpoint) error {
	host, port := "NO", "ONE"
	if primary != nil {
		host, port = primary.Host, strconv.Itoa(primary.Port)
	}
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.ReplicaOf(ctx, host, port).Err()
	})
	if err != nil {
		return fmt.Errorf("engine: REPLICAOF %s %s on %s: %w", host, port, ep.Addr(), err)
	}
	return nil
}

// Shutdown asks the node at ep to exit without saving (SHUTDOWN NOSAVE NOW
// FORCE, falling back to SHUTDOWN NOSAVE on servers older than 7.0). It
// returns nil once the server closed the connection, which it does when it
// exits; it does not wait for the process to be gone.
func (a Admin) Shutdown(ctx context.Context, ep Endpoint) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := shutdown(ctx, c, "NOSAVE", "NOW", "FORCE")
		var rerr redis.Error
		if errors.As(err, &rerr) && !strings.Contains(strings.ToLower(rerr.Error()), "errors trying to shut down") {
			// Pre-7.0 servers reject NOW/FORCE as a syntax error.
			err = shutdown(ctx, c, "NOSAVE")
		}
		return err
	})
}

func shutdown(ctx context.Context, c *redis.Client, modifiers ...string) error {
	args := []any{"SHUTDOWN"}
	for _, m := range modifiers {
		args = append(args, m)
	}
	err := c.Do(ctx, args...).Err()
	switch {
	case err == nil:
		return errors.New("engine: server did not shut down")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isConnReset(err):
		return nil // the server closed the connection as it exited
	default:
		return err
	}
}

func isConnReset(err error) bool {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe")
}

// ReplicationInfo is the parsed INFO replication section of a node.
type ReplicationInfo struct {
	// Role is "master" or "slave", as INFO reports it.
	Role string
	// MasterHost and MasterPort are the primary a replica follows.
	MasterHost string
	MasterPort int
	// LinkUp is master_link_status:up (replicas only).
	LinkUp bool
	// SyncInProgress is master_sync_in_progress:1 (a full sync is running).
	SyncInProgress bool
	// LagSeconds is master_last_io_seconds_ago on a replica: seconds since
	// the last interaction with the primary (-1 when the link never came up).
	LagSeconds int
	// LinkDownSeconds is master_link_down_since_seconds (0 while the link is up).
	LinkDownSeconds int
	// MasterReplID is master_replid, the replication history id.
	MasterReplID string
	// MasterOffset is master_repl_offset: on a primary the offset it has
	// produced, on a replica the offset of the stream it has processed.
	MasterOffset int64
	// ReplicaOffset is slave_repl_offset (replicas only).
	ReplicaOffset int64
	// ConnectedReplicas is connected_slaves.
	ConnectedReplicas int
	// Replicas are the slaveN lines of a primary.
	Replicas []ReplicaStatus
}

// ReplicaStatus is one replica as its primary sees it (a slaveN line).
type ReplicaStatus struct {
	Endpoint Endpoint
	// State is e.g. "online", "wait_bgsave", "send_bulk".
	State      string
	Offset     int64
	LagSeconds int
}

// IsPrimary reports whether the node is a primary (role:master).
func (r ReplicationInfo) IsPrimary() bool { return r.Role == "master" }

// IsReplica reports whether the node is a replica (role:slave).
func (r ReplicationInfo) IsReplica() bool { return r.Role == "slave" }

// Master returns the endpoint a replica follows (zero for a primary).
func (r ReplicationInfo) Master() Endpoint {
	return Endpoint{Host: r.MasterHost, Port: r.MasterPort}
}

// InspectReplication returns the node's INFO replication section.
func (a Admin) InspectReplication(ctx context.Context, ep Endpoint) (ReplicationInfo, error) {
	var text string
	err := a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		var err error
		text, err = c.Info(ctx, "replication").Result()
		return err
	})
	if err != nil {
		return ReplicationInfo{}, fmt.Errorf("engine: INFO replication on %s: %w", ep.Addr(), err)
	}
	return ParseReplicationInfo(text)
}

// ParseReplicationInfo parses the text of INFO replication.
func ParseReplicationInfo(text string) (ReplicationInfo, error) {
	info := ReplicationInfo{LagSeconds: -1}
	kv := parseInfo(text)
	info.Role = kv["role"]
	if info.Role == "" {
		return info, errors.New("engine: INFO replication has no role field")
	}
	info.MasterHost = kv["master_host"]
	info.MasterPort = atoi(kv["master_port"])
	info.LinkUp = kv["master_link_status"] == "up"
	info.SyncInProgress = kv["master_sync_in_progress"] == "1"
	if v, ok := kv["master_last_io_seconds_ago"]; ok {
		info.LagSeconds = atoi(v)
	}
	info.LinkDownSeconds = atoi(kv["master_link_down_since_seconds"])
	info.MasterReplID = kv["master_replid"]
	info.MasterOffset = atoi64(kv["master_repl_offset"])
	info.ReplicaOffset = atoi64(kv["slave_repl_offset"])
	info.ConnectedReplicas = atoi(kv["connected_slaves"])
	for i := 0; ; i++ {
		line, ok := kv["slave"+strconv.Itoa(i)]
		if !ok {
			break
		}
		info.Replicas = append(info.Replicas, parseReplicaLine(line))
	}
	return info, nil
}

// parseReplicaLine parses "ip=127.0.0.3,port=6379,state=online,offset=42,lag=0".
func parseReplicaLine(line string) ReplicaStatus {
	var s ReplicaStatus
	for _, field := range strings.Split(line, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "ip":
			s.Endpoint.Host = v
		case "port":
			s.Endpoint.Port = atoi(v)
		case "state":
			s.State = v
		case "offset":
			s.Offset = atoi64(v)
		case "lag":
			s.LagSeconds = atoi(v)
		}
	}
	return s
}

// parseInfo turns INFO output into key → value, skipping comments.
func parseInfo(text string) map[string]string {
	kv := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[k] = v
		}
	}
	return kv
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
