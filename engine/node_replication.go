package engine

// REPLICAOF, INFO replication and the commands of a planned failover
// (CLIENT PAUSE WRITE, catching a replica up, CLIENT UNPAUSE).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// failoverPause is how long CLIENT PAUSE blocks writes on a primary
	// during a planned failover: Redis lifts the pause by itself after it,
	// so a control plane that dies mid-failover cannot leave the primary
	// read-only for good. UnpauseWrites ends it as soon as the switch is done.
	failoverPause = 10 * time.Second
	// catchUpTimeout bounds the wait for a replica to catch up with its
	// primary's offset.
	catchUpTimeout = 10 * time.Second
	// unpauseTimeout bounds CLIENT UNPAUSE, which runs even when the
	// operation that paused the primary was cancelled.
	unpauseTimeout = 2 * time.Second
)

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

// CatchUp waits until the replica has processed the primary's replication
// stream up to the primary's offset now, so a backup or a promotion of the
// replica holds every write acknowledged before it was asked for. The wait
// is bounded by 10 s (and ctx).
func (a Admin) CatchUp(ctx context.Context, primary, replica Endpoint) error {
	p, err := a.InspectReplication(ctx, primary)
	if err != nil {
		return fmt.Errorf("reading the primary's offset: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return WaitReady(ctx, replica, func(ctx context.Context, ep Endpoint) error {
		q, err := a.InspectReplication(ctx, ep)
		if err != nil {
			return err
		}
		if !q.LinkUp || q.ReplicaOffset < p.MasterOffset {
			return fmt.Errorf("replica at offset %d (link up: %v), primary at %d", q.ReplicaOffset, q.LinkUp, p.MasterOffset)
		}
		return nil
	})
}

// PauseWrites blocks the write commands of the node's clients for d
// (CLIENT PAUSE <ms> WRITE); reads and replication go on.
func (a Admin) PauseWrites(ctx context.Context, ep Endpoint, d time.Duration) error {
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "WRITE").Err()
	})
}

// UnpauseWrites ends a CLIENT PAUSE on the node at ep (CLIENT UNPAUSE). It
// ignores ctx's cancellation and deadline, bounded by 2 s of its own: writes
// must resume even when the operation that paused them was cancelled.
func (a Admin) UnpauseWrites(ctx context.Context, ep Endpoint) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unpauseTimeout)
	defer cancel()
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		return c.Do(ctx, "CLIENT", "UNPAUSE").Err()
	})
}

// PauseAndCatchUp starts a planned failover from primary to replica: it
// blocks writes on the primary (CLIENT PAUSE WRITE, lifted by Redis after
// 10 s at the latest) and waits until the replica has processed the
// primary's whole stream, so promoting it loses no acknowledged write. On
// failure the primary is unpaused; on success the caller unpauses it once
// the replica is promoted and the others follow it.
func (a Admin) PauseAndCatchUp(ctx context.Context, primary, replica Endpoint) error {
	if err := a.PauseWrites(ctx, primary, failoverPause); err != nil {
		return fmt.Errorf("pausing writes on the primary: %w", err)
	}
	if err := a.CatchUp(ctx, primary, replica); err != nil {
		_ = a.UnpauseWrites(ctx, primary)
		return fmt.Errorf("replica did not catch up with the primary: %w", err)
	}
	return nil
}
