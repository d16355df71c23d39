package queryapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// largestInput is the biggest request a client can legitimately make: a
// CreateReplicationGroup with AWS's maximum of 500 node groups, every
// member of each filled (slots, replica count, five replica AZs and
// Outposts), plus AWS's maximum of 50 tags.
func largestInput() *elasticache.CreateReplicationGroupInput {
	in := &elasticache.CreateReplicationGroupInput{
		ReplicationGroupId:          aws.String("largest-legitimate-request"),
		ReplicationGroupDescription: aws.String(strings.Repeat("d", 255)),
		NumNodeGroups:               aws.Int32(500),
		ReplicasPerNodeGroup:        aws.Int32(5),
	}
	outpost := func(i int) string {
		return fmt.Sprintf("arn:aws:outposts:us-east-1:123456789012:outpost/op-%017d", i)
	}
	for g := range 500 {
		ng := types.NodeGroupConfiguration{
			NodeGroupId:             aws.String(fmt.Sprintf("%04d", g+1)),
			Slots:                   aws.String(fmt.Sprintf("%d-%d", g*32, g*32+31)),
			ReplicaCount:            aws.Int32(5),
			PrimaryAvailabilityZone: aws.String("us-east-1a"),
			PrimaryOutpostArn:       aws.String(outpost(g)),
		}
		for r := range 5 {
			ng.ReplicaAvailabilityZones = append(ng.ReplicaAvailabilityZones, fmt.Sprintf("us-east-1%c", 'b'+r))
			ng.ReplicaOutpostArns = append(ng.ReplicaOutpostArns, outpost(g*5+r))
		}
		in.NodeGroupConfiguration = append(in.NodeGroupConfiguration, ng)
	}
	for i := range 50 {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(fmt.Sprintf("key-%02d", i)), Value: aws.String(strings.Repeat("v", 256))})
	}
	return in
}

// largestBody is largestInput as the real SDK client puts it on the wire.
func largestBody(t testing.TB) string {
	t.Helper()
	svc := New(Options{Logger: discardLogger()})
	var decoded atomic.Pointer[elasticache.CreateReplicationGroupInput]
	Handle(svc, func(_ context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
		decoded.Store(in)
		return nil, nil
	})
	var body atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		s := string(b)
		body.Store(&s)
		r.Body = io.NopCloser(strings.NewReader(s))
		svc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := newTestClient(srv.URL, "AKIDEXAMPLE").CreateReplicationGroup(context.Background(), largestInput()); err != nil {
		t.Fatalf("the largest legitimate request is refused: %v", err)
	}
	in := decoded.Load()
	if in == nil || len(in.NodeGroupConfiguration) != 500 || len(in.NodeGroupConfiguration[499].ReplicaOutpostArns) != 5 || len(in.Tags) != 50 {
		t.Fatal("the largest legitimate request was not decoded whole")
	}
	return *body.Load()
}

// TestLargestRequestFits checks the documented bounds against the largest
// legitimate request: it must stay well inside the body and parameter caps.
func TestLargestRequestFits(t *testing.T) {
	body := largestBody(t)
	params := strings.Count(body, "&") + 1
	t.Logf("largest legitimate request: %d bytes, %d parameters", len(body), params)
	if len(body) > maxBodyBytes*3/4 || params > maxParams*3/4 {
		t.Errorf("%d bytes and %d parameters leave too little room under the caps (%d bytes, %d parameters)",
			len(body), params, maxBodyBytes, maxParams)
	}
}

// serveDirect serves one form POST without a network and returns the
// response and the bytes allocated while serving it (the least of three
// runs, so that a stray background allocation does not count).
func serveDirect(svc *Service, body string) (*httptest.ResponseRecorder, uint64) {
	var rec *httptest.ResponseRecorder
	least := uint64(1<<64 - 1)
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec = httptest.NewRecorder()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		svc.ServeHTTP(rec, req)
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return rec, least
}

// repeatTo repeats unit, joined by sep, until the result is about size bytes.
func repeatTo(unit, sep string, size int) string {
	n := size / (len(unit) + len(sep))
	return strings.Repeat(unit+sep, n-1) + unit
}

// TestHostileBodiesBoundedMemory sends bodies shaped to make the decoder
// build as much as possible and checks that what one request allocates is
// a small multiple of what it sent. Before the keys were checked against
// the schema, a 1 MiB body of dotted names allocated over 100 MiB.
func TestHostileBodiesBoundedMemory(t *testing.T) {
	svc := New(Options{Logger: discardLogger()})
	Handle(svc, func(context.Context, *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
		return nil, nil
	})
	const head = "Action=CreateReplicationGroup&Version=2015-02-02&ReplicationGroupId=rg&ReplicationGroupDescription=d&"
	// 1 MiB bodies: under both caps, so every key is looked at.
	const size = 1 << 20
	deepKnown := "NodeGroupConfiguration.NodeGroupConfiguration.7.ReplicaAvailabilityZones.AvailabilityZone.3"
	cases := []struct {
		name, body string
		status     int
	}{
		{"one key of dotted segments", head + repeatTo("a", ".", size) + "=1", 200},
		{"many keys of dotted segments", head + repeatTo(repeatTo("a", ".", 64)+"=1", "&", size), 200},
		{"keys deeper than the schema", head + repeatTo(deepKnown+".x.y.z.w=1", "&", size), 200},
		{"distinct known keys", head + distinctKnownKeys(size), 200},
		{"too many parameters", head + repeatTo("a=", "&", size), 400},
		{"as large as the cap", head + repeatTo("a", ".", maxBodyBytes-len(head)-2) + "=1", 200},
		{"larger than the cap", head + repeatTo("a", ".", 8<<20) + "=1", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, allocated := serveDirect(svc, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %.300s", rec.Code, tc.status, rec.Body)
			}
			sent := min(len(tc.body), maxBodyBytes)
			t.Logf("%d bytes sent, %d allocated (%.1f×)", len(tc.body), allocated, float64(allocated)/float64(sent))
			if allocated > 12*uint64(sent) {
				t.Errorf("%d bytes allocated for a %d-byte body", allocated, len(tc.body))
			}
		})
	}
}

// distinctKnownKeys fills about size bytes with keys the schema accepts,
// each creating new tree nodes: every node group index and AZ index.
func distinctKnownKeys(size int) string {
	var b strings.Builder
	for g := 1; g <= maxListIndex && b.Len() < size; g++ {
		for az := 1; az <= 20 && b.Len() < size; az++ {
			fmt.Fprintf(&b, "NodeGroupConfiguration.NodeGroupConfiguration.%d.ReplicaAvailabilityZones.AvailabilityZone.%d=z&", g, az)
		}
	}
	return strings.TrimSuffix(b.String(), "&")
}

// BenchmarkDecodeLargestRequest serves the largest legitimate request, and
// the costliest body accepted (as many distinct list items as the caps let
// through), and reports what each allocates per byte of body
// (alloc/body-byte): the factor by which the body cap bounds the memory of
// one request.
func BenchmarkDecodeLargestRequest(b *testing.B) {
	svc := New(Options{Logger: discardLogger()})
	Handle(svc, func(context.Context, *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
		return nil, nil
	})
	b.Run("legitimate", func(b *testing.B) { benchmarkServe(b, svc, largestBody(b)) })
	b.Run("costliest-accepted", func(b *testing.B) { benchmarkServe(b, svc, costliestAcceptedBody()) })
}

// costliestAcceptedBody fills the body cap with as many distinct items as
// the parameter cap allows: each key makes its own tree nodes and, once
// decoded, its own list element.
func costliestAcceptedBody() string {
	const head = "Action=CreateReplicationGroup&Version=2015-02-02&ReplicationGroupId=rg&ReplicationGroupDescription=d"
	items := maxParams - 10
	perItem := (maxBodyBytes - len(head)) / items
	var b strings.Builder
	b.WriteString(head)
	for i := range items {
		key := fmt.Sprintf("&NodeGroupConfiguration.NodeGroupConfiguration.%d.ReplicaAvailabilityZones.AvailabilityZone.%d=",
			i/17+1, i%17+1)
		b.WriteString(key)
		b.WriteString(strings.Repeat("z", max(1, perItem-len(key))))
	}
	return b.String()
}

func benchmarkServe(b *testing.B, svc *Service, body string) {
	if len(body) > maxBodyBytes {
		b.Fatalf("%d-byte body is over the cap", len(body))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %.300s", rec.Code, rec.Body)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(body)), "alloc/body-byte")
	b.ReportMetric(float64(len(body)), "body-bytes")
}
