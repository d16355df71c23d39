package emulator

import (
	"slices"
	"testing"
)

// TestNodeTypeCatalog: the embedded catalog parses, names are unique, and
// AWS's own figures come through (cache.t3.micro is 0.5 GiB, 0.375 GiB of
// maxmemory with the default 25% reserved).
func TestNodeTypeCatalog(t *testing.T) {
	cat := nodeTypeCatalog()
	if len(cat) < 100 {
		t.Fatalf("%d node types, want the whole AWS list", len(cat))
	}
	seen := map[string]bool{}
	for _, nt := range cat {
		if seen[nt.Name] {
			t.Errorf("%s listed twice", nt.Name)
		}
		seen[nt.Name] = true
		if nt.MemoryBytes <= 0 || nt.VCPUs <= 0 || len(nt.Engines) == 0 {
			t.Errorf("%+v: incomplete", nt)
		}
	}
	micro, ok := lookupNodeType("cache.t3.micro")
	if !ok || micro.MemoryBytes != 512<<20 || micro.Family != "t3" || !micro.Current {
		t.Fatalf("cache.t3.micro = %+v, %v", micro, ok)
	}
	if got, want := micro.maxmemory(25), int64(384<<20)/nodeMemoryScale; got != max(want, minNodeMaxmemory) {
		t.Errorf("cache.t3.micro maxmemory(25) = %d, want %d", got, want)
	}
	large, _ := lookupNodeType("cache.r7g.large")
	if large.maxmemory(25) <= large.maxmemory(50) || large.maxmemory(0) != large.MemoryBytes/nodeMemoryScale {
		t.Errorf("cache.r7g.large maxmemory does not follow the reserved percentage: %d %d %d", large.maxmemory(0), large.maxmemory(25), large.maxmemory(50))
	}
	if large.maxmemory(100) != minNodeMaxmemory || micro.maxmemory(200) != minNodeMaxmemory {
		t.Errorf("the floor does not hold: %d %d", large.maxmemory(100), micro.maxmemory(200))
	}
	if _, ok := lookupNodeType("cache.r6g.medium"); ok {
		t.Error("cache.r6g.medium exists on AWS for no engine")
	}
}

// TestNodeTypeRules: the engine and version rules, and the scale lists.
func TestNodeTypeRules(t *testing.T) {
	redis7 := engineVersion{"redis", "7.1", "7.1.0", "redis7"}
	redis4 := engineVersion{"redis", "4.0.10", "4.0.10", "redis4.0"}
	valkey8 := engineVersion{"valkey", "8.0", "8.0.1", "valkey8"}
	if _, err := checkNodeType("cache.foo.large", redis7); err == nil || err.Error() != "InvalidParameterValue: Invalid Cache Node Type: cache.foo.large." {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := checkNodeType("cache.r8g.large", redis7); err == nil {
		t.Error("cache.r8g.large accepted for Redis OSS (Valkey only)")
	}
	if _, err := checkNodeType("cache.r8g.large", valkey8); err != nil {
		t.Errorf("cache.r8g.large for Valkey: %v", err)
	}
	if _, err := checkNodeType("cache.r6g.large", redis4); err == nil {
		t.Error("cache.r6g.large accepted for Redis OSS 4.0 (5.0.6 onward)")
	}
	r6g, _ := lookupNodeType("cache.r6g.large")
	up, down := nodeTypeModifications(r6g, redis7)
	if !slices.Contains(up, "cache.r6g.xlarge") || !slices.Contains(up, "cache.r5.large") || !slices.Contains(down, "cache.t4g.micro") {
		t.Errorf("cache.r6g.large: up %v down %v", up, down)
	}
	for _, n := range append(slices.Clone(up), down...) {
		nt, _ := lookupNodeType(n)
		if !nt.Current || nt.dataTiering() || !slices.Contains(nt.Engines, "redis") {
			t.Errorf("%s listed for a Redis OSS cache.r6g.large", n)
		}
	}
	if slices.Contains(up, "cache.r6g.large") || slices.Contains(down, "cache.r6g.large") {
		t.Error("the current type is listed")
	}
	if i, j := slices.Index(up, "cache.r6g.xlarge"), slices.Index(up, "cache.r6g.16xlarge"); i > j {
		t.Errorf("scale-up list not sorted by memory: %v", up)
	}
}

// TestEngineVersionForms: AWS's forms of EngineVersion and its answers to
// the others.
func TestEngineVersionForms(t *testing.T) {
	for _, tc := range []struct{ engine, version, want, err string }{
		{"redis", "", "7.1", ""},
		{"redis", "7.1", "7.1", ""},
		{"redis", "7.0", "7.0", ""},
		{"redis", "6.2", "6.2", ""},
		{"redis", "6.x", "6.2", ""},
		{"redis", "5.0.6", "5.0.6", ""},
		{"valkey", "8.0", "8.0", ""},
		{"redis", "6.2.6", "", "InvalidParameterValue: Specific version selection is not allowed for '6.2.6', please use '6.2'"},
		{"redis", "7.1.0", "", "InvalidParameterValue: Specific version selection is not allowed for '7.1.0', please use '7.1'"},
		{"valkey", "7.2.6", "", "InvalidParameterValue: Specific version selection is not allowed for '7.2.6', please use '7.2'"},
		{"redis", "7.4", "", "InvalidParameterCombination: Cannot find version 7.4 for redis"},
		{"redis", "7", "", "InvalidParameterCombination: Cannot find version 7 for redis"},
		{"redis", "7.x", "", "InvalidParameterCombination: Cannot find version 7.x for redis"},
	} {
		ev, err := resolveEngine(&tc.engine, &tc.version)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err || (err == nil && ev.Version != tc.want) {
			t.Errorf("%s %q: %+v, %v; want %s %q", tc.engine, tc.version, ev, err, tc.want, tc.err)
		}
	}
}
