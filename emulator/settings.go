package emulator

import (
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

var (
	maintenanceWindowRE = regexp.MustCompile(`^(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):[0-5]\d-(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):[0-5]\d$`)
	snapshotWindowRE    = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$`)
)

// defaultSnapshotWindow is assigned when none is requested, like AWS does.
const defaultSnapshotWindow = "05:00-06:00"

// newSettings validates the metadata settings of a create request.
func newSettings(maintenance, snapshotWindow *string, retention *int32, autoMinor *bool, topic *string) (clusterSettings, error) {
	base := clusterSettings{
		maintenanceWindow: defaultMaintenanceWindow,
		snapshotWindow:    defaultSnapshotWindow,
		autoMinorUpgrade:  true,
	}
	return base.modify(maintenance, snapshotWindow, retention, autoMinor, topic, nil)
}

// modify returns s with the requested changes applied, or the AWS error for
// the first invalid one (s itself is never changed).
func (s clusterSettings) modify(maintenance, snapshotWindow *string, retention *int32, autoMinor *bool, topic, topicStatus *string) (clusterSettings, error) {
	if v := aws.ToString(maintenance); v != "" {
		v = strings.ToLower(v)
		if !maintenanceWindowRE.MatchString(v) {
			return s, invalidParameterValue("Invalid maintenance window format: %s. Use ddd:hh24:mi-ddd:hh24:mi, e.g. sun:05:00-sun:06:00.", *maintenance)
		}
		s.maintenanceWindow = v
	}
	if v := aws.ToString(snapshotWindow); v != "" {
		if !snapshotWindowRE.MatchString(v) {
			return s, invalidParameterValue("Invalid snapshot window format: %s. Use hh24:mi-hh24:mi, e.g. 05:00-06:00.", v)
		}
		s.snapshotWindow = v
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
