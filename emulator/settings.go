package emulator

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

var (
	maintenanceWindowRE = regexp.MustCompile(`^(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):[0-5]\d-(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):[0-5]\d$`)
	snapshotWindowRE    = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$`)
)

// defaultSnapshotWindow is assigned when none is requested, like AWS does;
// it does not overlap defaultMaintenanceWindow.
const defaultSnapshotWindow = "06:00-07:00"

// minWindowMinutes is the shortest maintenance or snapshot window AWS takes.
const minWindowMinutes = 60

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// newSettings validates the metadata settings of a create request. A
// window not requested gets a default that does not overlap the other one,
// as AWS picks them.
func newSettings(maintenance, snapshotWindow *string, retention *int32, autoMinor *bool, topic *string) (clusterSettings, error) {
	base := clusterSettings{autoMinorUpgrade: true}
	s, err := base.modify(maintenance, snapshotWindow, retention, autoMinor, topic, nil)
	if err != nil {
		return s, err
	}
	switch {
	case s.maintenanceWindow == "" && s.snapshotWindow == "":
		s.maintenanceWindow, s.snapshotWindow = defaultMaintenanceWindow, defaultSnapshotWindow
	case s.maintenanceWindow == "":
		s.maintenanceWindow = freeWindow(defaultMaintenanceWindow, func(w string) bool { return !windowsOverlap(w, s.snapshotWindow) })
	case s.snapshotWindow == "":
		s.snapshotWindow = freeWindow(defaultSnapshotWindow, func(w string) bool { return !windowsOverlap(s.maintenanceWindow, w) })
	}
	return s, nil
}

// freeWindow is the first window, from def on in steps of an hour, that
// ok accepts (one always exists: a 60-minute snapshot window and a weekly
// maintenance window overlap on one day only).
func freeWindow(def string, ok func(string) bool) string {
	weekly := strings.Count(def, ":") == 4
	for h := 0; h < 24*7; h++ {
		w := shiftWindow(def, h, weekly)
		if ok(w) {
			return w
		}
	}
	return def
}

// shiftWindow moves a 60-minute window h hours later.
func shiftWindow(w string, h int, weekly bool) string {
	if weekly {
		s := (minuteOfWeek(strings.SplitN(w, "-", 2)[0]) + h*60) % minutesPerWeek
		e := (s + minWindowMinutes) % minutesPerWeek
		return weekMinute(s) + "-" + weekMinute(e)
	}
	s := (minuteOfDay(strings.SplitN(w, "-", 2)[0]) + h*60) % minutesPerDay
	e := (s + minWindowMinutes) % minutesPerDay
	return fmt.Sprintf("%02d:%02d-%02d:%02d", s/60, s%60, e/60, e%60)
}

func weekMinute(m int) string {
	return fmt.Sprintf("%s:%02d:%02d", []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[m/minutesPerDay], m%minutesPerDay/60, m%60)
}

// windowSpan is a window's start minute and length in minutes, on a week
// (maintenance windows) or a day (snapshot windows).
func windowSpan(w string, weekly bool) (start, length int) {
	a, b, _ := strings.Cut(w, "-")
	period, at := minutesPerDay, minuteOfDay
	if weekly {
		period, at = minutesPerWeek, minuteOfWeek
	}
	start = at(a)
	return start, ((at(b)-start)%period + period) % period
}

// windowsOverlap reports whether the daily snapshot window meets the
// weekly maintenance window on any day.
func windowsOverlap(maintenance, snapshot string) bool {
	ms, ml := windowSpan(maintenance, true)
	ss, sl := windowSpan(snapshot, false)
	within := func(a, b, bl int) bool { return ((a-b)%minutesPerWeek+minutesPerWeek)%minutesPerWeek < bl }
	for d := range 7 {
		s := d*minutesPerDay + ss
		if within(s, ms, ml) || within(ms, s, sl) {
			return true
		}
	}
	return false
}

// modify returns s with the requested changes applied, or the AWS error for
// the first invalid one (s itself is never changed).
func (s clusterSettings) modify(maintenance, snapshotWindow *string, retention *int32, autoMinor *bool, topic, topicStatus *string) (clusterSettings, error) {
	if v := aws.ToString(maintenance); v != "" {
		v = strings.ToLower(v)
		if !maintenanceWindowRE.MatchString(v) {
			return s, invalidParameterValue("Invalid maintenance window format: %s. Use ddd:hh24:mi-ddd:hh24:mi, e.g. sun:05:00-sun:06:00.", *maintenance)
		}
		if _, n := windowSpan(v, true); n < minWindowMinutes {
			return s, invalidParameterValue("Maintenance window must be at least %d minutes.", minWindowMinutes)
		}
		s.maintenanceWindow = v
	}
	if v := aws.ToString(snapshotWindow); v != "" {
		if !snapshotWindowRE.MatchString(v) {
			return s, invalidParameterValue("Invalid snapshot window format: %s. Use hh24:mi-hh24:mi, e.g. 05:00-06:00.", v)
		}
		if _, n := windowSpan(v, false); n < minWindowMinutes {
			return s, invalidParameterValue("Snapshot window must be at least %d minutes.", minWindowMinutes)
		}
		s.snapshotWindow = v
	}
	// Windows already set before (an earlier default pair may overlap) are
	// only checked when this call sets one.
	if aws.ToString(maintenance) != "" || aws.ToString(snapshotWindow) != "" {
		if s.maintenanceWindow != "" && s.snapshotWindow != "" && windowsOverlap(s.maintenanceWindow, s.snapshotWindow) {
			return s, invalidParameterValue("The snapshot window and maintenance window must not overlap.")
		}
	}
	if retention != nil {
		if *retention < 0 || *retention > 35 {
			return s, invalidParameterValue("The parameter SnapshotRetentionLimit must be between 0 and 35.")
		}
		s.snapshotRetention = *retention
	}
	if autoMinor != nil {
		s.autoMinorUpgrade = *autoMinor
	}
	if v := aws.ToString(topic); v != "" {
		s.notificationTopic, s.notificationStatus = v, "active"
	}
	if v := aws.ToString(topicStatus); v != "" {
		if v != "active" && v != "inactive" {
			return s, invalidParameterValue("The parameter NotificationTopicStatus must be active or inactive.")
		}
		s.notificationStatus = v
	}
	return s, nil
}

// storageEncryption is the group's StorageEncryptionType: its snapshots are
// encrypted with the service's key, or with KmsKeyId when one was given.
func (g *replicationGroup) storageEncryption() types.StorageEncryptionType {
	switch {
	case !g.settings.atRestEncryption:
		return types.StorageEncryptionTypeNone
	case g.kmsKeyID != "":
		return types.StorageEncryptionTypeSseKms
	}
	return types.StorageEncryptionTypeSseElasticache
}
