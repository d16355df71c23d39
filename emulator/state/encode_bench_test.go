package state

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEncodeQuotaRegion encodes a scope at the default node quota
// (100 groups of 3 nodes) with a day of events: the work every change of
// such a scope costs before its write.
func BenchmarkEncodeQuotaRegion(b *testing.B) {
	rec := &Region{Scope: Scope{Account: "000000000000", Region: "us-east-1"}, Tags: map[string][]Tag{}}
	now := time.Now()
	for g := range 100 {
		id := fmt.Sprintf("group-%03d", g)
		ng := NodeGroup{ID: "0001", Primary: id + "-001", PrimaryEndpoint: &Endpoint{Host: "127.0.0.2", Port: 6379}, ReaderEndpoint: &Endpoint{Host: "127.0.0.3", Port: 6379}}
		for m := 1; m <= 3; m++ {
			cid := fmt.Sprintf("%s-%03d", id, m)
			ng.Members = append(ng.Members, cid)
			rec.CacheClusters = append(rec.CacheClusters, CacheCluster{ID: cid, GroupID: id, Status: "available", Created: now,
				Engine: EngineVersion{"redis", "7.1", "7.1.0", "redis7"}, NodeType: "cache.t3.micro", ParamGroup: "default.redis7",
				SubnetGroup: "default", Port: 6379, AZ: "us-east-1a",
				Nodes: []CacheNode{{ID: "0001", Name: "000000000000-us-east-1-" + cid + "-0001", Endpoint: Endpoint{Host: "127.0.0.4", Port: 6379}, Status: "available", Created: now}}})
			rec.Events = append(rec.Events, Event{Date: now, SourceType: "cache-cluster", SourceID: cid, Message: "Cache cluster created"})
		}
		rec.ReplicationGroups = append(rec.ReplicationGroups, ReplicationGroup{ID: id, Status: "available", Created: now, NodeGroups: []NodeGroup{ng}})
	}
	b.ResetTimer()
	var size int
	for b.Loop() {
		body, err := Encode(rec)
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "bytes/file")
}
