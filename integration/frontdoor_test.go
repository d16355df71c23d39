package integration

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// rawRequest sends a request the way a browser or a hand-made client
// would, with the Host and headers given, and returns status, headers and
// the error code of an XML error body.
func rawRequest(t *testing.T, method, target, host string, header http.Header, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Type, Code, Message string }
	}
	_ = xml.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header, e.Error.Code
}

// TestCrossSiteRequestsRefused plays a web page on the same machine: a
// form POST from another site, an image's GET, and a DNS-rebound host name
// must not reach the API or the admin API, while allow-listed origins and
// hosts, and clients that are not browsers, still do.
func TestCrossSiteRequestsRefused(t *testing.T) {
	e := startEmulatorWith(t, func(cfg *emulator.Config) {
		cfg.AllowedOrigins = []string{"http://dashboard.example:8080"}
		cfg.AllowedHosts = []string{"elasticache-local"}
	})
	ctx := ctxT(t, time.Minute)
	if _, err := e.client.CreateCacheParameterGroup(ctx, &elasticache.CreateCacheParameterGroupInput{
		CacheParameterGroupName: aws.String("keep-me"), CacheParameterGroupFamily: aws.String("redis7"), Description: aws.String("d"),
	}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.url)
	port := u.Port()
	del := url.Values{"Action": {"DeleteCacheParameterGroup"}, "Version": {"2015-02-02"}, "CacheParameterGroupName": {"keep-me"}}.Encode()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	refused := []struct {
		name, method, target, host string
		header                     http.Header
		body                       string
	}{
		{"cross-site form POST", "POST", e.url + "/", "", h("Origin", "http://evil.example"), del},
		{"form POST from another port of localhost", "POST", e.url + "/", "", h("Origin", "http://localhost:3000"), del},
		{"form POST from an opaque origin", "POST", e.url + "/", "", h("Origin", "null"), del},
		{"cross-site GET without Origin (an image)", "GET", e.url + "/?" + del, "", h("Sec-Fetch-Site", "cross-site"), ""},
		{"same-site GET without Origin", "GET", e.url + "/?" + del, "", h("Sec-Fetch-Site", "same-site"), ""},
		{"DNS-rebound host, API", "POST", e.url + "/", "evil.example:" + port, nil, del},
		{"DNS-rebound host, admin read", "GET", e.url + emulator.AdminNodesPath, "evil.example:" + port, nil, ""},
		{"DNS-rebound host, admin action", "POST", e.url + emulator.AdminNodesPath + "/x/kill", "evil.example:" + port,
			h(emulator.AdminHeader, "1"), ""},
		{"DNS-rebound host, allowed origin", "POST", e.url + "/", "evil.example",
			h("Origin", "http://dashboard.example:8080"), del},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, _, code := rawRequest(t, tc.method, tc.target, tc.host, tc.header, tc.body)
			if status != http.StatusForbidden || code != "AccessDenied" {
				t.Errorf("got %d %q, want 403 AccessDenied", status, code)
			}
		})
	}
	if out, err := e.client.DescribeCacheParameterGroups(ctx, &elasticache.DescribeCacheParameterGroupsInput{
		CacheParameterGroupName: aws.String("keep-me")}); err != nil || len(out.CacheParameterGroups) != 1 {
		t.Fatalf("the parameter group did not survive: %v", err)
	}

	describe := url.Values{"Action": {"DescribeCacheParameterGroups"}, "Version": {"2015-02-02"}}.Encode()
	allowed := []struct {
		name, host string
		header     http.Header
	}{
		{"no browser headers", "", nil},
		{"user typed the URL", "", h("Sec-Fetch-Site", "none")},
		{"allow-listed origin", "", h("Origin", "http://dashboard.example:8080", "Sec-Fetch-Site", "cross-site")},
		{"the emulator's own origin", "", h("Origin", e.url, "Sec-Fetch-Site", "same-origin")},
		{"localhost", "localhost:" + port, nil},
		{"IPv6 loopback", "[::1]:" + port, nil},
		{"other loopback address", "127.0.0.53:" + port, nil},
		{"allow-listed host", "elasticache-local:" + port, nil},
		{"allow-listed host, upper-case", "ElastiCache-Local:" + port, nil},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			status, header, code := rawRequest(t, "POST", e.url+"/", tc.host, tc.header, describe)
			if status != http.StatusOK {
				t.Fatalf("got %d %q, want 200", status, code)
			}
			if origin := tc.header.Get("Origin"); origin != "" && header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("Access-Control-Allow-Origin %q", header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
	// The allow-listed page's preflight for an admin action is answered.
	status, header, _ := rawRequest(t, "OPTIONS", e.url+emulator.AdminNodesPath+"/x/kill", "", h("Origin", "http://dashboard.example:8080",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", emulator.AdminHeader), "")
	if status != http.StatusNoContent || !strings.Contains(header.Get("Access-Control-Allow-Headers"), emulator.AdminHeader) {
		t.Errorf("preflight: %d %v", status, header)
	}
}

// TestAdminAPIScoped checks that admin actions need the admin header and
// that the admin API shows and acts on the nodes of one account and region
// only.
func TestAdminAPIScoped(t *testing.T) {
	e := startEmulator(t)
	ctx := ctxT(t, 2*time.Minute)
	opts := e.client.Options()
	opts.Credentials = credentials.NewStaticCredentialsProvider("123456789012", "secret", "")
	other := elasticache.New(opts)
	for _, c := range []*elasticache.Client{e.client, other} {
		if _, err := c.CreateCacheCluster(ctx, &elasticache.CreateCacheClusterInput{
			CacheClusterId: aws.String("mine"), Engine: aws.String("redis"), CacheNodeType: aws.String("cache.t4g.micro"), NumCacheNodes: aws.Int32(1),
		}); err != nil {
			t.Fatal(err)
		}
		waitClusterAvailable(t, c, "mine")
	}
	nodes := func(query string) []emulator.NodeView {
		t.Helper()
		resp, err := http.Get(e.url + emulator.AdminNodesPath + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var views []emulator.NodeView
		if err := json.NewDecoder(resp.Body).Decode(&views); err != nil {
			t.Fatalf("%s: HTTP %d: %v", query, resp.StatusCode, err)
		}
		return views
	}
	for query, account := range map[string]string{"": "000000000000", "?account=123456789012": "123456789012"} {
		views := nodes(query)
		if len(views) != 1 || views[0].AccountID != account || views[0].Region != "us-east-1" {
			t.Errorf("nodes%s = %+v, want the one node of %s", query, views, account)
		}
	}
	if views := nodes("?region=eu-west-1"); len(views) != 0 {
		t.Errorf("eu-west-1 has no nodes, got %+v", views)
	}
	post := func(query string, header bool) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+emulator.AdminNodesPath+"/mine/kill"+query, nil)
		if header {
			req.Header.Set(emulator.AdminHeader, "1")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, query := range []string{"?region=..", "?account=..%2F123456789012", "?account=12345"} {
		if status := post(query, true); status != http.StatusBadRequest {
			t.Errorf("kill%s: HTTP %d, want 400", query, status)
		}
		if status, _ := http.Get(e.url + emulator.AdminNodesPath + query); status.StatusCode != http.StatusBadRequest {
			t.Errorf("nodes%s: HTTP %d, want 400", query, status.StatusCode)
		}
	}
	if status := post("?account=123456789012", false); status != http.StatusForbidden {
		t.Fatalf("kill without the admin header: HTTP %d, want 403", status)
	}
	if status := post("?region=eu-west-1", true); status != http.StatusNotFound {
		t.Fatalf("kill in a region without the cluster: HTTP %d, want 404", status)
	}
	if views := nodes("?account=123456789012"); views[0].Role == "unreachable" {
		t.Fatal("a refused kill killed the node")
	}
	if status := post("?account=123456789012", true); status != http.StatusNoContent {
		t.Fatalf("kill: HTTP %d, want 204", status)
	}
	// The kill hit the other account's node: the default account's stays up.
	if views := nodes(""); views[0].Role == "unreachable" {
		t.Error("the kill reached another account's node")
	}
}

// readUntilClosed reads conn until the server closes it, and fails if that
// does not happen within d.
func readUntilClosed(t *testing.T, conn net.Conn, r io.Reader, d time.Duration) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", d)
	}
}

// TestHTTPTimeouts checks that a client sending its body slowly and a
// keep-alive connection left idle are disconnected.
func TestHTTPTimeouts(t *testing.T) {
	e := startEmulatorWith(t, func(cfg *emulator.Config) {
		cfg.ReadTimeout = 300 * time.Millisecond
		cfg.IdleTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(e.url, "http://")

	t.Run("slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nAction=", addr)
		readUntilClosed(t, conn, conn, 10*time.Second)
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", emulator.HealthPath, addr)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("health: %d, close %v", resp.StatusCode, resp.Close)
		}
		readUntilClosed(t, conn, br, 10*time.Second)
	})
}

// TestConnectionLimit checks that connections past the cap are closed at
// once and that a slot freed is usable again.
func TestConnectionLimit(t *testing.T) {
	e := startEmulatorWith(t, func(cfg *emulator.Config) { cfg.MaxConnections = 2 })
	addr := strings.TrimPrefix(e.url, "http://")
	// health opens a connection and asks for the health endpoint on it; a
	// 200 proves the connection holds a slot.
	health := func(conn net.Conn) (*http.Response, error) {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", emulator.HealthPath, addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if resp, err := health(conn); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection within the cap: %v", err)
		}
		held = append(held, conn)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	fmt.Fprintf(over, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", emulator.HealthPath, addr)
	readUntilClosed(t, over, over, 10*time.Second)

	held[0].Close()
	eventually(t, 10*time.Second, func() error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := health(conn)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
}
