package emulator

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// event is one DescribeEvents record.
type event struct {
	date       time.Time
	sourceType types.SourceType
	sourceID   string
	message    string
}

// maxEventAge is how far back AWS keeps events.
const maxEventAge = 14 * 24 * time.Hour

// record appends an event; the caller holds r.mu. Events older than the
// retention are dropped so a long-running emulator stays bounded.
func (e *Emulator) record(r *region, st types.SourceType, id, format string, args ...any) {
	now := e.opts.Now().UTC()
	msg := fmt.Sprintf(format, args...)
	r.events = append(r.events, event{date: now, sourceType: st, sourceID: id, message: msg})
	cut := 0
	for cut < len(r.events) && now.Sub(r.events[cut].date) > maxEventAge {
		cut++
	}
	r.events = r.events[cut:]
	e.log.Info("event", "account", r.account, "region", r.region, "sourceType", string(st), "source", id, "message", msg)
}

// DescribeEvents lists events of the last hour by default, oldest first,
// filtered by source and time window, paged by MaxRecords/Marker.
func (e *Emulator) DescribeEvents(ctx context.Context, in *elasticache.DescribeEventsInput) (*elasticache.DescribeEventsOutput, error) {
	max, err := checkMaxRecords(in.MaxRecords)
	if err != nil {
		return nil, err
	}
	if in.SourceType != "" && !validSourceType(in.SourceType) {
		return nil, invalidParameterValue("Invalid value for parameter SourceType: %s", in.SourceType)
	}
	now := e.opts.Now().UTC()
	start, end := now.Add(-time.Hour), now
	if in.Duration != nil {
		if *in.Duration < 0 || time.Duration(*in.Duration)*time.Minute > maxEventAge {
			return nil, invalidParameterValue("The parameter Duration must be between 0 and 20160 minutes.")
		}
		start = now.Add(-time.Duration(*in.Duration) * time.Minute)
	}
	if in.StartTime != nil {
		start = *in.StartTime
	}
	if in.EndTime != nil {
		end = *in.EndTime
	}
	if end.Before(start) {
		return nil, invalidParameterCombination("The parameter StartTime must be before EndTime.")
	}
	offset := 0
	if in.Marker != nil && *in.Marker != "" {
		if offset, err = strconv.Atoi(*in.Marker); err != nil || offset < 0 {
			return nil, invalidParameterValue("Invalid marker: %s", *in.Marker)
		}
	}

	r := e.rlockRegion(ctx)
	var matched []types.Event
	for _, ev := range r.events {
		if ev.date.Before(start) || ev.date.After(end) {
			continue
		}
		if in.SourceType != "" && ev.sourceType != in.SourceType {
			continue
		}
		if in.SourceIdentifier != nil && *in.SourceIdentifier != "" && ev.sourceID != *in.SourceIdentifier {
			continue
		}
		matched = append(matched, types.Event{
			Date:             aws.Time(ev.date),
			Message:          aws.String(ev.message),
			SourceIdentifier: aws.String(ev.sourceID),
			SourceType:       ev.sourceType,
		})
	}
	r.mu.RUnlock() // read only: nothing to persist

	sort.SliceStable(matched, func(i, j int) bool { return matched[i].Date.Before(*matched[j].Date) })
	// Events have no unique key to page after, so their marker is the
	// position of the next page's first event.
	sel, next := pageFrom(matched, offset, max, strconv.Itoa)
	return &elasticache.DescribeEventsOutput{Events: sel, Marker: next}, nil
}

func validSourceType(st types.SourceType) bool {
	for _, v := range st.Values() {
		if v == st {
			return true
		}
	}
	return false
}
