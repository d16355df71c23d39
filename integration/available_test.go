package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestAvailableMeansUsable: of 20 groups created in parallel, every
// endpoint the Describe that made the SDK waiter return lists (primary,
// reader, each member's) answers a PING at once: one attempt, no retries.
// A group used to turn available while its primary endpoint still refused
// connections.
func TestAvailableMeansUsable(t *testing.T) {
	e := startEmulator(t)
	const groups = 20
	var wg sync.WaitGroup
	for i := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := createAndPingEndpoints(e.client, fmt.Sprintf("usable-%02d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// createAndPingEndpoints creates a two-node group, waits for available with
// the SDK's waiter and PINGs every endpoint of the waiter's last Describe.
func createAndPingEndpoints(c *elasticache.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.CreateReplicationGroup(ctx, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("usable"),
		CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(2),
	}); err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	w := elasticache.NewReplicationGroupAvailableWaiter(c, func(o *elasticache.ReplicationGroupAvailableWaiterOptions) {
		// Poll fast: the test is about the first moment a client may see
		// available.
		o.MinDelay, o.MaxDelay = 5*time.Millisecond, 10*time.Millisecond
		retryable := o.Retryable
		o.Retryable = func(ctx context.Context, in *elasticache.DescribeReplicationGroupsInput, out *elasticache.DescribeReplicationGroupsOutput, err error) (bool, error) {
			if err == nil && len(out.ReplicationGroups) == 1 && aws.ToString(out.ReplicationGroups[0].Status) == "create-failed" {
				return false, fmt.Errorf("%s: create-failed", id)
			}
			return retryable(ctx, in, out, err)
		}
	})
	out, err := w.WaitForOutput(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)}, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", id, err)
	}
	for _, ep := range listedEndpoints(out.ReplicationGroups[0]) {
		if err := pingOnce(ctx, ep); err != nil {
			return fmt.Errorf("%s is available but %s does not answer: %w", id, aws.ToString(ep.Address), err)
		}
	}
	return nil
}

// listedEndpoints are the endpoints a Describe of g gives a client.
func listedEndpoints(g types.ReplicationGroup) []*types.Endpoint {
	var eps []*types.Endpoint
	if g.ConfigurationEndpoint != nil {
		eps = append(eps, g.ConfigurationEndpoint)
	}
	for _, ng := range g.NodeGroups {
		eps = append(eps, ng.PrimaryEndpoint, ng.ReaderEndpoint)
		for _, m := range ng.NodeGroupMembers {
			eps = append(eps, m.ReadEndpoint)
		}
	}
	return eps
}

// pingOnce connects to ep and sends one PING: one dial, one command, no
// retry (client libraries retry refused dials on their own, which would
// hide a refused connection).
func pingOnce(ctx context.Context, ep *types.Endpoint) error {
	if ep == nil {
		return fmt.Errorf("endpoint missing")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(aws.ToString(ep.Address), strconv.Itoa(int(aws.ToInt32(ep.Port)))))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}
