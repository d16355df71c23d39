package emulator

import (
	"cmp"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
)

// nodeType is one AWS cache node type of the catalog in
// catalog/node_types.tsv.
type nodeType struct {
	Name string
	// MemoryBytes is the node's memory as AWS gives it: the maxmemory of its
	// node-type-specific parameters, before reserved memory.
	MemoryBytes int64
	VCPUs       int
	// Family is the instance family: "r6g" for cache.r6g.large.
	Family string
	// Current is false for previous-generation types (t1, m1, m2, m3, c1, r3).
	Current bool
	// Engines are the engines AWS offers the type for (m8g, r8g and c8gn
	// are Valkey only; the previous generation is Redis OSS only).
	Engines []string
	// MinRedisVersion is the first Redis OSS version that runs on the type
	// ("" when any does): Graviton2 types from 5.0.6, data tiering from 6.2.
	MinRedisVersion string
}

// nodeMemoryScale divides every node type's memory, so that the large
// types (up to 635 GiB on AWS) fit on a laptop: a cache.r7g.large (13 GiB
// on AWS) gets 627 MiB of maxmemory, a cache.t4g.micro 24 MiB. The ratios
// between node types, and the reserved-memory-percent arithmetic, stay
// AWS's.
const nodeMemoryScale = 16

// minNodeMaxmemory is the least maxmemory a node gets, whatever its type
// and reserved-memory-percent: 0 would mean "no limit" to the engine, and a
// few MiB leave no room for a working data set.
const minNodeMaxmemory = 16 << 20

// defaultReservedMemoryPercent is AWS's reserved-memory-percent default.
const defaultReservedMemoryPercent = 25

// maxmemory is the maxmemory a node of this type runs with: AWS's memory
// less reservedPercent percent, divided by nodeMemoryScale, at least
// minNodeMaxmemory.
func (nt nodeType) maxmemory(reservedPercent int) int64 {
	reservedPercent = min(max(reservedPercent, 0), 100)
	m := nt.MemoryBytes * int64(100-reservedPercent) / 100 / nodeMemoryScale
	return max(m, minNodeMaxmemory)
}

// dataTiering reports whether the type keeps data on SSD (r6gd): AWS moves
// such a group only to another data-tiering type, and others never to one.
func (nt nodeType) dataTiering() bool { return strings.HasSuffix(nt.Family, "gd") }

//go:embed catalog/node_types.tsv
var nodeTypesTSV string

// nodeTypeCatalog parses catalog/node_types.tsv once; it panics on a
// malformed line, which a unit test catches.
var nodeTypeCatalog = sync.OnceValue(func() []nodeType {
	var out []nodeType
	for i, line := range strings.Split(nodeTypesTSV, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			panic(fmt.Sprintf("catalog/node_types.tsv line %d: %d fields, want 6", i+1, len(f)))
		}
		mem, err1 := strconv.ParseInt(f[1], 10, 64)
		cpus, err2 := strconv.Atoi(f[2])
		parts := strings.Split(f[0], ".")
		if err1 != nil || err2 != nil || len(parts) != 3 || parts[0] != "cache" {
			panic(fmt.Sprintf("catalog/node_types.tsv line %d: malformed %q", i+1, line))
		}
		nt := nodeType{Name: f[0], MemoryBytes: mem, VCPUs: cpus, Family: parts[1],
			Current: f[3] == "current", Engines: strings.Split(f[4], ",")}
		if f[5] != "-" {
			nt.MinRedisVersion = f[5]
		}
		out = append(out, nt)
	}
	return out
})

// lookupNodeType finds a node type of the catalog by its exact name.
func lookupNodeType(name string) (nodeType, bool) {
	cat := nodeTypeCatalog()
	i := slices.IndexFunc(cat, func(nt nodeType) bool { return nt.Name == name })
	if i < 0 {
		return nodeType{}, false
	}
	return cat[i], true
}

// checkNodeType validates the node type of a create or modify for engine
// version ev: AWS's error for a name it does not know, or for a type that
// does not run the engine or version.
func checkNodeType(name string, ev engineVersion) (nodeType, error) {
	nt, ok := lookupNodeType(name)
	if !ok {
		return nodeType{}, unknownNodeType(name)
	}
	if !nt.runs(ev) {
		return nodeType{}, nodeTypeNotSupported(name, ev)
	}
	return nt, nil
}

// checkDataTiering applies AWS's rule for DataTieringEnabled on a create:
// data tiering is for replication groups of a data-tiering node type
// (r6gd) only, and such a group must ask for it. A name the catalog does
// not know is refused by checkNodeType.
func checkDataTiering(name string, enabled bool) error {
	nt, ok := lookupNodeType(name)
	switch {
	case !ok:
		return nil
	case enabled && !nt.dataTiering():
		return invalidParameterCombination("Data tiering is only supported for replication groups using the r6gd node type, not %s.", name)
	case !enabled && nt.dataTiering():
		return invalidParameterCombination("DataTieringEnabled must be true for replication groups using the %s node type.", name)
	}
	return nil
}

// dataTieringStatus is what Describe reports for a group or snapshot of
// node type name.
func dataTieringStatus(name string) types.DataTieringStatus {
	if nt, ok := lookupNodeType(name); ok && nt.dataTiering() {
		return types.DataTieringStatusEnabled
	}
	return types.DataTieringStatusDisabled
}

// runs reports whether AWS offers the type for engine version ev.
func (nt nodeType) runs(ev engineVersion) bool {
	if !slices.Contains(nt.Engines, ev.Engine) {
		return false
	}
	return ev.Engine != "redis" || nt.MinRedisVersion == "" || versionAtLeast(ev.Actual, nt.MinRedisVersion)
}

// nodeTypeModifications are the node types a cluster of type current and
// engine version ev may move to, as ListAllowedNodeTypeModifications lists
// them: current-generation types running ev, on the same side of data
// tiering; those with more memory (or as much, another family) scale up,
// those with less scale down. Each list is sorted by memory, then name.
func nodeTypeModifications(current nodeType, ev engineVersion) (up, down []string) {
	var ups, downs []nodeType
	for _, nt := range nodeTypeCatalog() {
		if nt.Name == current.Name || !nt.Current || !nt.runs(ev) || nt.dataTiering() != current.dataTiering() {
			continue
		}
		if nt.MemoryBytes >= current.MemoryBytes {
			ups = append(ups, nt)
		} else {
			downs = append(downs, nt)
		}
	}
	return sortedNodeTypeNames(ups), sortedNodeTypeNames(downs)
}

func sortedNodeTypeNames(nts []nodeType) []string {
	slices.SortFunc(nts, func(a, b nodeType) int {
		return cmp.Or(cmp.Compare(a.MemoryBytes, b.MemoryBytes), strings.Compare(a.Name, b.Name))
	})
	out := make([]string, 0, len(nts))
	for _, nt := range nts {
		out = append(out, nt.Name)
	}
	return out
}
