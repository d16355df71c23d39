package queryapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestBodyBudgetSharedByRequests: body bytes held by requests in flight
// count against one budget of the service, so many connections sending
// large bodies at once cannot add up past it. A client that stalls
// mid-body holds only the chunks it has sent; while the budget is spent
// another request waits a bounded time and is answered Throttling (which
// SDKs retry); shares come back when requests end.
func TestBodyBudgetSharedByRequests(t *testing.T) {
	const budget = 4 * bodyChunkBytes
	svc := New(Options{Logger: discardLogger(), BodyBudget: budget, BodyBudgetWait: 100 * time.Millisecond})
	Handle(svc, func(context.Context, *elasticache.DescribeEventsInput) (*elasticache.DescribeEventsOutput, error) {
		return &elasticache.DescribeEventsOutput{}, nil
	})
	srv := startService(t, svc)

	// A client sends three chunks of its body and stalls: it holds those
	// and the share of the fourth chunk it is waiting for, the whole budget.
	head := "Action=DescribeEvents&Version=2015-02-02&Marker="
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, srv.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	stalled := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			stalled <- 0
			return
		}
		resp.Body.Close()
		stalled <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(head + strings.Repeat("m", 3*bodyChunkBytes-len(head)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled body to hold the whole budget", func() bool {
		if svc.bodies.TryAcquire(1) {
			svc.bodies.Release(1)
			return false
		}
		return true
	})

	if res := postForm(t, srv.URL, "Action=DescribeEvents&Version=2015-02-02"); res.status != http.StatusBadRequest || !strings.Contains(res.body, "<Code>Throttling</Code>") {
		t.Fatalf("a request while the budget is spent: status %d %s, want 400 Throttling", res.status, res.body)
	}

	// The stalled client finishes: it is served, and every share is back.
	if _, err := pw.Write([]byte("mmmm")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if status := <-stalled; status != http.StatusOK {
		t.Fatalf("the stalled request ended with status %d, want 200", status)
	}
	if res := postForm(t, srv.URL, "Action=DescribeEvents&Version=2015-02-02"); res.status != http.StatusOK {
		t.Fatalf("status %d after the stalled request ended: %s", res.status, res.body)
	}
	if !svc.bodies.TryAcquire(budget) {
		t.Fatal("finished requests did not give their share of the budget back")
	}
}

// waitFor polls cond every millisecond until it holds, failing the test
// after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
