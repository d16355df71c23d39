package emulator

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// groupView is what a client reads of a group, compared between answers.
func groupView(g types.ReplicationGroup) string {
	v := fmt.Sprintf("%s %s %q members=%v", aws.ToString(g.ReplicationGroupId), aws.ToString(g.Status),
		aws.ToString(g.Description), g.MemberClusters)
	for _, ng := range g.NodeGroups {
		if ep := ng.PrimaryEndpoint; ep != nil {
			v += fmt.Sprintf(" %s:%d", aws.ToString(ep.Address), aws.ToInt32(ep.Port))
		}
		for _, m := range ng.NodeGroupMembers {
			v += fmt.Sprintf(" %s/%s", aws.ToString(m.CacheClusterId), aws.ToString(m.CurrentRole))
		}
	}
	return v
}

// TestDescribeAnswersFollowChanges: DescribeReplicationGroups answered
// through the API, from the renderings kept while the region does not
// change (describeCached), shows every change at once (a create going
// from creating to available, a new description, a delete) and says what
// the typed handler says, while other clients describe all along.
func TestDescribeAnswersFollowChanges(t *testing.T) {
	w := newFakeWorld(t)
	h := newHarness(t, w, openStore(t))
	ctx := queryapiContext(testAccount, testRegion)
	svc := queryapi.New(queryapi.Options{Region: testRegion, AccountID: testAccount, Logger: slog.New(slog.DiscardHandler)})
	h.e.Register(svc)
	srv := httptest.NewServer(svc)
	defer srv.Close()
	// The access key id names the account (see queryapi's identity).
	c := elasticache.New(elasticache.Options{Region: testRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testAccount, "secret", "")})

	// Clients describing all along, through the kept renderings.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("describing meanwhile: %v", err)
		}
	}()

	answered := func(id string) string {
		t.Helper()
		out, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return groupView(out.ReplicationGroups[0])
	}
	typed := func(id string) string {
		t.Helper()
		out, err := h.e.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return groupView(out.ReplicationGroups[0])
	}
	for _, id := range []string{"g1", "g2"} {
		if _, err := c.CreateReplicationGroup(context.Background(), &elasticache.CreateReplicationGroupInput{
			ReplicationGroupId: aws.String(id), ReplicationGroupDescription: aws.String("first"),
			CacheNodeType: aws.String("cache.t3.micro"), NumCacheClusters: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"g1", "g2"} {
		waitFor(t, id+" available through the API", func() (bool, string) {
			out, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			s := aws.ToString(out.ReplicationGroups[0].Status)
			return s == statusAvailable, s
		})
		if a, want := answered(id), typed(id); a != want {
			t.Fatalf("answered %s, typed handler says %s", a, want)
		}
	}

	if _, err := c.ModifyReplicationGroup(context.Background(), &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String("g1"), ReplicationGroupDescription: aws.String("second"), ApplyImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// The modify's status (modifying, then available) may change between
	// the two looks: they must agree once it holds still.
	waitFor(t, "the answer after the modify to match the typed handler's", func() (bool, string) {
		a, want := answered("g1"), typed("g1")
		return a == want && strings.Contains(a, `"second"`), "answered " + a + ", typed handler says " + want
	})
	if _, err := c.DeleteReplicationGroup(context.Background(), &elasticache.DeleteReplicationGroupInput{ReplicationGroupId: aws.String("g2")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeReplicationGroups(context.Background(), &elasticache.DescribeReplicationGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.ReplicationGroups {
		if aws.ToString(g.ReplicationGroupId) == "g2" && aws.ToString(g.Status) != statusDeleting {
			t.Fatalf("g2 answered %s right after its delete", groupView(g))
		}
	}
}
