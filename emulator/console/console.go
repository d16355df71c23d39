package console

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"golang.org/x/sync/singleflight"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// Path is where the console is served; every path under it is the
// console's.
const Path = "/_elasticache/console/"

// Scope is one account and region.
type Scope struct {
	Account, Region string
}

// Node is one node as the admin API inspects it live.
type Node struct {
	CacheClusterID    string
	Endpoint          string
	Status            string
	Role              string // primary, replica or unreachable
	ReplicationOffset int64
	LagBytes          int64
	LagSeconds        int
	UsedMemory        int64
	MaxMemory         int64
	Keys              int64
}

// Source is what the console reads and acts through: the API's own typed
// handlers, called with a context scoped to an account and region
// (queryapi.WithRequestInfo), the scopes that have resources, and the admin
// API's live view of the nodes of a scope.
type Source interface {
	Scopes() []Scope
	NodeStats(ctx context.Context, sc Scope) []Node
	DescribeReplicationGroups(context.Context, *elasticache.DescribeReplicationGroupsInput) (*elasticache.DescribeReplicationGroupsOutput, error)
	DescribeCacheClusters(context.Context, *elasticache.DescribeCacheClustersInput) (*elasticache.DescribeCacheClustersOutput, error)
	DescribeSnapshots(context.Context, *elasticache.DescribeSnapshotsInput) (*elasticache.DescribeSnapshotsOutput, error)
	DescribeEvents(context.Context, *elasticache.DescribeEventsInput) (*elasticache.DescribeEventsOutput, error)
	TestFailover(context.Context, *elasticache.TestFailoverInput) (*elasticache.TestFailoverOutput, error)
	CreateSnapshot(context.Context, *elasticache.CreateSnapshotInput) (*elasticache.CreateSnapshotOutput, error)
}

// Options are the console's links to the rest of the emulator.
type Options struct {
	Logger *slog.Logger
	// AdminHeader is the header every admin action needs; NodesPath is the
	// admin API's node path, whose kill, pause and resume the buttons post to.
	AdminHeader string
	NodesPath   string
	// Version is shown in the page's header.
	Version string
}

// Timing of a view: pages poll every refreshInterval and share a view
// built less than that ago; a build gives up on what it has not read after
// buildTimeout (a paused node answers nothing).
const (
	refreshInterval = 2 * time.Second
	buildTimeout    = 5 * time.Second
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Console serves the console's page, its live fragment, its static files
// and its actions.
type Console struct {
	src    Source
	opts   Options
	tmpl   *template.Template
	static http.Handler

	builds singleflight.Group
	mu     sync.Mutex
	last   *view // the latest build, reused while younger than refreshInterval
}

// New builds the console over src.
func New(src Source, opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl := template.Must(template.New("console").Funcs(templateFuncs).ParseFS(templateFiles, "templates/*.html"))
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return &Console{src: src, opts: opts, tmpl: tmpl,
		static: http.StripPrefix(Path+"static/", http.FileServerFS(sub))}
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(Path, "/") {
		http.Redirect(w, r, Path, http.StatusFound)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// Each path answers one method: reads are GETs, actions POSTs.
	method := http.MethodGet
	var serve func(http.ResponseWriter, *http.Request)
	switch {
	case strings.HasPrefix(rest, "static/"):
		serve = c.static.ServeHTTP
	case rest == "":
		serve = func(w http.ResponseWriter, r *http.Request) { c.render(w, r, "page") }
	case rest == "state":
		serve = func(w http.ResponseWriter, r *http.Request) { c.render(w, r, "state") }
	case rest == "failover", rest == "snapshot":
		method = http.MethodPost
		serve = func(w http.ResponseWriter, r *http.Request) { c.act(w, r, rest) }
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " is not allowed here, only " + method})
		return
	}
	serve(w, r)
}

// render executes one template (the whole page, or the part pages poll)
// over the current view, into a buffer so a failure is a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string) {
	v := c.current(r.Context())
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, pageData{view: v, Options: c.opts, Path: Path, Refresh: refreshInterval.Milliseconds()}); err != nil {
		c.opts.Logger.Error("console: rendering", "template", name, "err", err)
		http.Error(w, "console: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// The page runs its own script and nothing else; no site may frame it.
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.Write(buf.Bytes())
}

// pageData is what the templates see.
type pageData struct {
	*view
	Options Options
	Path    string
	Refresh int64
}

// current is the latest view if it is recent, else a new one; concurrent
// callers share one build.
func (c *Console) current(ctx context.Context) *view {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last != nil && time.Since(last.Built) < refreshInterval/2 {
		return last
	}
	ch := c.builds.DoChan("view", func() (any, error) {
		// The build outlives a page that went away: others wait on it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
		defer cancel()
		v := build(ctx, c.src)
		c.mu.Lock()
		c.last = v
		c.mu.Unlock()
		return v, nil
	})
	select {
	case res := <-ch:
		return res.Val.(*view)
	case <-ctx.Done():
		return &view{Built: time.Now(), Errors: []string{"the request ended before the view was built"}}
	}
}

// forget drops the cached view, so the poll after an action shows its effect.
func (c *Console) forget() {
	c.mu.Lock()
	c.last = nil
	c.mu.Unlock()
}

// act runs a button's action through the API's handler. It needs the
// admin header, as the admin API's actions do: a page of another site
// cannot send it without a preflight, which the front door refuses.
func (c *Console) act(w http.ResponseWriter, r *http.Request, action string) {
	if r.Header.Get(c.opts.AdminHeader) == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "console actions need the header " + c.opts.AdminHeader + ": 1"})
		return
	}
	q := r.URL.Query()
	sc := Scope{Account: q.Get("account"), Region: q.Get("region")}
	if !queryapi.ValidAccountID(sc.Account) || !queryapi.ValidRegion(sc.Region) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "account must be 12 digits and region an AWS region code (like us-east-1)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), buildTimeout)
	defer cancel()
	var msg string
	var err error
	switch action {
	case "failover":
		in := &elasticache.TestFailoverInput{ReplicationGroupId: aws.String(q.Get("group")), NodeGroupId: aws.String(q.Get("shard"))}
		_, err = c.src.TestFailover(scoped(ctx, sc, "TestFailover"), in)
		msg = fmt.Sprintf("TestFailover of %s shard %s started", q.Get("group"), q.Get("shard"))
	case "snapshot":
		name := fmt.Sprintf("%s-console-%s", cmp.Or(q.Get("group"), q.Get("cluster")), time.Now().UTC().Format("20060102-150405"))
		in := &elasticache.CreateSnapshotInput{SnapshotName: aws.String(name)}
		if g := q.Get("group"); g != "" {
			in.ReplicationGroupId = aws.String(g)
		} else {
			in.CacheClusterId = aws.String(q.Get("cluster"))
		}
		_, err = c.src.CreateSnapshot(scoped(ctx, sc, "CreateSnapshot"), in)
		msg = "CreateSnapshot " + name + " started"
	}
	c.forget()
	if err != nil {
		c.opts.Logger.Info("console action refused", "action", action, "err", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	c.opts.Logger.Info("console action", "action", action, "account", sc.Account, "region", sc.Region, "message", msg)
	writeJSON(w, http.StatusOK, map[string]string{"message": msg})
}

// scoped is ctx as the API's handlers see a request of action in sc.
func scoped(ctx context.Context, sc Scope, action string) context.Context {
	return queryapi.WithRequestInfo(ctx, queryapi.RequestInfo{Action: action, AccountID: sc.Account, Region: sc.Region})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
