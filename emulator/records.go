package emulator

import (
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"

	"github.com/elasticache-local/elasticache-local/emulator/state"
	"github.com/elasticache-local/elasticache-local/engine"
)

// This file converts a region's live model to its persisted records
// (package state) and back. The live model adds only what does not outlive
// a run: the endpoint forwarders, the health monitor's view of each node,
// locks. Snapshots persist themselves in the snapshot store
// (snapshot_records.go) and are not part of a region's records.

// record returns r's persisted records; the caller holds r.mu.
func (r *region) record() *state.Region {
	rec := &state.Region{
		Scope:         state.Scope{Account: r.account, Region: r.region},
		Tags:          map[string][]state.Tag{},
		TestFailovers: append([]time.Time(nil), r.testFailovers...),
		Operations:    r.ops.records(),
	}
	for _, id := range sortedKeys(r.groups) {
		g := r.groups[id]
		gr := state.ReplicationGroup{
			ID: g.id, Description: g.description, Status: g.status, Created: g.created,
			Engine: g.engine.record(), NodeType: g.nodeType, ParamGroup: g.paramGroup, Port: g.port,
			AutoFailover: g.autoFailover, MultiAZ: g.multiAZ, KmsKeyID: g.kmsKeyID,
			UserGroupIDs: append([]string(nil), g.userGroupIDs...), Settings: g.settings.record(),
			Snapshotting: g.snapshotting, ClusterMode: g.clusterMode, Resharding: g.resharding.record(),
			Security: g.sec.record(), PendingNodeChange: g.pending.record(), NodeChange: g.rolling.record(),
			PendingSettings: g.pendingSettings.record(), Migration: g.migration.record(),
		}
		if g.cfg != nil {
			if a, ok := g.cfg.address(); ok {
				gr.ConfigurationEndpoint = endpointRecord(a)
			}
		}
		for _, ng := range g.nodeGroups {
			ngr := state.NodeGroup{ID: ng.id, Primary: ng.primary, Members: append([]string(nil), ng.members...)}
			if g.clusterMode {
				ngr.Slots = engine.FormatSlotRanges(ng.slots)
			}
			if a, ok := ng.addresses(); ok {
				ngr.PrimaryEndpoint, ngr.ReaderEndpoint = endpointRecord(a.primary), endpointRecord(a.reader)
			}
			gr.NodeGroups = append(gr.NodeGroups, ngr)
		}
		rec.ReplicationGroups = append(rec.ReplicationGroups, gr)
	}
	for _, id := range sortedKeys(r.clusters) {
		cl := r.clusters[id]
		cr := state.CacheCluster{
			ID: cl.id, GroupID: cl.groupID, Status: cl.status, Created: cl.created,
			Engine: cl.engine.record(), NodeType: cl.nodeType, ParamGroup: cl.paramGroup,
			SubnetGroup: cl.subnetGroup, SecurityIDs: append([]string(nil), cl.securityIDs...),
			Port: cl.port, AZ: cl.az, Settings: cl.settings.record(), Security: cl.sec.record(),
			PendingNodeChange: cl.pending.record(), NodeChange: cl.rolling.record(), PendingReboot: cl.pendingReboot,
		}
		if cl.mc != nil {
			cr.Memcached = cl.mc.record()
		}
		for _, n := range cl.nodes {
			cr.Nodes = append(cr.Nodes, state.CacheNode{ID: n.id, Name: n.name, Endpoint: *endpointRecord(n.endpoint),
				Status: n.status, Created: n.created, AZ: n.az})
		}
		rec.CacheClusters = append(rec.CacheClusters, cr)
	}
	for _, name := range sortedKeys(r.paramGroups) {
		pg := r.paramGroups[name]
		rec.ParameterGroups = append(rec.ParameterGroups, state.ParameterGroup{Name: pg.name, Family: pg.family,
			Description: pg.description, Params: cloneMap(pg.params)})
	}
	for _, name := range sortedKeys(r.subnetGroups) {
		sg := r.subnetGroups[name]
		sr := state.SubnetGroup{Name: sg.name, Description: sg.description, VpcID: sg.vpcID}
		for _, s := range sg.subnets {
			sub := state.Subnet{ID: aws.ToString(s.SubnetIdentifier)}
			if s.SubnetAvailabilityZone != nil {
				sub.AvailabilityZone = aws.ToString(s.SubnetAvailabilityZone.Name)
			}
			sr.Subnets = append(sr.Subnets, sub)
		}
		rec.SubnetGroups = append(rec.SubnetGroups, sr)
	}
	for _, ev := range r.events {
		rec.Events = append(rec.Events, state.Event{Date: ev.date, SourceType: string(ev.sourceType), SourceID: ev.sourceID, Message: ev.message})
	}
	for arn, tags := range r.tags {
		for _, t := range tags {
			rec.Tags[arn] = append(rec.Tags[arn], state.Tag{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
		}
	}
	rec.Users, rec.UserGroups = r.recordAccess()
	return rec
}

// regionFromRecord rebuilds a region's live model from its records. The
// node groups have no endpoints yet: restore.go opens them at the recorded
// addresses.
func regionFromRecord(rec *state.Region) *region {
	r := newRegion(scope{account: rec.Account, region: rec.Region})
	r.paramGroups = map[string]*paramGroup{}
	r.subnetGroups = map[string]*subnetGroup{}
	r.testFailovers = append(r.testFailovers, rec.TestFailovers...)
	r.ops.restore(rec.Operations)
	for _, gr := range rec.ReplicationGroups {
		g := &replicationGroup{
			id: gr.ID, description: gr.Description, status: gr.Status, created: gr.Created,
			engine: engineFromRecord(gr.Engine), nodeType: gr.NodeType, paramGroup: gr.ParamGroup, port: gr.Port,
			autoFailover: gr.AutoFailover, multiAZ: gr.MultiAZ, kmsKeyID: gr.KmsKeyID,
			userGroupIDs: gr.UserGroupIDs, settings: settingsFromRecord(gr.Settings), snapshotting: gr.Snapshotting,
			clusterMode: gr.ClusterMode, resharding: reshardingFromRecord(gr.Resharding),
			sec:     securityFromRecord(gr.Security),
			pending: nodeChangeFromRecord(gr.PendingNodeChange), rolling: nodeChangeFromRecord(gr.NodeChange),
			pendingSettings: pendingSettingsFromRecord(gr.PendingSettings),
			migration:       migrationFromRecord(gr.Migration),
		}
		if g.clusterMode {
			g.cfg = &configEndpoint{g: g}
			if gr.ConfigurationEndpoint != nil {
				a := endpointFromRecord(*gr.ConfigurationEndpoint)
				g.cfg.addr = &a
			}
		}
		for _, ngr := range gr.NodeGroups {
			ng := &nodeGroup{id: ngr.ID, primary: ngr.Primary, members: ngr.Members, cfg: g.cfg}
			if g.clusterMode {
				// Written by this package from valid ranges; a hand edit
				// that breaks them loses the layout, which the cluster's
				// own view then gives back (formCluster keeps what it finds).
				ng.slots, _ = engine.ParseSlotRanges(ngr.Slots)
			}
			if ngr.PrimaryEndpoint != nil && ngr.ReaderEndpoint != nil {
				ng.addrs = &endpointAddresses{primary: endpointFromRecord(*ngr.PrimaryEndpoint), reader: endpointFromRecord(*ngr.ReaderEndpoint)}
			}
			g.nodeGroups = append(g.nodeGroups, ng)
		}
		r.groups[g.id] = g
	}
	for _, cr := range rec.CacheClusters {
		cl := &cacheCluster{
			id: cr.ID, groupID: cr.GroupID, status: cr.Status, created: cr.Created,
			engine: engineFromRecord(cr.Engine), nodeType: cr.NodeType, paramGroup: cr.ParamGroup,
			subnetGroup: cr.SubnetGroup, securityIDs: cr.SecurityIDs, port: cr.Port, az: cr.AZ,
			settings: settingsFromRecord(cr.Settings), sec: securityFromRecord(cr.Security),
			pending: nodeChangeFromRecord(cr.PendingNodeChange), rolling: nodeChangeFromRecord(cr.NodeChange),
			mc:            memcachedFromRecord(cr.Memcached),
			pendingReboot: cr.PendingReboot,
		}
		for _, nr := range cr.Nodes {
			cl.nodes = append(cl.nodes, &cacheNode{id: nr.ID, name: nr.Name, endpoint: endpointFromRecord(nr.Endpoint),
				status: nr.Status, created: nr.Created, az: nr.AZ})
		}
		r.clusters[cl.id] = cl
	}
	for _, pr := range rec.ParameterGroups {
		r.paramGroups[pr.Name] = &paramGroup{name: pr.Name, family: pr.Family, description: pr.Description, params: cloneMap(pr.Params)}
	}
	for _, sr := range rec.SubnetGroups {
		sg := &subnetGroup{name: sr.Name, description: sr.Description, vpcID: sr.VpcID}
		for _, s := range sr.Subnets {
			sg.subnets = append(sg.subnets, types.Subnet{
				SubnetIdentifier:       aws.String(s.ID),
				SubnetAvailabilityZone: &types.AvailabilityZone{Name: aws.String(s.AvailabilityZone)},
				SupportedNetworkTypes:  []types.NetworkType{types.NetworkTypeIpv4},
			})
		}
		r.subnetGroups[sg.name] = sg
	}
	for _, ev := range rec.Events {
		r.events = append(r.events, event{date: ev.Date, sourceType: types.SourceType(ev.SourceType), sourceID: ev.SourceID, message: ev.Message})
	}
	for arn, tags := range rec.Tags {
		for _, t := range tags {
			r.tags[arn] = append(r.tags[arn], types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
		}
	}
	r.restoreAccess(rec)
	return r
}

func (ev engineVersion) record() state.EngineVersion {
	return state.EngineVersion{Engine: ev.Engine, Version: ev.Version, Actual: ev.Actual, Family: ev.Family}
}

func engineFromRecord(r state.EngineVersion) engineVersion {
	return engineVersion{Engine: r.Engine, Version: r.Version, Actual: r.Actual, Family: r.Family}
}

func (s clusterSettings) record() state.Settings {
	return state.Settings{MaintenanceWindow: s.maintenanceWindow, SnapshotWindow: s.snapshotWindow,
		SnapshotRetention: s.snapshotRetention, AutoMinorUpgrade: s.autoMinorUpgrade, AtRestEncryption: s.atRestEncryption,
		NotificationTopic: s.notificationTopic, NotificationStatus: s.notificationStatus}
}

func settingsFromRecord(r state.Settings) clusterSettings {
	return clusterSettings{maintenanceWindow: r.MaintenanceWindow, snapshotWindow: r.SnapshotWindow,
		snapshotRetention: r.SnapshotRetention, autoMinorUpgrade: r.AutoMinorUpgrade, atRestEncryption: r.AtRestEncryption,
		notificationTopic: r.NotificationTopic, notificationStatus: r.NotificationStatus}
}

func endpointRecord(ep engine.Endpoint) *state.Endpoint {
	return &state.Endpoint{Host: ep.Host, Port: ep.Port}
}

func endpointFromRecord(r state.Endpoint) engine.Endpoint {
	return engine.Endpoint{Host: r.Host, Port: r.Port}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
