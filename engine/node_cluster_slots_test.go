package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestHashSlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]int{
		"123456789":            12739, // CRC16/XMODEM check value 0x31C3
		"foo":                  12182,
		"bar":                  5061,
		"":                     0,
		"{user1000}.following": HashSlot("user1000"),
		"foo{}{bar}":           HashSlot("foo{}{bar}"), // empty first tag: the whole key
		"foo{{bar}}zap":        HashSlot("{bar"),
		"foo{bar}{zap}":        HashSlot("bar"),
	} {
		if got := HashSlot(key); got != want {
			t.Errorf("HashSlot(%q) = %d, want %d", key, got, want)
		}
	}
	if HashSlot("foo{}{bar}") == HashSlot("bar") {
		t.Error("an empty hash tag must hash the whole key")
	}
}

func TestSlotRanges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []SlotRange
		text string
	}{
		{"0-5460,5461-10922", []SlotRange{{0, 5460}, {5461, 10922}}, "0-10922"},
		{"0-100 200-300", []SlotRange{{0, 100}, {200, 300}}, "0-100,200-300"},
		{"7", []SlotRange{{7, 7}}, "7"},
		{"16383,0-1, 5", []SlotRange{{16383, 16383}, {0, 1}, {5, 5}}, "0-1,5,16383"},
		{"", []SlotRange{}, ""},
	} {
		got, err := ParseSlotRanges(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseSlotRanges(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if s := FormatSlotRanges(got); s != tc.text {
			t.Errorf("FormatSlotRanges(%v) = %q, want %q", got, s, tc.text)
		}
	}
	for _, bad := range []string{"16384", "-1", "5-3", "a", "1-", "0-16384", "1-2-3"} {
		if r, err := ParseSlotRanges(bad); err == nil {
			t.Errorf("ParseSlotRanges(%q) = %v, want an error", bad, r)
		}
	}
	if n := SlotCount([]SlotRange{{0, 99}, {50, 149}, {200, 200}}); n != 151 {
		t.Errorf("SlotCount = %d, want 151", n)
	}
	if got := (SlotRange{3, 3}).String(); got != "3" {
		t.Errorf("String = %q", got)
	}
	sub := subtractSlotRanges([]SlotRange{{0, 100}, {200, 300}}, []SlotRange{{50, 60}, {90, 210}, {300, 400}})
	if want := []SlotRange{{0, 49}, {61, 89}, {211, 299}}; !reflect.DeepEqual(sub, want) {
		t.Errorf("subtractSlotRanges = %v, want %v", sub, want)
	}
	split := SplitSlots(3)
	if FormatSlotRanges(split[0]) != "0-5460" || FormatSlotRanges(split[1]) != "5461-10921" || FormatSlotRanges(split[2]) != "10922-16383" {
		t.Errorf("SplitSlots(3) = %v", split)
	}
}

func TestParseClusterNodes(t *testing.T) {
	text := strings.Join([]string{
		"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 172.18.0.3:6379@16379,127.0.61.3 myself,master - 0 0 1 connected 0-5460 6000 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265a2f4c] [94-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]",
		"07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected",
		"292f8b365bb7edb5e285caf0b7e6ddc7265a2f4c 127.0.0.1:30002@31002 master,fail? - 1426238316232 0 2 disconnected 7000-10922",
		"6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,fail,noaddr - 0 0 0 disconnected",
		"824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006 handshake - 0 0 0 connected",
		"",
	}, "\n")
	nodes, err := ParseClusterNodes(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 5 {
		t.Fatalf("got %d nodes", len(nodes))
	}
	me := nodes[0]
	want := ClusterNode{
		ID: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca", Addr: Endpoint{"127.0.61.3", 6379}, IP: "172.18.0.3", BusPort: 16379,
		Myself: true, Primary: true, Connected: true,
		Slots:     []SlotRange{{0, 5460}, {6000, 6000}},
		Migrating: map[int]string{93: "292f8b365bb7edb5e285caf0b7e6ddc7265a2f4c"},
		Importing: map[int]string{94: "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"},
	}
	if !reflect.DeepEqual(me, want) {
		t.Errorf("myself = %+v\nwant     %+v", me, want)
	}
	if me.PeerAddr() != (Endpoint{"172.18.0.3", 6379}) {
		t.Errorf("PeerAddr = %v", me.PeerAddr())
	}
	if r := nodes[1]; !r.Replica || r.PrimaryID != me.ID || r.Addr != (Endpoint{"127.0.0.1", 30004}) || !r.Connected {
		t.Errorf("replica = %+v", r)
	}
	if p := nodes[2]; !p.PFail || p.Fail || p.Connected || FormatSlotRanges(p.Slots) != "7000-10922" {
		t.Errorf("pfail primary = %+v", p)
	}
	if n := nodes[3]; !n.Fail || !n.NoAddr || n.IP != "" {
		t.Errorf("noaddr = %+v", n)
	}
	if !nodes[4].Handshake {
		t.Errorf("handshake = %+v", nodes[4])
	}
	owners := slotOwners(nodes)
	if owners[0] != me.ID || owners[6000] != me.ID || owners[7000] != nodes[2].ID || owners[11000] != "" {
		t.Error("slotOwners disagrees with the slots")
	}
	if _, err := ParseClusterNodes("abc 1.2.3.4:1@2 master"); err == nil {
		t.Error("a short line must be an error")
	}
}

func TestClusterDirectives(t *testing.T) {
	for name, reserved := range map[string]bool{
		"cluster-enabled": true, "Cluster-Config-File": true, "cluster-port": true,
		"cluster-announce-ip": true, "cluster-announce-hostname": true, "cluster-replica-no-failover": true,
		"cluster-preferred-endpoint-type": true,
		"cluster-node-timeout":            false, "cluster-require-full-coverage": false,
		"cluster-allow-reads-when-down": false, "cluster-migration-barrier": false,
		"maxmemory": false,
	} {
		if got := ReservedClusterDirective(name); got != reserved {
			t.Errorf("ReservedClusterDirective(%q) = %v", name, got)
		}
	}
	if d := ClusterDirectives(NodeSpec{}, "nodes.conf"); d != nil {
		t.Errorf("non-cluster node gets %v", d)
	}
	d := ClusterDirectives(NodeSpec{Cluster: true}, "/d/nodes.conf")
	want := [][]string{
		{"cluster-enabled", "yes"}, {"cluster-config-file", "/d/nodes.conf"}, {"cluster-replica-no-failover", "yes"},
		{"cluster-require-full-coverage", "no"}, {"cluster-node-timeout", "5000"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("ClusterDirectives = %v", d)
	}
	d = ClusterDirectives(NodeSpec{Cluster: true, Config: map[string]string{"Cluster-Node-Timeout": "1000", "cluster-require-full-coverage": "yes"}}, "n")
	if len(d) != 3 {
		t.Errorf("Config's cluster-node-timeout and coverage must replace the defaults: %v", d)
	}
}
