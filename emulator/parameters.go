package emulator

import (
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// paramApply says how the emulator applies a parameter's value (the apply
// column of catalog/parameters_*.tsv).
type paramApply string

const (
	// applyEngine: a redis.conf directive of the same name, at start and
	// with CONFIG SET when it changes.
	applyEngine paramApply = "engine"
	// applyDefrag: activedefrag, set with CONFIG SET after the node started:
	// a binary built without active defragmentation (Debian's redis-server
	// links the system jemalloc) refuses it, at start fatally.
	applyDefrag paramApply = "defrag"
	// applyOutputBuffer: one of the client-output-buffer-limit-* parameters
	// AWS splits the client-output-buffer-limit directive into.
	applyOutputBuffer paramApply = "outbuf"
	// applyMemory: reserved-memory(-percent), which set the nodes' maxmemory.
	applyMemory paramApply = "memory"
	// applyCluster: cluster-enabled, which the group's cluster mode is.
	applyCluster paramApply = "cluster"
	// applyKept: stored and described, with no effect on a local node.
	applyKept paramApply = "kept"
	// applyValkey: a Valkey binary's parameter, kept while every Valkey
	// version label runs redis-server.
	applyValkey paramApply = "valkey"
	// applyNone: not modifiable; the node runs the engine's own value.
	applyNone paramApply = "none"
)

// paramDef is one parameter of a parameter group family.
type paramDef struct {
	Name, Default, DataType, Allowed, Description, MinVersion string
	Modifiable                                                bool
	// OnlyUnassociated: modifiable only while no cluster uses the group
	// (activerehashing and databases, which a running node cannot change).
	OnlyUnassociated bool
	ChangeType       types.ChangeType
	Apply            paramApply
}

//go:embed catalog/parameters_*.tsv
var paramFiles embed.FS

// paramCatalogs holds every family's parameters, sorted by name, from
// catalog/parameters_*.tsv (a family of another engine adds its own file).
// It panics on a malformed row, which a unit test catches.
var paramCatalogs = sync.OnceValue(func() map[string][]paramDef {
	out := map[string][]paramDef{}
	files, _ := paramFiles.ReadDir("catalog")
	for _, f := range files {
		data, err := paramFiles.ReadFile("catalog/" + f.Name())
		if err != nil {
			panic(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			c := strings.Split(line, "\t")
			if len(c) != 10 || (c[6] != string(types.ChangeTypeImmediate) && c[6] != string(types.ChangeTypeRequiresReboot)) {
				panic(fmt.Sprintf("catalog/%s line %d: malformed %q", f.Name(), i+1, line))
			}
			def := paramDef{Name: c[0], Default: c[2], DataType: c[3], Allowed: c[4],
				Modifiable: c[5] != "no", OnlyUnassociated: c[5] == "unassociated",
				ChangeType: types.ChangeType(c[6]), MinVersion: c[7], Apply: paramApply(c[8]), Description: c[9]}
			for _, fam := range strings.Split(c[1], ",") {
				out[fam] = append(out[fam], def)
			}
		}
	}
	for fam := range out {
		slices.SortFunc(out[fam], func(a, b paramDef) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
})

// familyParams lists the parameters of a family, sorted by name.
func familyParams(family string) []paramDef { return paramCatalogs()[family] }

// findParam finds a parameter of a family.
func findParam(family, name string) (paramDef, bool) {
	defs := familyParams(family)
	i := slices.IndexFunc(defs, func(p paramDef) bool { return p.Name == name })
	if i < 0 {
		return paramDef{}, false
	}
	return defs[i], true
}

// allowedRangeRE is one item of an integer's allowed values: "20-",
// "1-75", "-5--1" or "0".
var allowedRangeRE = regexp.MustCompile(`^(-?\d+)(-(-?\d*))?$`)

// check validates a value for the parameter, with AWS's error.
func (p paramDef) check(v string) error {
	bad := func() error {
		return invalidParameterValue("Invalid value %q for parameter %s; allowed values: %s.", v, p.Name, p.Allowed)
	}
	switch {
	case p.DataType == "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad()
		}
		for _, item := range strings.Split(p.Allowed, ",") {
			m := allowedRangeRE.FindStringSubmatch(item)
			if m == nil {
				continue
			}
			lo, _ := strconv.ParseInt(m[1], 10, 64)
			hi, hiErr := strconv.ParseInt(m[3], 10, 64)
			switch {
			case m[2] == "" && n == lo, m[2] != "" && m[3] == "" && n >= lo, m[2] != "" && hiErr == nil && n >= lo && n <= hi:
				return nil
			}
		}
		return bad()
	case p.Allowed != "" && !slices.Contains(strings.Split(p.Allowed, ","), v):
		return bad()
	case p.Name == "notify-keyspace-events" && strings.Trim(v, "KEg$lshzxeAtmdn") != "":
		return invalidParameterValue("Invalid value %q for parameter notify-keyspace-events.", v)
	}
	return nil
}

// outputBufferClasses are the client classes whose
// client-output-buffer-limit-<class>-* parameters a group may set; the
// replica class is node-type specific and not modifiable.
var outputBufferClasses = []string{"normal", "pubsub"}

// engineConfig is the redis.conf configuration a node of the group runs
// with, from values (every parameter of the family, engine.go
// paramGroup.values): the engine parameters, and client-output-buffer-limit
// composed of its parts. activedefrag is left out (defragConfig).
func engineConfig(family string, values map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range familyParams(family) {
		if p.Apply == applyEngine {
			out[p.Name] = values[p.Name]
		}
	}
	var limits []string
	for _, class := range outputBufferClasses {
		prefix := "client-output-buffer-limit-" + class + "-"
		if _, ok := values[prefix+"hard-limit"]; ok {
			limits = append(limits, class, values[prefix+"hard-limit"], values[prefix+"soft-limit"], values[prefix+"soft-seconds"])
		}
	}
	if len(limits) > 0 {
		out["client-output-buffer-limit"] = strings.Join(limits, " ")
	}
	return out
}

// nodeTypeSpecificParams are the parameters whose value depends on the node
// type (AWS's CacheNodeTypeSpecificParameters): maxmemory (AWS's memory of
// the type, before the emulator's scaling), the replica output buffer
// limits (a tenth of it) and maxclients.
func nodeTypeSpecificParams(family, engineName string) []types.CacheNodeTypeSpecificParameter {
	replica := "replica"
	if family == "redis4.0" {
		replica = "slave"
	}
	type column struct {
		name, description, minVersion string
		value                         func(nodeType) string
	}
	columns := []column{
		{"client-output-buffer-limit-" + replica + "-hard-limit", "Bytes of output buffer at which a replica is disconnected.", "2.6.13",
			func(nt nodeType) string { return strconv.FormatInt(nt.MemoryBytes/10, 10) }},
		{"client-output-buffer-limit-" + replica + "-soft-limit", "Bytes of output buffer a replica may hold for soft-seconds.", "2.6.13",
			func(nt nodeType) string { return strconv.FormatInt(nt.MemoryBytes/10, 10) }},
		{"maxclients", "The maximum number of connected clients.", "2.6.13", maxclientsOf},
		{"maxmemory", "The maximum bytes of data the node holds (before reserved memory).", "2.6.13",
			func(nt nodeType) string { return strconv.FormatInt(nt.MemoryBytes, 10) }},
	}
	var out []types.CacheNodeTypeSpecificParameter
	for _, c := range columns {
		p := types.CacheNodeTypeSpecificParameter{ParameterName: ptr(c.name), Description: ptr(c.description),
			Source: ptr("system"), DataType: ptr("integer"), IsModifiable: ptr(false),
			MinimumEngineVersion: ptr(c.minVersion), ChangeType: types.ChangeTypeImmediate}
		for _, nt := range nodeTypeCatalog() {
			if slices.Contains(nt.Engines, engineName) {
				p.CacheNodeTypeSpecificValues = append(p.CacheNodeTypeSpecificValues,
					types.CacheNodeTypeSpecificValue{CacheNodeType: ptr(nt.Name), Value: ptr(c.value(nt))})
			}
		}
		out = append(out, p)
	}
	return out
}

// maxclientsOf is AWS's maxclients of a node type: fewer on the smallest
// burstable types.
func maxclientsOf(nt nodeType) string {
	switch nt.Name {
	case "cache.t2.micro", "cache.t2.small", "cache.t2.medium", "cache.t3.micro", "cache.t4g.micro":
		return "20000"
	case "cache.t3.small", "cache.t3.medium":
		return "46000"
	}
	return "65000"
}
