package emulator

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestWindows: AWS's rules for maintenance and snapshot windows: at least
// 60 minutes, never overlapping (the defaults included), with AWS's
// messages.
func TestWindows(t *testing.T) {
	for _, tc := range []struct {
		maintenance, snapshot, err string
	}{
		{"", "", ""},
		{"sun:05:00-sun:06:00", "06:00-07:00", ""},
		{"sat:23:30-sun:00:30", "01:00-02:00", ""},
		{"sun:05:00-sun:05:30", "", "InvalidParameterValue: Maintenance window must be at least 60 minutes."},
		{"sun:05:00-sun:05:00", "", "InvalidParameterValue: Maintenance window must be at least 60 minutes."},
		{"", "05:00-05:59", "InvalidParameterValue: Snapshot window must be at least 60 minutes."},
		{"wed:03:00-wed:04:00", "03:30-04:30", "InvalidParameterValue: The snapshot window and maintenance window must not overlap."},
		{"sat:23:30-sun:00:30", "00:00-01:00", "InvalidParameterValue: The snapshot window and maintenance window must not overlap."},
		{"mon:22:00-tue:02:00", "23:00-00:00", "InvalidParameterValue: The snapshot window and maintenance window must not overlap."},
	} {
		s, err := newSettings(aws.String(tc.maintenance), aws.String(tc.snapshot), nil, nil, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("%q %q: %v, want %q", tc.maintenance, tc.snapshot, err, tc.err)
		}
		if err == nil && windowsOverlap(s.maintenanceWindow, s.snapshotWindow) {
			t.Errorf("%q %q: the windows chosen overlap: %+v", tc.maintenance, tc.snapshot, s)
		}
	}
	// A default chosen around a requested window does not overlap it.
	for _, snap := range []string{"05:00-06:00", "05:30-06:30", "04:00-08:00"} {
		s, err := newSettings(nil, aws.String(snap), nil, nil, nil)
		if err != nil || windowsOverlap(s.maintenanceWindow, snap) {
			t.Errorf("snapshot %s: default maintenance %s overlaps (%v)", snap, s.maintenanceWindow, err)
		}
	}
	s, _ := newSettings(aws.String("sun:06:00-sun:09:00"), nil, nil, nil, nil)
	if windowsOverlap(s.maintenanceWindow, s.snapshotWindow) {
		t.Errorf("default snapshot window %s overlaps %s", s.snapshotWindow, s.maintenanceWindow)
	}
	// A modify that sets a window is checked against the other.
	s, _ = newSettings(nil, nil, nil, nil, nil)
	if _, err := s.modify(nil, aws.String("05:00-06:00"), nil, nil, nil, nil); err == nil {
		t.Error("a snapshot window overlapping the maintenance window accepted by modify")
	}
}
