package emulator

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
)

// TestSplitSettings: without ApplyImmediately a failover change waits with
// the Multi-AZ setting asked with it, Multi-AZ alone applies now, a
// promotion waits, a later request replaces what waits (naming the
// current primary cancels a pending promotion); with ApplyImmediately
// everything, what waited included, applies now.
func TestSplitSettings(t *testing.T) {
	show := func(p *pendingSettings) string {
		if p == nil {
			return "-"
		}
		b := func(v *bool) string {
			if v == nil {
				return "_"
			}
			return fmt.Sprint(*v)
		}
		return b(p.autoFailover) + "/" + b(p.multiAZ) + "/" + p.primary
	}
	for _, tc := range []struct {
		name            string
		failover        bool
		waiting         *pendingSettings
		in              elasticache.ModifyReplicationGroupInput
		promote         string
		asked           bool
		immediately     bool
		wantNow, wantWt string
	}{
		{name: "failover and multi-az wait", in: elasticache.ModifyReplicationGroupInput{AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(true)},
			wantNow: "-", wantWt: "true/true/"},
		{name: "multi-az alone applies now", failover: true, in: elasticache.ModifyReplicationGroupInput{MultiAZEnabled: aws.Bool(true)},
			wantNow: "_/true/", wantWt: "-"},
		{name: "failover unchanged does not wait", failover: true, in: elasticache.ModifyReplicationGroupInput{AutomaticFailoverEnabled: aws.Bool(true), MultiAZEnabled: aws.Bool(false)},
			wantNow: "_/false/", wantWt: "-"},
		{name: "promotion waits", promote: "g-002", asked: true, wantNow: "-", wantWt: "_/_/g-002"},
		{name: "the current primary cancels a pending promotion", waiting: &pendingSettings{primary: "g-002"}, asked: true,
			wantNow: "-", wantWt: "-"},
		{name: "a later failover change replaces the waiting one and frees multi-az", waiting: &pendingSettings{autoFailover: aws.Bool(true), multiAZ: aws.Bool(true)},
			in: elasticache.ModifyReplicationGroupInput{AutomaticFailoverEnabled: aws.Bool(false)}, wantNow: "_/true/", wantWt: "-"},
		{name: "apply immediately takes what waits", waiting: &pendingSettings{autoFailover: aws.Bool(true), primary: "g-003"},
			in: elasticache.ModifyReplicationGroupInput{MultiAZEnabled: aws.Bool(true)}, immediately: true, wantNow: "true/true/g-003", wantWt: "-"},
		{name: "apply immediately: the newer promotion wins", waiting: &pendingSettings{primary: "g-003"}, promote: "g-002", asked: true,
			immediately: true, wantNow: "_/_/g-002", wantWt: "-"},
	} {
		g := &replicationGroup{autoFailover: tc.failover, pendingSettings: tc.waiting}
		now, wait := splitSettings(g, &tc.in, tc.promote, tc.asked, tc.immediately)
		if show(now) != tc.wantNow || show(wait) != tc.wantWt {
			t.Errorf("%s: now %s, waiting %s; want %s, %s", tc.name, show(now), show(wait), tc.wantNow, tc.wantWt)
		}
	}
}

// TestPendingSettingsRecord: what waits survives a restart; nothing
// waiting is not persisted.
func TestPendingSettingsRecord(t *testing.T) {
	p := &pendingSettings{autoFailover: aws.Bool(false), multiAZ: aws.Bool(false), primary: "g-002"}
	back := pendingSettingsFromRecord(p.record())
	if back == nil || *back.autoFailover || *back.multiAZ || back.primary != "g-002" {
		t.Fatalf("round trip: %+v", back)
	}
	if rec := (&pendingSettings{}).record(); rec != nil {
		t.Fatalf("empty settings persisted: %+v", rec)
	}
	if back := pendingSettingsFromRecord(nil); back != nil {
		t.Fatalf("nil record: %+v", back)
	}
}
