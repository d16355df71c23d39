package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/chromedp/chromedp"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/emulator/console"
)

// chromiumPath is Debian's Chromium (scripts/install-deps installs it). A
// machine without it skips the browser test, except in CI, where a missing
// browser must fail the run rather than quietly test nothing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: scripts/install-deps installs it (Debian package chromium)")
	}
	t.Skip("chromium is not installed (scripts/install-deps installs it)")
	return ""
}

// consoleScreenshotEnv names a file the browser test writes a PNG of the
// console to (the README's picture, docs/console.png, is made with it).
const consoleScreenshotEnv = "ELASTICACHE_LOCAL_CONSOLE_SCREENSHOT"

// TestConsoleInBrowser loads the web console in headless Chromium against
// an emulator with a three-node group, presses the group's TestFailover
// button and reads from the rendered page that the roles and the event
// list changed; then its Snapshot button (the snapshot is listed) and a
// replica's kill button (events about the node). Before that it checks
// that the console's actions refuse what the admin API refuses: another
// site's page, a rebinding host name, and a request without the admin
// header.
func TestConsoleInBrowser(t *testing.T) {
	browser := chromiumPath(t)
	t.Parallel()
	e := startEmulator(t)
	createGroup(t, e.client, &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId: aws.String("shop"), ReplicationGroupDescription: aws.String("shop carts"),
		NumCacheClusters: aws.Int32(3), AutomaticFailoverEnabled: aws.Bool(true), CacheNodeType: aws.String("cache.t4g.small"),
	})
	primary := primaryClient(t, e.client, "shop")
	for i := range 50 {
		if err := primary.Set(context.Background(), fmt.Sprintf("cart:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	page := e.url + console.Path
	failoverURL := page + "failover?account=000000000000&region=us-east-1&group=shop&shard=0001"
	for _, c := range []struct {
		name    string
		method  string
		url     string
		headers map[string]string
	}{
		{"another site's page", http.MethodPost, failoverURL, map[string]string{"Origin": "http://evil.example", emulator.AdminHeader: "1"}},
		{"a cross-site request without Origin", http.MethodPost, failoverURL, map[string]string{"Sec-Fetch-Site": "cross-site", emulator.AdminHeader: "1"}},
		{"no admin header", http.MethodPost, failoverURL, nil},
		{"a rebinding host name", http.MethodGet, page, map[string]string{"Host": "attacker.example"}},
		{"a GET of an action", http.MethodGet, failoverURL, map[string]string{emulator.AdminHeader: "1"}},
	} {
		req, err := http.NewRequest(c.method, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		req.Host = cmp.Or(c.headers["Host"], req.Host)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s: %s %s answered %d, want it refused", c.name, c.method, c.url, resp.StatusCode)
		}
	}

	ctx := browserContext(t, browser)
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`tr[data-node="shop-003"]`))); err != nil {
		t.Fatalf("loading the console: %v", err)
	}
	before := renderedConsole(t, ctx)
	if before.Roles["shop-001"] != "primary" || before.Roles["shop-002"] != "replica" || before.Roles["shop-003"] != "replica" {
		t.Fatalf("roles before the failover (refused requests must have changed nothing) = %v, want shop-001 primary", before.Roles)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="failover"][data-group="shop"]`))); err != nil {
		t.Fatalf("pressing TestFailover: %v", err)
	}
	after := waitConsole(t, ctx, "the failover", func(dom consoleDOM) bool {
		newPrimary := ""
		for id, role := range dom.Roles {
			if role == "primary" {
				newPrimary = id
			}
		}
		completed := slices.ContainsFunc(dom.Events, func(ev string) bool {
			return strings.Contains(ev, "Failover from primary node shop-001") && !slices.Contains(before.Events, ev)
		})
		return dom.Roles["shop-001"] == "replica" && newPrimary != "" && newPrimary != "shop-001" && completed
	})
	if !slices.ContainsFunc(after.Events, func(ev string) bool { return strings.Contains(ev, "Test Failover API called for node group 0001") }) {
		t.Errorf("events after the failover = %q, want the TestFailover call", after.Events)
	}
	if !strings.Contains(after.Notice, "TestFailover of shop shard 0001 started") {
		t.Errorf("notice = %q, want the action's confirmation", after.Notice)
	}

	// The other buttons: a snapshot of the group appears in the snapshot
	// list, and a kill of a replica (the admin API's path, posted by the
	// page) brings events about that node.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="snapshot"][data-group="shop"]`))); err != nil {
		t.Fatalf("pressing Snapshot: %v", err)
	}
	snapshotted := waitConsole(t, ctx, "an available snapshot of shop", func(dom consoleDOM) bool {
		return slices.ContainsFunc(dom.Snapshots, func(s string) bool {
			return strings.HasPrefix(s, "shop-console-") && strings.HasSuffix(s, " available")
		})
	})
	replica := "shop-003"
	if snapshotted.Roles[replica] != "replica" {
		replica = "shop-001"
	}
	seen := snapshotted.Events
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action="kill"][data-cluster="`+replica+`"]`))); err != nil {
		t.Fatalf("pressing kill: %v", err)
	}
	waitConsole(t, ctx, "an event about the killed "+replica, func(dom consoleDOM) bool {
		return slices.ContainsFunc(dom.Events, func(ev string) bool { return strings.Contains(ev, replica) && !slices.Contains(seen, ev) })
	})
	waitConsole(t, ctx, replica+" back as a replica", func(dom consoleDOM) bool { return dom.Roles[replica] == "replica" })

	if out := os.Getenv(consoleScreenshotEnv); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// browserContext starts headless Chromium for one test, stopped at cleanup.
func browserContext(t *testing.T, path string) context.Context {
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1500, 900),
		// Containers and CI run as root, where Chromium's sandbox cannot start.
		chromedp.NoSandbox)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// consoleDOM is what the rendered console shows: each node's role, the
// event list's entries and the action notice.
type consoleDOM struct {
	Roles     map[string]string `json:"roles"`
	Events    []string          `json:"events"`
	Notice    string            `json:"notice"`
	Snapshots []string          `json:"snapshots"` // "name status"
}

// waitConsole polls the rendered console until cond holds (the page
// refreshes itself every 2 s), failing after 30 s with what it shows.
func waitConsole(t *testing.T, ctx context.Context, what string, cond func(consoleDOM) bool) consoleDOM {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		dom := renderedConsole(t, ctx)
		if cond(dom) {
			return dom
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not show %s within 30 s: roles %v, notice %q, snapshots %q, events %q", what, dom.Roles, dom.Notice, dom.Snapshots, dom.Events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func renderedConsole(t *testing.T, ctx context.Context) consoleDOM {
	t.Helper()
	dom, err := chromedp.Run(ctx, chromedp.Evaluate[consoleDOM](`({
		roles: Object.fromEntries([...document.querySelectorAll("tr[data-node]")].map(r => [r.dataset.node, r.dataset.role])),
		events: [...document.querySelectorAll("#events li")].map(li => li.textContent.replace(/\s+/g, " ").trim()),
		notice: document.getElementById("notice").textContent,
		snapshots: [...document.querySelectorAll("tr[data-snapshot]")].map(r => r.dataset.snapshot + " " + r.dataset.status),
	})`))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("reading the console's DOM: %v", err)
	}
	return dom
}

// consoleRoles fetches the console's state as a page refresh does and
// counts its node rows by role, so a large fleet's test can check that the
// console shows every node with the role it reports.
func consoleRoles(t testing.TB, url string) map[string]int {
	t.Helper()
	resp, err := http.Get(url + console.Path + "state")
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("console: %d %v", resp.StatusCode, err)
	}
	roles := map[string]int{}
	rows := regexp.MustCompile(`<tr data-node="[^"]+" data-role="([a-z]+)"`)
	for _, m := range rows.FindAllSubmatch(body, -1) {
		roles[string(m[1])]++
	}
	return roles
}
