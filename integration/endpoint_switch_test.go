package integration

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestPrimaryEndpointSwitchNeverRefusesReconnect: on a planned failover
// the old primary's clients through the primary endpoint are dropped only
// once the address is listened on again, so a client that reconnects the
// moment its connection closes is never refused (a refused dial costs a
// go-redis client 100 ms before it dials again) and reaches the new
// primary.
func TestPrimaryEndpointSwitchNeverRefusesReconnect(t *testing.T) {
	t.Parallel()
	e := startEmulator(t)
	c := e.client
	ctx := ctxT(t, time.Minute)
	createGroup(t, c, &elasticache.CreateReplicationGroupInput{ReplicationGroupId: aws.String("flip"),
		NumCacheClusters: aws.Int32(2), AutomaticFailoverEnabled: aws.Bool(true)})
	for round, target := range []string{"flip-002", "flip-001", "flip-002"} {
		g := describeGroup(t, c, "flip")
		ep := g.NodeGroups[0].PrimaryEndpoint
		addr := net.JoinHostPort(aws.ToString(ep.Address), fmt.Sprint(aws.ToInt32(ep.Port)))
		const clients = 8
		results := make(chan error, clients)
		for range clients {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			if _, err := conn.Write([]byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
				t.Fatalf("PING through the endpoint: %q %v", line, err)
			}
			go func() {
				// Wait for the switch to close the connection, then
				// reconnect at once, as a client does.
				conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				if _, err := r.ReadString('\n'); err == nil {
					results <- fmt.Errorf("the old primary's connection got a reply instead of being closed")
					return
				}
				again, err := net.Dial("tcp", addr)
				if err != nil {
					results <- fmt.Errorf("reconnecting the moment the connection closed: %w", err)
					return
				}
				defer again.Close()
				again.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := again.Write([]byte("ROLE\r\n")); err != nil {
					results <- err
					return
				}
				line, err := bufio.NewReader(again).ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "*") {
					results <- fmt.Errorf("ROLE after reconnecting: %q %v", line, err)
					return
				}
				results <- nil
			}()
		}
		if _, err := c.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{ReplicationGroupId: aws.String("flip"),
			PrimaryClusterId: aws.String(target), ApplyImmediately: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		for range clients {
			if err := <-results; err != nil {
				t.Fatalf("round %d (to %s): %v", round+1, target, err)
			}
		}
		waitAvailable(t, c, "flip")
		if got := primaryOf(describeGroup(t, c, "flip")); got != target {
			t.Fatalf("round %d: primary %s, want %s", round+1, got, target)
		}
	}
}
