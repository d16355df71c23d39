package console

import (
	"fmt"
	"html/template"
	"time"
)

// templateFuncs format the view's numbers for people.
var templateFuncs = template.FuncMap{
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
	// percent is a of b in percent, 0 when b is 0 (no limit), at most 100.
	"percent": func(a, b int64) float64 {
		if b <= 0 {
			return 0
		}
		return min(100, 100*float64(a)/float64(b))
	},
	"percentOf":   func(n int64, p int64) int64 { return n * p / 100 },
	"slotPercent": func(n int) float64 { return 100 * float64(n) / 16384 },
	"clock":       func(t time.Time) string { return t.UTC().Format("15:04:05") },
	// nodeRows hands a node table its scope, which its buttons name.
	"nodeRows": func(sc scopeView, nodes []nodeView) nodeRows { return nodeRows{Scope: sc.Scope, Nodes: nodes} },
	// actions are the admin API's faults a node row offers.
	"actions": func() []string { return []string{"kill", "pause", "resume"} },
	"millis":  func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
}

// nodeRows is the data of the "nodes" template.
type nodeRows struct {
	Scope Scope
	Nodes []nodeView
}
