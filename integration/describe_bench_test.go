package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"

	"github.com/elasticache-local/elasticache-local/emulator"
)

// describeClients is how many clients call at once.
const describeClients = 8

// BenchmarkDescribeReplicationGroups measures DescribeReplicationGroups
// with 200 single-node groups (ELASTICACHE_LOCAL_BENCH_DESCRIBE_GROUPS)
// while the health monitor checks their nodes: 8 clients calling at once
// for one group by id, and for the first page (MaxRecords unset: 100
// groups), each for a window (ELASTICACHE_LOCAL_BENCH_DESCRIBE_WINDOW,
// default 2s) per round; a round per b.N, so -benchtime 5x gives 5 rounds.
// Clients are raw HTTP POSTs of a prepared body (the server's cost) and
// the real SDK client (what a program sees, its own parsing included).
//
// The baseline, the floor that HTTP and the client set, is an http.Server
// of the same stack (emulator.HTTPServer and emulator.LimitListener)
// answering the bytes the emulator answered, precomputed, to the same
// clients in the same round; the two sides alternate, and the ratio
// reported is the median over the rounds of the emulator's requests/s over
// the floor's (goal >= 0.5), with p50/p99 latency over all rounds (goal:
// p99 < 2 ms).
//
//	go test ./integration -run '^$' -bench DescribeReplicationGroups -benchtime 5x -timeout 30m
func BenchmarkDescribeReplicationGroups(b *testing.B) {
	if testRuntime() != "process" {
		b.Skip("200 nodes: the process runtime's scale")
	}
	groups := envInt("ELASTICACHE_LOCAL_BENCH_DESCRIBE_GROUPS", 200)
	window := envDuration("ELASTICACHE_LOCAL_BENCH_DESCRIBE_WINDOW", 2*time.Second)
	e := startEmulator(b)
	ids := createSingleNodeGroups(b, e.client, groups)

	one := "Action=DescribeReplicationGroups&Version=2015-02-02&ReplicationGroupId=" + ids[len(ids)/2]
	first := "Action=DescribeReplicationGroups&Version=2015-02-02"
	emuRaw := newRawDescriber(e.url)
	oneAnswer, pageAnswer := emuRaw.capture(b, one), emuRaw.capture(b, first)
	checkPage(b, e.client, min(groups, 100))
	floorOne, floorPage := startFloor(b, oneAnswer), startFloor(b, pageAnswer)
	b.Logf("answers: one group %d bytes, first page %d bytes", len(oneAnswer.body), len(pageAnswer.body))

	type side struct {
		name string
		call func(ctx context.Context) error
	}
	type variant struct {
		name  string
		sides []side // the emulator, the floor, and moto when it runs
	}
	oneIn := &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(ids[len(ids)/2])}
	pageIn := &elasticache.DescribeReplicationGroupsInput{}
	sdkCall := func(c *elasticache.Client, in *elasticache.DescribeReplicationGroupsInput, want int) func(context.Context) error {
		return func(ctx context.Context) error {
			out, err := c.DescribeReplicationGroups(ctx, in)
			if err == nil && len(out.ReplicationGroups) != want {
				err = fmt.Errorf("%d groups answered, want %d", len(out.ReplicationGroups), want)
			}
			return err
		}
	}
	floorOneRaw, floorPageRaw := newRawDescriber(floorOne), newRawDescriber(floorPage)
	pageLen := min(groups, 100)
	variants := []variant{
		{"one-raw", []side{{"emulator", emuRaw.call(one)}, {"floor", floorOneRaw.call(one)}}},
		{"page-raw", []side{{"emulator", emuRaw.call(first)}, {"floor", floorPageRaw.call(first)}}},
		{"one-sdk", []side{{"emulator", sdkCall(e.client, oneIn, 1)}, {"floor", sdkCall(newClient(floorOne, "us-east-1"), oneIn, 1)}}},
		{"page-sdk", []side{{"emulator", sdkCall(e.client, pageIn, pageLen)}, {"floor", sdkCall(newClient(floorPage, "us-east-1"), pageIn, pageLen)}}},
	}
	if motoWanted() {
		// moto holds the same groups (ids) and pages by 100 as well.
		if url, why := startMoto(b); url == "" {
			b.Logf("no comparison with moto: %s", why)
		} else {
			mc := newClient(url, "us-east-1")
			createSingleNodeGroups(b, mc, groups)
			checkPage(b, mc, pageLen)
			raw := newRawDescriber(url)
			raw.header = http.Header{"Authorization": {motoAuthorization}}
			moto := [][]side{
				{{"moto", raw.call(one)}}, {{"moto", raw.call(first)}},
				{{"moto", sdkCall(mc, oneIn, 1)}}, {{"moto", sdkCall(mc, pageIn, pageLen)}},
			}
			for i := range variants {
				variants[i].sides = append(variants[i].sides, moto[i]...)
			}
		}
	}
	if only := os.Getenv("ELASTICACHE_LOCAL_BENCH_DESCRIBE_VARIANTS"); only != "" {
		variants = slices.DeleteFunc(variants, func(v variant) bool { return !slices.Contains(strings.Split(only, ","), v.name) })
	}
	type tally struct {
		lat   []time.Duration
		rates []float64
		cpu   []float64 // µs of this process's CPU per call (clients and servers)
	}
	results := map[string]*tally{}
	ratios := map[string][]float64{} // variant/baseline: the emulator's rate over the baseline's
	b.ResetTimer()
	for round := range b.N {
		for _, v := range variants {
			sides := slices.Clone(v.sides)
			if round%2 == 1 {
				slices.Reverse(sides) // alternate which goes first
			}
			rate, p99 := map[string]float64{}, map[string]float64{}
			for _, s := range sides {
				cpu0 := selfCPU(b)
				lat, n := hammer(b, window, s.call)
				cpu := selfCPU(b) - cpu0
				key := v.name + "/" + s.name
				if results[key] == nil {
					results[key] = &tally{}
				}
				results[key].lat = append(results[key].lat, lat...)
				rate[s.name] = float64(n) / window.Seconds()
				p99[s.name] = ms(percentile(lat, 99))
				results[key].rates = append(results[key].rates, rate[s.name])
				results[key].cpu = append(results[key].cpu, float64(cpu.Microseconds())/float64(n))
			}
			line := fmt.Sprintf("round %d %s:", round, v.name)
			for _, s := range v.sides {
				t := results[v.name+"/"+s.name]
				line += fmt.Sprintf(" %s %.0f req/s %.0f µs CPU/req p99 %.2f ms;", s.name, rate[s.name], t.cpu[len(t.cpu)-1], p99[s.name])
				if s.name != "emulator" {
					ratios[v.name+"/"+s.name] = append(ratios[v.name+"/"+s.name], rate["emulator"]/rate[s.name])
					line += fmt.Sprintf(" emulator/%s %.2fx;", s.name, rate["emulator"]/rate[s.name])
				}
			}
			b.Log(line)
		}
	}
	b.StopTimer()
	for _, v := range variants {
		for _, s := range v.sides {
			t := results[v.name+"/"+s.name]
			prefix := v.name + "-"
			if s.name != "emulator" {
				prefix += s.name + "-"
			}
			b.ReportMetric(median(t.rates), prefix+"req/s")
			b.ReportMetric(ms(percentile(t.lat, 50)), prefix+"p50-ms")
			b.ReportMetric(ms(percentile(t.lat, 99)), prefix+"p99-ms")
			b.ReportMetric(median(t.cpu), prefix+"cpu-us/req")
			if s.name != "emulator" {
				b.ReportMetric(median(ratios[v.name+"/"+s.name]), v.name+"-vs-"+s.name)
			}
		}
	}
}

// hammer runs call from describeClients goroutines for window and returns
// every call's latency and how many calls there were; any failed call
// fails the benchmark.
func hammer(b *testing.B, window time.Duration, call func(context.Context) error) ([]time.Duration, int) {
	ctx, cancel := context.WithTimeout(context.Background(), window+30*time.Second)
	defer cancel()
	end := time.Now().Add(window)
	lats := make([][]time.Duration, describeClients)
	errs := make([]error, describeClients)
	var wg sync.WaitGroup
	for i := range describeClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := call(ctx); err != nil {
					errs[i] = err
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for i := range describeClients {
		if errs[i] != nil {
			b.Fatal(errs[i])
		}
		all = append(all, lats[i]...)
	}
	return all, len(all)
}

// createSingleNodeGroups creates n groups of one node (dsc-000 …), twenty
// creates in flight at most, and waits until every one is available.
func createSingleNodeGroups(b *testing.B, c *elasticache.Client, n int) []string {
	begin := time.Now()
	ids := make([]string, n)
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("dsc-%03d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = c.CreateReplicationGroup(ctxT(b, time.Minute), &elasticache.CreateReplicationGroupInput{
				ReplicationGroupId: aws.String(ids[i]), ReplicationGroupDescription: aws.String("describe bench"),
				CacheNodeType: aws.String("cache.t4g.micro"), NumCacheClusters: aws.Int32(1),
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("create %s: %v", ids[i], err)
		}
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		waiting, err := groupsNotAvailable(c, n)
		if err != nil {
			b.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d groups still not available", waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("%d single-node groups created and available in %v", n, time.Since(begin).Round(time.Millisecond))
	return ids
}

// groupsNotAvailable counts the groups of the want listed that are not
// available (all want of them when fewer are listed); a failed group is an
// error.
func groupsNotAvailable(c *elasticache.Client, want int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed, waiting := 0, 0
	p := elasticache.NewDescribeReplicationGroupsPaginator(c, &elasticache.DescribeReplicationGroupsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, g := range out.ReplicationGroups {
			listed++
			switch s := aws.ToString(g.Status); {
			case strings.Contains(s, "failed"):
				return 0, fmt.Errorf("group %s is %s", aws.ToString(g.ReplicationGroupId), s)
			case s != "available":
				waiting++
			}
		}
	}
	if listed < want {
		return want, nil
	}
	return waiting, nil
}

// checkPage checks the first page lists want groups, with a Marker when
// there are more.
func checkPage(b *testing.B, c *elasticache.Client, want int) {
	out, err := c.DescribeReplicationGroups(ctxT(b, time.Minute), &elasticache.DescribeReplicationGroupsInput{})
	if err != nil {
		b.Fatal(err)
	}
	if len(out.ReplicationGroups) != want {
		b.Fatalf("first page lists %d groups, want %d", len(out.ReplicationGroups), want)
	}
}

// rawDescriber POSTs prepared Query bodies over keep-alive connections,
// one per client.
type rawDescriber struct {
	url    string
	client *http.Client
	header http.Header // added to every request
}

func newRawDescriber(url string) *rawDescriber {
	tr := &http.Transport{MaxIdleConnsPerHost: describeClients, DisableCompression: true}
	return &rawDescriber{url: url + "/", client: &http.Client{Transport: tr}}
}

// answer is a response captured from the emulator.
type answer struct {
	header http.Header
	body   []byte
}

func (d *rawDescriber) post(ctx context.Context, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range d.header {
		req.Header[k] = v
	}
	return d.client.Do(req)
}

// capture returns the emulator's answer to body.
func (d *rawDescriber) capture(b *testing.B, body string) answer {
	resp, err := d.post(ctxT(b, time.Minute), body)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d %v: %s", body, resp.StatusCode, err, got)
	}
	return answer{header: resp.Header.Clone(), body: got}
}

// call is one POST of body whose whole answer is read.
func (d *rawDescriber) call(body string) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, err := d.post(ctx, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// startFloor serves a precomputed answer to every request through the
// emulator's HTTP stack (same server settings, same connection limit): it
// reads the request body, as any handler must, and writes the captured
// headers and bytes. It returns its URL.
func startFloor(b *testing.B, a answer) string {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.%d.0.1:0", addressOctet()))
	if err != nil {
		b.Fatal(err)
	}
	cfg := emulator.Config{}
	srv := emulator.HTTPServer(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		h := w.Header()
		for _, k := range []string{"Content-Type", "Content-Length", "X-Amzn-Requestid"} {
			h[k] = a.header[k]
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(a.body)
	}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(emulator.LimitListener(cfg, ln)) }()
	b.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return "http://" + ln.Addr().String()
}
