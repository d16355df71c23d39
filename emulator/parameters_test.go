package emulator

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// TestParamCatalogs: every Redis OSS and Valkey family of the engine
// catalog has its parameters,
// AWS's count and a few of AWS's attributes come through, and each default
// passes its own check.
func TestParamCatalogs(t *testing.T) {
	for _, ev := range engineCatalog {
		if isMemcachedFamily(ev.Family) {
			continue // memcached_params.go
		}
		defs := familyParams(ev.Family)
		if len(defs) < 50 {
			t.Errorf("%s has %d parameters, want AWS's full set", ev.Family, len(defs))
		}
		for i, p := range defs {
			if i > 0 && defs[i-1].Name == p.Name {
				t.Errorf("%s lists %s twice", ev.Family, p.Name)
			}
			if p.Modifiable && p.Apply != applyCluster {
				if err := p.check(p.Default); err != nil {
					t.Errorf("%s %s: the default %q fails its own check: %v", ev.Family, p.Name, p.Default, err)
				}
			}
		}
	}
	for _, tc := range []struct {
		family, name string
		present      bool
	}{
		{"redis7", "reserved-memory-percent", true}, {"redis7", "cluster-enabled", true}, {"redis7", "activedefrag", true},
		{"redis7", "close-on-replica-write", true}, {"redis4.0", "close-on-slave-write", true}, {"redis4.0", "close-on-replica-write", false},
		{"redis7", "hash-max-ziplist-entries", false}, {"redis6.x", "hash-max-ziplist-entries", true},
		{"valkey8", "lazyfree-lazy-eviction", false}, {"valkey7", "lazyfree-lazy-eviction", true}, {"valkey8", "extended-redis-compatibility", true},
	} {
		if _, ok := findParam(tc.family, tc.name); ok != tc.present {
			t.Errorf("%s has %s: %v, want %v", tc.family, tc.name, ok, tc.present)
		}
	}
	p, _ := findParam("redis7", "timeout")
	for v, ok := range map[string]bool{"0": true, "20": true, "19": false, "x": false, "-1": false} {
		if err := p.check(v); (err == nil) != ok {
			t.Errorf("timeout %q: %v", v, err)
		}
	}
	p, _ = findParam("redis6.x", "list-max-ziplist-size")
	for v, ok := range map[string]bool{"-5": true, "-1": true, "0": false, "-6": false, "128": true} {
		if err := p.check(v); (err == nil) != ok {
			t.Errorf("list-max-ziplist-size %q: %v", v, err)
		}
	}
	if p, _ := findParam("valkey8", "repl-backlog-size"); p.Default != "10485760" {
		t.Errorf("valkey8 repl-backlog-size default %s", p.Default)
	}
	cfg := engineConfig("redis7", (&paramGroup{family: "redis7"}).values())
	if cfg["client-output-buffer-limit"] != "normal 0 0 0 pubsub 33554432 8388608 60" || cfg["maxmemory-policy"] != "volatile-lru" {
		t.Errorf("engine config %v", cfg)
	}
	for _, name := range []string{"reserved-memory-percent", "cluster-enabled", "activedefrag", "close-on-replica-write", "maxclients"} {
		if _, ok := cfg[name]; ok {
			t.Errorf("%s passed to the engine", name)
		}
	}
	specific := nodeTypeSpecificParams("redis7", "redis")
	if i := slices.IndexFunc(specific, func(p types.CacheNodeTypeSpecificParameter) bool { return *p.ParameterName == "maxmemory" }); i < 0 || len(specific[i].CacheNodeTypeSpecificValues) < 90 {
		t.Errorf("node-type specific maxmemory missing: %d parameters", len(specific))
	}
}
