package engine

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWaitReadyPollsUntilChecksPass(t *testing.T) {
	calls := 0
	flaky := func(context.Context, Endpoint) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := WaitReady(ctx, Endpoint{Host: "127.0.0.1", Port: 1}, flaky); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("check ran %d times, want 3", calls)
	}
	if d := time.Since(start); d < 2*PollInterval || d > time.Second {
		t.Errorf("took %s, want about 2 poll intervals", d)
	}
}

func TestWaitReadyDeadlineWrapsLastError(t *testing.T) {
	errBusy := errors.New("busy")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, Endpoint{Host: "127.0.0.1", Port: 1}, func(context.Context, Endpoint) error { return errBusy })
	if !errors.Is(err, errBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want it to wrap the check error and the deadline", err)
	}
}

func TestWaitReadyPermanentStopsEarly(t *testing.T) {
	errGone := errors.New("process exited")
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := WaitReady(ctx, Endpoint{Host: "127.0.0.1", Port: 1}, func(context.Context, Endpoint) error {
		calls++
		return Permanent(errGone)
	}, Admin{}.Pings)
	if !errors.Is(err, errGone) || calls != 1 || time.Since(start) > time.Second {
		t.Fatalf("err=%v calls=%d after %s; want immediate permanent failure", err, calls, time.Since(start))
	}
}

func TestPortOpenAndPingAgainstNonRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	ep := Endpoint{Host: "127.0.0.1", Port: port}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := PortOpen(ctx, ep); err != nil {
		t.Errorf("PortOpen on a listener: %v", err)
	}
	l.Close()
	if err := PortOpen(ctx, ep); err == nil {
		t.Error("PortOpen succeeded on a closed port")
	}
	start := time.Now()
	if err := (Admin{}).Ping(ctx, ep); err == nil {
		t.Error("Ping succeeded on a closed port")
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Ping of a closed port took %s; want it to fail fast", d)
	}
}

const masterInfo = `# Replication
role:master
connected_slaves:2
slave0:ip=127.0.5.3,port=6379,state=online,offset=1234,lag=0
slave1:ip=127.0.5.4,port=6380,state=wait_bgsave,offset=0,lag=3
master_failover_state:no-failover
master_replid:6e1b0bc2dd5a7f3c8c7c9d5d4c1f8a3e2b1a0c9d
master_replid2:0000000000000000000000000000000000000000
master_repl_offset:1234
second_repl_offset:-1
repl_backlog_active:1
`

const replicaInfo = "# Replication\r\nrole:slave\r\nmaster_host:127.0.5.2\r\nmaster_port:6379\r\n" +
	"master_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\n" +
	"slave_read_repl_offset:1200\r\nslave_repl_offset:1200\r\nslave_priority:100\r\nslave_read_only:1\r\n" +
	"replica_announced:1\r\nconnected_slaves:0\r\nmaster_replid:6e1b\r\nmaster_repl_offset:1200\r\n"

func TestParseReplicationInfo(t *testing.T) {
	m, err := ParseReplicationInfo(masterInfo)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsPrimary() || m.IsReplica() || m.MasterOffset != 1234 || m.ConnectedReplicas != 2 || len(m.Replicas) != 2 {
		t.Errorf("master: %+v", m)
	}
	if r := m.Replicas[1]; r.Endpoint != (Endpoint{Host: "127.0.5.4", Port: 6380}) || r.State != "wait_bgsave" || r.LagSeconds != 3 {
		t.Errorf("slave1: %+v", r)
	}
	if m.Replicas[0].Offset != 1234 || m.LagSeconds != -1 {
		t.Errorf("master: %+v", m)
	}

	r, err := ParseReplicationInfo(replicaInfo)
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{Host: "127.0.5.2", Port: 6379}
	if !r.IsReplica() || r.Master() != want || !r.LinkUp || r.SyncInProgress || r.ReplicaOffset != 1200 ||
		r.MasterOffset != 1200 || r.LagSeconds != 1 || r.MasterReplID != "6e1b" {
		t.Errorf("replica: %+v", r)
	}
	if err := linkUp(r); err != nil {
		t.Error(err)
	}
	down, _ := ParseReplicationInfo(strings.Replace(replicaInfo, "link_status:up", "link_status:down", 1) + "master_link_down_since_seconds:7\r\n")
	if down.LinkUp || down.LinkDownSeconds != 7 || linkUp(down) == nil {
		t.Errorf("link down: %+v", down)
	}
	if _, err := ParseReplicationInfo("# Replication\n"); err == nil {
		t.Error("no role: no error")
	}
}
