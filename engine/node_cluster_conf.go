package engine

// The cluster directives every runtime gives a NodeSpec.Cluster node, and
// which cluster-* directives NodeSpec.Config may set.

import (
	"strconv"
	"strings"
)

// DefaultClusterNodeTimeout is the cluster-node-timeout (ms) of a cluster
// node unless NodeSpec.Config sets one.
const DefaultClusterNodeTimeout = 5000

// ClusterConfigFile is the name of a cluster node's nodes.conf in its data
// directory (cluster-config-file).
const ClusterConfigFile = "nodes.conf"

// userClusterDirectives are the cluster-* directives NodeSpec.Config may
// set: they tune how the cluster behaves, not how its nodes find each other
// or who fails over.
var userClusterDirectives = map[string]bool{
	"cluster-node-timeout":                true,
	"cluster-require-full-coverage":       true,
	"cluster-allow-reads-when-down":       true,
	"cluster-allow-pubsubshard-when-down": true,
	"cluster-replica-validity-factor":     true,
	"cluster-slave-validity-factor":       true,
	"cluster-migration-barrier":           true,
	"cluster-allow-replica-migration":     true,
}

// ReservedClusterDirective reports whether the redis.conf directive name is
// a cluster directive the runtime manages (cluster-enabled,
// cluster-config-file, cluster-port, cluster-announce-*,
// cluster-replica-no-failover, …), which NodeSpec.Config may not set. Every
// runtime refuses these, for cluster and other nodes alike.
func ReservedClusterDirective(name string) bool {
	name = strings.ToLower(name)
	return strings.HasPrefix(name, "cluster-") && !userClusterDirectives[name]
}

// ClusterDirectives returns the directives (name, then arguments) of a
// cluster node, nil unless spec.Cluster. configFile is where its nodes.conf
// goes (ClusterConfigFile in its data directory). The runtime adds what its
// addressing needs (cluster-announce-*).
//
// Failovers are the control plane's (CLUSTER FAILOVER TAKEOVER as soon as
// it sees a primary dead, faster than the cluster's own detection and
// without two deciders racing), hence cluster-replica-no-failover; a shard
// without a primary must not stop the others, hence
// cluster-require-full-coverage no unless Config says otherwise.
func ClusterDirectives(spec NodeSpec, configFile string) [][]string {
	if !spec.Cluster {
		return nil
	}
	set := func(name string) bool {
		for k := range spec.Config {
			if strings.EqualFold(k, name) {
				return true
			}
		}
		return false
	}
	d := [][]string{
		{"cluster-enabled", "yes"},
		{"cluster-config-file", configFile},
		{"cluster-replica-no-failover", "yes"},
	}
	if !set("cluster-require-full-coverage") {
		d = append(d, []string{"cluster-require-full-coverage", "no"})
	}
	if !set("cluster-node-timeout") {
		d = append(d, []string{"cluster-node-timeout", strconv.Itoa(DefaultClusterNodeTimeout)})
	}
	return d
}
